//! Meeting capture from recorded tracks: `steno transcribe --source me=A --source them=B` on the
//! meeting fixtures (two voices that talk over each other once, made by `make-meeting.sh`).
#![allow(clippy::unwrap_used, reason = "a test that cannot set up should panic")]

mod common;

use std::path::Path;

use common::{Segment, fixture, parse_jsonl, run_ok, steno, wer, whisper_turn, words};

/// The share of `sentence`'s words that `text` holds in order (their longest common
/// subsequence over the sentence's length).
fn share_heard(sentence: &str, text: &str) -> f64 {
    let (sentence, text) = (words(sentence), words(text));
    let mut previous = vec![0usize; text.len() + 1];
    for word in &sentence {
        let mut current = vec![0usize; text.len() + 1];
        for (j, other) in text.iter().enumerate() {
            current[j + 1] = if word == other {
                previous[j] + 1
            } else {
                previous[j + 1].max(current[j])
            };
        }
        previous = current;
    }
    previous[text.len()] as f64 / sentence.len().max(1) as f64
}

/// One line of `meeting.tsv`: which track spoke, and the words.
fn spoken() -> Vec<(String, String)> {
    std::fs::read_to_string(fixture("meeting.tsv"))
        .unwrap()
        .lines()
        .map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            (fields[0].to_owned(), fields[3].to_owned())
        })
        .collect()
}

/// `steno transcribe` over the two tracks with `args`; stdout and the report.
fn transcribe_tracks(me: &str, args: &[&str]) -> (String, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let out = run_ok(
        steno()
            .arg("transcribe")
            .args(args)
            .arg("--report")
            .arg(&report)
            .arg("--source")
            .arg(format!("me={}", fixture(me).display()))
            .arg("--source")
            .arg(format!("them={}", fixture("meeting-them.flac").display())),
    );
    let report = serde_json::from_str(&std::fs::read_to_string(report).unwrap()).unwrap();
    (String::from_utf8(out.stdout).unwrap(), report)
}

/// The words of `segments` heard in the source labelled `label`.
fn heard(segments: &[Segment], label: &str) -> String {
    segments
        .iter()
        .filter(|s| s.source.as_deref() == Some(label))
        .map(|s| s.text.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn two_tracks_make_one_labelled_transcript_in_the_order_spoken() {
    let _turn = whisper_turn();
    let (jsonl, report) = transcribe_tracks("meeting-me.flac", &["--format", "jsonl"]);
    let segments = parse_jsonl(&jsonl);
    let spoken = spoken();
    let labels: Vec<&str> = segments
        .iter()
        .map(|s| s.source.as_deref().unwrap_or("none"))
        .collect();
    let expected: Vec<&str> = spoken.iter().map(|(track, _)| track.as_str()).collect();
    assert_eq!(labels, expected, "who spoke, in order: {jsonl}");
    for pair in segments.windows(2) {
        assert!(pair[0].speech_end <= pair[1].speech_end, "{jsonl}");
    }
    for label in ["me", "them"] {
        let reference: Vec<&str> = spoken
            .iter()
            .filter(|(track, _)| track == label)
            .map(|(_, words)| words.as_str())
            .collect();
        let error = wer(&reference.join(" "), &heard(&segments, label));
        // tiny.en mishears two or three words of espeak's American voice ("merry well").
        assert!(error < 0.2, "{label}: WER {error:.2}: {jsonl}");
    }
    let sources = report["sources"].as_array().unwrap();
    let counts: Vec<(&str, u64, f64)> = sources
        .iter()
        .map(|s| {
            (
                s["label"].as_str().unwrap(),
                s["segments"].as_u64().unwrap(),
                s["audio_seconds"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(counts, [("me", 3, 21.0), ("them", 3, 21.0)], "{report}");
    assert_eq!(report["segments_out_of_order"], 0, "{report}");
    // Text names who spoke on every line.
    let (text, _) = transcribe_tracks("meeting-me.flac", &[]);
    let prefixes: Vec<&str> = text
        .lines()
        .map(|line| line.split(' ').next().unwrap_or_default())
        .collect();
    assert_eq!(
        prefixes,
        ["[them]", "[me]", "[them]", "[me]", "[me]", "[them]"],
        "{text}"
    );
}

/// Runs `steno transcribe` with `args` and returns its one-line error; fails unless it failed
/// cleanly.
fn refused(args: &[&str]) -> String {
    let output = steno().arg("transcribe").args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!output.status.success(), "{args:?} succeeded");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    stderr
}

#[test]
fn bad_sources_are_refused_in_one_line() {
    let me = format!("me={}", fixture("meeting-me.flac").display());
    let missing = Path::new("no-such-track.wav");
    let err = refused(&[
        "--source",
        &me,
        "--source",
        &format!("them={}", missing.display()),
    ]);
    assert!(err.contains("no-such-track.wav"), "{err}");
    let err = refused(&["--source", &me, "--source", &me]);
    assert!(err.contains("two sources are labelled \"me\""), "{err}");
    let err = refused(&["--source", &me, "--source", "them=-"]);
    assert!(
        err.contains("stdin cannot be one of several tracks"),
        "{err}"
    );
    let them = format!("them={}", fixture("meeting-them.flac").display());
    let err = refused(&["--source", &me, "--source", &them, "--echo-guard", "you"]);
    assert!(err.contains("the echo guard names \"you\""), "{err}");
    let err = refused(&["--source", &me, "--echo-guard", "me"]);
    assert!(err.contains("there are none"), "{err}");
    let err = refused(&["--source", &me, "--interim"]);
    assert!(
        err.contains("--interim is not supported with --source"),
        "{err}"
    );
    let dir = tempfile::tempdir().unwrap();
    let out = format!("{}/", dir.path().display());
    let err = refused(&["--source", &me, "-o", &out]);
    assert!(err.contains("make one transcript: name a file"), "{err}");
}

/// The words of `label`'s sentences in `meeting.tsv`.
fn reference(label: &str) -> String {
    spoken()
        .into_iter()
        .filter(|(track, _)| track == label)
        .map(|(_, words)| words)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The near track with the far side leaking into it: without the guard, the far side's words
/// come out twice, once under `me`; with `--echo-guard me` those repeats are dropped and
/// counted, and on the clean track the guard changes nothing (it never drops real speech).
#[test]
fn the_echo_guard_drops_the_far_sides_words_heard_in_the_microphone() {
    let _turn = whisper_turn();
    let jsonl = |me: &str, guard: bool| {
        let args: &[&str] = if guard {
            &["--format", "jsonl", "--echo-guard", "me"]
        } else {
            &["--format", "jsonl"]
        };
        let (jsonl, report) = transcribe_tracks(me, args);
        (parse_jsonl(&jsonl), report)
    };
    let repeats_them = |segments: &[Segment]| {
        let them: Vec<&Segment> = segments
            .iter()
            .filter(|s| s.source.as_deref() == Some("them"))
            .collect();
        segments
            .iter()
            .filter(|s| s.source.as_deref() == Some("me"))
            .filter(|me| them.iter().any(|t| wer(&t.text, &me.text) < 0.5))
            .count()
    };
    let (echoed, report) = jsonl("meeting-me-echo.flac", false);
    assert!(
        repeats_them(&echoed) >= 2,
        "the fixture puts the far side in the microphone: {echoed:?}"
    );
    assert!(report.get("echo_segments_dropped").is_none(), "{report}");
    let (guarded, report) = jsonl("meeting-me-echo.flac", true);
    assert_eq!(repeats_them(&guarded), 0, "{guarded:?}");
    assert!(
        report["echo_segments_dropped"].as_u64() >= Some(2),
        "{report}"
    );
    assert_eq!(report["segments_out_of_order"], 0, "{report}");
    let me = reference("me");
    let (before, after) = (
        wer(&me, &heard(&echoed, "me")),
        wer(&me, &heard(&guarded, "me")),
    );
    assert!(after < before - 0.3, "me: WER {before:.2} -> {after:.2}");
    // Every one of the near side's own sentences is still there (most of its words, in
    // order, in one of its segments).
    for (track, sentence) in spoken() {
        if track == "me" {
            let best = guarded
                .iter()
                .filter(|s| s.source.as_deref() == Some("me"))
                .map(|s| share_heard(&sentence, &s.text))
                .fold(0.0, f64::max);
            assert!(best >= 0.6, "{sentence:?} was dropped: {guarded:?}");
        }
    }
    let (clean, _) = jsonl("meeting-me.flac", false);
    let (clean_guarded, report) = jsonl("meeting-me.flac", true);
    assert_eq!(
        heard(&clean_guarded, "me"),
        heard(&clean, "me"),
        "the guard dropped real speech"
    );
    assert_eq!(report["echo_segments_dropped"], 0, "{report}");
}

/// The same two tracks on backends that schedule transcription differently (threads, a rayon
/// pool, worker processes, tokio) give the same labelled transcript.
#[test]
fn every_backend_writes_the_same_labelled_transcript() {
    let _turn = whisper_turn();
    let labelled = |backend: &str| {
        let (jsonl, _) = transcribe_tracks(
            "meeting-me.flac",
            &["--format", "jsonl", "--backend", backend],
        );
        parse_jsonl(&jsonl)
            .into_iter()
            .map(|s| {
                (
                    s.chunk,
                    s.source,
                    format!("{:.3}-{:.3}", s.start, s.end),
                    s.text,
                )
            })
            .collect::<Vec<_>>()
    };
    let threads = labelled("threads");
    assert_eq!(threads.len(), 6, "{threads:?}");
    for backend in ["rayon", "process", "tokio"] {
        assert_eq!(labelled(backend), threads, "{backend}");
    }
}
