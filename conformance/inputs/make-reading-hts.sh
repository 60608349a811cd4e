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
# shellcheck source=synth.sh
source "$here/synth.sh"

quiet "$work/lead.wav" 0.6
quiet "$work/gap.wav" 0.9
pieces=("$work/lead.wav")
i=0
while IFS= read -r sentence; do
  speak festival/cmu_us_slt_arctic_hts 1.0 "$sentence" "$work/r$i.wav"
  pieces+=("$work/r$i.wav" "$work/gap.wav")
  i=$((i + 1))
done < "$here/reading.txt"
sox -R -D "${pieces[@]}" "${fmt[@]}" "$work/clean.wav"
with_noise "$work/clean.wav" 0.006 "$work/reading.wav"
to_flac "$work/reading.wav" "$out/reading-hts.flac"
cp "$here/reading.txt" "$out/reading-hts.txt"
echo "made $out/reading-hts.flac ($i sentences, $(soxi -d "$out/reading-hts.flac"))"
