//! `--word-timestamps` and subtitle line limits end to end: every word of every segment timed,
//! in order, inside its segment; the text the same as without; and SRT and WebVTT, read back
//! by real parsers (Python's `srt` and `webvtt-py`), keep to 42 characters a line and two
//! lines a cue, long sentences split into several cues at word times.
#![allow(clippy::unwrap_used, reason = "a test that cannot set up should panic")]

mod common;

use common::server::client_python;
use common::{Segment, fixture, jsonl_and_report, run_ok, steno, texts, whisper_turn};
use serde_json::Value;

/// Checks that `segments` have words that spell their text, in order and inside them.
fn check_words(segments: &[Segment]) {
    assert!(!segments.is_empty());
    for segment in segments {
        let words = segment
            .words
            .as_ref()
            .unwrap_or_else(|| panic!("no words: {segment:?}"));
        let spelled: Vec<&str> = words.iter().map(|w| w.word.as_str()).collect();
        assert_eq!(spelled.join(" "), segment.text, "{segment:?}");
        let mut previous_start = segment.start;
        for word in words {
            assert!(
                word.start >= previous_start - 1e-9,
                "not in order: {segment:?}"
            );
            assert!(word.start <= word.end, "{word:?}");
            assert!(
                word.start >= segment.start && word.end <= segment.end,
                "{segment:?}"
            );
            assert!((0.0..=1.0).contains(&word.p), "{word:?}");
            previous_start = word.start;
        }
    }
}

#[test]
fn every_word_is_timed_inside_its_segment_and_the_text_does_not_change() {
    let _turn = whisper_turn();
    // Packed windows (offline), and utterances alone (as in real time).
    for extra in [&[][..], &["--no-pack"][..]] {
        let mut args = vec!["--word-timestamps"];
        args.extend(extra);
        let (timed, _) = jsonl_and_report(&args, &fixture("reading.flac"));
        check_words(&timed);
        let (plain, _) = jsonl_and_report(extra, &fixture("reading.flac"));
        assert_eq!(texts(&timed), texts(&plain), "{extra:?}");
        assert!(plain.iter().all(|s| s.words.is_none()));
        // Aligned words follow the speech: each starts within the utterance's first 1.5 s.
        for segment in &timed {
            let first = &segment.words.as_ref().unwrap()[0];
            assert!(first.start - segment.start < 1.5, "{segment:?}");
        }
    }
}

#[test]
fn a_sentences_last_word_is_timed_over_its_speech_not_squeezed_at_the_end() {
    let _turn = whisper_turn();
    // whisper.cpp's DTW time for a token is where the alignment moves on to the next one: the
    // token's end. Read as its start, every word came one word late, and a sentence's last
    // word was squeezed into the last few milliseconds ("in." 8.56-8.56 in the session).
    for extra in [&[][..], &["--no-pack"][..]] {
        let mut args = vec!["--word-timestamps"];
        args.extend(extra);
        let (segments, _) = jsonl_and_report(&args, &fixture("session.wav"));
        assert_eq!(segments.len(), 5, "{segments:#?}");
        for segment in &segments {
            // "dog", "in", "sunny", "afternoon" and "listening": each a quarter of a second
            // or more of speech, ending where the voice detector heard the speech end.
            let last = segment.words.as_ref().unwrap().last().unwrap();
            assert!(
                last.end - last.start >= 0.25,
                "{extra:?}: {last:?} in {segment:?}"
            );
            assert!(
                (last.end - segment.speech_end).abs() <= 0.25,
                "{extra:?}: {last:?} against speech ending at {}",
                segment.speech_end
            );
        }
    }
}

/// `subtitles` read by the Python parser of `format`: each cue's start, end and lines.
fn parsed(format: &str, subtitles: &str) -> Vec<(f64, f64, Vec<String>)> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(format!("out.{format}"));
    std::fs::write(&file, subtitles).unwrap();
    let script = r#"
import json, sys
path, format = sys.argv[1], sys.argv[2]
if format == "srt":
    import srt
    cues = [(c.start.total_seconds(), c.end.total_seconds(), c.content.split("\n"))
            for c in srt.parse(open(path, encoding="utf-8").read(), ignore_errors=False)]
else:
    import webvtt
    cues = []
    for c in webvtt.read(path):
        def seconds(t):
            h, m, s = t.split(":")
            return int(h) * 3600 + int(m) * 60 + float(s)
        cues.append((seconds(c.start), seconds(c.end), c.text.split("\n")))
print(json.dumps(cues))
"#;
    let out = run_ok(
        std::process::Command::new(client_python())
            .args(["-c", script])
            .arg(&file)
            .arg(format),
    );
    let cues: Value = serde_json::from_slice(&out.stdout).unwrap();
    cues.as_array()
        .unwrap()
        .iter()
        .map(|cue| {
            let lines = cue[2].as_array().unwrap();
            (
                cue[0].as_f64().unwrap(),
                cue[1].as_f64().unwrap(),
                lines
                    .iter()
                    .map(|l| l.as_str().unwrap().to_owned())
                    .collect(),
            )
        })
        .collect()
}

#[test]
fn subtitles_keep_to_the_line_limits_and_split_long_sentences_at_word_times() {
    let _turn = whisper_turn();
    let input = fixture("reading.flac");
    let (segments, _) = jsonl_and_report(&["--word-timestamps"], &input);
    let word_starts: Vec<f64> = segments
        .iter()
        .flat_map(|s| s.words.iter().flatten().map(|w| w.start))
        .collect();
    for format in ["srt", "vtt"] {
        let out = run_ok(
            steno()
                .args(["transcribe", "--word-timestamps", "--format", format])
                .arg(&input),
        );
        let cues = parsed(format, &String::from_utf8(out.stdout).unwrap());
        // Long sentences became several cues.
        assert!(cues.len() > segments.len(), "{format}: {} cues", cues.len());
        let mut previous_end = 0.0;
        let mut untimed = 0;
        for (start, end, lines) in &cues {
            assert!((1..=2).contains(&lines.len()), "{format}: {lines:?}");
            assert!(
                lines.iter().all(|l| l.chars().count() <= 42),
                "{format}: {lines:?}"
            );
            assert!(
                *start >= previous_end - 1e-3 && end > start,
                "{format}: {start} {end}"
            );
            previous_end = *end;
            // A cue starts where a segment does or where one of its words does (unless the
            // aligner put that word at the segment's very end: then at its share of the time).
            let at = |t: f64| (t - start).abs() < 0.0015;
            if !segments.iter().any(|s| at(s.start)) && !word_starts.iter().any(|&w| at(w)) {
                untimed += 1;
            }
        }
        assert!(
            untimed * 10 <= cues.len(),
            "{format}: {untimed} of {} cues",
            cues.len()
        );
        let words: Vec<String> = cues.iter().flat_map(|c| c.2.clone()).collect();
        assert_eq!(words.join(" "), texts(&segments).join(" "), "{format}");
    }
    // Without limits, one cue per segment, on one line.
    let out = run_ok(
        steno()
            .args([
                "transcribe",
                "--format",
                "srt",
                "--max-line-chars",
                "0",
                "--max-lines",
                "0",
            ])
            .arg(&input),
    );
    let cues = parsed("srt", &String::from_utf8(out.stdout).unwrap());
    assert_eq!(cues.len(), segments.len());
    assert!(cues.iter().all(|c| c.2.len() == 1));
}
