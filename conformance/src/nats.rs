//! The NATS backend as the suite runs it: for each pipeline a stream of its own on the real
//! `nats-server -js` the suite shares ([`LocalServer::shared`]), with worker processes that
//! serve that pipeline's transcriber ([`NatsWorkers`]).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use steno_core::stage::transcribers_fitting_cores;
use steno_core::{Backend, Error, Pipeline, Result, RunReport};
use steno_nats::{LocalServer, NatsBackend, NatsTarget};

use crate::workers::worker_model_args;

/// The name [`NatsBackend`] reports.
const NATS: &str = "nats";

/// Runs each pipeline on a [`NatsBackend`] connected to [`LocalServer::shared`], on a stream of
/// its own, with `max(1, cores / threads)` worker processes running `program --nats URL
/// --stream NAME --model NAME --threads N` (the `steno-conformance-worker` binary), stopped
/// when the run ends. As with `ProcessWorkers`, the workers serve exactly the pipeline's
/// transcriber: a `WorkerScript` name or a Whisper model's path, with a model case's options.
#[derive(Debug, Clone)]
pub struct NatsWorkers {
    program: PathBuf,
}

impl NatsWorkers {
    /// Workers run `program` (in this crate's tests,
    /// `env!("CARGO_BIN_EXE_steno-conformance-worker")`).
    pub fn new(program: impl Into<PathBuf>) -> Self {
        NatsWorkers {
            program: program.into(),
        }
    }
}

impl Backend for NatsWorkers {
    fn name(&self) -> &'static str {
        NATS
    }

    /// # Errors
    /// [`Error::Unsupported`] when no worker can serve the transcriber (see
    /// `ProcessWorkers`); [`Error::Stage`] when a worker cannot be started; otherwise what
    /// [`NatsBackend::run`] returns.
    fn run(&self, pipeline: Pipeline) -> Result<RunReport> {
        let model_args = worker_model_args(&pipeline.transcriber().name(), NATS)?;
        static RUNS: AtomicUsize = AtomicUsize::new(0);
        let stream = format!(
            "CONFORMANCE_{}_{}",
            std::process::id(),
            RUNS.fetch_add(1, Ordering::SeqCst)
        );
        let server = LocalServer::shared();
        let threads = pipeline.transcriber().threads_per_transcriber();
        let count = transcribers_fitting_cores(threads, None);
        let mut workers = Vec::with_capacity(count);
        for _ in 0..count {
            let child = Command::new(&self.program)
                .args(["--nats", &server.url(), "--stream", &stream])
                .args(&model_args)
                .args(["--threads", &threads.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .spawn()
                .map_err(|error| Error::Stage {
                    stage: "nats worker",
                    problem: format!("cannot start {}: {error}", self.program.display()),
                })?;
            workers.push(KillOnDrop(child));
        }
        let backend = NatsBackend::new(NatsTarget::new(&server.url())?)
            .with_stream(&stream)?
            .with_in_flight(count);
        backend.run(pipeline)
    }
}

/// A worker process, killed and waited for when the run is over.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
