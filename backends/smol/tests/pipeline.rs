//! The smol backend's behaviour: order, errors, cancellation, pacing, and embedding in a host
//! application's runtime without blocking it.
#![allow(clippy::unwrap_used, reason = "a test that cannot set up should panic")]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use smol::{Executor, Timer};
use steno_core::{
    Backend, Chunk, ChunkerConfig, CollectingSink, Error, Pipeline, Result, ScriptedTranscriber,
    Segment, Sink, Transcriber, TranscriberFactory, Transcription, VadKind, VecSource,
};
use steno_smol::{SmolBackend, segment_stream};

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

fn pipeline(
    audio: Vec<f32>,
    transcriber: impl TranscriberFactory + 'static,
    sink: impl Sink + 'static,
) -> Pipeline {
    let mut pipeline = Pipeline::new(VecSource::new(audio), Arc::new(transcriber), sink);
    pipeline.chunker = ChunkerConfig {
        vad: VadKind::Energy,
        ..ChunkerConfig::default()
    };
    pipeline
}

/// Runs `body` on its own thread and fails the test if it does not finish within `limit`.
fn within<T: Send + 'static>(limit: Duration, body: impl FnOnce() -> T + Send + 'static) -> T {
    let (done_tx, done_rx) = mpsc::channel();
    let worker = std::thread::spawn(move || done_tx.send(body()));
    let value = done_rx
        .recv_timeout(limit)
        .unwrap_or_else(|_| panic!("the run hung: not done after {limit:?}"));
    worker.join().unwrap().unwrap();
    value
}

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

struct Tracked {
    inner: Box<dyn Transcriber>,
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

/// A slow transcriber: 300 ms per second of audio, so one chunk (about 1 s) takes ~0.3 s.
const COST_PER_AUDIO_SECOND: Duration = Duration::from_millis(300);

/// The longest one inference of the slow transcriber takes on these sessions (chunks are
/// 0.6 s of speech plus padding and hangover, well under 2 s).
const LONGEST_INFERENCE: Duration = Duration::from_millis(600);

fn slow(tracker: &Tracker) -> TrackedFactory {
    TrackedFactory {
        inner: ScriptedTranscriber::new().with_cost_per_audio_second(COST_PER_AUDIO_SECOND),
        tracker: tracker.clone(),
    }
}

#[test]
fn segments_arrive_in_order_and_the_sink_is_finished() {
    let sink = CollectingSink::new();
    let p = pipeline(session(5), ScriptedTranscriber::new(), sink.clone());
    let report = within(Duration::from_secs(20), move || SmolBackend::new().run(p)).unwrap();
    let chunks: Vec<usize> = sink.segments().iter().map(|s| s.chunk).collect();
    assert_eq!(chunks, [0, 1, 2, 3, 4]);
    assert_eq!(sink.segments()[1].text, "chunk 1 at 1.63-2.67");
    assert!(sink.is_finished());
    assert_eq!((report.chunks, report.segments), (5, 5));
    assert_eq!(report.backend, "smol");
    assert!((report.audio_seconds - session(5).len() as f64 / 16_000.0).abs() < 1e-9);
}

#[test]
fn a_transcriber_error_ends_the_run_after_earlier_segments() {
    let sink = CollectingSink::new();
    let p = pipeline(
        session(8),
        ScriptedTranscriber::new().failing_on_chunk(3),
        sink.clone(),
    );
    let err = within(Duration::from_secs(20), move || SmolBackend::new().run(p)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "transcriber failed on chunk 3: scripted failure"
    );
    let delivered: Vec<usize> = sink.segments().iter().map(|s| s.chunk).collect();
    assert_eq!(delivered, [0, 1, 2]);
    assert!(!sink.is_finished());
}

#[test]
fn a_source_error_is_the_run_error_and_the_output_is_not_finished() {
    let sink = CollectingSink::new();
    let mut p = pipeline(session(4), ScriptedTranscriber::new(), sink.clone());
    p.source = Box::new(VecSource::new(session(4)).failing_at(40_000));
    let err = within(Duration::from_secs(20), move || SmolBackend::new().run(p)).unwrap_err();
    assert!(err.to_string().contains("injected failure"), "{err}");
    assert!(!sink.is_finished());
}

#[test]
fn a_failing_sink_stops_the_run() {
    struct Broken;
    impl Sink for Broken {
        fn write(&mut self, _: &Segment) -> Result<()> {
            Err(Error::sink("broken", "disk full"))
        }
    }
    let p = pipeline(session(50), ScriptedTranscriber::new(), Broken);
    let err = within(Duration::from_secs(20), move || SmolBackend::new().run(p)).unwrap_err();
    assert_eq!(err.to_string(), "broken: disk full");
}

#[test]
fn realtime_input_is_paced_and_latency_is_measured() {
    let sink = CollectingSink::new();
    let mut p = pipeline(session(2), ScriptedTranscriber::new(), sink.clone());
    p.options.realtime = true;
    let audio_seconds = session(2).len() as f64 / 16_000.0;
    let report = within(Duration::from_secs(20), move || SmolBackend::new().run(p)).unwrap();
    assert!(report.wall_seconds >= audio_seconds * 0.95, "{report:?}");
    assert_eq!(sink.segments().len(), 2);
    assert_eq!(report.dropped_samples, 0);
    for segment in sink.segments() {
        assert!(segment.emitted_at >= segment.end - 0.02, "{segment:?}");
    }
}

#[test]
fn cancelling_mid_stream_returns_soon_after_the_inference_in_flight() {
    let tracker = Tracker::default();
    let (sink, mut segments) = segment_stream(4);
    let p = pipeline(session(40), slow(&tracker), sink);
    let cancel = p.options.cancel.clone();
    let executor = Executor::new();
    let (err, cancel_to_return) = smol::block_on(executor.run(async {
        let run = executor.spawn(steno_smol::run(p));
        let first = segments.next().await.unwrap();
        assert_eq!(first.chunk, 0);
        let cancelled_at = Instant::now();
        cancel.cancel();
        // The stream ends with the run, and the run with every stage.
        while segments.next().await.is_some() {}
        let result = smol::future::or(async { Some(run.await) }, async {
            Timer::after(Duration::from_secs(10)).await;
            None
        })
        .await;
        let err = result.expect("the run hung").unwrap_err();
        (err, cancelled_at.elapsed())
    }));
    assert!(matches!(err, Error::Cancelled), "{err}");
    assert!(
        cancel_to_return < LONGEST_INFERENCE + Duration::from_secs(1),
        "returned {cancel_to_return:?} after the cancel"
    );
    // Every stage was joined: no transcriber is alive, no inference is still running.
    assert_eq!((tracker.live(), tracker.busy()), (0, 0));
}

#[test]
fn cancelling_a_blocking_run_joins_everything() {
    let tracker = Tracker::default();
    let p = pipeline(session(40), slow(&tracker), CollectingSink::new());
    let cancel = p.options.cancel.clone();
    let canceller = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        cancel.cancel();
        Instant::now()
    });
    let err = within(Duration::from_secs(20), move || SmolBackend::new().run(p)).unwrap_err();
    let cancelled_at = canceller.join().unwrap();
    assert!(matches!(err, Error::Cancelled), "{err}");
    assert!(cancelled_at.elapsed() < LONGEST_INFERENCE + Duration::from_secs(1));
    assert_eq!((tracker.live(), tracker.busy()), (0, 0));
}

#[test]
fn dropping_the_run_future_stops_the_pipeline_and_releases_the_model() {
    let tracker = Tracker::default();
    let (sink, mut segments) = segment_stream(4);
    let p = pipeline(session(40), slow(&tracker), sink);
    let watched = tracker.clone();
    let executor = Executor::new();
    let released_after = smol::block_on(executor.run(async {
        let run = executor.spawn(steno_smol::run(p));
        segments.next().await.unwrap();
        drop(run);
        let dropped_at = Instant::now();
        // The stream ends: the emitter is gone.
        while segments.next().await.is_some() {}
        while watched.live() > 0 {
            assert!(
                dropped_at.elapsed() < LONGEST_INFERENCE + Duration::from_secs(1),
                "the transcribers were not released"
            );
            Timer::after(Duration::from_millis(5)).await;
        }
        dropped_at.elapsed()
    }));
    assert!(released_after < LONGEST_INFERENCE + Duration::from_secs(1));
    assert_eq!(tracker.busy(), 0);
}

/// The host application: one executor driven by one thread, so anything steno blocked on it
/// would stall the application's own task too.
#[test]
fn embedded_in_a_host_executor_the_application_keeps_ticking_while_inference_runs() {
    let tracker = Tracker::default();
    let (sink, mut segments) = segment_stream(4);
    let p = pipeline(session(6), slow(&tracker), sink);
    let busy = tracker.clone();
    let executor = Executor::new();
    let (texts, report, (max_gap, during_inference)) = smol::block_on(executor.run(async {
        let run = executor.spawn(steno_smol::run(p));
        let ticker = executor.spawn(async move {
            let mut ticks = Timer::interval(Duration::from_millis(10));
            let (mut last, mut max_gap, mut during_inference) = (Instant::now(), Duration::ZERO, 0);
            loop {
                smol::stream::StreamExt::next(&mut ticks).await;
                let now = Instant::now();
                max_gap = max_gap.max(now - last);
                last = now;
                if busy.busy() > 0 {
                    during_inference += 1;
                }
                if run.is_finished() {
                    return (run.await, (max_gap, during_inference));
                }
            }
        });
        let mut texts = Vec::new();
        while let Some(segment) = segments.next().await {
            texts.push(segment.text);
        }
        let (report, ticks) = ticker.await;
        (texts, report, ticks)
    }));
    let report = report.unwrap();
    assert_eq!(texts.len(), 6);
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
