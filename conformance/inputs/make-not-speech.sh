#!/usr/bin/env bash
# Makes the no-speech fixture with espeak-ng and sox (apt: espeak-ng sox), 16 kHz mono 16-bit
# FLAC:
#   not-speech.flac: two spoken sentences with sounds that are not speech between them (bursts
#     of pink and brown noise, a chord, plucked strings), each 1.5 s from the next: what a voice
#     detector may take for speech and Whisper may caption anyway ("you", "I'm not a fan of
#     the game.");
#   not-speech.tsv: one line per piece: its start and end in seconds, `speech` or `sound`, and
#     for speech the words.
# The outputs are committed; as in make.sh a file that exists is kept, and
# `STENO_REGENERATE=1 ./make-not-speech.sh` rewrites every file. Every step is deterministic
# (-R seeds sox's noise generator, -D turns dither off).
set -euo pipefail
cd "$(dirname "$0")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
want() { [[ ${STENO_REGENERATE:-} == 1 || ! -e $1 ]]; }
fmt=(-r 16000 -c 1 -b 16)
gap=1.5
pieces=()
rows=()
at=0
n=0

# add KIND TEXT: appends the piece $work/piece$n.wav, then $gap s of silence, and its row.
add() {
  local seconds
  seconds=$(soxi -D "$work/piece$n.wav")
  rows+=("$(printf '%s\t%s\t%s\t%s' "$at" "$(awk "BEGIN { print $at + $seconds }")" "$1" "$2")")
  sox -D "$work/piece$n.wav" "${fmt[@]}" "$work/padded$n.wav" pad 0 "$gap"
  pieces+=("$work/padded$n.wav")
  at=$(awk "BEGIN { print $at + $seconds + $gap }")
  n=$((n + 1))
}

# say TEXT: TEXT spoken by espeak-ng, its own silences cut off.
say() {
  espeak-ng -v en-us -s 150 -w "$work/raw$n.wav" "$1"
  sox -D "$work/raw$n.wav" "${fmt[@]}" "$work/piece$n.wav" silence 1 0.01 0.5% reverse \
    silence 1 0.01 0.5% reverse
  add speech "$1"
}

# sound SOX_SYNTH...: a sound synthesised by sox.
sound() {
  sox -D -R -n "${fmt[@]}" "$work/piece$n.wav" "$@"
  add sound ""
}

say "The quick brown fox jumps over the lazy dog."
sound synth 0.4 pinknoise vol 0.5 pad 0 0.6 : synth 0.4 brownnoise vol 0.6 pad 0 0.6 \
  : synth 0.5 pinknoise vol 0.4
sound synth 1 sine 440 sine 554 sine 659 : synth 1 sine 392 sine 494 sine 587 \
  : synth 1 sine 349 sine 440 sine 523
sound synth 3 pluck C4 pluck E4 pluck G4 fade 0 3 1 remix -
say "Please open the window and let the fresh air in."

if want not-speech.flac; then
  sox -D "${pieces[@]}" "${fmt[@]}" "$work/all.wav" pad 0.5 0
  sox -D "$work/all.wav" -C 8 not-speech.flac
fi
if want not-speech.tsv; then
  # The 0.5 s of silence before the first piece.
  printf '%s\n' "${rows[@]}" | awk -F'\t' -v OFS='\t' '{ printf "%.2f\t%.2f\t%s\t%s\n", $1 + 0.5, $2 + 0.5, $3, $4 }' > not-speech.tsv
fi
