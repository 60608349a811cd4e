#!/usr/bin/env bash
# Makes reading-hts.flac and reading-hts.txt in OUTDIR (default: target/bench-inputs at the
# workspace root): the 25 sentences of reading.txt read by festival's cmu_us_slt_arctic_hts,
# an HTS voice much nearer natural speech than reading.flac's espeak-ng and diphone voices,
# with the same pauses (0.9 s) and noise (about -49 dBFS RMS). What the interim-results
# benchmarks compare the robotic voices with (BENCHMARKS.md, "Interim results"). Made where
# needed rather than committed; deterministic, as make-more.sh is.
# apt: sox festival festvox-us-slt-hts.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:-$root/target/bench-inputs}
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rate=16000
fmt=(-r "$rate" -c 1 -b 16 -e signed-integer)

sox -R -r "$rate" -c 1 -n "${fmt[@]}" "$work/lead.wav" trim 0 0.6
sox -R -r "$rate" -c 1 -n "${fmt[@]}" "$work/gap.wav" trim 0 0.9
pieces=("$work/lead.wav")
i=0
while IFS= read -r sentence; do
  printf '%s\n' "$sentence" > "$work/say.txt"
  text2wave -eval "(voice_cmu_us_slt_arctic_hts)" -o "$work/raw.wav" "$work/say.txt"
  sox -R -D "$work/raw.wav" "${fmt[@]}" "$work/r$i.wav" \
    silence 1 0.005 0.1% reverse silence 1 0.005 0.1% reverse rate "$rate" gain -n -3
  pieces+=("$work/r$i.wav" "$work/gap.wav")
  i=$((i + 1))
done < "$here/reading.txt"
sox -R -D "${pieces[@]}" "${fmt[@]}" "$work/clean.wav"
sox -R -r "$rate" -c 1 -n "${fmt[@]}" "$work/noise.wav" synth "$(soxi -s "$work/clean.wav")s" \
  whitenoise vol 0.006
sox -R -D -m -v 1 "$work/clean.wav" -v 1 "$work/noise.wav" "${fmt[@]}" "$work/reading.wav"
sox -R -D "$work/reading.wav" -r "$rate" -c 1 -b 16 -C 8 "$out/reading-hts.flac"
cp "$here/reading.txt" "$out/reading-hts.txt"
echo "made $out/reading-hts.flac ($i sentences, $(soxi -d "$out/reading-hts.flac"))"
