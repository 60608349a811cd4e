//! `steno worker`: a worker of a NATS fleet (`--nats URL`, taking chunks from the broker until
//! Ctrl-C or SIGTERM), or one worker process of `--backend process` (serving the worker
//! protocol of `steno_process` on stdin and stdout until its parent closes stdin).

use std::time::Duration;

use anyhow::Context;
use steno_core::{CancelToken, ScriptedTranscriber, TranscriberFactory, WhisperModel};

use crate::cli::WorkerArgs;
use crate::model;

pub(crate) fn run(args: &WorkerArgs) -> anyhow::Result<()> {
    let factory: Box<dyn TranscriberFactory> = if args.scripted {
        let mut scripted = ScriptedTranscriber::new();
        if let Some(ms) = args.cost_ms_per_s {
            scripted = scripted.with_cost_per_audio_second(Duration::from_millis(ms));
        }
        if let Some(chunk) = args.fail_on_chunk {
            scripted = scripted.with_failure_on_chunk(chunk);
        }
        Box::new(scripted)
    } else {
        let path = model::resolve(args.model.as_deref())?;
        let options = args.whisper.options();
        let model: Box<dyn TranscriberFactory> = Box::new(
            WhisperModel::load(&path, usize::from(args.threads))?.with_options(options.clone())?,
        );
        if args.nats.is_none() {
            model
        } else {
            // On a fleet the model goes by its contents, not by where it is installed.
            let name = model::fleet_name(&path, &options)?;
            Box::new(model::Renamed { inner: model, name })
        }
    };
    if let Some(url) = &args.nats {
        return serve_nats(args, url, factory.as_ref());
    }
    // Only protocol frames may reach stdout; logs go to stderr, which the parent forwards.
    steno_process::serve(factory.as_ref(), std::io::stdin(), std::io::stdout().lock())
        .context("worker")
}

/// Serves the NATS work queue until the first Ctrl-C or SIGTERM; the chunk in hand is
/// finished and answered first.
fn serve_nats(
    args: &WorkerArgs,
    url: &str,
    factory: &dyn TranscriberFactory,
) -> anyhow::Result<()> {
    let target = steno_nats::NatsTarget::from_env(url)?;
    // Its user and password, if the URL has them, are not shown.
    let shown = target.to_string();
    let worker = steno_nats::NatsWorker::new(target)
        .with_stream(&args.stream)?
        .with_ack_wait(Duration::from_secs(args.ack_wait_secs))
        .with_max_deliveries(args.max_deliveries);
    let stop = CancelToken::new();
    let on_signal = stop.clone();
    ctrlc::set_handler(move || {
        eprintln!("steno worker: stopping after the chunk in hand");
        on_signal.cancel();
    })
    .context("cannot install the Ctrl-C handler")?;
    // Said once the broker has taken the worker, not before: a worker that cannot reach it
    // ends with that error alone.
    worker.serve_when_ready(factory, &stop, || {
        eprintln!(
            "steno worker: serving {} on NATS stream {} at {shown} (Ctrl-C to stop)",
            factory.name(),
            args.stream
        );
    })?;
    Ok(())
}
