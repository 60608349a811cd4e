//! # steno-nats
//!
//! Runs a steno [`Pipeline`](steno_core::Pipeline) with transcription on a fleet of workers,
//! on any machines, behind a [NATS](https://nats.io) JetStream work queue. It carries the
//! process backend's guarantees over a broker: workers own a model, a dead worker's chunk is
//! transcribed again by another, and the transcript is identical to every other backend's.
//! The `steno` command line uses it for `--backend nats --nats URL` and `steno worker --nats
//! URL`.
//!
//! - [`NatsBackend`] is the coordinator: the source, the chunker and the emitter run where the
//!   audio is; each chunk is published to the work queue and its answer awaited; transcripts
//!   are put back in chunk order. At most [`with_in_flight`](NatsBackend::with_in_flight)
//!   chunks are with the fleet at once, so a slow fleet holds the pipeline back (a real-time
//!   source then drops audio at its ring, as on every backend) instead of growing memory.
//! - [`NatsWorker`] serves one model's chunks until it is stopped; start one per core group on
//!   as many machines as you like, while runs go on.
//! - [`NatsTarget`] is the broker's address and credentials (from the environment, never
//!   shown).
//! - [`NatsModel`] is the fleet as a transcriber factory, for a scheduler that lends
//!   transcribers chunk by chunk (`steno serve --nats URL` puts it under its pool).
//! - [`LocalServer`] starts a real `nats-server` on a free loopback port, for tests and
//!   benchmarks.
//!
//! ```no_run
//! use std::sync::Arc;
//! use steno_core::{Backend, FileSource, Format, FormatSink, Pipeline};
//! use steno_nats::{NatsBackend, NatsTarget};
//! use steno_process::WorkerModel;
//!
//! // Workers elsewhere run `steno worker --nats nats://broker:4222 --model MODEL`.
//! let model = "models/ggml-tiny.en-q8_0.bin";
//! let backend = NatsBackend::new(NatsTarget::from_env("nats://broker:4222")?).with_in_flight(8);
//! let pipeline = Pipeline::new(
//!     FileSource::open("meeting.wav")?,
//!     Arc::new(WorkerModel::new(model, 2)),
//!     FormatSink::new(Format::Jsonl, std::io::stdout(), "stdout"),
//! );
//! let report = backend.run(pipeline)?;
//! eprintln!("{} chunks delivered again after a worker was lost", report.redeliveries);
//! # Ok::<(), steno_core::Error>(())
//! ```
//!
//! ## On the broker
//!
//! One JetStream stream (`STENO` by default; [`NatsBackend::with_stream`],
//! [`NatsWorker::with_stream`]) holds chunks as a work queue, on disk so that they survive a
//! broker restart. A chunk is published on `STREAM.chunks.v<protocol>.<model key>.<run>` with
//! headers naming the model and its decoding options (the pipeline transcriber's
//! [name](steno_core::TranscriberFactory::name), exactly as the process backend's handshake
//! compares it), the worker protocol version and the coordinator's reply address; its payload
//! is the process backend's `Transcribe` frame ([`steno_process::protocol`]). The workers of
//! one model share a durable pull consumer, so each chunk goes to one of them, and chunks of
//! other models or protocol versions never reach them; a worker still compares the headers
//! with its own model and refuses a chunk that does not match, which ends the run with an
//! error naming both. The name is whatever the transcriber factories say; the `steno` command
//! line names a model by its file name and a digest of its contents (plus the options), so a
//! worker matches wherever the same file is installed on its machine.
//!
//! The broker's default message limit (`max_payload`, 1 MiB) holds 16 s of audio; a chunk
//! can hold up to 30 s (2 MiB), so set `max_payload: 4MB` in `nats-server`'s configuration. A
//! chunk too large for the broker ends the run with an error that says so.
//!
//! With interim results in real time, a partial chunk that newer audio overtakes while a
//! worker decodes it is stopped there (a stop message every worker of the stream hears), so
//! the utterance's final text waits for it no longer than on the other backends.
//!
//! ## Faults
//!
//! - **A worker killed or cut off mid-chunk**: it stops telling the broker it is working on
//!   the chunk, and after the consumer's ack wait (10 s by default,
//!   [`NatsWorker::with_ack_wait`]) the chunk goes to another worker. The output is the same;
//!   the report counts the chunk in `redeliveries`.
//! - **A chunk no worker ever finishes**: after the consumer's delivery limit (3,
//!   [`NatsWorker::with_max_deliveries`]) the broker gives up on it and says so; the run ends
//!   with [`Error::Transcribe`](steno_core::Error::Transcribe) for that chunk, after every
//!   earlier segment has been written. A transcriber that fails on a chunk fails it the same
//!   way at once, as on every backend.
//! - **Late answers**: a slow worker that answers after its chunk was delivered again is
//!   ignored; the first answer wins, and both are the same text.
//! - **The broker restarting**: the clients reconnect by themselves; chunks are sent again
//!   (the broker keeps one copy of each) and waiting chunks survive on disk. A broker that
//!   stays away, or a fleet that answers nothing, for the run's patience (60 s,
//!   [`NatsBackend::with_patience`]) ends the run with an error saying how many workers the
//!   broker knows of: never a hang, never a silently missing segment.
//! - A failed or cancelled run removes its chunks that no worker has taken yet.
//!
//! ## In the run report
//!
//! `redeliveries` counts chunks answered after the broker had delivered them more than once.
//! `overhead_ms` includes the hand-off: each answer carries the worker's own decode time, and
//! the rest of the round trip (publishing, storing, pulling, answering) is the pipeline's
//! overhead, not transcription. `cpu_seconds` and `peak_rss_bytes` are the coordinator's only:
//! the workers are processes elsewhere (`cargo xtask compare` adds its local workers' share).
//!
//! ## Security
//!
//! [`NatsTarget::from_env`] takes a user and password ([`USER_ENV`], [`PASSWORD_ENV`]) or a
//! token ([`TOKEN_ENV`]) from the environment, and a CA file for `tls://` URLs ([`CA_ENV`]);
//! none of them is ever logged. An answer is read with the process backend's frame checks:
//! a malformed or oversized answer is an error, and no length it claims is allocated before
//! it is checked.

mod backend;
mod local;
mod model;
mod queue;
mod session;
mod target;
mod wire;
mod worker;

pub use backend::NatsBackend;
pub use local::LocalServer;
pub use model::NatsModel;
pub use target::{CA_ENV, NatsTarget, PASSWORD_ENV, TOKEN_ENV, USER_ENV};
pub use wire::{DEFAULT_STREAM, check_stream_name};
pub use worker::NatsWorker;
