#!/usr/bin/env bash
# Makes the meeting fixtures with espeak-ng and sox (apt: espeak-ng sox): a call recorded as
# two tracks, each 16 kHz mono 16-bit FLAC of the same length, 21 s:
#   meeting-me.flac: the near side, one voice (en-us), three sentences;
#   meeting-them.flac: the far side, another voice (en-gb-x-rp), three sentences, the second of
#     which is still going when the near side starts its second (they talk over each other);
#   meeting-me-echo.flac: meeting-me.flac with the far side leaking into it, 18 dB down and 40 ms
#     late, as a laptop's speakers reach its microphone;
#   meeting.tsv: one line per sentence, in order of its end: track (me or them), start and end
#     seconds of its speech, and the words.
# Both tracks have the session's low white noise under them, so silence is never digital.
# The outputs are committed; as in make.sh a file that exists is kept, and
# `STENO_REGENERATE=1 ./make-meeting.sh` rewrites every file. Every step is deterministic.
set -euo pipefail
cd "$(dirname "$0")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
want() { [[ ${STENO_REGENERATE:-} == 1 || ! -e $1 ]]; }
fmt=(-r 16000 -c 1 -b 16)
length=21

# line TRACK VOICE START TEXT: speaks TEXT with VOICE, placed at START seconds of the track.
pieces_me=()
pieces_them=()
rows=()
line() {
  local track=$1 voice=$2 start=$3 text=$4 n=${#rows[@]}
  espeak-ng -v "$voice" -s 150 -w "$work/raw$n.wav" "$text"
  # Cut the synthesiser's own silence, so START is where the speech starts.
  sox -D "$work/raw$n.wav" "${fmt[@]}" "$work/cut$n.wav" silence 1 0.01 0.5% reverse \
    silence 1 0.01 0.5% reverse
  local seconds
  seconds=$(soxi -D "$work/cut$n.wav")
  sox -D "$work/cut$n.wav" "$work/placed$n.wav" pad "$start" 0
  if [[ $track == me ]]; then pieces_me+=("$work/placed$n.wav"); else
    pieces_them+=("$work/placed$n.wav"); fi
  rows+=("$(printf '%s\t%.2f\t%.2f\t%s' "$track" "$start" \
    "$(echo "$start + $seconds" | bc -l)" "$text")")
}
line them en-gb-x-rp 0.5 "Good morning, can you hear me clearly?"
line me en-us 3.4 "Yes, I can hear you very well."
line them en-gb-x-rp 6.0 "The budget looks fine, but the travel costs are far too high."
line me en-us 9.4 "Then let us cut the travel budget by half."
line me en-us 14.0 "I will send the notes after the call."
line them en-gb-x-rp 17.2 "Thank you, that would be very helpful."

# track NAME PIECES...: the pieces mixed on a silent track of the fixed length, with noise.
track() {
  local out=$1
  shift
  sox -D -n "${fmt[@]}" "$work/silent.wav" trim 0 "$length"
  sox -D -R -n "${fmt[@]}" "$work/noise-$out" synth "$length" whitenoise vol 0.006
  sox -D -m "$work/silent.wav" "$@" "$work/noise-$out" "${fmt[@]}" "$work/mixed-$out" \
    trim 0 "$length"
  # Undo sox -m's division by the number of inputs: each piece keeps its own level.
  sox -D -v "$(($# + 2))" "$work/mixed-$out" "${fmt[@]}" "$out"
}
if want meeting-me.flac || want meeting-them.flac || want meeting-me-echo.flac; then
  track meeting-me.flac "${pieces_me[@]}"
  track meeting-them.flac "${pieces_them[@]}"
  # The far side, 18 dB down and 40 ms late, added to the near side.
  sox -D meeting-them.flac "$work/leak.wav" vol -18dB pad 0.04 trim 0 "$length"
  sox -D -m -v 1 meeting-me.flac -v 1 "$work/leak.wav" "${fmt[@]}" meeting-me-echo.flac
fi
if want meeting.tsv; then
  printf '%s\n' "${rows[@]}" | sort -t$'\t' -k3,3n > meeting.tsv
fi
