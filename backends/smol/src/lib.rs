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
//! - [`SmolBackend`]'s [`Backend::run`](steno_core::Backend::run) blocks the calling thread on [`smol::block_on`], for
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
//! let pipeline = Pipeline::builder(
//!     VecSource::new(audio),                 // or steno_core::FileSource::open(path)?
//!     Arc::new(ScriptedTranscriber::new()), // or steno_core::WhisperModel::load(...)?
//!     sink,
//! )
//! .chunker(ChunkerConfig::default().with_vad(VadKind::Energy))
//! .build()?;
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
//! The stages are those of [`steno_async`], written once for every runtime; this crate is
//! only smol's binding ([`Smol`]). smol leaves the choice of executor to the application, and
//! the run future needs none: it drives every stage itself whenever it is polled, with no
//! thread of its own and nothing outliving it. Everything that blocks runs on the `blocking`
//! thread pool ([`smol::unblock`]) — reading and decoding the input, voice activity detection,
//! Whisper inference and the sink's writes — and real-time pacing uses [`smol::Timer`].
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

/// The smol backend: the async driver over [`Smol`]. See the [crate docs](crate).
pub type SmolBackend = AsyncBackend<Smol>;

/// Runs the pipeline with default settings: the same as
/// [`SmolBackend::new().run_async(pipeline)`](AsyncBackend::run_async).
///
/// # Errors
/// As [`AsyncBackend::run_async`].
pub async fn run(pipeline: Pipeline) -> Result<RunReport> {
    SmolBackend::new().run_async(pipeline).await
}

/// smol's binding for the async driver: the `blocking` pool and `async-io`'s timer.
#[derive(Debug, Clone, Copy, Default)]
pub struct Smol;

impl Runtime for Smol {
    const NAME: &'static str = "smol";

    async fn unblock<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        Some(smol::unblock(work).await)
    }

    async fn sleep_until(&self, deadline: Instant) {
        smol::Timer::at(deadline).await;
    }

    /// Runs on the calling thread with [`smol::block_on`]; every blocking step of the run has
    /// finished when it returns.
    fn block_on<T>(&self, run: impl Future<Output = Result<T>>) -> Result<T> {
        smol::block_on(run)
    }
}
