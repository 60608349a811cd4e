//! # steno-async
//!
//! The steno pipeline's stages as one future, written once over a tiny [`Runtime`] trait:
//! what `steno-tokio`, `steno-smol` and `steno-async-std` share. Each of those crates is only
//! its runtime's binding (a [`Runtime`] implementation), a name for [`AsyncBackend`] over it,
//! and its docs. Use this crate directly to run steno on another executor: implement
//! [`Runtime`] (three small methods) and run an [`AsyncBackend`] over it.
//!
//! ```
//! use std::future::Future;
//! use std::time::Instant;
//! use steno_async::{AsyncBackend, Runtime};
//! use steno_core::{
//!     Backend, ChunkerConfig, CollectingSink, Pipeline, Result, ScriptedTranscriber, VadKind,
//!     VecSource,
//! };
//!
//! /// A runtime whose "blocking pool" is a new thread per call: a toy, but a complete binding.
//! #[derive(Debug, Clone, Copy, Default)]
//! struct Toy;
//!
//! impl Runtime for Toy {
//!     const NAME: &'static str = "toy";
//!
//!     fn unblock<T: Send + 'static>(
//!         &self,
//!         work: impl FnOnce() -> T + Send + 'static,
//!     ) -> impl Future<Output = Option<T>> + Send {
//!         let (done, result) = async_channel::bounded(1);
//!         std::thread::spawn(move || done.send_blocking(work()));
//!         async move { result.recv().await.ok() }
//!     }
//!
//!     fn sleep_until(&self, deadline: Instant) -> impl Future<Output = ()> + Send {
//!         let slept = self.unblock(move || {
//!             std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
//!         });
//!         async move {
//!             slept.await;
//!         }
//!     }
//!
//!     fn block_on<T>(&self, run: impl Future<Output = Result<T>>) -> Result<T> {
//!         futures_lite::future::block_on(run)
//!     }
//! }
//!
//! # fn main() -> Result<()> {
//! let tone: Vec<f32> = (0..16_000).map(|i| 0.3 * (i as f32 * 0.05).sin()).collect();
//! let audio = [vec![0.0; 8_000], tone].concat();
//! let sink = CollectingSink::new();
//! let transcriber = std::sync::Arc::new(ScriptedTranscriber::new());
//! let pipeline = Pipeline::builder(VecSource::new(audio), transcriber, sink.clone())
//! .chunker(ChunkerConfig::default().with_vad(VadKind::Energy))
//! .build()?;
//!
//! let report = AsyncBackend::<Toy>::new().run(pipeline)?;
//! assert_eq!(report.backend, "toy");
//! assert_eq!(sink.segments()[0].text, "chunk 0 at 0.29-1.50");
//! # Ok(())
//! # }
//! ```
//!
//! ## What runs where
//!
//! The run future drives every stage itself: the source, the chunker, one loop per
//! transcriber and the emitter are futures it polls together, and nothing is spawned. So the
//! run is exactly as much of the application as the future is: `.await` it, spawn it, or drop
//! it to cancel the run. Everything that blocks runs on the runtime's blocking pool
//! ([`Runtime::unblock`]): reading and decoding the input, voice activity detection, Whisper
//! inference and the sink's writes. The stages themselves only await: bounded
//! [`async_channel`]s between them (memory stays bounded however slow transcription is), an
//! [`event_listener::Event`] between the source and the chunker, and the runtime's timer for
//! real-time pacing ([`Runtime::sleep_until`]).
//!
//! ## How inference threads are sized
//!
//! Each concurrent inference is one transcriber (one Whisper state) using
//! [`threads_per_transcriber`](steno_core::TranscriberFactory::threads_per_transcriber) CPU
//! threads. The run creates `max(1, cores / threads_per_transcriber)` of them, fewer if
//! [`AsyncBackend::with_max_inferences`] says so, so inference never oversubscribes the cores:
//! on two cores with a two-thread Whisper model, one inference at a time. The blocking pool
//! holds at most that many inferences plus three short stage steps (source, chunker, sink) of a
//! run at once.
//!
//! ## Cancellation
//!
//! Cancel the pipeline's [`CancelToken`](steno_core::CancelToken) (take it with
//! [`Pipeline::cancel_token`] before the run) and the run future resolves to
//! [`Error::Cancelled`](steno_core::Error::Cancelled) once every stage has stopped: at most a
//! few milliseconds after the inferences in flight finish (Whisper cannot be interrupted).
//! Dropping the run future instead drops every stage at once and stops the run's token; an
//! inference in flight still completes on its blocking thread and then drops its Whisper
//! state.

mod driver;
mod stream;

use std::future::Future;
use std::time::Instant;

use steno_core::{Backend, Pipeline, Result, RunReport};

pub use stream::{
    SegmentSink, SegmentStream, UpdateSink, UpdateStream, segment_stream, update_stream,
};

/// What the async driver needs from a runtime: its blocking pool, its timer, and a way to block
/// a thread that is not async on a run.
///
/// A binding is a small `Clone` value, usually a unit struct; `steno-tokio`, `steno-smol` and
/// `steno-async-std` each hold one.
pub trait Runtime: Clone + Send + Sync + 'static {
    /// The backend's name (`tokio`, `smol`, ...), as reports and the command line show it.
    const NAME: &'static str;

    /// Runs `work` on the runtime's pool for blocking work and resolves to its result, or to
    /// `None` when the runtime dropped the work without running it to the end (it is shutting
    /// down). The driver catches panics inside `work` itself.
    fn unblock<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> impl Future<Output = Option<T>> + Send;

    /// Resolves at `deadline` (at once if it has passed).
    fn sleep_until(&self, deadline: Instant) -> impl Future<Output = ()> + Send;

    /// Runs `run` to completion on the calling thread, which is not inside the runtime: what
    /// [`Backend::run`] does for programs that are not async.
    ///
    /// # Errors
    /// `run`'s error, or the runtime's own when it cannot run here.
    fn block_on<T>(&self, run: impl Future<Output = Result<T>>) -> Result<T>;

    /// Checked when the run future is first polled: `Err` when the runtime's blocking pool or
    /// timer cannot be reached from there (tokio outside a tokio runtime). By default, `Ok`.
    ///
    /// # Errors
    /// [`Error::Unsupported`](steno_core::Error::Unsupported), saying where the run must be
    /// polled instead.
    fn check_context(&self) -> Result<()> {
        Ok(())
    }
}

/// A backend that runs the pipeline as one future on the runtime `R`. The runtime crates name
/// it: `steno_tokio::TokioBackend` is `AsyncBackend<steno_tokio::Tokio>`.
#[derive(Debug, Clone, Default)]
pub struct AsyncBackend<R> {
    runtime: R,
    max_inferences: Option<usize>,
}

impl<R: Runtime + Default> AsyncBackend<R> {
    /// The backend with default settings: as many concurrent inferences as the cores allow.
    pub fn new() -> Self {
        Self::with_runtime(R::default())
    }
}

impl<R: Runtime> AsyncBackend<R> {
    /// The backend over `runtime`, with default settings.
    pub fn with_runtime(runtime: R) -> Self {
        AsyncBackend {
            runtime,
            max_inferences: None,
        }
    }

    /// Runs at most `max` inferences at once (at least one); the cores still bound it.
    #[must_use]
    pub fn with_max_inferences(mut self, max: usize) -> Self {
        self.max_inferences = Some(max);
        self
    }

    /// Runs the pipeline, to the end of its input, on the executor that polls the returned
    /// future (which must be `R`'s, or one it works under). The future is `Send + 'static`, so
    /// it can be spawned; dropping it cancels the run.
    ///
    /// Segments reach the sink in chunk order; on success the sink's `finish` has been called,
    /// on error it has not.
    ///
    /// # Errors
    /// The first error of any stage ([`Error::Input`](steno_core::Error::Input),
    /// [`Error::Transcribe`](steno_core::Error::Transcribe),
    /// [`Error::Sink`](steno_core::Error::Sink), ...),
    /// [`Error::Cancelled`](steno_core::Error::Cancelled) when the run was cancelled, or what
    /// [`Runtime::check_context`] says when it is polled where the runtime is not.
    pub fn run_async(
        &self,
        pipeline: Pipeline,
    ) -> impl Future<Output = Result<RunReport>> + Send + use<R> {
        driver::run(self.runtime.clone(), pipeline, self.max_inferences)
    }
}

impl<R: Runtime> Backend for AsyncBackend<R> {
    fn name(&self) -> &'static str {
        R::NAME
    }

    /// Blocks the calling thread on the run ([`Runtime::block_on`]); every stage of the run has
    /// ended when it returns.
    ///
    /// # Errors
    /// As [`AsyncBackend::run_async`], and the runtime's own errors from
    /// [`Runtime::block_on`].
    fn run(&self, pipeline: Pipeline) -> Result<RunReport> {
        self.runtime.block_on(self.run_async(pipeline))
    }
}
