# Helpers the speech-fixture scripts share (sourced, not run): 16 kHz mono 16-bit audio made
# with espeak-ng, festival and sox, every step deterministic (the synthesisers are; -R seeds
# sox's noise generator and -D turns dither off). The caller sets `work`, a scratch directory.

rate=16000
fmt=(-r "$rate" -c 1 -b 16 -e signed-integer)

# speak VOICE SPEED TEXT OUT: synthesise one utterance into OUT at 16 kHz mono 16-bit, with the
# synthesiser's own leading and trailing silence cut off (so OUT is just the speech) and its peak
# normalised to -3 dBFS. VOICE is an espeak-ng voice with SPEED in words per minute, or
# "festival" (its default voice) or "festival/NAME" (festival's voice NAME, e.g. ked_diphone)
# with SPEED as festival's Duration_Stretch (1.0 is its natural pace, about 150 wpm; larger is
# slower; HTS voices keep their own pace).
speak() {
  local voice=$1 speed=$2 text=$3 out=$4
  if [[ $voice == festival || $voice == festival/* ]]; then
    printf '%s\n' "$text" > "$work/say.txt"
    local choose=()
    if [[ $voice == festival/* ]]; then choose=(-eval "(voice_${voice#festival/})"); fi
    text2wave "${choose[@]}" -eval "(Parameter.set 'Duration_Stretch $speed)" \
      -o "$work/raw.wav" "$work/say.txt"
  else
    espeak-ng -v "$voice" -s "$speed" -w "$work/raw.wav" -- "$text"
  fi
  sox -R -D "$work/raw.wav" "${fmt[@]}" "$out" \
    silence 1 0.005 0.1% reverse silence 1 0.005 0.1% reverse rate "$rate" gain -n -3
}

# quiet OUT SECONDS: digital silence.
quiet() { sox -R -r "$rate" -c 1 -n "${fmt[@]}" "$1" trim 0 "$2"; }

# with_noise IN VOL OUT: IN mixed with white noise at sox volume VOL, of exactly IN's length.
# The noise is synthesised at 16 kHz (-r before -n), so a length in samples ("Ns") means them.
with_noise() {
  sox -R -r "$rate" -c 1 -n "${fmt[@]}" "$work/noise.wav" synth "$(soxi -s "$1")s" \
    whitenoise vol "$2"
  if [[ $(soxi -s "$work/noise.wav") != "$(soxi -s "$1")" ]]; then
    echo "with_noise: noise length differs from $1" >&2
    exit 1
  fi
  sox -R -D -m -v 1 "$1" -v 1 "$work/noise.wav" "${fmt[@]}" "$3"
}

# to_flac IN OUT: IN as FLAC, best compression.
to_flac() { sox -R -D "$1" -r "$rate" -c 1 -b 16 -C 8 "$2"; }
