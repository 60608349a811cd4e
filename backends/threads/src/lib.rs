//! # steno-threads
//!
//! Runs a steno [`Pipeline`] on plain std threads joined by bounded crossbeam channels: the
//! simplest backend, with no runtime to set up, and the reference every other backend is
//! compared with.
//!
//! Four stages, each on its own thread: the source (decoding, real-time pacing) feeds the
//! lock-free ring; the chunker drains it and cuts utterances; transcriber threads, each with
//! its own Whisper state, turn chunks into text; the calling thread writes segments to the sink
//! in chunk order. Bounded channels give backpressure, so memory stays bounded however slow the
//! transcribers are.
//!
//! There are `max(1, cores / threads_per_transcriber)` transcriber threads, at most
//! [`ThreadsBackend::with_max_inferences`]: on two cores with 2-thread Whisper states (real
//! time's default) one, so one utterance at a time gets both cores; with 1-thread states (a
//! file's default in the CLI) two, which decode two windows side by side. Each takes a
//! run-ahead token before its chunk ([`RunAhead`]), so transcripts waiting behind a slow chunk
//! stay bounded.
//!
//! ```
//! use std::sync::Arc;
//! use steno_core::{Backend, ChunkerConfig, CollectingSink, Pipeline, ScriptedTranscriber,
//!     VadKind, VecSource};
//! use steno_threads::ThreadsBackend;
//!
//! // Two bursts of "speech" (a loud tone) separated by silence.
//! let tone: Vec<f32> = (0..16_000).map(|i| 0.3 * (i as f32 * 0.05).sin()).collect();
//! let audio = [vec![0.0; 8_000], tone.clone(), vec![0.0; 16_000], tone].concat();
//!
//! let sink = CollectingSink::new();
//! let pipeline = Pipeline::builder(
//!     VecSource::new(audio),
//!     Arc::new(ScriptedTranscriber::new()), // or steno_core::WhisperModel::load(...)
//!     sink.clone(),
//! )
//! .chunker(ChunkerConfig::default().with_vad(VadKind::Energy))
//! .build()?;
//! let report = ThreadsBackend::new().run(pipeline)?;
//!
//! assert_eq!(report.chunks, 2);
//! assert_eq!(sink.segments()[1].text, "chunk 1 at 2.29-3.50");
//! # Ok::<(), steno_core::Error>(())
//! ```
//!
//! With interim results, partial hypotheses of each utterance come before its final segment
//! (see `steno_core::interim`); the final segments are the same:
//!
//! ```
//! # use std::sync::Arc;
//! # use steno_core::{Backend, ChunkerConfig, CollectingSink, Pipeline, ScriptedTranscriber,
//! #     VadKind, VecSource};
//! use steno_core::{RunOptions, Update};
//! # use steno_threads::ThreadsBackend;
//! # let tone: Vec<f32> = (0..16_000).map(|i| 0.3 * (i as f32 * 0.05).sin()).collect();
//! # let audio = [vec![0.0; 8_000], tone.clone(), vec![0.0; 16_000], tone].concat();
//! let sink = CollectingSink::new();
//! let pipeline = Pipeline::builder(VecSource::new(audio), Arc::new(ScriptedTranscriber::new()), sink.clone())
//!     .chunker(ChunkerConfig::default().with_vad(VadKind::Energy))
//!     .interim_step(Some(RunOptions::DEFAULT_INTERIM_STEP))
//!     .build()?;
//! let report = ThreadsBackend::new().run(pipeline)?;
//! let kinds: String = sink.updates().iter().map(|update| match update {
//!     Update::Partial(_) => 'p',
//!     _ => 'F',
//! }).collect();
//! // Each 1 s tone: partials after 0.5 s of it and after 1 s, then its final segment.
//! assert_eq!(kinds, "ppFppF");
//! assert_eq!((report.partials, report.stable_prefix_violations), (4, 0));
//! assert_eq!(sink.segments()[1].text, "chunk 1 at 2.29-3.50");
//! # Ok::<(), steno_core::Error>(())
//! ```
//!
//! Several labelled sources (a meeting's microphone and speakers) make one transcript in order
//! of end of speech, each segment with its source's label:
//!
//! ```
//! # use std::sync::Arc;
//! # use steno_core::{Backend, ChunkerConfig, CollectingSink, Pipeline, ScriptedTranscriber,
//! #     VadKind, VecSource};
//! # use steno_threads::ThreadsBackend;
//! let tone = |seconds: f64| -> Vec<f32> {
//!     (0..(seconds * 16_000.0) as usize).map(|i| 0.3 * (i as f32 * 0.05).sin()).collect()
//! };
//! let quiet = |seconds: f64| vec![0.0; (seconds * 16_000.0) as usize];
//! // The microphone speaks at 0.5-1.5 s and 2.5-3.0 s; the speakers at 1.0-2.0 s.
//! let mic = [quiet(0.5), tone(1.0), quiet(1.0), tone(0.5), quiet(0.5)].concat();
//! let speakers = [quiet(1.0), tone(1.0), quiet(1.5)].concat();
//! let sink = CollectingSink::new();
//! let pipeline = Pipeline::builder(VecSource::new(mic), Arc::new(ScriptedTranscriber::new()), sink.clone())
//!     .chunker(ChunkerConfig::default().with_vad(VadKind::Energy))
//!     .label("me")
//!     .source("them", VecSource::new(speakers))
//!     .build()?;
//! let report = ThreadsBackend::new().run(pipeline)?;
//! let who: Vec<String> = sink.segments().into_iter().filter_map(|s| s.source).collect();
//! assert_eq!(who, ["me", "them", "me"]);
//! assert_eq!((report.sources[0].segments, report.sources[1].segments), (2, 1));
//! # Ok::<(), steno_core::Error>(())
//! ```

use crossbeam_channel::bounded;
use steno_core::stage::{
    InputThreads, PreparedRun, RunAhead, TimedChunk, Transcript, transcribe,
    transcribers_fitting_cores,
};
use steno_core::{Backend, Pipeline, Result, RunReport};

/// The std-threads backend. See the [crate docs](crate).
#[derive(Debug, Clone, Default)]
pub struct ThreadsBackend {
    max_inferences: Option<usize>,
}

impl ThreadsBackend {
    /// The backend with default settings: as many transcriber threads as the cores allow.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs at most `max` inferences at once (at least one); the cores still bound it.
    #[must_use]
    pub fn with_max_inferences(mut self, max: usize) -> Self {
        self.max_inferences = Some(max);
        self
    }
}

impl Backend for ThreadsBackend {
    fn name(&self) -> &'static str {
        "threads"
    }

    fn run(&self, pipeline: Pipeline) -> Result<RunReport> {
        let PreparedRun {
            start,
            control,
            source,
            chunker,
            transcriber,
            mut emitter,
            options,
        } = pipeline.prepare()?;
        let slots =
            transcribers_fitting_cores(transcriber.threads_per_transcriber(), self.max_inferences);
        let workers = (0..slots)
            .map(|_| transcriber.create())
            .collect::<Result<Vec<_>>>()?;
        let (chunk_tx, chunk_rx) = bounded::<TimedChunk>(options.queue_capacity);
        let (text_tx, text_rx) = bounded::<Transcript>(options.queue_capacity);
        let tokens = RunAhead::new(options.run_ahead(slots));

        // A stage whose thread cannot start fails the run; its closure is dropped with the
        // channel ends it holds, so the stages on either side of it see the end and stop.
        let input = InputThreads::start(&control, source, chunker, move |chunk| {
            chunk_tx.send(chunk).is_ok()
        });
        let transcriber_threads: Vec<_> = workers
            .into_iter()
            .map(|mut worker| {
                let (slot, tokens) = (control.clone(), tokens.clone());
                let (chunk_rx, text_tx) = (chunk_rx.clone(), text_tx.clone());
                // The token before the chunk: tokens go to chunks in their order, so the
                // earliest chunk not yet written always has one.
                control.spawn_stage("transcriber", move || {
                    while tokens.take(&slot) {
                        let Ok(chunk) = chunk_rx.recv() else {
                            break;
                        };
                        if slot.is_stopped() {
                            break;
                        }
                        let Some(text) = slot.check(transcribe(worker.as_mut(), &chunk)) else {
                            break;
                        };
                        if text_tx.send(text).is_err() {
                            break;
                        }
                    }
                })
            })
            .collect();
        // Only the transcriber threads hold these ends now, so each side sees the other end.
        drop((chunk_rx, text_tx));

        for transcript in text_rx {
            if control.check(emitter.emit(transcript)).is_none() {
                break;
            }
            tokens.give_back(emitter.newly_written());
        }
        // If the sink failed, `control` has already told the other stages to stop.
        let counts = input.join(&control);
        for handle in transcriber_threads.into_iter().flatten() {
            control.join_stage(handle, "transcriber");
        }
        control.outcome()?;
        let mut tally = emitter.finish()?;
        counts.add_to(&mut tally);
        Ok(start.report(self.name(), transcriber.name(), options.realtime, &tally))
    }
}

/// The README's examples, compiled as doc tests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;
