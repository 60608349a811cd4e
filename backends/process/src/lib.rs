//! # steno-process
//!
//! Runs a steno [`Pipeline`](steno_core::Pipeline) with transcription isolated in worker
//! processes, each loading the model once. Use it when a crash in native inference code
//! (whisper.cpp) must not take your application down: a worker that dies is replaced, its
//! chunk is sent again, and the transcript comes out unchanged. The `steno` command line uses
//! it for `--backend process --workers N`.
//!
//! - [`ProcessBackend`] schedules: the source and the chunker run on threads of the parent;
//!   each chunk goes to an idle worker; transcripts are put back in chunk order. At most
//!   `workers + queue_capacity` chunks are started but not yet written, so a slow chunk cannot
//!   make the others pile up behind it.
//! - [`WorkerCommand`] is how a worker is started: any program serving the worker protocol on
//!   its stdin and stdout, normally `steno worker --model PATH --threads N` (the hidden
//!   subcommand of the `steno` binary).
//! - [`serve()`] is that protocol's worker side, so a worker is a few lines around it.
//! - [`protocol`] is the wire format: versioned, length-prefixed binary frames with a size
//!   limit, checked before anything is allocated.
//! - [`WorkerModel`] names the workers' model in the pipeline without loading it here.
//!
//! ```no_run
//! use std::sync::Arc;
//! use steno_core::{Backend, FileSource, FormatSink, Format, Pipeline};
//! use steno_process::{ProcessBackend, WorkerCommand, WorkerModel};
//!
//! let model = "models/ggml-tiny.en-q8_0.bin";
//! // Two workers, one inference thread each: `steno worker` loads the model in each.
//! let command = WorkerCommand::new("steno").args(["worker", "--model", model, "--threads", "1"]);
//! let backend = ProcessBackend::new(command).with_workers(2);
//! let pipeline = Pipeline::new(
//!     FileSource::open("meeting.wav")?,
//!     Arc::new(WorkerModel::new(model, 1)),
//!     FormatSink::new(Format::Jsonl, std::io::stdout(), "stdout"),
//! );
//! let report = backend.run(pipeline)?;
//! eprintln!("{} worker restarts, {} bytes peak RSS (all processes)",
//!     report.worker_restarts, report.peak_rss_bytes);
//! # Ok::<(), steno_core::Error>(())
//! ```
//!
//! ## Workers, sizing and reuse
//!
//! A run uses `max(1, cores / threads)` workers by default, where `threads` is the
//! pipeline's [`threads_per_transcriber`](steno_core::TranscriberFactory::threads_per_transcriber)
//! ([`ProcessBackend::with_workers`] overrides it), so workers x threads stays within the
//! cores. Workers start with the run and are kept, idle and with their model loaded, for the
//! next run of the same backend; [`ProcessBackend::shutdown`] or dropping the backend ends
//! them. Every worker must announce, in its handshake, the model the pipeline's transcriber
//! names; the pipeline's transcriber itself is never called.
//!
//! ## When a worker dies
//!
//! A worker that is killed, crashes or exits closes its pipes; the parent notices at once,
//! reaps it (its exit status and last stderr line go to the log), starts a new worker and
//! sends it the same chunk, so no chunk is lost or transcribed twice. Each replacement counts
//! in [`RunReport::worker_restarts`](steno_core::RunReport::worker_restarts). When workers die
//! on the same chunk 3 times in a row ([`ProcessBackend::with_max_attempts`]), the run ends
//! with [`Error::Transcribe`](steno_core::Error::Transcribe) naming the chunk. A worker that
//! writes anything but protocol frames ends the run with an error that says so; a transcriber
//! error inside a worker ends it like any transcriber error.
//!
//! ## No orphans
//!
//! Workers never outlive their parent. The parent ends them when a run fails or is cancelled
//! (busy workers are killed: a run does not wait for inferences in flight) and when the backend
//! is dropped (stdin closed, a short grace period, then killed; always waited for). If the
//! parent itself is killed, each worker's stdin reaches its end and the worker exits; one
//! that is in the middle of an inference finishes that chunk first, then exits (its answer
//! cannot be written, and nothing more can be read). Worker stderr is forwarded to the
//! parent's `tracing` log (target `steno_process::worker`).
//!
//! ## Cost in the run report
//!
//! `peak_rss_bytes` is the parent's peak plus, for each worker slot, the peak (VmHWM from
//! `/proc`, sampled after the handshake and after each chunk) of the worker processes it ran;
//! `cpu_seconds` adds the CPU time the workers spent during the run. One model per process is
//! visible there.
//!
//! The parent must not die of `SIGPIPE` when a worker is gone; Rust programs ignore it by
//! default.

mod backend;
pub mod protocol;
mod serve;
mod worker;

pub use backend::{ProcessBackend, WorkerModel};
pub use serve::{answer, answer_partial, serve};
pub use worker::WorkerCommand;
