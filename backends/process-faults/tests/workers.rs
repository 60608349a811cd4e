//! The process backend with real worker processes (`steno-scripted-worker`, the scripted
//! transcriber with injectable faults): order, restarts, retries, garbage, cancellation,
//! partial chunks stopped in their worker, reuse, and no worker left behind.
#![allow(clippy::unwrap_used, reason = "a test that cannot set up should panic")]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{one_utterance, pipeline, realtime_interim_pipeline, session, texts};
use steno_core::{Backend, CollectingSink, Error, Pipeline, RunReport};
use steno_process::{ProcessBackend, WorkerCommand};

const WORKER: &str = env!("CARGO_BIN_EXE_steno-scripted-worker");

/// A label unique to one test, passed to its workers so it can find them in `/proc`.
fn tag() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "test-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    )
}

fn command(tag: &str, extra: &[&str]) -> WorkerCommand {
    WorkerCommand::new(WORKER).args(["--tag", tag]).args(extra)
}

/// Live (not zombie) processes whose command line carries `tag`.
fn workers_tagged(tag: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        if !cmdline.split(|&b| b == 0).any(|arg| arg == tag.as_bytes()) {
            continue;
        }
        let state = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let zombie = state
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'));
        if !zombie {
            pids.push(pid);
        }
    }
    pids
}

fn assert_no_workers_left(tag: &str) {
    let left = workers_tagged(tag);
    assert!(left.is_empty(), "worker processes left running: {left:?}");
}

/// What the scripted transcriber says for `audio`, in process.
fn expected(audio: Vec<f32>) -> Vec<String> {
    let sink = CollectingSink::new();
    let p = pipeline(audio, sink.clone());
    // The reference: the same stages, transcribed in this process, one chunk at a time.
    let report = InProcess.run(p).unwrap();
    assert!(report.chunks > 0);
    texts(&sink.segments())
}

/// A minimal sequential backend built from core's stages, as the reference.
struct InProcess;

impl Backend for InProcess {
    fn name(&self) -> &'static str {
        "in-process"
    }

    fn run(&self, pipeline: Pipeline) -> steno_core::Result<RunReport> {
        let start = steno_core::stage::RunStart::now();
        let pipeline = pipeline.into_parts();
        let mut chunker = steno_core::Chunker::new(&pipeline.chunker)?;
        let mut source = pipeline.source;
        let mut chunks = Vec::new();
        while let Some(block) = source.next_block()? {
            chunker.push(&block, &mut chunks);
        }
        chunker.finish(&mut chunks);
        let mut transcriber = pipeline.transcriber.create()?;
        let mut emitter = steno_core::stage::Emitter::new(pipeline.sink, start.at);
        for chunk in chunks {
            let timed = steno_core::stage::TimedChunk::new(chunk, Instant::now(), Instant::now());
            emitter.emit(steno_core::stage::transcribe(transcriber.as_mut(), &timed)?)?;
        }
        let tally = emitter.finish()?;
        Ok(start.report(self.name(), pipeline.transcriber.name(), false, &tally))
    }
}

#[test]
fn two_workers_give_the_sequential_transcript_in_order_faster() {
    let tag = tag();
    let audio = session(10);
    let want = expected(audio.clone());
    // 0.6 s utterances (1 s chunks with padding) at 300 ms per audio second: ~3 s in sequence.
    let backend = ProcessBackend::new(command(&tag, &["--cost-ms-per-s", "300"])).with_workers(2);
    let sink = CollectingSink::new();
    let report = backend.run(pipeline(audio, sink.clone())).unwrap();
    let segments = sink.segments();
    assert_eq!(texts(&segments), want);
    let chunks: Vec<usize> = segments.iter().map(|s| s.chunk).collect();
    assert_eq!(chunks, (0..10).collect::<Vec<_>>());
    assert!(sink.is_finished());
    assert_eq!(report.backend, "process");
    assert_eq!(report.model, "scripted");
    assert_eq!(report.chunks, 10);
    assert_eq!(report.worker_restarts, 0);
    let sequential: f64 = segments.iter().map(|s| (s.end - s.start) * 0.3).sum();
    assert!(
        report.wall_seconds < sequential * 0.85,
        "two workers should share the chunks: {:.2} s for {sequential:.2} s of work",
        report.wall_seconds
    );
    // The parent alone is a few MB; two worker processes add theirs.
    let parent = steno_core::ProcessUsage::now().peak_rss_bytes;
    assert!(
        report.peak_rss_bytes > parent,
        "{} <= {parent}",
        report.peak_rss_bytes
    );
    // Workers are kept for the next run, and end with the backend.
    assert_eq!(workers_tagged(&tag).len(), 2);
    drop(backend);
    assert_no_workers_left(&tag);
}

#[test]
fn a_worker_that_dies_is_replaced_and_its_chunk_sent_again() {
    let tag = tag();
    let marker = tempfile::tempdir().unwrap();
    let marker = marker.path().join("crashed");
    let marker_arg = marker.to_str().unwrap();
    let audio = session(6);
    let want = expected(audio.clone());
    let backend = ProcessBackend::new(command(&tag, &["--crash-once-on-chunk", "3", marker_arg]))
        .with_workers(2);
    let sink = CollectingSink::new();
    let report = backend.run(pipeline(audio, sink.clone())).unwrap();
    assert!(marker.exists(), "the worker never crashed");
    assert_eq!(texts(&sink.segments()), want, "nothing lost, nothing twice");
    assert_eq!(report.worker_restarts, 1);
    assert!(sink.is_finished());
    drop(backend);
    assert_no_workers_left(&tag);
}

#[test]
fn a_chunk_that_keeps_killing_workers_ends_the_run_after_three_attempts() {
    let tag = tag();
    let backend = ProcessBackend::new(command(&tag, &["--crash-on-chunk", "2"])).with_workers(2);
    let sink = CollectingSink::new();
    let err = backend.run(pipeline(session(5), sink.clone())).unwrap_err();
    let Error::Transcribe { chunk, problem, .. } = &err else {
        panic!("expected a transcription error, got {err}");
    };
    assert_eq!(*chunk, 2);
    assert!(problem.contains("died 3 times in a row"), "{err}");
    assert!(problem.contains("SIGABRT"), "{err}");
    let delivered: Vec<usize> = sink.segments().iter().map(|s| s.chunk).collect();
    assert_eq!(delivered, [0, 1]);
    assert!(!sink.is_finished());
    drop(backend);
    assert_no_workers_left(&tag);
}

#[test]
fn a_worker_writing_garbage_fails_the_run_with_a_clear_error() {
    for (faults, says) in [
        (&["--garbage"][..], "in its handshake"),
        (&["--garbage-on-chunk", "1"][..], "on chunk 1"),
    ] {
        let tag = tag();
        let backend = ProcessBackend::new(command(&tag, faults)).with_workers(1);
        let sink = CollectingSink::new();
        let err = backend
            .run(pipeline(session(3), sink.clone()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("broke the worker protocol"), "{err}");
        assert!(err.contains("not a protocol frame"), "{err}");
        assert!(err.contains(says), "{says}: {err}");
        assert!(!sink.is_finished());
        drop(backend);
        assert_no_workers_left(&tag);
    }
}

#[test]
fn a_transcriber_error_in_a_worker_is_the_run_error() {
    let tag = tag();
    let backend = ProcessBackend::new(command(&tag, &["--fail-on-chunk", "3"])).with_workers(2);
    let sink = CollectingSink::new();
    let err = backend.run(pipeline(session(6), sink.clone())).unwrap_err();
    assert_eq!(
        err.to_string(),
        "transcriber failed on chunk 3: scripted failure"
    );
    let delivered: Vec<usize> = sink.segments().iter().map(|s| s.chunk).collect();
    assert_eq!(delivered, [0, 1, 2]);
    assert!(!sink.is_finished());
    drop(backend);
    assert_no_workers_left(&tag);
}

#[test]
fn a_worker_with_another_model_is_refused() {
    let tag = tag();
    let backend = ProcessBackend::new(command(&tag, &["--model", "other.bin"])).with_workers(1);
    let err = backend
        .run(pipeline(session(2), CollectingSink::new()))
        .unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err}");
    assert!(
        err.to_string()
            .contains("serves the model other.bin, but the pipeline's transcriber is scripted"),
        "{err}"
    );
    drop(backend);
    assert_no_workers_left(&tag);
}

#[test]
fn a_worker_command_that_cannot_start_is_named() {
    let backend = ProcessBackend::new(WorkerCommand::new("/nonexistent/steno").arg("worker"));
    let err = backend
        .run(pipeline(session(2), CollectingSink::new()))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cannot start the worker `/nonexistent/steno worker`"),
        "{err}"
    );
}

#[test]
fn cancelling_kills_busy_workers_and_returns_promptly() {
    let tag = tag();
    // Each chunk takes 5 s: without killing the busy workers, cancelling would wait for them.
    let backend = ProcessBackend::new(command(&tag, &["--cost-ms-per-s", "5000"])).with_workers(2);
    let p = pipeline(session(8), CollectingSink::new());
    let cancel = p.cancel_token();
    let canceller = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(800));
        cancel.cancel();
        Instant::now()
    });
    let err = backend.run(p).unwrap_err();
    let returned = Instant::now();
    let cancelled = canceller.join().unwrap();
    assert!(matches!(err, Error::Cancelled), "{err}");
    let delay = returned.duration_since(cancelled);
    assert!(
        delay < Duration::from_secs(2),
        "returned {delay:?} after cancel"
    );
    drop(backend);
    assert_no_workers_left(&tag);
}

#[test]
fn a_partial_overtaken_in_a_worker_is_stopped_there() {
    let tag = tag();
    // Partials that would decode for a minute each: the run ends in seconds only if the
    // worker stops each one when it is overtaken, and the final goes first.
    let backend = ProcessBackend::new(command(&tag, &["--endless-partials"]));
    let sink = CollectingSink::new();
    let p = realtime_interim_pipeline(one_utterance(), sink.clone());
    let report = backend.run(p).unwrap();
    assert_eq!(texts(&sink.segments()), expected(one_utterance()));
    assert_eq!(report.partials, 0, "{report:?}");
    assert!(report.partials_skipped >= 2, "{report:?}");
    assert!(report.wall_seconds < 20.0, "{report:?}");
    drop(backend);
    assert_no_workers_left(&tag);
}

#[test]
fn workers_are_reused_by_the_next_run_and_shut_down_on_request() {
    let tag = tag();
    let backend = ProcessBackend::new(command(&tag, &[])).with_workers(2);
    backend
        .run(pipeline(session(3), CollectingSink::new()))
        .unwrap();
    let mut first = workers_tagged(&tag);
    first.sort_unstable();
    assert_eq!(first.len(), 2);
    let sink = CollectingSink::new();
    backend.run(pipeline(session(3), sink.clone())).unwrap();
    let mut second = workers_tagged(&tag);
    second.sort_unstable();
    assert_eq!(first, second, "the same processes served the second run");
    assert_eq!(sink.segments().len(), 3);
    backend.shutdown();
    assert_no_workers_left(&tag);
}

#[test]
fn an_empty_input_is_a_clean_run() {
    let tag = tag();
    let backend = ProcessBackend::new(command(&tag, &[])).with_workers(1);
    let sink = CollectingSink::new();
    let report = backend.run(pipeline(Vec::new(), sink.clone())).unwrap();
    assert_eq!(report.chunks, 0);
    assert!(sink.segments().is_empty());
    assert!(sink.is_finished());
    drop(backend);
    assert_no_workers_left(&tag);
}
