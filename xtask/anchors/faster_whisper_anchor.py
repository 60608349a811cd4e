"""faster-whisper on one file, for `cargo xtask compare --anchors`.

Runs the CTranslate2 copy of Whisper that steno's converter starts from, with CTranslate2's
COMPUTE_TYPE (`default`: the float16 weights as stored; `int8`: 8-bit weights, faster-whisper's
counterpart of steno's q8_0 model) and faster-whisper's default decoding (beam search of 5, temperature fallback) except that no text is carried from
one 30 s window to the next (as steno and `whisper-cli -mc 0` do), on the given CPU threads.
Prints one JSON object: the transcription's wall seconds (model loading excluded, as in
steno's reports), the audio's length, peak RSS and the text.

usage: faster_whisper_anchor.py MODEL_DIR INPUT THREADS [COMPUTE_TYPE]
"""

import json
import resource
import sys
import time

from faster_whisper import WhisperModel, decode_audio


def main() -> None:
    model_dir, path, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
    compute_type = sys.argv[4] if len(sys.argv) > 4 else "default"
    model = WhisperModel(model_dir, device="cpu", compute_type=compute_type, cpu_threads=threads)
    started = time.perf_counter()
    audio = decode_audio(path, sampling_rate=16000)
    segments, _ = model.transcribe(audio, language="en", condition_on_previous_text=False)
    text = " ".join(segment.text.strip() for segment in segments)
    wall = time.perf_counter() - started
    print(
        json.dumps(
            {
                "backend": "faster-whisper" if compute_type == "default" else f"faster-whisper {compute_type}",
                "wall_seconds": wall,
                "audio_seconds": len(audio) / 16000,
                "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                "text": text,
            }
        )
    )


if __name__ == "__main__":
    main()
