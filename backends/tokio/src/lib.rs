//! # steno-tokio
//!
//! Runs a steno [`Pipeline`] inside a tokio application, as tasks on the application's own
//! runtime, without a second runtime and without blocking its executor. Use it when your
//! program already runs on tokio (a server, a bot, a desktop app with a tokio core) and should
//! transcribe speech alongside everything else it does; the `steno` command line uses it for
//! `--backend tokio`.
//!
//! Two ways in:
//! - [`run`] (or [`TokioBackend::run_async`]) is a future for the runtime you are already on:
//!   `.await` it, or `tokio::spawn` it. It never creates a runtime.
//! - [`TokioBackend`]'s [`Backend::run`] blocks the calling thread on a current-thread runtime
//!   of its own, for programs that are not async (the command line).
//!
//! Segments reach the pipeline's sink in chunk order. To consume them as an async stream, put
//! the [`SegmentSink`] of a [`segment_stream`] in the pipeline and read the [`SegmentStream`].
//!
//! ```
//! use std::sync::Arc;
//! use steno_core::{ChunkerConfig, Pipeline, ScriptedTranscriber, VadKind, VecSource};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     // Two bursts of "speech" (a loud tone) separated by silence.
//!     let tone: Vec<f32> = (0..16_000).map(|i| 0.3 * (i as f32 * 0.05).sin()).collect();
//!     let audio = [vec![0.0; 8_000], tone.clone(), vec![0.0; 16_000], tone].concat();
//!
//!     let (sink, mut segments) = steno_tokio::segment_stream(16);
//!     let mut pipeline = Pipeline::new(
//!         VecSource::new(audio),                 // or steno_core::FileSource::open(path)?
//!         Arc::new(ScriptedTranscriber::new()), // or steno_core::WhisperModel::load(...)?
//!         sink,
//!     );
//!     pipeline.chunker = ChunkerConfig { vad: VadKind::Energy, ..ChunkerConfig::default() };
//!
//!     // The run is one more task of the application; its text arrives as it is produced.
//!     let run = tokio::spawn(steno_tokio::run(pipeline));
//!     let mut texts = Vec::new();
//!     while let Some(segment) = segments.next().await {
//!         texts.push(segment.text);
//!     }
//!     let report = run.await??;
//!
//!     assert_eq!(texts, ["chunk 0 at 0.29-1.71", "chunk 1 at 2.29-3.50"]);
//!     assert_eq!(report.backend, "tokio");
//!     Ok(())
//! }
//! ```
//!
//! ## What runs where
//!
//! Each stage is a tokio task; bounded [`tokio::sync::mpsc`] channels join them, so memory
//! stays bounded however slow transcription is. Everything that blocks runs on tokio's
//! blocking pool ([`tokio::task::spawn_blocking`]): reading and decoding the input, voice
//! activity detection, Whisper inference and the sink's writes. The tasks themselves only
//! await: channels, a [`tokio::sync::Notify`] between the source and the chunker, and tokio
//! timers for real-time pacing. The runtime must have its time driver enabled
//! (`#[tokio::main]` and `Builder::enable_all` do).
//!
//! ## How inference threads are sized
//!
//! Each concurrent inference is one transcriber (one Whisper state) using
//! [`threads_per_transcriber`](steno_core::TranscriberFactory::threads_per_transcriber) CPU
//! threads. The backend runs `max(1, cores / threads_per_transcriber)` of them, fewer if
//! [`TokioBackend::with_max_inferences`] says so, so inference never oversubscribes the cores:
//! on two cores with a two-thread Whisper model, one inference at a time. The blocking pool
//! holds at most that many inferences plus three short-lived stage steps (source, chunker,
//! sink) at once.
//!
//! ## Cancellation
//!
//! Cancel the pipeline's [`CancelToken`](steno_core::CancelToken) (in
//! [`RunOptions`](steno_core::RunOptions)) and the run future resolves to
//! [`Error::Cancelled`] once every stage has stopped: at most a
//! few milliseconds after the inferences in flight finish (Whisper cannot be interrupted).
//! Dropping the run future instead aborts every stage task at once; an inference in flight
//! still completes on its blocking thread and then drops its Whisper state.

mod stages;
mod stream;

use std::future::Future;

use steno_core::{Backend, Error, Pipeline, Result, RunReport};

pub use stream::{SegmentSink, SegmentStream, segment_stream};

/// The tokio backend. See the [crate docs](crate).
#[derive(Debug, Clone, Default)]
pub struct TokioBackend {
    max_inferences: Option<usize>,
}

impl TokioBackend {
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

    /// Runs the pipeline on the tokio runtime the returned future is polled on, to the end of
    /// its input. The future is `Send + 'static`, so it can be spawned.
    ///
    /// Segments reach the sink in chunk order; on success the sink's `finish` has been called,
    /// on error it has not.
    ///
    /// # Errors
    /// The first error of any stage ([`Error::Input`], [`Error::Transcribe`],
    /// [`Error::Sink`], ...), [`Error::Cancelled`] when the run was cancelled, or
    /// [`Error::Unsupported`] when polled outside a tokio runtime.
    pub fn run_async(
        &self,
        pipeline: Pipeline,
    ) -> impl Future<Output = Result<RunReport>> + Send + 'static {
        let max_inferences = self.max_inferences;
        stages::run_pipeline(pipeline, max_inferences, BACKEND_NAME)
    }
}

/// Runs the pipeline on the current tokio runtime with default settings: the same as
/// [`TokioBackend::new().run_async(pipeline)`](TokioBackend::run_async).
///
/// # Errors
/// As [`TokioBackend::run_async`].
pub async fn run(pipeline: Pipeline) -> Result<RunReport> {
    TokioBackend::new().run_async(pipeline).await
}

const BACKEND_NAME: &str = "tokio";

impl Backend for TokioBackend {
    fn name(&self) -> &'static str {
        BACKEND_NAME
    }

    /// Builds a current-thread tokio runtime, runs the pipeline on it, and shuts the runtime
    /// down, waiting for its blocking threads, before returning.
    ///
    /// # Errors
    /// As [`TokioBackend::run_async`]; also [`Error::Unsupported`] when called from inside a
    /// tokio runtime (await [`TokioBackend::run_async`] there instead), and [`Error::Stage`]
    /// when the runtime cannot be built.
    fn run(&self, pipeline: Pipeline) -> Result<RunReport> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(Error::Unsupported {
                backend: BACKEND_NAME,
                what: "a blocking run inside a tokio runtime (await TokioBackend::run_async)"
                    .into(),
            });
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .thread_name("steno-tokio-blocking")
            .build()
            .map_err(|e| Error::Stage {
                stage: "tokio runtime",
                problem: format!("cannot start the runtime: {e}"),
            })?;
        let result = runtime.block_on(self.run_async(pipeline));
        // Dropping the runtime waits for its blocking tasks: nothing outlives the run.
        drop(runtime);
        result
    }
}
