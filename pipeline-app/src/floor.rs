//! `steno floor` (hidden): the same chunks transcribed by a plain sequential loop, with no
//! pipeline around them. `cargo xtask compare` measures every backend against this floor.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use steno_core::stage::{RunStart, RunTally};
use steno_core::{Chunker, ChunkerConfig, SAMPLE_RATE, TranscriberFactory, read_file};

use crate::cli::FloorArgs;
use crate::output::write_atomically;

/// `steno floor`: the model (or the scripted stand-in) on `args.input`, default chunking; or
/// with `--whisper-cli`, whisper.cpp's own long-form path.
pub(crate) fn run_command(args: &FloorArgs) -> anyhow::Result<()> {
    if args.whisper_cli {
        let path = crate::model::resolve(args.model.as_deref())?;
        let model = steno_core::WhisperModel::load(&path, usize::from(args.threads))?;
        return run_whisper_cli(&args.input, &model, &args.report);
    }
    let transcriber: Arc<dyn TranscriberFactory> = match args.simulate_cost_ms {
        Some(ms) => Arc::new(crate::transcribe::simulated(ms)),
        None => {
            let path = crate::model::resolve(args.model.as_deref())?;
            Arc::new(steno_core::WhisperModel::load(
                &path,
                usize::from(args.threads),
            )?)
        }
    };
    run(
        &args.input,
        &ChunkerConfig::default(),
        &transcriber,
        &args.report,
    )
}

/// Decodes `input` and transcribes it whole as whisper-cli does, writing the text to stdout
/// and the run report to `report` (backend `whisper.cpp`).
fn run_whisper_cli(
    input: &Path,
    model: &steno_core::WhisperModel,
    report: &Path,
) -> anyhow::Result<()> {
    let start = RunStart::now();
    let samples = read_file(input)?;
    let text = model.transcribe_like_whisper_cli(&samples)?;
    println!("{text}");
    let mut tally = RunTally::default();
    tally.audio_samples = samples.len() as u64;
    tally.chunks = 1;
    tally.segments = 1;
    let report_data = start.report(
        "whisper.cpp",
        model.path().display().to_string(),
        false,
        &tally,
    );
    let json = serde_json::to_vec_pretty(&report_data).context("cannot encode the report")?;
    write_atomically(report, &json)
}

/// Decodes `input`, cuts it with `chunker`, transcribes every chunk in order on one
/// transcriber, and writes the run report to `report` (backend `floor`).
pub(crate) fn run(
    input: &Path,
    chunker: &ChunkerConfig,
    transcriber: &Arc<dyn TranscriberFactory>,
    report: &Path,
) -> anyhow::Result<()> {
    // The clock starts before the Whisper state is created, as in every backend's run.
    let start = RunStart::now();
    let mut worker = transcriber.create()?;
    let samples = read_file(input)?;
    let mut chunks = Vec::new();
    let mut cutter = Chunker::new(chunker)?;
    cutter.push(&samples, &mut chunks);
    cutter.finish(&mut chunks);
    let mut tally = RunTally::default();
    tally.audio_samples = samples.len() as u64;
    let mut stdout = std::io::stdout().lock();
    for chunk in &chunks {
        let done = worker.transcribe(chunk)?;
        tally.chunks += 1;
        tally.full_window_retries += u64::from(done.full_window_retries);
        tally.restarts_cut += u64::from(done.restarts_cut);
        let text = done.text;
        if !text.is_empty() {
            tally.segments += 1;
            writeln!(stdout, "{text}").context("stdout")?;
        }
    }
    let report_data = start.report("floor", transcriber.name(), false, &tally);
    tracing::info!(
        "floor: {} chunks, {:.1} s of audio in {:.2} s",
        chunks.len(),
        samples.len() as f64 / f64::from(SAMPLE_RATE),
        report_data.wall_seconds
    );
    let json = serde_json::to_vec_pretty(&report_data).context("cannot encode the report")?;
    write_atomically(report, &json)
}
