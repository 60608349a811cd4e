//! The NATS backend against a real `nats-server -js` with real worker processes
//! (`steno-scripted-worker --nats`, the scripted transcriber with injectable faults): a worker
//! killed mid-chunk, a chunk that kills every worker, a frozen worker that answers late, the
//! broker restarting mid-run, a partial chunk stopped on its worker, and a worker that answers
//! garbage.
#![allow(clippy::unwrap_used, reason = "a test that cannot set up should panic")]

mod common;

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{one_utterance, pipeline, realtime_interim_pipeline, session, texts};
use futures_util::StreamExt as _;
use steno_core::{Backend, CollectingSink, Error};
use steno_nats::{LocalServer, NatsBackend, NatsTarget};

const WORKER: &str = env!("CARGO_BIN_EXE_steno-scripted-worker");

/// A stream name unique to one test: tests share the server but not their queues.
fn stream() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "FAULTS_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    )
}

/// A worker process, killed when the test is done with it.
struct Worker(Child);

impl Worker {
    fn start(url: &str, stream: &str, extra: &[&str]) -> Self {
        let child = Command::new(WORKER)
            .args(["--nats", url, "--stream", stream, "--ack-wait-secs", "1"])
            .args(extra)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        Worker(child)
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.0.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill {signal}");
    }

    fn has_exited(&mut self) -> bool {
        self.0.try_wait().unwrap().is_some()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What the scripted transcriber says for `audio` on the threads backend.
fn expected(audio: Vec<f32>) -> Vec<String> {
    let sink = CollectingSink::new();
    steno_threads::ThreadsBackend::new()
        .run(pipeline(audio, sink.clone()))
        .unwrap();
    texts(&sink.segments())
}

fn backend(url: &str, stream: &str, in_flight: usize) -> NatsBackend {
    NatsBackend::new(NatsTarget::new(url).unwrap())
        .with_stream(stream)
        .unwrap()
        .with_in_flight(in_flight)
        .with_patience(Duration::from_secs(20))
}

/// Chunks that a worker holds (delivered, not yet acknowledged) on `stream`.
fn chunks_held(url: &str, stream: &str) -> u64 {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = async_nats::connect(url).await.unwrap();
        let js = async_nats::jetstream::new(client);
        let Ok(stream) = js.get_stream(stream).await else {
            return 0;
        };
        let mut held = 0;
        let mut consumers = stream.consumers();
        while let Some(Ok(info)) = consumers.next().await {
            held += info.num_ack_pending as u64;
        }
        held
    })
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let began = Instant::now();
    while !done() {
        assert!(
            began.elapsed() < Duration::from_secs(20),
            "waited 20 s for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_worker_killed_mid_chunk_loses_nothing() {
    let server = LocalServer::shared();
    let (url, stream) = (server.url(), stream());
    let audio = session(4);
    let want = expected(audio.clone());
    // Alone at first, and slow: it is certainly in the middle of a chunk when it is killed.
    let mut slow = Worker::start(&url, &stream, &["--cost-ms-per-s", "5000"]);
    let sink = CollectingSink::new();
    let run = {
        let (url, stream, sink) = (url.clone(), stream.clone(), sink.clone());
        std::thread::spawn(move || backend(&url, &stream, 2).run(pipeline(audio, sink)))
    };
    wait_for("the slow worker to take a chunk", || {
        chunks_held(&url, &stream) > 0
    });
    slow.signal("-KILL");
    wait_for("the killed worker to exit", || slow.has_exited());
    let _fast = Worker::start(&url, &stream, &[]);
    let report = run.join().unwrap().unwrap();
    assert_eq!(texts(&sink.segments()), want);
    assert!(report.redeliveries >= 1, "{report:?}");
    assert_eq!(report.backend, "nats");
}

#[test]
fn a_chunk_that_kills_every_worker_fails_the_run_after_the_earlier_segments() {
    let server = LocalServer::shared();
    let (url, stream) = (server.url(), stream());
    let audio = session(4);
    let want = expected(audio.clone());
    let faulty = ["--crash-on-chunk", "2", "--max-deliveries", "2"];
    let sink = CollectingSink::new();
    let run = {
        let (url, stream, sink) = (url.clone(), stream.clone(), sink.clone());
        std::thread::spawn(move || backend(&url, &stream, 1).run(pipeline(audio, sink)))
    };
    // A supervisor: every worker that dies is replaced, as a fleet manager would do.
    let mut worker = Worker::start(&url, &stream, &faulty);
    let mut deaths = 0;
    while !run.is_finished() {
        if worker.has_exited() {
            deaths += 1;
            worker = Worker::start(&url, &stream, &faulty);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let error = run.join().unwrap().unwrap_err();
    let Error::Transcribe { chunk, problem, .. } = &error else {
        panic!("expected a transcriber error, got {error}");
    };
    assert_eq!(*chunk, 2, "{error}");
    assert!(problem.contains("2 times"), "{error}");
    assert_eq!(deaths, 2, "one worker died per delivery");
    assert_eq!(texts(&sink.segments()), want[..2], "the chunks before it");
}

#[test]
fn a_late_answer_after_a_redelivery_is_ignored() {
    let server = LocalServer::shared();
    let (url, stream) = (server.url(), stream());
    let audio = session(6);
    let want = expected(audio.clone());
    let frozen = Worker::start(&url, &stream, &["--cost-ms-per-s", "1500"]);
    let sink = CollectingSink::new();
    let run = {
        let (url, stream, sink) = (url.clone(), stream.clone(), sink.clone());
        std::thread::spawn(move || backend(&url, &stream, 1).run(pipeline(audio, sink)))
    };
    wait_for("the first worker to take a chunk", || {
        chunks_held(&url, &stream) > 0
    });
    // Frozen, it stops telling the broker it is working: the chunk goes to the other worker.
    frozen.signal("-STOP");
    let _other = Worker::start(&url, &stream, &["--cost-ms-per-s", "1000"]);
    wait_for("the other worker's first answer", || {
        !sink.segments().is_empty()
    });
    // Thawed, it finishes the chunk that was answered already, and answers it again.
    frozen.signal("-CONT");
    let report = run.join().unwrap().unwrap();
    assert_eq!(texts(&sink.segments()), want);
    assert!(report.redeliveries >= 1, "{report:?}");
}

#[test]
fn the_broker_restarting_mid_run_loses_nothing() {
    let mut server = LocalServer::start().unwrap();
    let (url, stream) = (server.url(), stream());
    let audio = session(6);
    let want = expected(audio.clone());
    let _worker = Worker::start(&url, &stream, &["--cost-ms-per-s", "500"]);
    let sink = CollectingSink::new();
    let run = {
        let (url, stream, sink) = (url.clone(), stream.clone(), sink.clone());
        std::thread::spawn(move || backend(&url, &stream, 2).run(pipeline(audio, sink)))
    };
    wait_for("a first segment", || !sink.segments().is_empty());
    server.restart().unwrap();
    let report = run.join().unwrap().unwrap();
    assert_eq!(texts(&sink.segments()), want, "{report:?}");
}

#[test]
fn a_partial_overtaken_on_a_worker_is_stopped_there() {
    let server = LocalServer::shared();
    let (url, stream) = (server.url(), stream());
    // Partials that would decode for a minute each, one chunk with the fleet at a time: the
    // run ends in seconds only if the worker stops each partial when it is overtaken.
    let _worker = Worker::start(&url, &stream, &["--endless-partials"]);
    let sink = CollectingSink::new();
    let report = backend(&url, &stream, 1)
        .run(realtime_interim_pipeline(one_utterance(), sink.clone()))
        .unwrap();
    assert_eq!(texts(&sink.segments()), expected(one_utterance()));
    assert_eq!(report.partials, 0, "{report:?}");
    assert!(report.partials_skipped >= 2, "{report:?}");
    assert!(report.wall_seconds < 20.0, "{report:?}");
}

#[test]
fn a_worker_that_answers_garbage_fails_the_run_with_a_clear_error() {
    let server = LocalServer::shared();
    let (url, stream) = (server.url(), stream());
    // A fake worker: it sees chunks as they are published and answers each with garbage,
    // including a frame that claims to be 4 GiB long.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let fake = runtime.block_on(async_nats::connect(url.as_str())).unwrap();
    let mut chunks = runtime
        .block_on(fake.subscribe(format!("{stream}.chunks.>")))
        .unwrap();
    runtime.spawn(async move {
        while let Some(chunk) = chunks.next().await {
            let headers = chunk.headers.unwrap();
            let reply_to = headers.get("Steno-Reply-To").unwrap().to_string();
            let mut answer = async_nats::HeaderMap::new();
            answer.insert(
                "Steno-Request",
                headers.get("Steno-Request").unwrap().as_str(),
            );
            answer.insert("Steno-Worker", "fake");
            let mut garbage = u32::MAX.to_le_bytes().to_vec();
            garbage.extend(b"not a frame");
            fake.publish_with_headers(reply_to, answer, garbage.into())
                .await
                .unwrap();
        }
    });
    let sink = CollectingSink::new();
    let error = backend(&url, &stream, 1)
        .run(pipeline(session(2), sink.clone()))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("worker fake broke the worker protocol on chunk 0")
            && error.contains("frame length 4294967295"),
        "{error}"
    );
    assert!(sink.segments().is_empty());
}
