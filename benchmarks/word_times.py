#!/usr/bin/env python3
"""How far `--word-timestamps` puts words from where they were spoken (BENCHMARKS.md, "Word
timestamps").

    python3 benchmarks/word_times.py make DIR          # DIR/timed.flac and DIR/truth.json
    steno transcribe --word-timestamps --format jsonl DIR/timed.flac > DIR/steno.jsonl
    python3 benchmarks/word_times.py score DIR/truth.json DIR/steno.jsonl [MORE.jsonl ...]

`make` reads conformance/inputs/reading.txt with festival's cmu_us_slt_arctic_hts voice, as
conformance/inputs/make-reading-hts.sh does (the same trimming, 0.6 s lead, 0.9 s pauses and
noise), but synthesises each sentence itself so that festival also says where each of its words
starts and ends: the truth. `score` matches a transcript's words to the truth's in order (words
misheard are left out) and prints how far their starts and ends are from it. A JSON Lines file
is steno's output; a JSON list of [word, start, end] is any other tool's.
apt: festival festvox-us-slt-hts sox. Python's standard library only.
"""

import difflib
import json
import re
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FORMAT = ["-r", "16000", "-c", "1", "-b", "16", "-e", "signed-integer"]
# Where a synthesised sentence's silence ends and starts (make-reading-hts.sh's `speak`).
SILENCE = ["silence", "1", "0.005", "0.1%"]


def seconds(path):
    return float(subprocess.check_output(["soxi", "-D", str(path)]).decode())


def sox(*args):
    subprocess.run(["sox", "-R", "-D", *map(str, args)], check=True)


def make(out):
    out.mkdir(parents=True, exist_ok=True)
    sentences = [
        line.strip()
        for line in (ROOT / "conformance/inputs/reading.txt").read_text().splitlines()
        if line.strip()
    ]
    subprocess.run(["sox", "-R", "-n", *FORMAT, out / "lead.wav", "trim", "0", "0.6"], check=True)
    subprocess.run(["sox", "-R", "-n", *FORMAT, out / "gap.wav", "trim", "0", "0.9"], check=True)
    pieces, truth, at = [out / "lead.wav"], [], 0.6
    for i, sentence in enumerate(sentences):
        raw, said = out / f"raw{i}.wav", out / f"said{i}.wav"
        text = sentence.replace("\\", "\\\\").replace('"', '\\"')
        script = f"""(voice_cmu_us_slt_arctic_hts)
(Parameter.set 'Duration_Stretch 1.0)
(set! u (utt.synth (eval (list 'Utterance 'Text "{text}"))))
(utt.save.wave u "{raw}")
(mapcar (lambda (w) (format t "%s %s %s\\n" (item.name w)
  (item.feat w "R:SylStructure.daughter1.daughter1.segment_start") (item.feat w "word_end")))
  (utt.relation.items u 'Word))
"""
        (out / "say.scm").write_text(script)
        words = subprocess.check_output(["festival", "-b", str(out / "say.scm")]).decode()
        # The leading silence sox cuts off moves every word earlier by its length.
        sox(raw, *FORMAT, out / "lead-cut.wav", *SILENCE)
        cut = seconds(raw) - seconds(out / "lead-cut.wav")
        sox(raw, *FORMAT, said, *SILENCE, "reverse", *SILENCE, "reverse", "gain", "-n", "-3")
        for line in words.strip().splitlines():
            word, start, end = line.split()
            truth.append([word, round(at + float(start) - cut, 3), round(at + float(end) - cut, 3)])
        at += seconds(said) + 0.9
        pieces += [said, out / "gap.wav"]
    sox(*pieces, *FORMAT, out / "clean.wav")
    samples = subprocess.check_output(["soxi", "-s", str(out / "clean.wav")]).decode().strip()
    subprocess.run(
        ["sox", "-R", "-r", "16000", "-c", "1", "-n", *FORMAT, out / "noise.wav",
         "synth", f"{samples}s", "whitenoise", "vol", "0.006"],
        check=True,
    )
    sox("-m", "-v", "1", out / "clean.wav", "-v", "1", out / "noise.wav", "-r", "16000",
        "-c", "1", "-b", "16", out / "timed.flac")
    (out / "truth.json").write_text(json.dumps(truth))
    print(f"{out / 'timed.flac'}: {len(truth)} words, {at:.1f} s")


def words_of(path):
    text = Path(path).read_text().strip()
    if text.startswith("["):
        return [tuple(word) for word in json.loads(text)]
    words = []
    for line in text.splitlines():
        segment = json.loads(line)
        words += [(w["word"], w["start"], w["end"]) for w in segment.get("words") or []]
    return words


def normalized(word):
    return re.sub(r"[^a-z0-9']", "", word.lower())


def score(truth_path, paths):
    truth = json.loads(Path(truth_path).read_text())
    for path in paths:
        heard = words_of(path)
        matcher = difflib.SequenceMatcher(
            a=[normalized(w[0]) for w in truth], b=[normalized(w[0]) for w in heard], autojunk=False
        )
        starts, ends = [], []
        for block in matcher.get_matching_blocks():
            for k in range(block.size):
                said, timed = truth[block.a + k], heard[block.b + k]
                starts.append(timed[1] - said[1])
                ends.append(timed[2] - said[2])

        def summary(errors):
            off = sorted(abs(e) for e in errors)
            p90 = off[min(len(off) - 1, int(0.9 * len(off)))]
            near = sum(e <= 0.1 for e in off) / len(off)
            return (f"median {statistics.median(off) * 1000:.0f} ms off "
                    f"({statistics.median(errors) * 1000:+.0f} ms signed), 90th percentile "
                    f"{p90 * 1000:.0f} ms, {near:.0%} within 100 ms")

        print(f"{path}: {len(starts)} of {len(truth)} words matched")
        print(f"  starts: {summary(starts)}")
        print(f"  ends:   {summary(ends)}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "make":
        make(Path(sys.argv[2]))
    elif len(sys.argv) >= 4 and sys.argv[1] == "score":
        score(sys.argv[2], sys.argv[3:])
    else:
        sys.exit(__doc__)
