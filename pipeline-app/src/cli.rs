//! The command line: subcommands, options and their help.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

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
}

const TRANSCRIBE_EXAMPLES: &str = "\
Examples:
  steno transcribe meeting.wav
  steno transcribe --format srt -o talk.srt talk.flac
  steno transcribe --realtime --format jsonl --report run.json session.wav
  arecord -f S16_LE -r 16000 -c 1 | steno transcribe -

The model is found in this order: --model, $STENO_MODEL, models/ggml-tiny.en.bin in the
steno workspace (installed by `cargo xtask model`).";

#[derive(Debug, Args)]
pub(crate) struct TranscribeArgs {
    /// Audio files (WAV, FLAC, MP3, Ogg Vorbis; any rate and channel count), or `-` for raw
    /// signed 16-bit little-endian 16 kHz mono PCM on stdin.
    #[arg(required = true, value_name = "INPUT")]
    pub(crate) inputs: Vec<PathBuf>,

    /// Which scheduler runs the pipeline.
    #[arg(long, value_enum, default_value_t = BackendName::Threads)]
    pub(crate) backend: BackendName,

    /// ggml Whisper model file.
    #[arg(long, env = "STENO_MODEL", value_name = "PATH")]
    pub(crate) model: Option<PathBuf>,

    /// How speech is cut into utterances: `earshot` (neural, robust to noise), `energy`
    /// (loudness), or `fixed` 5 s windows (the baseline design steno improves on).
    #[arg(long, value_enum, default_value_t = VadName::Earshot)]
    pub(crate) vad: VadName,

    /// Output format.
    #[arg(long, value_enum, default_value_t = FormatName::Text)]
    pub(crate) format: FormatName,

    /// Write the output to FILE instead of stdout. The file appears only when the run
    /// succeeds; a failed run leaves no partial file behind.
    #[arg(short, long, value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,

    /// Feed the input at real-time speed, as a microphone would (to measure live latency).
    #[arg(long)]
    pub(crate) realtime: bool,

    /// Write the run report (JSON: timings, latency percentiles, CPU, memory) to FILE.
    #[arg(long, value_name = "FILE")]
    pub(crate) report: Option<PathBuf>,

    /// CPU threads per Whisper inference.
    #[arg(long, value_name = "N", default_value_t = 2,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub(crate) threads: u16,

    /// Silence (ms) that ends an utterance; lower is faster but may split sentences.
    #[arg(long, value_name = "MS", default_value_t = 400)]
    pub(crate) min_silence_ms: u64,

    /// Longest chunk in seconds (at most 30); longer speech is split at a quiet moment.
    #[arg(long, value_name = "SECS", default_value_t = 20.0)]
    pub(crate) max_chunk: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum BackendName {
    Threads,
    Tokio,
    AsyncStd,
    Smol,
    Rayon,
    Process,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum VadName {
    Energy,
    Earshot,
    Webrtc,
    Fixed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum FormatName {
    Text,
    Jsonl,
    Srt,
    Vtt,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
