//! The no-speech rule (`--no-speech-threshold`, 0.6 by default): sounds that are not speech,
//! which the voice detector let through and Whisper captioned anyway, are left out, and the
//! speech is kept.
//! `conformance/inputs/not-speech.flac` holds two sentences with noise bursts, a chord and
//! plucked strings between them (`make-not-speech.sh`).

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::Once;

use common::{
    Segment, content, fixture, jsonl_and_report, root, run_ok, steno, texts, whisper_turn,
};

/// The fixture's spoken sentences: (start, end) in seconds.
fn speech_spans() -> Vec<(f64, f64)> {
    std::fs::read_to_string(fixture("not-speech.tsv"))
        .expect("not-speech.tsv")
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            let seconds = |field: &str| field.parse::<f64>().expect("seconds in not-speech.tsv");
            (fields.get(2) == Some(&"speech")).then(|| (seconds(fields[0]), seconds(fields[1])))
        })
        .collect()
}

/// `target/bench-inputs/NAME`, made by `make-sounds.sh` (deterministic; once per run, it
/// makes both of its inputs).
fn made_by_make_sounds(name: &str) -> PathBuf {
    static MADE: Once = Once::new();
    MADE.call_once(|| {
        run_ok(Command::new("bash").arg(fixture("make-sounds.sh")));
    });
    root().join("target/bench-inputs").join(name)
}

fn is_speech(segment: &Segment, spans: &[(f64, f64)]) -> bool {
    spans
        .iter()
        .any(|&(start, end)| segment.start < end && segment.end > start)
}

#[test]
fn sounds_whisper_captions_are_left_out_and_the_speech_is_kept() {
    let _turn = whisper_turn();
    let input = fixture("not-speech.flac");
    let spans = speech_spans();
    assert_eq!(spans.len(), 2, "two sentences in not-speech.tsv");
    // Each packed window of a file is judged as a whole; with --no-pack, each utterance alone.
    for packing in [&[][..], &["--no-pack"][..]] {
        let off = [packing, &["--no-speech-threshold", "off"]].concat();
        let (all, report) = jsonl_and_report(&off, &input);
        if !packing.is_empty() {
            // Alone, one of the sounds decodes to no words, which Whisper hears as no speech:
            // taken as it is, not decoded again with the full window (1 s, for a caption at
            // best).
            assert_eq!(report["full_window_retries"], 0, "{report}");
        }
        let (speech, sounds): (Vec<Segment>, Vec<Segment>) =
            all.into_iter().partition(|s| is_speech(s, &spans));
        assert_eq!(speech.len(), 2, "{packing:?}: {speech:?}");
        // What the fixture is for: without the rule, Whisper writes words for a sound. They
        // come with its judgement that there was likely no speech, and it is unsure of them.
        assert!(
            !sounds.is_empty(),
            "{packing:?}: Whisper captioned none of the sounds"
        );
        for sound in &sounds {
            let (no_speech, logprob) = (sound.no_speech_prob.unwrap(), sound.avg_logprob.unwrap());
            assert!(no_speech > 0.6 && logprob < -1.0, "{packing:?}: {sound:?}");
        }
        for sentence in &speech {
            assert!(
                sentence.no_speech_prob.unwrap() < 0.3,
                "{packing:?}: {sentence:?}"
            );
        }
        // By default (0.6) the captions are left out and the sentences kept.
        let (kept, _) = jsonl_and_report(packing, &input);
        assert_eq!(content(&kept), content(&speech), "{packing:?}");
    }
}

#[test]
fn a_threshold_that_is_not_a_probability_is_refused() {
    let output = steno()
        .args(["transcribe", "--no-speech-threshold", "1.5"])
        .arg(fixture("not-speech.flac"))
        .output()
        .expect("steno runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--no-speech-threshold") && stderr.contains("from 0 to 1"),
        "{stderr}"
    );
}

#[test]
fn answers_after_sounds_are_kept_when_a_packed_window_is_decoded_utterance_by_utterance() {
    let _turn = whisper_turn();
    // Ten one-word answers, each 0.4 s after a sound.
    let input = made_by_make_sounds("sounds-then-words.flac");
    for packing in [&[][..], &["--no-pack"][..]] {
        // Some packed windows here leave an answer without words and are decoded utterance
        // by utterance; each is judged alone, so a sound's caption (left out) does not take
        // the answers of its window with it.
        let (kept, _) = jsonl_and_report(packing, &input);
        assert_eq!(kept.len(), 10, "{packing:?}: {:?}", texts(&kept));
        // Without the rule the captions are there: what the count above tells apart.
        let off = [packing, &["--no-speech-threshold", "off"]].concat();
        let (all, _) = jsonl_and_report(&off, &input);
        assert!(all.len() > 10, "{packing:?}: {:?}", texts(&all));
    }
}

#[test]
fn sounds_the_rule_leaves_out_are_not_decoded_again_with_the_full_window() {
    let _turn = whisper_turn();
    // 18 sounds, each between 1.5 s of silence.
    let input = made_by_make_sounds("sounds.flac");
    let retries = |report: &serde_json::Value| report["full_window_retries"].as_u64().unwrap();
    // Alone, some of the sounds' captions loop: without the rule, each is decoded again with
    // the full window (about 1 s). With it, a loop it leaves out anyway is not.
    let (captions, report) =
        jsonl_and_report(&["--no-pack", "--no-speech-threshold", "off"], &input);
    assert!(!captions.is_empty() && retries(&report) > 0, "{report}");
    let (segments, report) = jsonl_and_report(&["--no-pack"], &input);
    assert!(segments.is_empty(), "{:?}", texts(&segments));
    assert_eq!(retries(&report), 0, "{report}");
    // Packed, two windows decode to no words, which Whisper hears as no speech: taken as they
    // are (their utterances then decoded alone), not decoded again with the full window.
    // The retry left is a packed window's loop: a looping window's text cannot say which of
    // its utterances are speech, so only a lone utterance's loop is left out unretried.
    let (segments, report) = jsonl_and_report(&[], &input);
    assert!(segments.is_empty(), "{:?}", texts(&segments));
    assert!(retries(&report) <= 1, "{report}");
}
