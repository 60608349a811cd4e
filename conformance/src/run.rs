//! Running a pipeline on the backend under test, on a thread of its own, so that a backend
//! that hangs fails its case after a deadline instead of hanging the suite.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use steno_core::{Error, Pipeline, RunReport};

use crate::{BackendFactory, Unsupported};

/// How long a fast run may take before the suite calls it a hang; each takes well under a
/// second when the backend is correct.
pub(crate) const FAST_DEADLINE: Duration = Duration::from_secs(30);

/// A run in progress.
#[derive(Debug)]
pub(crate) struct RunHandle {
    backend: &'static str,
    receiver: mpsc::Receiver<Finished>,
}

/// A run that returned.
#[derive(Debug)]
pub(crate) struct Finished {
    /// What `Backend::run` returned.
    pub(crate) result: Result<RunReport, Error>,
    /// When it returned.
    pub(crate) ended_at: Instant,
}

/// Starts `pipeline` on a new backend from `make`, on a thread of its own.
///
/// # Panics
/// When the thread cannot be started.
pub(crate) fn start(make: &BackendFactory, pipeline: Pipeline) -> RunHandle {
    let backend = make();
    let name = backend.name();
    let (sender, receiver) = mpsc::channel();
    std::thread::Builder::new()
        .name(format!("conformance-{name}"))
        .spawn(move || {
            let result = backend.run(pipeline);
            let ended_at = Instant::now();
            // The receiver is gone only if the case already failed.
            let _ = sender.send(Finished { result, ended_at });
        })
        .expect("cannot start a thread for the run");
    RunHandle {
        backend: name,
        receiver,
    }
}

impl RunHandle {
    /// The backend's name.
    pub(crate) fn backend(&self) -> &'static str {
        self.backend
    }

    /// The finished run, if it has returned.
    pub(crate) fn try_finished(&self) -> Option<Finished> {
        self.receiver.try_recv().ok()
    }

    /// Waits for the run to return.
    ///
    /// # Panics
    /// When it has not returned within `deadline` (the backend hangs), or its thread died.
    pub(crate) fn finish(self, deadline: Duration) -> Finished {
        match self.receiver.recv_timeout(deadline) {
            Ok(finished) => finished,
            Err(mpsc::RecvTimeoutError::Timeout) => panic!(
                "the {} backend's run did not return within {deadline:?}: it hangs",
                self.backend
            ),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                panic!("the {} backend panicked in Backend::run", self.backend)
            }
        }
    }
}

impl Finished {
    /// The run's result, or [`Unsupported`] when the backend declined the pipeline.
    pub(crate) fn supported(self) -> Result<Result<RunReport, Error>, Unsupported> {
        match self.result {
            Err(Error::Unsupported { backend, what }) => Err(Unsupported {
                backend: backend.to_owned(),
                what,
            }),
            result => Ok(result),
        }
    }
}

/// Runs `pipeline` to its end on a new backend from `make`.
///
/// # Errors
/// [`Unsupported`] when the backend declined the pipeline.
///
/// # Panics
/// When the run hangs (see [`RunHandle::finish`]).
pub(crate) fn run(
    make: &BackendFactory,
    pipeline: Pipeline,
    deadline: Duration,
) -> Result<Result<RunReport, Error>, Unsupported> {
    start(make, pipeline).finish(deadline).supported()
}

/// The report of a run that had to succeed.
///
/// # Panics
/// When the run failed.
pub(crate) fn succeeded(result: Result<RunReport, Error>, context: &str) -> RunReport {
    match result {
        Ok(report) => report,
        Err(error) => panic!("{context}: the run failed: {error}"),
    }
}
