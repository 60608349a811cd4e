//! `steno-conformance-worker`: the worker process the conformance suite runs the process
//! backend with. It serves, over the worker protocol on stdin and stdout, the transcriber the
//! suite's pipeline names (see `steno_conformance::ProcessWorkers`):
//!
//! ```text
//! steno-conformance-worker --model NAME [--threads N] [--beam-size N --prompt TEXT]
//!                          [--nats URL --stream NAME]
//! ```
//!
//! - when NAME is a Whisper model file, it is loaded with N threads (1 by default) and the
//!   given beam size and prompt, and announced under its path and those options, as `steno
//!   worker` does;
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
    let mut beam_size = 1;
    let mut prompt = None;
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
                beam_size = args
                    .next()
                    .and_then(|value| value.parse().ok())
                    .ok_or("--beam-size needs a number")?;
            }
            "--prompt" => prompt = Some(args.next().ok_or("--prompt needs a text")?),
            "--nats" => nats = Some(args.next().ok_or("--nats needs a URL")?),
            "--stream" => stream = Some(args.next().ok_or("--stream needs a name")?),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let model = model.ok_or("--model is required")?;
    let factory: Box<dyn TranscriberFactory> = if Path::new(&model).is_file() {
        load_model(&model, threads, beam_size, prompt.as_deref())?
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

/// The Whisper model file at `path`, with `threads` threads per state and these options.
#[cfg(feature = "model")]
fn load_model(
    path: &str,
    threads: usize,
    beam_size: usize,
    prompt: Option<&str>,
) -> Result<Box<dyn TranscriberFactory>, String> {
    let model = steno_core::WhisperModel::load(path, threads)
        .map_err(|e| e.to_string())?
        .with_beam_size(beam_size);
    Ok(match prompt {
        Some(prompt) => Box::new(model.with_prompt(prompt).map_err(|e| e.to_string())?),
        None => Box::new(model),
    })
}

/// Without the `model` feature there is no Whisper to load the file with.
#[cfg(not(feature = "model"))]
fn load_model(
    path: &str,
    _threads: usize,
    _beam_size: usize,
    _prompt: Option<&str>,
) -> Result<Box<dyn TranscriberFactory>, String> {
    Err(format!(
        "{path}: this worker was built without the `model` feature, so it cannot load a model"
    ))
}
