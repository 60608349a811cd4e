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
//! - [`AsyncStdBackend`]'s [`Backend::run`](steno_core::Backend::run) blocks the calling thread on
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
//! let pipeline = Pipeline::builder(
//!     VecSource::new(audio),                 // or steno_core::FileSource::open(path)?
//!     Arc::new(ScriptedTranscriber::new()), // or steno_core::WhisperModel::load(...)?
//!     sink,
//! )
//! .chunker(ChunkerConfig::default().with_vad(VadKind::Energy))
//! .build()?;
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
//! The stages are those of [`steno_async`], written once for every runtime; this crate is
//! only async-std's binding ([`AsyncStd`]). The run future drives every stage itself, so it
//! spawns no task: everything that blocks runs on async-std's blocking pool
//! ([`async_std::task::spawn_blocking`], which is the `blocking` crate's `unblock`) — reading
//! and decoding the input, voice activity detection, Whisper inference and the sink's writes —
//! and real-time pacing uses async-std's timer.
//!
//! Inference is sized to the cores, and cancelling (or dropping the run future) ends the run
//! as [`steno_async`] describes.

use std::future::Future;
use std::time::Instant;

use steno_async::{AsyncBackend, Runtime};
use steno_core::{Pipeline, Result, RunReport};

pub use steno_async::{
    SegmentSink, SegmentStream, UpdateSink, UpdateStream, segment_stream, update_stream,
};

/// The async-std backend: the async driver over [`AsyncStd`]. See the [crate docs](crate).
pub type AsyncStdBackend = AsyncBackend<AsyncStd>;

/// Runs the pipeline with default settings: the same as
/// [`AsyncStdBackend::new().run_async(pipeline)`](AsyncBackend::run_async).
///
/// # Errors
/// As [`AsyncBackend::run_async`].
pub async fn run(pipeline: Pipeline) -> Result<RunReport> {
    AsyncStdBackend::new().run_async(pipeline).await
}

/// async-std's binding for the async driver: its blocking pool and its timer.
#[derive(Debug, Clone, Copy, Default)]
pub struct AsyncStd;

impl Runtime for AsyncStd {
    const NAME: &'static str = "async-std";

    async fn unblock<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        Some(async_std::task::spawn_blocking(work).await)
    }

    async fn sleep_until(&self, deadline: Instant) {
        async_std::task::sleep(deadline.saturating_duration_since(Instant::now())).await;
    }

    /// Runs on the calling thread with [`async_std::task::block_on`].
    fn block_on<T>(&self, run: impl Future<Output = Result<T>>) -> Result<T> {
        async_std::task::block_on(run)
    }
}
