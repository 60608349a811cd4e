//! The suite's own test: backends broken on purpose (wrappers around the threads backend, and
//! around the process backend, whose transcribers the suite observes in other processes) must
//! fail the cases that guard against their fault, and a backend that declines a case must come
//! out as unsupported, not as a pass.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use steno_conformance::{BackendFactory, CaseResult, ProcessWorkers, Unsupported, cases};
use steno_core::{Backend, Error, Pipeline, Result, RunReport, Segment, Sink, Source};
use steno_threads::ThreadsBackend;

/// A fault to inject around the threads backend.
#[derive(Clone, Copy)]
enum Fault {
    /// Writes segment 1 after segment 2.
    SwapSecondAndThirdSegments,
    /// Gives the ring room for a minute of audio: buffering without a useful bound.
    HugeRing,
    /// Declines real-time input.
    NoRealtime,
    /// Leaves a thread running with the source after the run returns.
    DetachedThread,
    /// Writes segment 1 with another chunk's text.
    MisattributedText,
}

/// The backend a fault is injected around.
#[derive(Clone, Copy)]
enum Under {
    Threads,
    /// The process backend, its workers serving the pipeline's transcriber.
    Workers,
}

struct Broken(Fault, Under);

impl Backend for Broken {
    fn name(&self) -> &'static str {
        "broken"
    }

    fn run(&self, pipeline: Pipeline) -> Result<RunReport> {
        let mut parts = pipeline.into_parts();
        match self.0 {
            Fault::SwapSecondAndThirdSegments => {
                parts.sink = Box::new(Swapping {
                    inner: parts.sink,
                    held: None,
                });
            }
            Fault::HugeRing => parts.options.ring_capacity = 16_000 * 60,
            Fault::NoRealtime if parts.options.realtime => {
                return Err(Error::Unsupported {
                    backend: "broken",
                    what: "real-time input".into(),
                });
            }
            Fault::NoRealtime => {}
            Fault::MisattributedText => {
                parts.sink = Box::new(Misattributing(parts.sink));
            }
            Fault::DetachedThread => {
                let kept = Arc::new(Mutex::new(None::<Box<dyn Source>>));
                let source = std::mem::replace(&mut parts.source, Box::new(Shared(kept.clone())));
                *kept.lock().unwrap_or_else(PoisonError::into_inner) = Some(source);
                let report = ThreadsBackend::new().run(Pipeline::from_parts(parts)?);
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(300));
                    drop(kept);
                });
                return report;
            }
        }
        let pipeline = Pipeline::from_parts(parts)?;
        match self.1 {
            Under::Threads => ThreadsBackend::new().run(pipeline),
            Under::Workers => {
                ProcessWorkers::new(env!("CARGO_BIN_EXE_steno-conformance-worker")).run(pipeline)
            }
        }
    }
}

struct Misattributing(Box<dyn Sink>);

impl Sink for Misattributing {
    fn write(&mut self, segment: &Segment) -> Result<()> {
        let mut segment = segment.clone();
        if segment.chunk == 1 {
            segment.text = "chunk 7 at 0.00-0.10".into();
        }
        self.0.write(&segment)
    }

    fn finish(&mut self) -> Result<()> {
        self.0.finish()
    }
}

struct Swapping {
    inner: Box<dyn Sink>,
    held: Option<Segment>,
}

impl Sink for Swapping {
    fn write(&mut self, segment: &Segment) -> Result<()> {
        match segment.chunk {
            1 => {
                self.held = Some(segment.clone());
                Ok(())
            }
            2 => {
                self.inner.write(segment)?;
                match self.held.take() {
                    Some(held) => self.inner.write(&held),
                    None => Ok(()),
                }
            }
            _ => self.inner.write(segment),
        }
    }

    fn finish(&mut self) -> Result<()> {
        if let Some(held) = self.held.take() {
            self.inner.write(&held)?;
        }
        self.inner.finish()
    }
}

/// A source whose real source is shared with a thread the backend leaves behind.
struct Shared(Arc<Mutex<Option<Box<dyn Source>>>>);

impl Source for Shared {
    fn name(&self) -> &str {
        "shared"
    }

    fn next_block(&mut self) -> Result<Option<Vec<f32>>> {
        match self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_mut()
        {
            Some(source) => source.next_block(),
            None => Ok(None),
        }
    }
}

/// Runs `check` against the broken backend; returns the failure message, or the outcome if
/// the check did not fail.
fn failure_of(fault: Fault, under: Under, check: fn(&BackendFactory) -> CaseResult) -> String {
    let make = move || -> Box<dyn Backend> { Box::new(Broken(fault, under)) };
    match catch_unwind(AssertUnwindSafe(|| check(&make))) {
        Ok(outcome) => panic!("the suite did not catch the fault: {outcome:?}"),
        Err(payload) => payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_default(),
    }
}

#[test]
fn reordered_segments_fail_ordering_and_the_error_cases() {
    for under in [Under::Threads, Under::Workers] {
        let message = failure_of(Fault::SwapSecondAndThirdSegments, under, cases::ordering);
        assert!(message.contains("in chunk order"), "{message}");
        let message = failure_of(
            Fault::SwapSecondAndThirdSegments,
            under,
            cases::transcriber_error,
        );
        assert!(message.contains("before 3 must be delivered"), "{message}");
    }
}

#[test]
fn an_unbounded_buffer_fails_backpressure() {
    for under in [Under::Threads, Under::Workers] {
        let message = failure_of(Fault::HugeRing, under, cases::backpressure);
        assert!(message.contains("nothing was dropped"), "{message}");
    }
}

#[test]
fn a_thread_left_running_fails_the_release_check() {
    let message = failure_of(
        Fault::DetachedThread,
        Under::Threads,
        cases::end_of_stream_flush,
    );
    assert!(message.contains("was not joined"), "{message}");
}

/// Out of process, the suite knows which chunk a worker received only from the text the
/// worker wrote for it: text attached to the wrong chunk must fail, not be believed.
#[test]
fn a_workers_text_on_the_wrong_chunk_fails_accounting() {
    let message = failure_of(Fault::MisattributedText, Under::Workers, cases::accounting);
    assert!(message.contains("belongs to another chunk"), "{message}");
}

#[test]
fn a_declined_case_is_unsupported_not_passed() {
    let make = || -> Box<dyn Backend> { Box::new(Broken(Fault::NoRealtime, Under::Threads)) };
    assert_eq!(
        cases::backpressure(&make),
        Err(Unsupported {
            backend: "broken".into(),
            what: "real-time input".into(),
        })
    );
    // The same backend supports offline runs.
    assert_eq!(cases::ordering(&make), Ok(()));
}
