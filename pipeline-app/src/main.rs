//! `steno`: transcribe speech from files or stdin with a swappable scheduling backend.

mod cli;
mod floor;
mod live;
mod model;
mod output;
mod progress;
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
        cli::Command::Worker(args) => worker::run(&args),
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
        Err(error) => {
            // One line, naming the input and the problem; `{:#}` joins any context chain.
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr, filtered by `RUST_LOG` (default: warnings). whisper.cpp's own log is
/// routed here too, under the `whisper_rs` targets. symphonia logs probe failures as errors
/// that steno already reports in its own one-line message, so they are off by default.
fn init_logging() {
    const DEFAULT_FILTER: &str = "warn,symphonia_core=off";
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_FILTER));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
