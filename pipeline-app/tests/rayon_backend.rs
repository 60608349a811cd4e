//! End-to-end: `steno transcribe --backend rayon` with the real model: the threads backend's
//! transcript, and several inputs transcribed in parallel yet written in input order.
#![allow(clippy::unwrap_used, reason = "a test that cannot set up should panic")]

mod common;

use std::sync::OnceLock;

use common::*;

/// The session through the threads backend: what every backend must write.
fn reference() -> &'static Vec<Segment> {
    static REFERENCE: OnceLock<Vec<Segment>> = OnceLock::new();
    REFERENCE.get_or_init(|| threads_jsonl(&fixture("session.wav")))
}

#[test]
fn the_session_gives_the_threads_backends_jsonl() {
    let dir = tempfile::tempdir().unwrap();
    let (out, report) = (dir.path().join("out.jsonl"), dir.path().join("run.json"));
    run_ok(
        steno()
            .args([
                "transcribe",
                "--backend",
                "rayon",
                "--format",
                "jsonl",
                "-o",
            ])
            .arg(&out)
            .arg("--report")
            .arg(&report)
            .arg(fixture("session.wav")),
    );
    let segments = parse_jsonl(&std::fs::read_to_string(&out).unwrap());
    assert_eq!(content(&segments), content(reference()));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(report["backend"], "rayon");
    assert_eq!(report["chunks"], 5);
    assert_eq!(report["worker_restarts"], 0);
}

#[test]
fn several_inputs_are_transcribed_in_parallel_and_written_in_input_order() {
    let dir = tempfile::tempdir().unwrap();
    let first = first_utterance(dir.path());
    // The long session first, then a short input that finishes long before it, on two pool
    // threads: stdout must still hold the session's text, then the short input's.
    let output = run_ok(
        steno()
            .args([
                "transcribe",
                "--backend",
                "rayon",
                "--pool",
                "2",
                "--threads",
                "1",
            ])
            .args(["--format", "jsonl"])
            .arg(fixture("session.wav"))
            .arg(fixture("silence.wav"))
            .arg(&first),
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    let segments = parse_jsonl(&stdout);
    assert_eq!(segments.len(), reference().len() + 1, "{stdout}");
    let (from_session, from_first) = segments.split_at(reference().len());
    assert_eq!(content(from_session), content(reference()), "{stdout}");
    assert_eq!(texts(from_first), texts(&threads_jsonl(&first)), "{stdout}");
}
