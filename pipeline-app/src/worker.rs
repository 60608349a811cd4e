//! `steno worker` (hidden): one worker process of `--backend process`, serving the worker
//! protocol of `steno_process` on stdin and stdout until its parent closes stdin.

use anyhow::Context;
use steno_core::{ScriptedTranscriber, TranscriberFactory, WhisperModel};

use crate::cli::WorkerArgs;
use crate::model;

pub(crate) fn run(args: &WorkerArgs) -> anyhow::Result<()> {
    let factory: Box<dyn TranscriberFactory> = if args.scripted {
        let mut scripted = ScriptedTranscriber::new();
        if let Some(ms) = args.cost_ms_per_s {
            scripted = scripted.with_cost_per_audio_second(std::time::Duration::from_millis(ms));
        }
        if let Some(chunk) = args.fail_on_chunk {
            scripted = scripted.with_failure_on_chunk(chunk);
        }
        Box::new(scripted)
    } else {
        let path = model::resolve(args.model.as_deref())?;
        let model = WhisperModel::load(&path, usize::from(args.threads))?
            .with_beam_size(usize::from(args.beam_size));
        Box::new(match args.prompt.as_deref() {
            Some(prompt) => model.with_prompt(prompt)?,
            None => model,
        })
    };
    // Only protocol frames may reach stdout; logs go to stderr, which the parent forwards.
    steno_process::serve(
        factory.as_ref(),
        std::io::stdin().lock(),
        std::io::stdout().lock(),
    )
    .context("worker")
}
