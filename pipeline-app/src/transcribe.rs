//! `steno transcribe`: files or stdin through a pipeline to text, JSON Lines or subtitles.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use steno_core::{
    Backend, ChunkerConfig, FileSource, Format, Pipeline, RawPcmSource, RunOptions, Source,
    VadKind, WhisperModel,
};

use crate::cli::{BackendName, FormatName, TranscribeArgs, VadName};
use crate::model;
use crate::output::{Output, write_atomically};
use crate::progress::ProgressDisplay;

pub(crate) fn run(args: &TranscribeArgs) -> anyhow::Result<()> {
    if args.inputs.len() > 1 && (args.output.is_some() || args.report.is_some()) {
        bail!(
            "-o/--output and --report take a single input, but {} inputs were given",
            args.inputs.len()
        );
    }
    let backend = backend(args.backend)?;
    let chunker = chunker_config(args)?;
    // Every input is checked before the model loads, so bad input fails fast and first.
    let sources = args
        .inputs
        .iter()
        .map(|input| open_source(input))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let model_path = model::resolve(args.model.as_deref())?;
    let model = Arc::new(WhisperModel::load(&model_path, usize::from(args.threads))?);
    let format = format(args.format);
    for source in sources {
        let (output, sink) = Output::create(args.output.as_deref(), format)?;
        let options = RunOptions {
            realtime: args.realtime,
            ..RunOptions::default()
        };
        let progress = ProgressDisplay::start(
            options.progress.clone(),
            source.len_hint().filter(|_| source.name() != "-"),
            source.name(),
        );
        let pipeline = Pipeline {
            source,
            chunker: chunker.clone(),
            transcriber: model.clone(),
            sink,
            options,
        };
        let report = backend.run(pipeline);
        drop(progress);
        let report = report?;
        output.commit()?;
        if let Some(path) = &args.report {
            let json = serde_json::to_vec_pretty(&report).context("cannot encode the report")?;
            write_atomically(path, &json)?;
        }
        if report.dropped_samples > 0 {
            tracing::warn!(
                "{} samples ({:.2} s) were dropped because the pipeline fell behind",
                report.dropped_samples,
                report.dropped_samples as f64 / f64::from(steno_core::SAMPLE_RATE)
            );
        }
    }
    Ok(())
}

fn backend(name: BackendName) -> anyhow::Result<Box<dyn Backend>> {
    match name {
        BackendName::Threads => Ok(Box::new(steno_threads::ThreadsBackend::new())),
        BackendName::Tokio => Ok(Box::new(steno_tokio::TokioBackend::new())),
        BackendName::AsyncStd => Ok(Box::new(steno_async_std::AsyncStdBackend::new())),
        BackendName::Smol => Ok(Box::new(steno_smol::SmolBackend::new())),
        other => bail!(
            "--backend {}: not available in this build yet (available: threads, tokio, async-std, smol)",
            clap::ValueEnum::to_possible_value(&other)
                .map_or_else(String::new, |v| v.get_name().to_owned())
        ),
    }
}

fn chunker_config(args: &TranscribeArgs) -> anyhow::Result<ChunkerConfig> {
    let vad = match args.vad {
        VadName::Energy => VadKind::Energy,
        VadName::Earshot => VadKind::Earshot,
        VadName::Fixed => VadKind::Fixed,
        VadName::Webrtc => bail!(
            "--vad webrtc: not available in this build yet (webrtc-vad's detector cannot move \
             between threads); use earshot or energy"
        ),
    };
    if !(args.max_chunk.is_finite() && args.max_chunk > 0.0) {
        bail!(
            "--max-chunk {}: must be a positive number of seconds",
            args.max_chunk
        );
    }
    let config = ChunkerConfig {
        vad,
        min_silence: Duration::from_millis(args.min_silence_ms),
        max_chunk: Duration::from_secs_f64(args.max_chunk),
        ..ChunkerConfig::default()
    };
    config.validate()?;
    Ok(config)
}

fn format(name: FormatName) -> Format {
    match name {
        FormatName::Text => Format::Text,
        FormatName::Jsonl => Format::Jsonl,
        FormatName::Srt => Format::Srt,
        FormatName::Vtt => Format::Vtt,
    }
}

fn open_source(input: &Path) -> anyhow::Result<Box<dyn Source>> {
    if input == Path::new("-") {
        return Ok(Box::new(RawPcmSource::new("-", std::io::stdin())));
    }
    Ok(Box::new(FileSource::open(input)?))
}
