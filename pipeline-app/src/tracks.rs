//! `steno transcribe --source LABEL=FILE ...`: the tracks of one conversation (a call
//! recorder's separate tracks) as one pipeline of labelled sources, written as one transcript.

use std::path::Path;

use anyhow::{Context, bail};
use steno_core::{CancelToken, ChunkerConfig, FileSource, Pipeline, Source};

use crate::cli::TranscribeArgs;
use crate::interrupt;
use crate::model;
use crate::output::Output;
use crate::progress::ProgressDisplay;
use crate::targets::{Destination, single_target};
use crate::transcribe::{Sizing, backend, format, paced_options, publish, run_transcriber};

/// `--source LABEL=FILE ...`: the tracks of one conversation, cut each on its own and written
/// as one transcript in order of end of speech, each segment labelled.
pub(crate) fn run(args: &TranscribeArgs, chunker: &ChunkerConfig) -> anyhow::Result<()> {
    if args.pipeline.interim {
        bail!("--interim is not supported with --source yet: each track's finals are written");
    }
    // Every track is checked before the model loads.
    let tracks = args
        .sources
        .iter()
        .map(|(label, path)| {
            if path == Path::new("-") {
                bail!("--source {label}=-: stdin cannot be one of several tracks; give files");
            }
            Ok((label.clone(), FileSource::open(path)?))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let model_path = model::resolve(args.pipeline.decoding.model.as_deref())?;
    let sizing = Sizing::of(args);
    let format = format(args.pipeline.format);
    let limits = args.pipeline.line_limits();
    let destination = Destination::create(&single_target(args)?, format, limits, false)?;
    let stop = CancelToken::new();
    interrupt::cancel_on_signal(stop.clone())?;
    let backend = backend(args, &sizing, &model_path)?;
    let transcriber = run_transcriber(args, &sizing, &model_path)?;
    let (output, sink, report) = destination.into_parts();
    // Never packed: packing is per source.
    let mut options = paced_options(args, &stop);
    options.echo_guard = args.echo_guard.clone();
    // The bar follows the transcript's time line, which is as long as the longest track.
    let total = tracks
        .iter()
        .map(|(_, track)| track.len_hint())
        .collect::<Option<Vec<u64>>>()
        .and_then(|lengths| lengths.into_iter().max());
    let names: Vec<&str> = tracks.iter().map(|(label, _)| label.as_str()).collect();
    let progress = ProgressDisplay::start(options.progress.clone(), total, &names.join(" + "));
    let sink = match output {
        Output::Stdout => progress.around_stdout(sink),
        _ => sink,
    };
    let mut tracks = tracks.into_iter();
    let (label, first) = tracks.next().context("--source gives at least one track")?;
    let mut pipeline = Pipeline::builder(first, transcriber, sink)
        .chunker(chunker.clone())
        .options(options)
        .label(label);
    for (label, track) in tracks {
        pipeline = pipeline.source(label, track);
    }
    let run = backend.run(pipeline.build()?);
    drop(progress);
    publish(output, &run?, report)
}
