#!/usr/bin/env bash
# Makes the inputs of the benchmark of sounds that are not speech (BENCHMARKS.md, "No words
# where Whisper hears no speech") with espeak-ng and sox (apt: espeak-ng sox), 16 kHz mono
# 16-bit FLAC, into target/bench-inputs/ (made where they are needed, not committed):
#   sounds.flac: 18 sounds, 1.5 s of silence either side of each: six bursts of brown noise
#     (0.4-0.9 s), six sine sweeps (1.1-1.6 s), six runs of 4-9 clicks;
#   sounds-then-words.flac: ten sounds (noise, a sweep or clicks), each followed 0.4 s later
#     by a one-word answer ("Yes.", "Stop.", ...) and 1.6 s of silence: what a listener waits
#     for right after a sound.
# Every step is deterministic (-R seeds sox's noise generator, -D turns dither off).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="$root/target/bench-inputs"
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fmt=(-r 16000 -c 1 -b 16)

# synth FILE SOX_EFFECTS...: a sound synthesised by sox.
synth() {
  local file=$1
  shift
  sox -D -R -n "${fmt[@]}" "$file" "$@"
}

noise() { synth "$1" synth "0.$(($2 + 3))" brownnoise vol "0.$(($2 + 2))"; }
sweep() { synth "$1" synth "1.$2" sine "$((200 * $2))-$((300 * $2))" vol 0.3; }
clicks() { synth "$1" synth 0.05 whitenoise vol 0.9 pad 0 0.1 repeat "$(($2 + 3))"; }

pieces=()
for kind in noise sweep clicks; do
  for k in 1 2 3 4 5 6; do
    "$kind" "$work/$kind$k.wav" "$k"
    sox -D "$work/$kind$k.wav" "$work/padded-$kind$k.wav" pad 1.5 1.5
    pieces+=("$work/padded-$kind$k.wav")
  done
done
sox -D "${pieces[@]}" -C 8 "$out/sounds.flac"

words=("Yes." "Stop." "Thanks." "Okay." "Wait." "Right." "Sure." "Go on." "Hello." "No.")
kinds=(noise sweep clicks)
pieces=()
for k in 0 1 2 3 4 5 6 7 8 9; do
  "${kinds[$((k % 3))]}" "$work/sound$k.wav" "$((k % 6 + 1))"
  espeak-ng -v en-us -s 160 -w "$work/raw$k.wav" "${words[$k]}"
  sox -D "$work/raw$k.wav" "${fmt[@]}" "$work/word$k.wav"
  sox -D "$work/sound$k.wav" "$work/before$k.wav" pad 1.0 0.4
  sox -D "$work/before$k.wav" "$work/word$k.wav" "$work/pair$k.wav" pad 0 1.6
  pieces+=("$work/pair$k.wav")
done
sox -D "${pieces[@]}" -C 8 "$out/sounds-then-words.flac"
echo "made $out/sounds.flac and $out/sounds-then-words.flac"
