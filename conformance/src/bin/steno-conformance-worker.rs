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
//!   decoding options given as `steno worker` takes them (`--beam-size N`, `--prompt TEXT`,
//!   `--language CODE`, `--translate`, `--word-timestamps`, `--temperature-fallback`: what
//!   `DecodingOptions::worker_args` writes), and announced under its path and those options;
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
    let mut decoding = Decoding::default();
    let mut stream = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--model" => model = Some(args.next().ok_or("--model needs a name")?),
            "--threads" => {
                threads = args
                    .next()
                    .and_then(|value| value.parse().ok())
                    .ok_or("--threads needs a number")?;
            }
            "--beam-size" => {
                decoding.beam_size = args
                    .next()
                    .and_then(|value| value.parse().ok())
                    .ok_or("--beam-size needs a number")?;
            }
            "--prompt" => decoding.prompt = Some(args.next().ok_or("--prompt needs a text")?),
            "--language" => {
                decoding.language = Some(args.next().ok_or("--language needs a code")?);
            }
            "--translate" => decoding.translate = true,
            "--word-timestamps" => decoding.word_timestamps = true,
            "--temperature-fallback" => decoding.temperature_fallback = true,
            "--nats" => nats = Some(args.next().ok_or("--nats needs a URL")?),
            "--stream" => stream = Some(args.next().ok_or("--stream needs a name")?),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let model = model.ok_or("--model is required")?;
    let factory: Box<dyn TranscriberFactory> = if Path::new(&model).is_file() {
        load_model(&model, threads, decoding)?
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
    steno_process::serve(
        factory.as_ref(),
        std::io::stdin().lock(),
        std::io::stdout().lock(),
    )
    .map_err(|e| e.to_string())
}

/// The decoding options given, as `steno worker` takes them.
#[derive(Debug, Default)]
#[cfg_attr(
    not(feature = "model"),
    allow(dead_code, reason = "no model to decode with")
)]
struct Decoding {
    beam_size: usize,
    prompt: Option<String>,
    language: Option<String>,
    translate: bool,
    word_timestamps: bool,
    temperature_fallback: bool,
}

/// The Whisper model file at `path`, with `threads` threads per state and these options.
#[cfg(feature = "model")]
fn load_model(
    path: &str,
    threads: usize,
    decoding: Decoding,
) -> Result<Box<dyn TranscriberFactory>, String> {
    let mut options = steno_core::DecodingOptions::default();
    options.beam_size = decoding.beam_size.max(1);
    options.prompt = decoding.prompt;
    if let Some(language) = decoding.language {
        options.language = language;
    }
    options.translate = decoding.translate;
    options.word_timestamps = decoding.word_timestamps;
    options.temperature_fallback = decoding.temperature_fallback;
    let model = steno_core::WhisperModel::load(path, threads)
        .and_then(|model| model.with_options(options))
        .map_err(|e| e.to_string())?;
    Ok(Box::new(model))
}

/// Without the `model` feature there is no Whisper to load the file with.
#[cfg(not(feature = "model"))]
fn load_model(
    path: &str,
    _threads: usize,
    _decoding: Decoding,
) -> Result<Box<dyn TranscriberFactory>, String> {
    Err(format!(
        "{path}: this worker was built without the `model` feature, so it cannot load a model"
    ))
}
