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
//! - [`TokioBackend`]'s [`Backend::run`](steno_core::Backend::run) blocks the calling thread on a current-thread runtime
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
//!     let pipeline = Pipeline::builder(
//!         VecSource::new(audio),                 // or steno_core::FileSource::open(path)?
//!         Arc::new(ScriptedTranscriber::new()), // or steno_core::WhisperModel::load(...)?
//!         sink,
//!     )
//!     .chunker(ChunkerConfig::default().with_vad(VadKind::Energy))
//!     .build()?;
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
//! The stages are those of [`steno_async`], written once for every runtime; this crate is
//! only tokio's binding ([`Tokio`]). The run future drives every stage itself, so it needs no
//! task of its own: everything that blocks runs on tokio's blocking pool
//! ([`tokio::task::spawn_blocking`]) — reading and decoding the input, voice activity
//! detection, Whisper inference and the sink's writes — and real-time pacing uses tokio's
//! timer, so the runtime must have its time driver enabled (`#[tokio::main]` and
//! `Builder::enable_all` do). Polled outside a tokio runtime, the run ends at once with
//! [`Error::Unsupported`].
//!
//! Inference is sized to the cores, and cancelling (or dropping the run future) ends the run
//! as [`steno_async`] describes.

use std::future::Future;
use std::time::Instant;

use steno_async::{AsyncBackend, Runtime};
use steno_core::{Error, Pipeline, Result, RunReport};

pub use steno_async::{
    SegmentSink, SegmentStream, UpdateSink, UpdateStream, segment_stream, update_stream,
};

/// The tokio backend: the async driver over [`Tokio`]. See the [crate docs](crate).
pub type TokioBackend = AsyncBackend<Tokio>;

/// Runs the pipeline on the current tokio runtime with default settings: the same as
/// [`TokioBackend::new().run_async(pipeline)`](AsyncBackend::run_async).
///
/// # Errors
/// As [`AsyncBackend::run_async`]; [`Error::Unsupported`] when polled outside a tokio runtime.
pub async fn run(pipeline: Pipeline) -> Result<RunReport> {
    TokioBackend::new().run_async(pipeline).await
}

/// tokio's binding for the async driver: its blocking pool and its timer.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tokio;

impl Runtime for Tokio {
    const NAME: &'static str = "tokio";

    async fn unblock<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        // Spawned when first polled: inside the runtime (see `check_context`).
        tokio::task::spawn_blocking(work).await.ok()
    }

    async fn sleep_until(&self, deadline: Instant) {
        tokio::time::sleep_until(deadline.into()).await;
    }

    /// Builds a current-thread tokio runtime, runs on it, and shuts the runtime down, waiting
    /// for its blocking threads, before returning.
    ///
    /// # Errors
    /// `run`'s error; [`Error::Unsupported`] when called from inside a tokio runtime (await
    /// [`AsyncBackend::run_async`] there instead); [`Error::Stage`] when the runtime cannot
    /// be built.
    fn block_on<T>(&self, run: impl Future<Output = Result<T>>) -> Result<T> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(Error::Unsupported {
                backend: Self::NAME,
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
        let result = runtime.block_on(run);
        // Dropping the runtime waits for its blocking tasks: nothing outlives the run.
        drop(runtime);
        result
    }

    fn check_context(&self) -> Result<()> {
        tokio::runtime::Handle::try_current()
            .map(drop)
            .map_err(|_| Error::Unsupported {
                backend: Self::NAME,
                what: "running outside a tokio runtime (call Backend::run to let it build one)"
                    .into(),
            })
    }
}
