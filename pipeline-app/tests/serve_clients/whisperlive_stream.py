"""Drives WhisperLive's own client (whisper_live.client.TranscriptionClient) through one WAV.

Usage: whisperlive_stream.py PORT WAV SRT [OPTIONS]

The client plays WAV to the server at 127.0.0.1:PORT in real time (muted: it sleeps for each
chunk's duration) and writes its SRT file to SRT; OPTIONS, a JSON object, are further
arguments of TranscriptionClient (such as {"word_timestamps": true}). Run it in a scratch
directory: the client writes a resampled copy of WAV into the current directory.

Prints JSON lines on stdout: {"event": "ready"} as soon as the server admits the stream, then
one result: {"transcript": what the client returned, "updates": the `segments` of every
update, in order, as its transcription_callback saw them, "statuses": the status messages
(WAIT, ERROR, ...), "admitted": whether SERVER_READY came, "backend": the backend it named,
"seconds": how long the call took}. The client's own prints go to stderr.
"""

import json
import sys
import time

from whisper_live import client as whisperlive

# The client prints its progress: to stderr, so that stdout carries only this script's JSON.
out = sys.stdout
sys.stdout = sys.stderr


def emit(value):
    out.write(json.dumps(value) + "\n")
    out.flush()


port, wav, srt = int(sys.argv[1]), sys.argv[2], sys.argv[3]
options = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
statuses = []
updates = []

# Watch what the client receives, before its own handling: its `waiting` flag is reset when
# the socket closes, and the server can be ready before the constructor returns.
handle = whisperlive.Client.on_message


def on_message(self, ws, message):
    data = json.loads(message)
    if "status" in data:
        statuses.append({"status": data["status"], "message": data.get("message")})
    if data.get("message") == "SERVER_READY":
        emit({"event": "ready"})
    handle(self, ws, message)


whisperlive.Client.on_message = on_message

started = time.monotonic()
transcription = whisperlive.TranscriptionClient(
    "127.0.0.1",
    port,
    lang="en",
    model="tiny.en",
    mute_audio_playback=True,
    output_transcription_path=srt,
    log_transcription=False,
    transcription_callback=lambda text, segments: updates.append(segments),
    **options,
)
# After the file, the client waits until nothing new came for this long before it ends the
# audio and writes its SRT: 15 s by default; 5 s is ample for the last final.
transcription.client.disconnect_if_no_response_for = 5
transcript = transcription(wav)
emit(
    {
        "transcript": transcript,
        "updates": updates,
        "statuses": statuses,
        "admitted": hasattr(transcription.client, "server_backend"),
        "backend": getattr(transcription.client, "server_backend", None),
        "seconds": time.monotonic() - started,
    }
)
