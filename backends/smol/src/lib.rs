//! # steno-smol
//!
//! Runs a steno [`Pipeline`] inside a smol application, on whichever executor the application
//! polls it with, without a second runtime and without blocking that executor. Use it when
//! your program is built on smol (or on its parts: `async-executor`, `async-io`, `blocking`)
//! and should transcribe speech alongside everything else it does; the `steno` command line
//! uses it for `--backend smol`.
//!
//! Two ways in:
//! - [`run`] (or [`SmolBackend::run_async`]) is a future: `.await` it, spawn it on your
//!   [`smol::Executor`], or pass it to [`smol::block_on`]. It starts no executor threads.
//! - [`SmolBackend`]'s [`Backend::run`] blocks the calling thread on [`smol::block_on`], for
//!   programs that are not async (the command line).
//!
//! Segments reach the pipeline's sink in chunk order. To consume them as an async stream, put
//! the [`SegmentSink`] of a [`segment_stream`] in the pipeline and read the [`SegmentStream`].
//!
//! ```
//! use std::sync::Arc;
//! use steno_core::{ChunkerConfig, Pipeline, ScriptedTranscriber, VadKind, VecSource};
//!
//! # fn main() -> Result<(), steno_core::Error> {
//! // Two bursts of "speech" (a loud tone) separated by silence.
//! let tone: Vec<f32> = (0..16_000).map(|i| 0.3 * (i as f32 * 0.05).sin()).collect();
//! let audio = [vec![0.0; 8_000], tone.clone(), vec![0.0; 16_000], tone].concat();
//!
//! let (sink, mut segments) = steno_smol::segment_stream(16);
//! let mut pipeline = Pipeline::new(
//!     VecSource::new(audio),                 // or steno_core::FileSource::open(path)?
//!     Arc::new(ScriptedTranscriber::new()), // or steno_core::WhisperModel::load(...)?
//!     sink,
//! );
//! pipeline.chunker = ChunkerConfig { vad: VadKind::Energy, ..ChunkerConfig::default() };
//!
//! // The application's executor: the run is one more of its tasks, and its text arrives as
//! // it is produced.
//! let executor = smol::Executor::new();
//! let (texts, report) = smol::block_on(executor.run(async {
//!     let run = executor.spawn(steno_smol::run(pipeline));
//!     let mut texts = Vec::new();
//!     while let Some(segment) = segments.next().await {
//!         texts.push(segment.text);
//!     }
//!     (texts, run.await)
//! }));
//! let report = report?;
//!
//! assert_eq!(texts, ["chunk 0 at 0.29-1.71", "chunk 1 at 2.29-3.50"]);
//! assert_eq!(report.backend, "smol");
//! # Ok(())
//! # }
//! ```
//!
//! ## What runs where
//!
//! Each stage is a task; bounded [`smol::channel`]s join them, so memory stays bounded however
//! slow transcription is. smol leaves the choice of executor to the application, and a
//! library that spawned onto smol's global executor would start that executor's threads next
//! to the application's own. So the stage tasks live on a small executor of the run's own,
//! which the run future drives whenever it is polled: no thread of its own, nothing outliving
//! the run future. Everything that blocks runs on the `blocking` thread pool
//! ([`smol::unblock`]): reading and decoding the input, voice activity detection, Whisper
//! inference and the sink's writes. The tasks themselves only await: channels, an
//! [`event_listener::Event`] between the source and the chunker, and [`smol::Timer`]s for
//! real-time pacing.
//!
//! ## How inference threads are sized
//!
//! Each concurrent inference is one transcriber (one Whisper state) using
//! [`threads_per_transcriber`](steno_core::TranscriberFactory::threads_per_transcriber) CPU
//! threads. The backend runs `max(1, cores / threads_per_transcriber)` of them, fewer if
//! [`SmolBackend::with_max_inferences`] says so, so inference never oversubscribes the cores:
//! on two cores with a two-thread Whisper model, one inference at a time. The `blocking` pool
//! holds at most that many inferences plus three short-lived stage steps (source, chunker,
//! sink) for a run at once.
//!
//! ## Cancellation
//!
//! Cancel the pipeline's [`CancelToken`](steno_core::CancelToken) (in
//! [`RunOptions`](steno_core::RunOptions)) and the run future resolves to
//! [`Error::Cancelled`](steno_core::Error::Cancelled) once every stage has stopped: at most a
//! few milliseconds after the inferences in flight finish (Whisper cannot be interrupted).
//! Dropping the run future instead cancels every stage task at once; an inference in flight
//! still completes on its `blocking` thread and then drops its Whisper state.

mod stages;
mod stream;

use std::future::Future;

use steno_core::{Backend, Pipeline, Result, RunReport};

pub use stream::{SegmentSink, SegmentStream, segment_stream};

/// The smol backend. See the [crate docs](crate).
#[derive(Debug, Clone, Default)]
pub struct SmolBackend {
    max_inferences: Option<usize>,
}

impl SmolBackend {
    /// The backend with default settings: as many concurrent inferences as the cores allow.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs at most `max` inferences at once (at least one); the cores still bound it.
    #[must_use]
    pub fn with_max_inferences(mut self, max: usize) -> Self {
        self.max_inferences = Some(max);
        self
    }

    /// Runs the pipeline on whichever executor polls the returned future, to the end of its
    /// input. The future is `Send + 'static`, so it can be spawned.
    ///
    /// Segments reach the sink in chunk order; on success the sink's `finish` has been called,
    /// on error it has not.
    ///
    /// # Errors
    /// The first error of any stage ([`Error::Input`](steno_core::Error::Input),
    /// [`Error::Transcribe`](steno_core::Error::Transcribe),
    /// [`Error::Sink`](steno_core::Error::Sink), ...), or
    /// [`Error::Cancelled`](steno_core::Error::Cancelled) when the run was cancelled.
    pub fn run_async(
        &self,
        pipeline: Pipeline,
    ) -> impl Future<Output = Result<RunReport>> + Send + 'static {
        stages::run_pipeline(pipeline, self.max_inferences, BACKEND_NAME)
    }
}

/// Runs the pipeline with default settings: the same as
/// [`SmolBackend::new().run_async(pipeline)`](SmolBackend::run_async).
///
/// # Errors
/// As [`SmolBackend::run_async`].
pub async fn run(pipeline: Pipeline) -> Result<RunReport> {
    SmolBackend::new().run_async(pipeline).await
}

const BACKEND_NAME: &str = "smol";

impl Backend for SmolBackend {
    fn name(&self) -> &'static str {
        BACKEND_NAME
    }

    /// Runs the pipeline on the calling thread with [`smol::block_on`]; every blocking task of
    /// the run has finished when it returns.
    ///
    /// # Errors
    /// As [`SmolBackend::run_async`].
    fn run(&self, pipeline: Pipeline) -> Result<RunReport> {
        smol::block_on(self.run_async(pipeline))
    }
}
