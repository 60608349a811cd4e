//! The command line: subcommands, options and their help.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

mod examples;
mod whisper_args;

use examples::{
    LIVE_EXAMPLES, MODEL_EXAMPLES, SERVE_EXAMPLES, TRANSCRIBE_EXAMPLES, WORKER_EXAMPLES,
};
pub(crate) use whisper_args::WhisperArgs;

/// Real-time speech transcription with Whisper, scheduled by the backend of your choice.
#[derive(Debug, Parser)]
#[command(name = "steno", version, about, long_about = None)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Transcribe audio files (or raw PCM on stdin) to text, JSON Lines or subtitles.
    #[command(after_help = TRANSCRIBE_EXAMPLES)]
    Transcribe(TranscribeArgs),
    /// Transcribe a microphone (or any capture device) live, until Ctrl-C or --duration.
    #[command(after_help = LIVE_EXAMPLES)]
    Live(LiveArgs),
    /// Serve transcription over the network: WhisperLive's WebSocket protocol, steno's own
    /// `/v1/stream`, an OpenAI-compatible upload endpoint, and a live-captions page.
    #[command(after_help = SERVE_EXAMPLES)]
    Serve(ServeArgs),
    /// Transcribe for a fleet: take chunks from a NATS work queue (`--nats URL`) for runs
    /// with `--backend nats`, on this or any machine. Without --nats it serves
    /// `--backend process` on stdin and stdout (steno starts those workers itself).
    #[command(after_help = WORKER_EXAMPLES)]
    Worker(WorkerArgs),
    /// List the Whisper models steno knows by name, or install one.
    #[command(subcommand, after_help = MODEL_EXAMPLES)]
    Model(ModelCommand),
    /// List the backends this build can run, one per line.
    Backends,
    /// Transcribe one file's chunks in a plain sequential loop, with no pipeline: the floor
    /// `cargo xtask compare` measures backends against (not for direct use).
    #[command(hide = true)]
    Floor(FloorArgs),
}

/// `steno model ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum ModelCommand {
    /// List the models steno knows: name, size, languages, whether and how each is
    /// installed, and where it would come from.
    List,
    /// Install models by name into the models folder (checked by SHA-256; a model already
    /// installed and intact is left as it is).
    Install {
        /// The models to install, e.g. `base` or `tiny.en-q8_0`.
        #[arg(value_name = "NAME", required = true)]
        names: Vec<String>,
    },
}

/// The options `transcribe` and `live` share: the backend, the output format, how inference
/// is sized and what is decoded how. Defined once, flattened into both.
#[derive(Debug, Clone, Args)]
pub(crate) struct PipelineArgs {
    /// Which scheduler runs the pipeline.
    #[arg(long, value_enum, default_value_t = BackendName::Threads)]
    pub(crate) backend: BackendName,

    /// Output format.
    #[arg(long, value_enum, default_value_t = FormatName::Text)]
    pub(crate) format: FormatName,

    /// SRT and WebVTT: the most characters in a subtitle line; lines wrap at word boundaries,
    /// and a longer segment becomes several cues (timed by its words with --word-timestamps).
    /// 0: no limit.
    #[arg(long, value_name = "N", default_value_t = 42)]
    pub(crate) max_line_chars: usize,

    /// SRT and WebVTT: the most lines in a subtitle cue. 0: no limit.
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub(crate) max_lines: usize,

    /// Show words while the speaker is still talking: every --interim-step-ms of speech the
    /// utterance so far is decoded and written as a partial hypothesis (in real time also the
    /// early decode started at each pause, at no extra cost). On a terminal (text
    /// format) the current line is rewritten in place, its stable words plain and the rest
    /// dimmed, and each final line replaces it; JSON Lines get `"type":"partial"` lines with
    /// `text` and `stable` (words later partials keep); text piped elsewhere, SRT and VTT hold
    /// finals only. Final text is the same with or without.
    #[arg(long)]
    pub(crate) interim: bool,

    /// `--backend process`: worker processes, each loading the model [default: max(1, cores /
    /// threads)].
    #[arg(long, value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub(crate) workers: Option<u16>,

    /// `--backend rayon`: pool threads, each with its own Whisper state on one shared model
    /// [default: max(1, cores / threads)].
    #[arg(long, value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub(crate) pool: Option<u16>,

    #[command(flatten)]
    pub(crate) nats: NatsArgs,

    #[command(flatten)]
    pub(crate) decoding: DecodingArgs,
}

/// Where chunks go with `--backend nats` (and `serve --nats`). Credentials come from the
/// environment only (STENO_NATS_USER and STENO_NATS_PASSWORD, or STENO_NATS_TOKEN;
/// STENO_NATS_CA for a private CA), so they never appear in a process list or a log.
#[derive(Debug, Clone, Args)]
pub(crate) struct NatsArgs {
    /// The NATS server(s) whose JetStream work queue the workers (`steno worker --nats URL`)
    /// take chunks from: nats://HOST:PORT, or tls://HOST:PORT for TLS. Used by `--backend
    /// nats`; `serve` with it transcribes on the fleet instead of loading the model.
    #[arg(long, env = "STENO_NATS_URL", value_name = "URL")]
    pub(crate) nats: Option<String>,

    /// With NATS: the JetStream stream of the work queue; the workers must name the same one.
    #[arg(long, value_name = "NAME", default_value = steno_nats::DEFAULT_STREAM)]
    pub(crate) nats_stream: String,

    /// With NATS: chunks with the fleet at once; about the number of workers, so each has one
    /// [default: max(1, cores / threads)].
    #[arg(long, value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub(crate) in_flight: Option<u16>,

    /// With NATS: how long a chunk waits while no worker answers (or the server is away)
    /// before it fails with an error.
    #[arg(long, value_name = "SECONDS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub(crate) nats_patience_secs: u64,
}

/// The model and how speech is cut and decoded: shared by `transcribe`, `live` and `serve`.
#[derive(Debug, Clone, Args)]
pub(crate) struct DecodingArgs {
    /// Whisper model: a name (`steno model list`; installed by `steno model install NAME`)
    /// or a ggml model file [default: tiny.en-q8_0].
    #[arg(long, env = steno_core::MODEL_ENV, value_name = "NAME|PATH")]
    pub(crate) model: Option<String>,

    /// How speech is cut into utterances: `earshot` (neural, robust to noise), `energy`
    /// (loudness), or `fixed` 5 s windows (the baseline design steno improves on).
    #[arg(long, value_enum, default_value_t = VadName::Earshot)]
    pub(crate) vad: VadName,

    /// CPU threads per Whisper inference [default: 2; 1 for `transcribe` of a file without
    /// --realtime (but not on nats), whose windows two 1-thread states decode side by side
    /// faster than one 2-thread state; with `transcribe`'s --workers N or --pool N:
    /// max(1, cores / N)].
    /// Whisper states run side by side: cores / threads of them.
    #[arg(long, value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub(crate) threads: Option<u16>,

    /// Wait for the whole hangover before transcribing an utterance. By default, when audio
    /// arrives in real time, transcription starts as soon as the speech's trailing padding
    /// has arrived and the text is written once the hangover confirms the end (same text,
    /// sooner); this turns that off.
    #[arg(long)]
    pub(crate) no_early_start: bool,

    /// Interim results: milliseconds of speech between partial hypotheses [default: 500].
    #[arg(long, value_name = "MS",
          value_parser = clap::value_parser!(u64).range(100..=10_000))]
    pub(crate) interim_step_ms: Option<u64>,

    /// Silence (ms) that ends an utterance; lower is faster but may split sentences.
    #[arg(long, value_name = "MS", default_value_t = 400)]
    pub(crate) min_silence_ms: u64,

    #[command(flatten)]
    pub(crate) whisper: WhisperArgs,

    /// Audio (ms) kept after the end of speech in each utterance, so a word's fading end is
    /// not cut [default: 100 in `live`, `serve` and with --realtime, where text waits for it;
    /// 200 for files, whose packed windows lose words with less].
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(0..=2_000))]
    pub(crate) trailing_padding_ms: Option<u64>,

    /// Longest chunk in seconds (at most 30); longer speech is split at a quiet moment.
    #[arg(long, value_name = "SECS", default_value_t = 20.0)]
    pub(crate) max_chunk: f64,
}

#[derive(Debug, Args)]
pub(crate) struct TranscribeArgs {
    /// Audio files (WAV, FLAC, MP3, Ogg Vorbis, M4A/AAC; any rate and channel count), or `-`
    /// for stdin: a WAV, FLAC, MP3, Ogg or M4A stream is recognised and decoded; anything else
    /// is read as raw signed 16-bit little-endian 16 kHz mono PCM (see --raw).
    #[arg(required_unless_present = "sources", value_name = "INPUT")]
    pub(crate) inputs: Vec<PathBuf>,

    /// One labelled track of a conversation (a call recorder's separate tracks); give one per
    /// track, instead of INPUT files. The tracks make one transcript: each is cut into
    /// utterances on its own, segments are written in order of their end of speech and
    /// carry their label (`[them] ...` in text and SRT, `<v them>` in WebVTT, `source` in
    /// JSON Lines). Tracks are decoded utterance by utterance (no packing).
    #[arg(long = "source", value_name = "LABEL=FILE", conflicts_with = "inputs",
          value_parser = labelled::<PathBuf>)]
    pub(crate) sources: Vec<(String, PathBuf)>,

    /// With --source: drop LABEL's segments that repeat what another track said at the same
    /// time: the far side of a call leaking from the speakers into this microphone. Off by
    /// default; a segment with words of its own besides the echo is kept whole (README:
    /// "Meeting notes").
    #[arg(long, value_name = "LABEL", requires = "sources")]
    pub(crate) echo_guard: Option<String>,

    #[command(flatten)]
    pub(crate) pipeline: PipelineArgs,

    /// Write the output to FILE instead of stdout. The file appears only when the run
    /// succeeds; a failed run leaves no partial file behind (a device or named pipe, such as
    /// /dev/stderr, is written in place as the run goes). A directory (existing, or ending
    /// in `/`; required with several inputs) gets `DIR/<input name>.<format>` per input.
    #[arg(short, long, value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,

    /// Feed the input at real-time speed, as a microphone would (to measure live latency).
    #[arg(long)]
    pub(crate) realtime: bool,

    /// Write the run report (JSON: timings, latency percentiles, CPU, memory) to FILE. A
    /// directory (as for -o) gets DIR/<input name>.report.json per input.
    #[arg(long, value_name = "FILE")]
    pub(crate) report: Option<PathBuf>,

    /// Read stdin (`-`) as raw signed 16-bit little-endian PCM without looking for a
    /// container: 16 kHz mono unless --rate and --channels say otherwise.
    #[arg(long)]
    pub(crate) raw: bool,

    /// With --raw: the sample rate of the PCM on stdin, in Hz.
    #[arg(long, value_name = "HZ", requires = "raw", default_value_t = 16_000,
          value_parser = clap::value_parser!(u32).range(1..=768_000))]
    pub(crate) rate: u32,

    /// With --raw: the channels of the PCM on stdin (interleaved; downmixed to mono).
    #[arg(long, value_name = "N", requires = "raw", default_value_t = 1,
          value_parser = clap::value_parser!(u16).range(1..=32))]
    pub(crate) channels: u16,

    /// Decode every utterance alone. By default a file (without --realtime) is decoded in
    /// windows of consecutive utterances of up to 12 s: fewer Whisper calls, and Whisper hears
    /// each sentence with its neighbours (each utterance is still its own segment).
    #[arg(long)]
    pub(crate) no_pack: bool,

    /// `--backend process`: the program worker processes run, given `worker --model PATH
    /// --threads N` (default: this steno executable). A wrapper can sandbox or renice them.
    #[arg(long, value_name = "PROGRAM", hide = true)]
    pub(crate) worker_program: Option<PathBuf>,

    /// Replace Whisper with the scripted stand-in costing MS milliseconds per second of audio,
    /// to measure the pipeline's own overhead (`cargo xtask compare --simulated`).
    #[arg(long, value_name = "MS", hide = true)]
    pub(crate) simulate_cost_ms: Option<u64>,
}

impl PipelineArgs {
    /// The subtitle line limits of `--max-line-chars` and `--max-lines`.
    pub(crate) fn line_limits(&self) -> steno_core::LineLimits {
        steno_core::LineLimits {
            max_line_chars: self.max_line_chars,
            max_lines: self.max_lines,
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct FloorArgs {
    /// The audio file to transcribe.
    #[arg(value_name = "INPUT")]
    pub(crate) input: PathBuf,

    /// Whisper model: a name (`steno model list`; installed by `steno model install NAME`)
    /// or a ggml model file [default: tiny.en-q8_0].
    #[arg(long, env = steno_core::MODEL_ENV, value_name = "NAME|PATH")]
    pub(crate) model: Option<String>,

    /// Write the run report (JSON) to FILE.
    #[arg(long, value_name = "FILE")]
    pub(crate) report: PathBuf,

    /// CPU threads per Whisper inference.
    #[arg(long, value_name = "N", default_value_t = 2,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub(crate) threads: u16,

    /// Use the scripted stand-in costing MS milliseconds per second of audio.
    #[arg(long, value_name = "MS", conflicts_with = "whisper_cli")]
    pub(crate) simulate_cost_ms: Option<u64>,

    /// Instead of steno's chunks, whisper.cpp's own long-form transcription of the whole
    /// file with whisper-cli's default decoding and no text carried between windows (its
    /// `-mc 0`): the anchor `cargo xtask compare --anchors` compares steno with.
    #[arg(long)]
    pub(crate) whisper_cli: bool,
}

/// `LABEL=VALUE`, as `--source` takes it: a label of its own (not empty, no `=`) and a value.
fn labelled<T: From<String>>(given: &str) -> Result<(String, T), String> {
    let Some((label, value)) = given.split_once('=') else {
        return Err(format!(
            "{given:?} has no label: write LABEL={given}, such as mic={given}"
        ));
    };
    let label = label.trim();
    if label.is_empty() || label.chars().any(char::is_control) {
        return Err(format!(
            "{given:?}: the label before `=` must be a name, such as mic"
        ));
    }
    if value.is_empty() {
        return Err(format!("{given:?}: nothing after `=`"));
    }
    Ok((label.to_owned(), T::from(value.to_owned())))
}

/// `steno live`: a capture device through a pipeline, with the output options of `transcribe`.
#[derive(Debug, Args)]
pub(crate) struct LiveArgs {
    /// Capture device, by name as `--list-devices` prints it [default: the system's default
    /// input device].
    #[arg(long, value_name = "NAME")]
    pub(crate) device: Option<String>,

    /// Capture several devices at once, each labelled: the microphone and the system's
    /// audio for meeting notes (`--source me=default --source them=<sink>.monitor`; see
    /// --list-devices for the monitors). Each device is cut into utterances on its own
    /// (nothing is mixed), and one transcript in order of end of speech labels every line.
    #[arg(long = "source", value_name = "LABEL=DEVICE", conflicts_with = "device",
          value_parser = labelled::<String>)]
    pub(crate) sources: Vec<(String, String)>,

    /// With --source: drop LABEL's segments that repeat what another device said at the same
    /// time: the speakers leaking into this microphone. Off by default; a segment with words
    /// of its own besides the echo is kept whole (README: "Meeting notes").
    #[arg(long, value_name = "LABEL", requires = "sources")]
    pub(crate) echo_guard: Option<String>,

    /// List the capture devices and their default configuration, then exit.
    #[arg(long)]
    pub(crate) list_devices: bool,

    /// Stop after SECS seconds of captured audio (default: run until Ctrl-C).
    #[arg(long, value_name = "SECS")]
    pub(crate) duration: Option<f64>,

    #[command(flatten)]
    pub(crate) pipeline: PipelineArgs,

    /// Write the output to FILE instead of stdout; the file appears when the session ends.
    #[arg(short, long, value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,

    /// Write the run report (JSON: latency percentiles, dropped samples, CPU, memory) to FILE.
    #[arg(long, value_name = "FILE")]
    pub(crate) report: Option<PathBuf>,
}

/// `steno serve`: the address, access, limits, and the decoding options of `transcribe`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on. The default serves this machine only: to serve a network, name
    /// its address (such as 0.0.0.0:9090), and set --token.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9090")]
    pub(crate) listen: std::net::SocketAddr,

    /// Require this secret of every client (see below for how clients pass it).
    #[arg(
        long,
        env = "STENO_TOKEN",
        value_name = "SECRET",
        hide_env_values = true
    )]
    pub(crate) token: Option<String>,

    /// Streams and uploads transcribed at once. The next client waits: WhisperLive clients
    /// get its WAIT status, others HTTP 503 with Retry-After.
    #[arg(long, value_name = "N", default_value_t = 4,
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub(crate) max_streams: u16,

    /// Longest stream, in seconds; then the client gets its final text and DISCONNECT.
    #[arg(long, value_name = "SECS", default_value_t = 3600,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub(crate) max_stream_secs: u64,

    /// A connection that sends nothing for this long is closed, with the reason.
    #[arg(long, value_name = "SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=3_600))]
    pub(crate) idle_secs: u64,

    /// A client that reads nothing for this long while its text waits is disconnected (its
    /// queue is bounded, so waiting longer would stall its stream), with the reason logged.
    #[arg(long, value_name = "SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=600))]
    pub(crate) send_timeout_secs: u64,

    /// Largest upload to /v1/audio/transcriptions, in MiB (larger: HTTP 413).
    #[arg(long, value_name = "MIB", default_value_t = 100,
          value_parser = clap::value_parser!(u64).range(1..=4_096))]
    pub(crate) max_upload_mib: u64,

    #[command(flatten)]
    pub(crate) nats: NatsArgs,

    #[command(flatten)]
    pub(crate) decoding: DecodingArgs,
}

/// `steno worker`: a worker of a NATS fleet (`--nats`), or of `--backend process`.
#[derive(Debug, Args)]
pub(crate) struct WorkerArgs {
    /// Whisper model: a name (`steno model list`; installed by `steno model install NAME`)
    /// or a ggml model file [default: tiny.en-q8_0].
    #[arg(long, env = steno_core::MODEL_ENV, value_name = "NAME|PATH")]
    pub(crate) model: Option<String>,

    /// CPU threads per Whisper inference.
    #[arg(long, value_name = "N", default_value_t = 2,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub(crate) threads: u16,

    /// The decoding options of the runs this worker serves (the runs' own must match).
    #[command(flatten)]
    pub(crate) whisper: WhisperArgs,

    /// Take chunks from the JetStream work queue of the NATS server(s) at URL
    /// (nats://HOST:PORT, or tls://HOST:PORT), until Ctrl-C or SIGTERM. Credentials come from
    /// the environment: STENO_NATS_USER and STENO_NATS_PASSWORD, or STENO_NATS_TOKEN
    /// (STENO_NATS_CA for a private CA). Never taken from $STENO_NATS_URL: the process
    /// backend's workers (this command without --nats) inherit the environment.
    #[arg(long, value_name = "URL")]
    pub(crate) nats: Option<String>,

    /// With --nats: the JetStream stream the runs send chunks on.
    #[arg(long, value_name = "NAME", default_value = steno_nats::DEFAULT_STREAM, requires = "nats")]
    pub(crate) stream: String,

    /// With --nats: how long a worker may be silent before its chunk goes to another worker
    /// (it reports progress while it transcribes). Set by the first worker of a model.
    #[arg(long, value_name = "SECONDS", default_value_t = 10, requires = "nats",
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub(crate) ack_wait_secs: u64,

    /// With --nats: how many times a chunk is delivered before the run it belongs to fails.
    /// Set by the first worker of a model.
    #[arg(long, value_name = "N", default_value_t = 3, requires = "nats",
          value_parser = clap::value_parser!(u32).range(1..=100))]
    pub(crate) max_deliveries: u32,

    /// Serve the scripted transcriber instead of a model (tests of the pipeline).
    #[arg(long, hide = true)]
    pub(crate) scripted: bool,

    /// Scripted: milliseconds spent per second of audio.
    #[arg(long, value_name = "MS", requires = "scripted", hide = true)]
    pub(crate) cost_ms_per_s: Option<u64>,

    /// Scripted: fail on the chunk with this index.
    #[arg(long, value_name = "K", requires = "scripted", hide = true)]
    pub(crate) fail_on_chunk: Option<usize>,
}

/// Every backend this build can run: the one list of their names (`--backend`, `steno
/// backends`); each name is also what its backend's `Backend::name` and reports say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum BackendName {
    Threads,
    Tokio,
    AsyncStd,
    Smol,
    Rayon,
    Process,
    Nats,
}

impl BackendName {
    /// The name as `--backend` takes it (`async-std`, ...).
    pub(crate) fn name(self) -> String {
        self.to_possible_value()
            .map_or_else(String::new, |value| value.get_name().to_owned())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum VadName {
    Energy,
    Earshot,
    Fixed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum FormatName {
    Text,
    Jsonl,
    Srt,
    Vtt,
}

/// `steno transcribe` with `line` after it, parsed: for tests of what the options mean.
///
/// # Panics
/// When `line` does not parse.
#[cfg(test)]
pub(crate) fn transcribe_args(line: &[&str]) -> TranscribeArgs {
    let cli = Cli::try_parse_from(["steno", "transcribe"].iter().chain(line).copied())
        .unwrap_or_else(|e| panic!("{e}"));
    match cli.command {
        Command::Transcribe(args) => args,
        _ => panic!("not transcribe"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn a_source_is_a_label_and_a_value() {
        let args = transcribe_args(&["--source", "me=a.wav", "--source", "them=b=c.wav"]);
        let sources: Vec<(&str, &std::path::Path)> = args
            .sources
            .iter()
            .map(|(label, path)| (label.as_str(), path.as_path()))
            .collect();
        assert_eq!(
            sources,
            [
                ("me", std::path::Path::new("a.wav")),
                ("them", std::path::Path::new("b=c.wav"))
            ]
        );
        for (bad, problem) in [
            ("a.wav", "has no label"),
            ("=a.wav", "must be a name"),
            ("me=", "nothing after"),
        ] {
            let err = Cli::try_parse_from(["steno", "transcribe", "--source", bad])
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains(problem), "{bad}: {err}");
        }
        let err = Cli::try_parse_from(["steno", "transcribe", "--source", "me=a", "b.wav"])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("cannot be used with"), "{err}");
    }
}
