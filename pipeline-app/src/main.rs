//! `steno`: transcribe speech from files or stdin with a swappable scheduling backend.

mod cli;
mod floor;
mod interrupt;
mod live;
mod live_line;
mod model;
mod model_command;
mod output;
mod progress;
mod serve;
mod targets;
mod tracks;
mod transcribe;
mod worker;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    init_logging();
    let result = match cli.command {
        cli::Command::Transcribe(args) => transcribe::run(&args),
        cli::Command::Live(args) => live::run(&args),
        cli::Command::Serve(args) => serve::run(&args),
        cli::Command::Worker(args) => worker::run(&args),
        cli::Command::Model(command) => model_command::run(&command),
        cli::Command::Backends => {
            for backend in <cli::BackendName as clap::ValueEnum>::value_variants() {
                println!("{}", backend.name());
            }
            Ok(())
        }
        cli::Command::Floor(args) => floor::run_command(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) if interrupt::interrupted() => {
            // The run stopped on the signal; its output was discarded, as the message said.
            ExitCode::from(interrupt::EXIT_STATUS)
        }
        Err(error) => {
            // One line, naming the input and the problem; `{:#}` joins any context chain.
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr, filtered by `RUST_LOG`. By default only steno's own warnings show (every
/// `steno*` target): the libraries' logs (symphonia's notes on MP3 padding, whisper.cpp's,
/// routed under the `whisper_rs` targets) are theirs to explain and steno reports what matters
/// in its own one-line errors. `RUST_LOG=debug` shows steno's decisions: each utterance cut
/// and each decode, with its time.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG_FILTER));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

/// What logs show without `RUST_LOG`: steno's own warnings, nothing from the libraries.
const DEFAULT_LOG_FILTER: &str = "off,steno=warn";

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex, PoisonError};

    /// Log output captured in memory.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            let mut buffer = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            buffer.extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn by_default_only_stenos_own_warnings_are_logged() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                super::DEFAULT_LOG_FILTER,
            ))
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            // What symphonia says about a valid MP3's ID3v2 and Xing headers.
            tracing::warn!(target: "symphonia_bundle_mp3::demuxer", "skipping junk at 0 bytes");
            tracing::warn!(target: "whisper_rs::whisper_logging_hook", "a whisper.cpp note");
            tracing::warn!(target: "steno_core::stage", "steno's own warning");
            tracing::debug!(target: "steno_core::stage", "a decision, for RUST_LOG=debug");
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.contains("steno's own warning"), "{text}");
    }
}
