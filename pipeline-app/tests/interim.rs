//! `--interim` end to end with the real model: partial hypotheses before each final, the
//! finals unchanged, and the last partial close to the final's words.
#![allow(clippy::unwrap_used, reason = "a test that cannot set up should panic")]

mod common;

use std::collections::BTreeMap;

use common::{fixture, jsonl_text_and_report, wer, whisper_turn};

/// One JSON line of `--interim` output.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
struct Line {
    #[serde(rename = "type")]
    kind: String,
    chunk: usize,
    start: f64,
    end: f64,
    text: String,
    #[serde(default)]
    stable: Option<String>,
}

fn lines(args: &[&str]) -> (Vec<Line>, serde_json::Value) {
    lines_of(args, "session.wav")
}

fn lines_of(args: &[&str], input: &str) -> (Vec<Line>, serde_json::Value) {
    let (jsonl, report) = jsonl_text_and_report(args, &fixture(input));
    let lines = jsonl
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}")))
        .collect();
    (lines, report)
}

/// (chunk, start, end, text) of the final lines.
fn finals(lines: &[Line]) -> Vec<(usize, String, String)> {
    lines
        .iter()
        .filter(|l| l.kind == "final")
        .map(|l| {
            (
                l.chunk,
                format!("{:.3}-{:.3}", l.start, l.end),
                l.text.clone(),
            )
        })
        .collect()
}

/// Every final comes after at least one partial of its own chunk; every partial's `stable`
/// is a prefix of its `text` and never shrinks within its chunk. The last partial of each
/// utterance before its final, paired with that final's text. (A file is decoded in packed
/// windows, so partials of later utterances can come before an earlier one's final.)
fn check_partials(lines: &[Line]) -> Vec<(String, String)> {
    let mut last_partial: BTreeMap<usize, &Line> = BTreeMap::new();
    let mut pairs = Vec::new();
    for line in lines {
        match line.kind.as_str() {
            "partial" => {
                let stable = line.stable.as_deref().expect("a partial has `stable`");
                assert!(line.text.starts_with(stable), "{line:?}");
                if let Some(before) = last_partial.get(&line.chunk) {
                    let before = before.stable.as_deref().unwrap_or_default();
                    assert!(
                        stable.starts_with(before),
                        "stable shrank: {before:?} -> {line:?}"
                    );
                }
                last_partial.insert(line.chunk, line);
            }
            "final" => {
                let partial = last_partial
                    .remove(&line.chunk)
                    .unwrap_or_else(|| panic!("no partial before final {line:?}"));
                pairs.push((partial.text.clone(), line.text.clone()));
            }
            other => panic!("line of type {other:?}"),
        }
    }
    pairs
}

#[test]
fn interim_on_a_file_writes_partials_and_changes_no_final() {
    let _alone = whisper_turn();
    let (with, report) = lines(&["--interim"]);
    let (without, _) = lines(&[]);
    assert_eq!(finals(&with), finals(&without));
    assert!(without.iter().all(|l| l.kind == "final"));
    let pairs = check_partials(&with);
    assert_eq!(pairs.len(), finals(&with).len());
    assert_eq!(
        report["partials"].as_u64().unwrap(),
        with.iter().filter(|l| l.kind == "partial").count() as u64,
        "{report}"
    );
    assert_eq!(report["partials_skipped"], 0, "{report}");
}

#[test]
fn realtime_partials_come_before_each_final_and_end_close_to_it() {
    let _alone = whisper_turn();
    let (lines, report) = lines(&["--realtime", "--interim"]);
    // The finals are those of an offline run decoding each utterance alone with real time's
    // padding: interim results change no final, even in real time.
    let (offline, _) = self::lines(&["--no-pack", "--trailing-padding-ms", "100"]);
    assert_eq!(finals(&lines), finals(&offline));
    let pairs = check_partials(&lines);
    assert!(pairs.len() >= 5, "{pairs:?}");
    // The last partial heard all but the last few hundred milliseconds of the utterance.
    let (partials, finals): (Vec<String>, Vec<String>) = pairs.into_iter().unzip();
    let wer = wer(&finals.join(" "), &partials.join(" "));
    assert!(wer <= 0.25, "last partials vs finals: WER {wer:.3}");
    let first = &report["first_partial_ms"];
    assert!(first["p95"].as_f64().unwrap() < 2_000.0, "{report}");
    assert!(
        report["utterances_with_partials"].as_u64().unwrap() >= 5,
        "{report}"
    );
    assert!(report["stable_prefix_violations"].is_u64(), "{report}");
}

/// The stable prefix leaves out the words Whisper is unsure of, and so keeps its promise on
/// noisy speech, where LocalAgreement-2 alone broke it in 2 of these 5 sentences
/// (BENCHMARKS.md, "Interim results"); the word probabilities it needs come back from worker
/// processes too.
#[test]
fn stable_words_are_words_whisper_is_sure_of_on_every_backend() {
    let _alone = whisper_turn();
    let run = |backend: &str| {
        let args = [
            "--interim",
            "--no-pack",
            "--trailing-padding-ms",
            "100",
            "--backend",
            backend,
        ];
        lines_of(&args, "session-noisy.wav")
    };
    let (threads, report) = run("threads");
    let (process, _) = run("process");
    assert_eq!(threads, process, "the partials differ between backends");
    check_partials(&threads);
    assert_eq!(report["stable_prefix_violations"], 0, "{report}");
    assert!(
        threads
            .iter()
            .any(|line| line.stable.as_deref().is_some_and(|s| !s.is_empty())),
        "no word ever became stable"
    );
}
