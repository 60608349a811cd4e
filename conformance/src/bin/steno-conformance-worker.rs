//! `steno-conformance-worker`: the worker process the conformance suite runs the process
//! backend with. It serves, over the worker protocol on stdin and stdout, the transcriber the
//! suite's pipeline names (see `steno_conformance::ProcessWorkers`):
//!
//! ```text
//! steno-conformance-worker --model NAME [--threads N] [DECODING OPTIONS]
//!                          [--nats URL --stream NAME]
//! ```
//!
//! - when NAME is a Whisper model file, it is loaded with N threads (1 by default) and the
//!   decoding options given as `steno worker` takes them (what `DecodingOptions::worker_args`
//!   writes and `DecodingOptions::from_worker_args` reads: `--beam-size N`, `--prompt TEXT`,
//!   `--language CODE`, `--translate`, ...), and announced under its path and those options;
//! - otherwise NAME must be a `steno_conformance::WorkerScript` name (a scripted
//!   transcriber's spec, maybe stalled), which is served and announced as it is, so the
//!   parent's check that the worker serves the pipeline's transcriber compares the whole
//!   script;
//! - with `--nats`, it serves the NATS backend's work queue on that stream instead (see
//!   `steno_conformance::NatsWorkers`) until it is killed.

use std::path::Path;
use std::process::ExitCode;

use steno_conformance::WorkerScript;
use steno_core::TranscriberFactory;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> std::result::Result<(), String> {
    let mut args = std::env::args().skip(1);
    let mut model = None;
    let mut threads = 1;
    let mut nats = None;
    let mut stream = None;
    // The decoding options, as `DecodingOptions::worker_args` wrote them.
    let mut decoding = Vec::new();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--model" => model = Some(args.next().ok_or("--model needs a name")?),
            "--threads" => {
                threads = args
                    .next()
                    .and_then(|value| value.parse().ok())
                    .ok_or("--threads needs a number")?;
            }
            "--nats" => nats = Some(args.next().ok_or("--nats needs a URL")?),
            "--stream" => stream = Some(args.next().ok_or("--stream needs a name")?),
            "--beam-size"
            | "--prompt"
            | "--language"
            | "--no-speech-threshold"
            | "--logprob-threshold" => {
                let value = args.next().ok_or(format!("{arg} needs a value"))?;
                decoding.extend([arg, value]);
            }
            "--translate" | "--word-timestamps" | "--temperature-fallback" => decoding.push(arg),
            _ if arg.starts_with("--prompt=") => decoding.push(arg),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let model = model.ok_or("--model is required")?;
    let factory: Box<dyn TranscriberFactory> = if Path::new(&model).is_file() {
        load_model(&model, threads, &decoding)?
    } else {
        Box::new(WorkerScript::parse(&model).map_err(|e| e.to_string())?)
    };
    if let Some(url) = nats {
        let target = steno_nats::NatsTarget::new(&url).map_err(|e| e.to_string())?;
        let mut worker = steno_nats::NatsWorker::new(target);
        if let Some(stream) = stream {
            worker = worker.with_stream(&stream).map_err(|e| e.to_string())?;
        }
        return worker
            .serve(factory.as_ref(), &steno_core::CancelToken::new())
            .map_err(|e| e.to_string());
    }
    steno_process::serve(factory.as_ref(), std::io::stdin(), std::io::stdout().lock())
        .map_err(|e| e.to_string())
}

/// The Whisper model file at `path`, with `threads` threads per state and the decoding
/// options `decoding` gives.
#[cfg(feature = "model")]
fn load_model(
    path: &str,
    threads: usize,
    decoding: &[String],
) -> Result<Box<dyn TranscriberFactory>, String> {
    let model = steno_core::DecodingOptions::from_worker_args(decoding)
        .and_then(|options| {
            steno_core::WhisperModel::load(path, threads)
                .and_then(|model| model.with_options(options))
        })
        .map_err(|e| e.to_string())?;
    Ok(Box::new(model))
}

/// Without the `model` feature there is no Whisper to load the file with.
#[cfg(not(feature = "model"))]
fn load_model(
    path: &str,
    _threads: usize,
    _decoding: &[String],
) -> Result<Box<dyn TranscriberFactory>, String> {
    Err(format!(
        "{path}: this worker was built without the `model` feature, so it cannot load a model"
    ))
}
