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

# phrases_in_noise N NAME: N short phrases, after 0.6 s of silence and each followed by 1.5 s,
# in three parts of a third of them each, mixed with white noise at three levels (about -53,
# -43 and -37 dBFS RMS, against speech at about -20 dBFS RMS) and joined into $work/short.wav,
# with $work/short.txt (a line per phrase) and $work/short.tsv (number, start and end in
# seconds, voice, speed, text). The caller defines `phrase I`, which sets `voice`, `speed` and
# `text` for `speak`, `label` (the voice as the .tsv names it) and `written` (the line of the
# .txt). NAME is for the error message.
phrases_in_noise() {
  local n=$1 name=$2 vols=(0.004 0.012 0.025) pos=0 mixed=() pieces k i from to len
  quiet "$work/lead.wav" 0.6
  quiet "$work/gap.wav" 1.5
  : > "$work/short.txt"
  : > "$work/short.tsv"
  for k in 0 1 2; do
    from=$((k * n / 3)) to=$(((k + 1) * n / 3))
    pieces=()
    if ((k == 0)); then
      pieces+=("$work/lead.wav")
      pos=$((pos + $(soxi -s "$work/lead.wav")))
    fi
    for ((i = from; i < to; i++)); do
      phrase "$i"
      speak "$voice" "$speed" "$text" "$work/p$i.wav"
      len=$(soxi -s "$work/p$i.wav")
      # Positions are counted in samples (soxi -s) and only turned into seconds here.
      awk -v i="$((i + 1))" -v a="$pos" -v b="$((pos + len))" -v r="$rate" -v v="$label" \
        -v s="$speed" -v t="$text" \
        'BEGIN { printf "%d\t%.3f\t%.3f\t%s\t%s\t%s\n", i, a / r, b / r, v, s, t }' \
        >> "$work/short.tsv"
      printf '%s\n' "$written" >> "$work/short.txt"
      pieces+=("$work/p$i.wav" "$work/gap.wav")
      pos=$((pos + len + $(soxi -s "$work/gap.wav")))
    done
    sox -R -D "${pieces[@]}" "${fmt[@]}" "$work/part$k.wav"
    with_noise "$work/part$k.wav" "${vols[$k]}" "$work/mixed$k.wav"
    mixed+=("$work/mixed$k.wav")
  done
  sox -R -D "${mixed[@]}" "${fmt[@]}" "$work/short.wav"
  # The noise is made to each part's exact length, so the parts join without shifting the .tsv.
  if [[ $(soxi -s "$work/short.wav") != "$pos" ]]; then
    echo "$name: joined length differs from the .tsv's count" >&2
    exit 1
  fi
}
