//! Helpers shared by the `steno` end-to-end tests: running the binary, fixtures, word error rate.

#![allow(dead_code)] // each test file uses a different subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Held by each test of a binary while it runs Whisper. ggml's threads spin, so two runs at
/// once take far longer than one after the other, and a real-time run that shares the cores
/// falls behind: its partials are skipped and its latencies mean nothing.
static WHISPER: Mutex<()> = Mutex::new(());

/// Waits until no other test of this binary runs Whisper; the turn lasts while the guard lives.
pub(crate) fn whisper_turn() -> MutexGuard<'static, ()> {
    WHISPER.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The workspace root.
pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("pipeline-app has a parent")
        .to_path_buf()
}

/// A speech fixture from `conformance/inputs/`.
pub(crate) fn fixture(name: &str) -> PathBuf {
    root().join("conformance/inputs").join(name)
}

/// The installed default model; fails loudly (never skips) when it is missing.
pub(crate) fn model() -> PathBuf {
    let path = root().join("models/ggml-tiny.en-q8_0.bin");
    assert!(
        path.is_file(),
        "{} is missing: run `cargo xtask model` (or `cargo xtask test`, which does it)",
        path.display()
    );
    path
}

/// `steno` with the default model.
pub(crate) fn steno() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_steno"));
    command.env("STENO_MODEL", model()).env_remove("RUST_LOG");
    command
}

/// Runs `command` and fails with its stderr unless it succeeded.
pub(crate) fn run_ok(command: &mut Command) -> Output {
    let output = command.output().expect("steno runs");
    assert!(
        output.status.success(),
        "steno failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[allow(unused_imports, reason = "each test file uses a different subset")]
pub(crate) use steno_core::{normalized_words as words, word_error_rate as wer, word_errors};

/// The sentences spoken in the session fixture, one per utterance.
pub(crate) fn session_sentences() -> Vec<String> {
    reference_lines("session.txt")
}

/// The lines of the reference text `name` in `conformance/inputs/`: one per utterance.
pub(crate) fn reference_lines(name: &str) -> Vec<String> {
    std::fs::read_to_string(fixture(name))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .lines()
        .map(str::to_owned)
        .collect()
}

/// `steno transcribe --format jsonl --report FILE` with `args` on `input`: the segments and
/// the run report.
pub(crate) fn jsonl_and_report(args: &[&str], input: &Path) -> (Vec<Segment>, serde_json::Value) {
    let (jsonl, report) = jsonl_text_and_report(args, input);
    (parse_jsonl(&jsonl), report)
}

/// `steno transcribe --format jsonl --report FILE` with `args` on `input`: the JSON Lines as
/// written, and the run report.
pub(crate) fn jsonl_text_and_report(args: &[&str], input: &Path) -> (String, serde_json::Value) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let report = dir.path().join("report.json");
    let out = run_ok(
        steno()
            .arg("transcribe")
            .args(args)
            .args(["--format", "jsonl", "--report"])
            .args([&report, input]),
    );
    let report = std::fs::read_to_string(&report).expect("the report");
    (
        String::from_utf8(out.stdout).expect("UTF-8 output"),
        serde_json::from_str(&report).expect("a JSON report"),
    )
}

/// Length of the session fixture in seconds.
pub(crate) const SESSION_SECONDS: f64 = 347_028.0 / 16_000.0;

/// A JSON Lines segment as parsed back from steno's output.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub(crate) struct Segment {
    pub(crate) chunk: usize,
    /// The source's label, in runs over labelled sources (`--source`).
    #[serde(default)]
    pub(crate) source: Option<String>,
    pub(crate) start: f64,
    pub(crate) end: f64,
    pub(crate) speech_end: f64,
    pub(crate) text: String,
    /// The detected language (`--language auto`), and its probability.
    #[serde(default)]
    pub(crate) language: Option<String>,
    #[serde(default)]
    pub(crate) language_probability: Option<f32>,
    /// Whisper's confidence in the text.
    #[serde(default)]
    pub(crate) avg_logprob: Option<f32>,
    #[serde(default)]
    pub(crate) no_speech_prob: Option<f32>,
    /// The timed words (`--word-timestamps`).
    #[serde(default)]
    pub(crate) words: Option<Vec<steno_core::TimedWord>>,
    pub(crate) emitted_at: f64,
    pub(crate) latency_ms: u64,
}

/// Parses JSON Lines strictly: every line must be one complete final segment object, typed
/// as one.
pub(crate) fn parse_jsonl(text: &str) -> Vec<Segment> {
    text.lines()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("bad JSON line {line:?}: {e}"));
            assert_eq!(value["type"], "final", "{line}");
            serde_json::from_value(value).unwrap_or_else(|e| panic!("bad JSON line {line:?}: {e}"))
        })
        .collect()
}

/// Each segment without its timing: what must be identical across backends.
pub(crate) fn content(segments: &[Segment]) -> Vec<(usize, String, String, String)> {
    segments
        .iter()
        .map(|s| {
            let at = |seconds: f64| format!("{seconds:.3}");
            (s.chunk, at(s.start), at(s.end), s.text.clone())
        })
        .collect()
}

/// The text of each segment, in order.
pub(crate) fn texts(segments: &[Segment]) -> Vec<String> {
    segments.iter().map(|s| s.text.clone()).collect()
}

/// `steno transcribe --format jsonl` of `input` on the threads backend (the reference every
/// other backend must match), as segments.
pub(crate) fn threads_jsonl(input: &Path) -> Vec<Segment> {
    let output = run_ok(
        steno()
            .args(["transcribe", "--backend", "threads", "--format", "jsonl"])
            .arg(input),
    );
    parse_jsonl(&String::from_utf8(output.stdout).expect("UTF-8 output"))
}

/// The first utterance of the session fixture (its first 4.5 s) as a WAV file in `dir`: a
/// short speech input.
pub(crate) fn first_utterance(dir: &Path) -> PathBuf {
    session_opening(dir, 72_000, "first.wav")
}

/// The first `samples` (16 kHz) of the session fixture as the WAV file `name` in `dir`.
pub(crate) fn session_opening(dir: &Path, samples: usize, name: &str) -> PathBuf {
    let mut reader = hound::WavReader::open(fixture("session.wav")).expect("session.wav");
    let spec = reader.spec();
    let kept: Vec<i16> = reader
        .samples::<i16>()
        .take(samples)
        .collect::<Result<_, _>>()
        .expect("session.wav samples");
    let path = dir.join(name);
    let mut writer = hound::WavWriter::create(&path, spec).expect(name);
    for sample in kept {
        writer.write_sample(sample).expect(name);
    }
    writer.finalize().expect(name);
    path
}

/// A link to the model under a path unique to one test, so that the test can tell its own
/// worker processes (whose command line names the model) from everyone else's.
pub(crate) fn model_link(dir: &Path) -> PathBuf {
    let link = dir.join("model-for-this-test.bin");
    std::os::unix::fs::symlink(model(), &link).expect("model link");
    link
}

/// Live (not zombie) processes whose command line has an argument equal to `arg`, with their
/// parent's pid.
pub(crate) fn processes_with_arg(arg: &Path) -> Vec<(u32, u32)> {
    let wanted = arg.as_os_str().as_encoded_bytes();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        if !cmdline.split(|&b| b == 0).any(|a| a == wanted) {
            continue;
        }
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map_or("", |(_, rest)| rest)
            .split_whitespace()
            .collect();
        if fields.first() == Some(&"Z") {
            continue;
        }
        let parent = fields.get(1).and_then(|p| p.parse().ok()).unwrap_or(0);
        found.push((pid, parent));
    }
    found
}

/// Waits until no process runs with `arg` on its command line; fails naming them after
/// `limit`.
pub(crate) fn assert_none_left(arg: &Path, limit: std::time::Duration) {
    let deadline = std::time::Instant::now() + limit;
    loop {
        let left = processes_with_arg(arg);
        if left.is_empty() {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "processes still running {limit:?} later: {left:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
pub(crate) mod clients;
pub(crate) mod server;
pub(crate) mod wire;
