//! End-to-end: `steno transcribe --backend process` with real `steno worker` processes and the
//! real model: the threads backend's transcript, a worker killed mid-chunk, a worker that
//! writes garbage, a parent killed mid-run, and several inputs; never a worker left behind.
#![allow(clippy::unwrap_used, reason = "a test that cannot set up should panic")]

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;

/// The session through the threads backend: what every backend must write.
fn reference() -> &'static Vec<Segment> {
    static REFERENCE: OnceLock<Vec<Segment>> = OnceLock::new();
    REFERENCE.get_or_init(|| threads_jsonl(&fixture("session.wav")))
}

fn read_report(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn the_session_gives_the_threads_backends_jsonl() {
    let dir = tempfile::tempdir().unwrap();
    let model = model_link(dir.path());
    let (out, report) = (dir.path().join("out.jsonl"), dir.path().join("run.json"));
    run_ok(
        steno()
            // Workers inherit the environment: a NATS URL there must not turn them into NATS
            // workers (only `steno worker --nats` does).
            .env("STENO_NATS_URL", "nats://127.0.0.1:1")
            .args([
                "transcribe",
                "--backend",
                "process",
                "--format",
                "jsonl",
                "-o",
            ])
            .arg(&out)
            .arg("--report")
            .arg(&report)
            .arg("--model")
            .arg(&model)
            .arg(fixture("session.wav")),
    );
    let segments = parse_jsonl(&std::fs::read_to_string(&out).unwrap());
    assert_eq!(content(&segments), content(reference()));
    let report = read_report(&report);
    assert_eq!(report["backend"], "process");
    assert_eq!(report["chunks"], 5);
    assert_eq!(report["worker_restarts"], 0);
    // The parent holds no model; the report counts the worker's (~78 MB of weights).
    assert!(
        report["peak_rss_bytes"].as_u64().unwrap() > 100_000_000,
        "{report}"
    );
    assert_none_left(&model, Duration::from_secs(5));
}

/// A running `steno transcribe` whose stderr lines arrive on a channel.
struct Running {
    child: std::process::Child,
    lines: mpsc::Receiver<String>,
    stderr: Vec<String>,
}

impl Running {
    fn start(command: &mut Command) -> Self {
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Running {
            child,
            lines,
            stderr: Vec::new(),
        }
    }

    /// The pid in the first stderr line that contains `needle` and `(pid N)`.
    fn wait_for_pid(&mut self, needle: &str, limit: Duration) -> u32 {
        let deadline = Instant::now() + limit;
        while let Ok(line) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            self.stderr.push(line.clone());
            if line.contains(needle)
                && let Some(pid) = line
                    .split_once("(pid ")
                    .and_then(|(_, rest)| rest.split_once(')'))
                    .and_then(|(pid, _)| pid.parse().ok())
            {
                return pid;
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        panic!(
            "no line with {needle:?} within {limit:?}:\n{}",
            self.stderr.join("\n")
        );
    }

    /// Waits for the command to end; its status and whole stderr.
    fn finish(mut self, limit: Duration) -> (std::process::ExitStatus, String) {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("steno did not finish within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        self.stderr.extend(self.lines.iter());
        (status, self.stderr.join("\n"))
    }
}

/// The worker processes of steno `parent` (its children with `model` on their command line).
fn workers_of(parent: u32, model: &Path) -> Vec<(u32, u32)> {
    processes_with_arg(model)
        .into_iter()
        .filter(|&(_, of)| of == parent)
        .collect()
}

fn kill_9(pid: u32) {
    let status = Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -9 {pid} failed");
}

#[test]
fn a_worker_killed_while_it_transcribes_is_replaced_and_the_output_is_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let model = model_link(dir.path());
    let (out, report) = (dir.path().join("out.jsonl"), dir.path().join("run.json"));
    let mut run = Running::start(
        steno()
            .env(
                "RUST_LOG",
                "warn,steno_process=debug,steno_process::worker=warn",
            )
            .args(["transcribe", "--backend", "process", "--workers", "2"])
            .args(["--threads", "1", "--format", "jsonl", "-o"])
            .arg(&out)
            .arg("--report")
            .arg(&report)
            .arg("--model")
            .arg(&model)
            .arg(fixture("session.wav")),
    );
    let steno_pid = run.child.id();
    // The parent says which worker got chunk 1 just before sending it.
    let victim = run.wait_for_pid("is transcribing chunk 1", Duration::from_secs(120));
    let workers = workers_of(steno_pid, &model);
    assert!(
        workers.contains(&(victim, steno_pid)),
        "pid {victim} is not a worker of steno {steno_pid}: {workers:?}"
    );
    assert_eq!(workers.len(), 2, "two workers: {workers:?}");
    kill_9(victim);
    let (status, stderr) = run.finish(Duration::from_secs(300));
    assert!(status.success(), "steno failed: {stderr}");
    assert!(
        stderr.contains(&format!("(pid {victim}) died while transcribing chunk 1")),
        "{stderr}"
    );
    let segments = parse_jsonl(&std::fs::read_to_string(&out).unwrap());
    assert_eq!(content(&segments), content(reference()));
    let report = read_report(&report);
    assert_eq!(report["worker_restarts"], 1, "{report}");
    assert_eq!(report["chunks"], 5);
    // Two workers, each with its model: well over one model's worth.
    assert!(
        report["peak_rss_bytes"].as_u64().unwrap() > 200_000_000,
        "{report}"
    );
    assert_none_left(&model, Duration::from_secs(5));
}

#[test]
fn a_worker_that_writes_garbage_fails_the_run_with_an_error_that_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let model = model_link(dir.path());
    let fake = dir.path().join("fake-worker.sh");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho 'this is not the worker protocol'\nexec cat > /dev/null\n",
    )
    .unwrap();
    let status = Command::new("chmod").arg("+x").arg(&fake).status().unwrap();
    assert!(status.success());
    let out = dir.path().join("out.txt");
    let output = steno()
        .args(["transcribe", "--backend", "process", "--worker-program"])
        .arg(&fake)
        .arg("--model")
        .arg(&model)
        .arg("-o")
        .arg(&out)
        .arg(fixture("session.wav"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let last = stderr.lines().last().unwrap_or("");
    assert!(last.starts_with("error: "), "{stderr}");
    assert!(last.contains("broke the worker protocol"), "{stderr}");
    assert!(last.contains("not a protocol frame"), "{stderr}");
    assert!(last.contains("fake-worker.sh"), "{stderr}");
    assert!(!out.exists(), "no output for a failed run");
    assert_none_left(&model, Duration::from_secs(5));
}

#[test]
fn workers_exit_when_their_parent_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let model = model_link(dir.path());
    let mut run = Running::start(
        steno()
            .env(
                "RUST_LOG",
                "warn,steno_process=debug,steno_process::worker=warn",
            )
            .args(["transcribe", "--backend", "process", "--workers", "2"])
            .args(["--threads", "1", "--model"])
            .arg(&model)
            .arg(fixture("session.wav")),
    );
    let steno_pid = run.child.id();
    run.wait_for_pid("is transcribing chunk 1", Duration::from_secs(120));
    assert_eq!(workers_of(steno_pid, &model).len(), 2);
    kill_9(steno_pid);
    let (status, _) = run.finish(Duration::from_secs(10));
    assert!(!status.success());
    // Each worker sees its stdin end; one in the middle of a chunk finishes it first.
    assert_none_left(&model, Duration::from_secs(60));
}

#[test]
fn several_inputs_write_one_file_each_and_stdout_keeps_input_order() {
    let dir = tempfile::tempdir().unwrap();
    let model = model_link(dir.path());
    let first = first_utterance(dir.path());
    let outputs = dir.path().join("out/");
    run_ok(
        steno()
            .args(["transcribe", "--backend", "process", "--format", "jsonl"])
            .arg("--model")
            .arg(&model)
            .arg("-o")
            .arg(&outputs)
            .arg("--report")
            .arg(&outputs)
            .arg(&first)
            .arg(fixture("silence.wav")),
    );
    let first_text = parse_jsonl(&std::fs::read_to_string(outputs.join("first.jsonl")).unwrap());
    assert_eq!(texts(&first_text), texts(&threads_jsonl(&first)));
    assert_eq!(
        std::fs::read_to_string(outputs.join("silence.jsonl")).unwrap(),
        ""
    );
    let report = read_report(&outputs.join("silence.report.json"));
    assert_eq!(report["chunks"], 0);
    assert!(outputs.join("first.report.json").is_file());
    // To stdout: one input after the other, in the order given.
    let output = run_ok(
        steno()
            .args(["transcribe", "--backend", "process", "--model"])
            .arg(&model)
            .arg(&first)
            .arg(fixture("silence.wav"))
            .arg(&first),
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    let line = &texts(&first_text)[0];
    assert_eq!(stdout, format!("{line}\n{line}\n"));
    assert_none_left(&model, Duration::from_secs(5));
}

#[test]
fn beam_search_reaches_every_backend_and_its_workers() {
    let session = fixture("session.wav");
    let run =
        |backend: &str| jsonl_and_report(&["--backend", backend, "--beam-size", "5"], &session);
    let (threads, report) = run("threads");
    // The decoding option is part of the model's identity, which process workers must match:
    // a worker started without it would be refused.
    let model = report["model"].as_str().unwrap();
    assert!(model.ends_with("(beam search, 5 beams)"), "{model}");
    for backend in ["rayon", "process"] {
        let (segments, report) = run(backend);
        assert_eq!(report["model"], model, "{backend}");
        assert_eq!(content(&segments), content(&threads), "{backend}");
    }
    let error = wer(&session_sentences().join(" "), &texts(&threads).join(" "));
    assert!(error <= 0.15, "WER {error:.3}");
}

#[test]
fn a_prompt_steers_the_words_in_process_and_in_workers_alike() {
    // The opening of *Sense and Sensibility*, whose names tiny.en mishears from the festival
    // voice; a prompt naming them brings them back. It begins with `-`, which workers must
    // not take for a flag.
    let reading = fixture("reading.flac");
    let prompt = "-- Sense and Sensibility, by Jane Austen. The family of Dashwood had long been \
                  settled in Sussex, at Norland Park. Mr. John Dashwood.";
    let names = |segments: &[Segment]| texts(segments).join(" ").matches("Dashwood").count();
    let (plain, _) = jsonl_and_report(&[], &reading);
    let prompt = format!("--prompt={prompt}");
    let run = |backend: &str| jsonl_and_report(&["--backend", backend, &prompt], &reading);
    let (threads, report) = run("threads");
    assert!(
        names(&threads) >= names(&plain) + 2,
        "Dashwood {} times with the prompt, {} without",
        names(&threads),
        names(&plain)
    );
    let reference = reference_lines("reading.txt").join(" ");
    let (with, without) = (
        wer(&reference, &texts(&threads).join(" ")),
        wer(&reference, &texts(&plain).join(" ")),
    );
    assert!(
        with <= without,
        "WER {with:.3} with the prompt, {without:.3} without"
    );
    // The prompt is part of the model's identity, which process workers must match.
    let model = report["model"].as_str().unwrap();
    assert!(model.contains("(prompt "), "{model}");
    let (segments, report) = run("process");
    assert_eq!(report["model"], model);
    assert_eq!(content(&segments), content(&threads));
}
