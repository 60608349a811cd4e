"""faster-whisper on one file, for `cargo xtask compare --anchors`.

Runs the CTranslate2 copy of Whisper that steno's converter starts from, with faster-whisper's
default decoding (beam search of 5, temperature fallback) except that no text is carried from
one 30 s window to the next (as steno and `whisper-cli -mc 0` do), on the given CPU threads.
Prints one JSON object: the transcription's wall seconds (model loading excluded, as in
steno's reports), the audio's length, peak RSS and the text.

usage: faster_whisper_anchor.py MODEL_DIR INPUT THREADS
"""

import json
import resource
import sys
import time

from faster_whisper import WhisperModel, decode_audio


def main() -> None:
    model_dir, path, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
    model = WhisperModel(model_dir, device="cpu", compute_type="default", cpu_threads=threads)
    started = time.perf_counter()
    audio = decode_audio(path, sampling_rate=16000)
    segments, _ = model.transcribe(audio, language="en", condition_on_previous_text=False)
    text = " ".join(segment.text.strip() for segment in segments)
    wall = time.perf_counter() - started
    print(
        json.dumps(
            {
                "backend": "faster-whisper",
                "wall_seconds": wall,
                "audio_seconds": len(audio) / 16000,
                "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                "text": text,
            }
        )
    )


if __name__ == "__main__":
    main()
