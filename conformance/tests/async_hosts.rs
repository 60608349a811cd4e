//! What only an async backend promises, written once and run on every runtime: embedded in a
//! host application's executor, the run never stalls the application; cancelling it mid-stream
//! ends it soon after the inference in flight; dropping its future stops the pipeline and
//! releases the model. Everything else an async backend does is held by the conformance suite
//! (`backends.rs`), like every other backend.
//!
//! Each test is a function generic over the runtime's binding (through [`Host`]: the runtime as
//! an application uses it, its `block_on` and its timer); [`host_tests!`] runs every one of
//! them per runtime, as `<runtime>::<test>`.
#![allow(clippy::unwrap_used, reason = "a test that cannot set up should panic")]

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_lite::future;
use steno_async::{AsyncBackend, Runtime};
use steno_core::{
    Chunk, ChunkerConfig, Error, Pipeline, Result, RunReport, ScriptedTranscriber, Transcriber,
    TranscriberFactory, Transcription, VadKind, VecSource,
};

/// A runtime as a host application uses it: its own `block_on` (tokio's is a current-thread
/// runtime, so anything steno blocked its executor with would stall the application's task
/// too) and its own timer, both from the runtime's binding.
trait Host: Runtime + Default {
    /// Runs `body` to the end on the calling thread, as the application's `main` would.
    fn host<T>(body: impl Future<Output = T>) -> T {
        Self::default().block_on(async { Ok(body.await) }).unwrap()
    }
    /// Resolves after `duration`, on the runtime's timer.
    fn sleep(duration: Duration) -> impl Future<Output = ()> {
        async move { Self::default().sleep_until(Instant::now() + duration).await }
    }
    /// The backend's run future for `pipeline`.
    fn run(pipeline: Pipeline) -> impl Future<Output = Result<RunReport>> + Send + 'static {
        AsyncBackend::<Self>::new().run_async(pipeline)
    }
}

impl<R: Runtime + Default> Host for R {}

fn speech(seconds: f32) -> Vec<f32> {
    (0..(seconds * 16_000.0) as usize)
        .map(|i| 0.3 * (i as f32 * 0.05).sin())
        .collect()
}

/// `utterances` bursts of 0.6 s of "speech", each followed by 0.75 s of silence.
fn session(utterances: usize) -> Vec<f32> {
    let mut audio = vec![0.0; 8_000];
    for _ in 0..utterances {
        audio.extend(speech(0.6));
        audio.extend(vec![0.0; 12_000]);
    }
    audio
}

/// A pipeline over `utterances` bursts, transcribed slowly, with its segments on a stream.
fn pipeline(utterances: usize, tracker: &Tracker) -> (Pipeline, steno_async::SegmentStream) {
    let (sink, segments) = steno_async::segment_stream(4);
    let pipeline = Pipeline::builder(
        VecSource::new(session(utterances)),
        Arc::new(TrackedFactory {
            inner: ScriptedTranscriber::new().with_cost_per_audio_second(COST_PER_AUDIO_SECOND),
            tracker: tracker.clone(),
        }),
        sink,
    )
    .chunker(ChunkerConfig::default().with_vad(VadKind::Energy))
    .build()
    .unwrap();
    (pipeline, segments)
}

/// A slow transcriber: 300 ms per second of audio, so one chunk (about 1 s) takes ~0.3 s.
const COST_PER_AUDIO_SECOND: Duration = Duration::from_millis(300);

/// The longest one inference of the slow transcriber takes on these sessions (chunks are
/// 0.6 s of speech plus padding and hangover, well under 2 s).
const LONGEST_INFERENCE: Duration = Duration::from_millis(600);

/// Counts live transcribers and inferences in progress, to prove a run released its model and
/// left no inference running.
#[derive(Debug, Clone, Default)]
struct Tracker {
    live: Arc<AtomicUsize>,
    busy: Arc<AtomicUsize>,
}

impl Tracker {
    fn live(&self) -> usize {
        self.live.load(Ordering::SeqCst)
    }
    fn busy(&self) -> usize {
        self.busy.load(Ordering::SeqCst)
    }
}

struct TrackedFactory {
    inner: ScriptedTranscriber,
    tracker: Tracker,
}

impl TranscriberFactory for TrackedFactory {
    fn name(&self) -> String {
        "tracked".into()
    }
    fn create(&self) -> Result<Box<dyn Transcriber>> {
        self.tracker.live.fetch_add(1, Ordering::SeqCst);
        Ok(Box::new(Tracked {
            inner: self.inner.create()?,
            tracker: self.tracker.clone(),
        }))
    }
}

struct Tracked {
    inner: Box<dyn Transcriber>,
    tracker: Tracker,
}

impl Transcriber for Tracked {
    fn transcribe(&mut self, chunk: &Chunk) -> Result<Transcription> {
        self.tracker.busy.fetch_add(1, Ordering::SeqCst);
        let text = self.inner.transcribe(chunk);
        self.tracker.busy.fetch_sub(1, Ordering::SeqCst);
        text
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.tracker.live.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The application reads the segments while a ticker of its own runs every 10 ms, all in one
/// task of its executor: if the run blocked that executor, the ticker would stall.
fn embedded_the_host_keeps_ticking_while_inference_runs<H: Host>() {
    let tracker = Tracker::default();
    let (pipeline, mut segments) = pipeline(6, &tracker);
    let run_ended = Arc::new(AtomicBool::new(false));
    let busy = tracker.clone();
    let run = {
        let run_ended = Arc::clone(&run_ended);
        async move {
            let report = H::run(pipeline).await;
            run_ended.store(true, Ordering::SeqCst);
            report
        }
    };
    let read = async move {
        let mut texts = Vec::new();
        while let Some(segment) = segments.next().await {
            texts.push(segment.text);
        }
        texts
    };
    let tick = async move {
        let (mut last, mut max_gap, mut during_inference) = (Instant::now(), Duration::ZERO, 0);
        while !run_ended.load(Ordering::SeqCst) {
            H::sleep(Duration::from_millis(10)).await;
            let now = Instant::now();
            max_gap = max_gap.max(now - last);
            last = now;
            if busy.busy() > 0 {
                during_inference += 1;
            }
        }
        (max_gap, during_inference)
    };
    let (report, (texts, (max_gap, during_inference))) =
        H::host(future::zip(run, future::zip(read, tick)));
    let report = report.unwrap();
    assert_eq!(texts.len(), 6, "{texts:?}");
    assert!(texts[0].starts_with("chunk 0 at"), "{texts:?}");
    assert_eq!(report.segments, 6);
    assert!(
        during_inference >= 20,
        "only {during_inference} ticks while inference ran"
    );
    assert!(
        max_gap < Duration::from_millis(50),
        "the host's task went {max_gap:?} without running"
    );
    assert_eq!(tracker.live(), 0);
}

/// Cancelled once the first segment has arrived: the run ends soon after the inference in
/// flight, with every stage ended and no inference left running.
fn cancelling_mid_stream_returns_soon_after_the_inference_in_flight<H: Host>() {
    let tracker = Tracker::default();
    let (pipeline, mut segments) = pipeline(40, &tracker);
    let cancel = pipeline.cancel_token();
    let run = async move {
        let result = H::run(pipeline).await;
        (result, Instant::now())
    };
    let cancel_after_first = async move {
        let first = segments.next().await.unwrap();
        assert_eq!(first.chunk, 0);
        let cancelled_at = Instant::now();
        cancel.cancel();
        // The stream ends with the run, and the run with every stage.
        while segments.next().await.is_some() {}
        cancelled_at
    };
    let ((result, returned_at), cancelled_at) = H::host(future::zip(run, cancel_after_first));
    let err = result.unwrap_err();
    assert!(matches!(err, Error::Cancelled), "{err}");
    let cancel_to_return = returned_at - cancelled_at;
    assert!(
        cancel_to_return < LONGEST_INFERENCE + Duration::from_secs(1),
        "returned {cancel_to_return:?} after the cancel"
    );
    assert_eq!((tracker.live(), tracker.busy()), (0, 0));
}

/// The run future is dropped once the first segment has arrived: the stream ends, and the
/// transcribers are released as soon as the inference in flight finishes.
fn dropping_the_run_future_stops_the_pipeline_and_releases_the_model<H: Host>() {
    let tracker = Tracker::default();
    let (pipeline, mut segments) = pipeline(40, &tracker);
    let watched = tracker.clone();
    let released_after = H::host(async move {
        let run = async move {
            let result = H::run(pipeline).await;
            panic!("the run ended before it was dropped: {result:?}");
        };
        // `or` returns when the first segment arrives, dropping the run future.
        future::or(run, async {
            segments.next().await.unwrap();
        })
        .await;
        let dropped_at = Instant::now();
        // The stream ends: the emitter is gone.
        while segments.next().await.is_some() {}
        while watched.live() > 0 {
            assert!(
                dropped_at.elapsed() < LONGEST_INFERENCE + Duration::from_secs(1),
                "the transcribers were not released"
            );
            H::sleep(Duration::from_millis(5)).await;
        }
        dropped_at.elapsed()
    });
    assert!(released_after < LONGEST_INFERENCE + Duration::from_secs(1));
    assert_eq!(tracker.busy(), 0);
}

/// Runs every host test on the runtime `$host`, as tests `$name::<test>`.
macro_rules! host_tests {
    ($name:ident, $host:ty) => {
        mod $name {
            #[test]
            fn embedded_the_host_keeps_ticking_while_inference_runs() {
                super::embedded_the_host_keeps_ticking_while_inference_runs::<$host>();
            }
            #[test]
            fn cancelling_mid_stream_returns_soon_after_the_inference_in_flight() {
                super::cancelling_mid_stream_returns_soon_after_the_inference_in_flight::<$host>();
            }
            #[test]
            fn dropping_the_run_future_stops_the_pipeline_and_releases_the_model() {
                super::dropping_the_run_future_stops_the_pipeline_and_releases_the_model::<$host>();
            }
        }
    };
}

host_tests!(tokio, steno_tokio::Tokio);
host_tests!(smol, steno_smol::Smol);
host_tests!(async_std, steno_async_std::AsyncStd);
