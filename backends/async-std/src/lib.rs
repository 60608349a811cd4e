//! # steno-async-std
//!
//! Runs a steno [`Pipeline`] inside an async-std application, as tasks on async-std's
//! executor, without a second runtime and without blocking that executor. Use it when your
//! program already runs on async-std and should transcribe speech alongside everything else it
//! does; the `steno` command line uses it for `--backend async-std`.
//!
//! **async-std is discontinued upstream** ([RUSTSEC-2025-0052]): it gets no more fixes. This
//! crate exists for applications that already depend on it; new applications should pick
//! `steno-smol` (async-std's successor, built from the same parts) or `steno-tokio`. steno pins
//! async-std to an exact version (`=1.13.2`), only this crate depends on it, and the
//! advisory is ignored, with this reason, in the workspace's `deny.toml`.
//!
//! [RUSTSEC-2025-0052]: https://rustsec.org/advisories/RUSTSEC-2025-0052.html
//!
//! Two ways in:
//! - [`run`] (or [`AsyncStdBackend::run_async`]) is a future for the async-std executor:
//!   `.await` it, or `async_std::task::spawn` it. It never creates a runtime.
//! - [`AsyncStdBackend`]'s [`Backend::run`] blocks the calling thread on
//!   [`async_std::task::block_on`], for programs that are not async (the command line).
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
//! let (sink, mut segments) = steno_async_std::segment_stream(16);
//! let mut pipeline = Pipeline::new(
//!     VecSource::new(audio),                 // or steno_core::FileSource::open(path)?
//!     Arc::new(ScriptedTranscriber::new()), // or steno_core::WhisperModel::load(...)?
//!     sink,
//! );
//! pipeline.chunker = ChunkerConfig { vad: VadKind::Energy, ..ChunkerConfig::default() };
//!
//! // The application (here its `main`, as `#[async_std::main]` would write it).
//! let (texts, report) = async_std::task::block_on(async {
//!     // The run is one more task of the application; its text arrives as it is produced.
//!     let run = async_std::task::spawn(steno_async_std::run(pipeline));
//!     let mut texts = Vec::new();
//!     while let Some(segment) = segments.next().await {
//!         texts.push(segment.text);
//!     }
//!     (texts, run.await)
//! });
//! let report = report?;
//!
//! assert_eq!(texts, ["chunk 0 at 0.29-1.71", "chunk 1 at 2.29-3.50"]);
//! assert_eq!(report.backend, "async-std");
//! # Ok(())
//! # }
//! ```
//!
//! ## What runs where
//!
//! Each stage is an async-std task; bounded [`async_std::channel`]s join them, so memory stays
//! bounded however slow transcription is. Everything that blocks runs on async-std's blocking
//! pool ([`async_std::task::spawn_blocking`], which is the `blocking` crate's `unblock`):
//! reading and decoding the input, voice activity detection, Whisper inference and the sink's
//! writes. The tasks themselves only await: channels, an [`event_listener::Event`] between the
//! source and the chunker, and async-std timers for real-time pacing.
//!
//! ## How inference threads are sized
//!
//! Each concurrent inference is one transcriber (one Whisper state) using
//! [`threads_per_transcriber`](steno_core::TranscriberFactory::threads_per_transcriber) CPU
//! threads. The backend runs `max(1, cores / threads_per_transcriber)` of them, fewer if
//! [`AsyncStdBackend::with_max_inferences`] says so, so inference never oversubscribes the
//! cores: on two cores with a two-thread Whisper model, one inference at a time. The blocking
//! pool holds at most that many inferences plus three short-lived stage steps (source,
//! chunker, sink) for a run at once.
//!
//! ## Cancellation
//!
//! Cancel the pipeline's [`CancelToken`](steno_core::CancelToken) (in
//! [`RunOptions`](steno_core::RunOptions)) and the run future resolves to
//! [`Error::Cancelled`](steno_core::Error::Cancelled) once every stage task has been joined:
//! at most a few milliseconds after the inferences in flight finish (Whisper cannot be
//! interrupted). Dropping the run future instead stops the run's internal token: async-std
//! tasks cannot be aborted from a destructor, so each stage task sees the token (or its closed
//! channel) within milliseconds and ends; an inference in flight completes on its blocking
//! thread and then drops its Whisper state.

mod stages;
mod stream;

use std::future::Future;

use steno_core::{Backend, Pipeline, Result, RunReport};

pub use stream::{SegmentSink, SegmentStream, segment_stream};

/// The async-std backend. See the [crate docs](crate).
#[derive(Debug, Clone, Default)]
pub struct AsyncStdBackend {
    max_inferences: Option<usize>,
}

impl AsyncStdBackend {
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

    /// Runs the pipeline as async-std tasks, to the end of its input. The future is
    /// `Send + 'static`, so it can be spawned.
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
/// [`AsyncStdBackend::new().run_async(pipeline)`](AsyncStdBackend::run_async).
///
/// # Errors
/// As [`AsyncStdBackend::run_async`].
pub async fn run(pipeline: Pipeline) -> Result<RunReport> {
    AsyncStdBackend::new().run_async(pipeline).await
}

const BACKEND_NAME: &str = "async-std";

impl Backend for AsyncStdBackend {
    fn name(&self) -> &'static str {
        BACKEND_NAME
    }

    /// Runs the pipeline on the calling thread with [`async_std::task::block_on`]; every task
    /// of the run has been joined when it returns.
    ///
    /// # Errors
    /// As [`AsyncStdBackend::run_async`].
    fn run(&self, pipeline: Pipeline) -> Result<RunReport> {
        async_std::task::block_on(self.run_async(pipeline))
    }
}
