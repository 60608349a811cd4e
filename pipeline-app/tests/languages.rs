//! Languages end to end with the multilingual `base` model (installed by `cargo xtask test`):
//! `--language auto` detects German, French and Spanish in real speech and writes the language
//! and its probability in JSONL and the report; `--language CODE` transcribes it; `--translate`
//! turns it into English; an English-only model refuses both in one line; and process workers
//! given `--language auto` write what in-process Whisper writes.
#![allow(clippy::unwrap_used, reason = "a test that cannot set up should panic")]

mod common;

use std::collections::BTreeMap;

use common::{Segment, fixture, jsonl_and_report, run_ok, steno, texts, wer, whisper_turn, words};

/// The sentences of `file` in `languages.tsv`: (language, words, English translation).
fn sentences(file: &str) -> Vec<(String, String, String)> {
    std::fs::read_to_string(fixture("languages.tsv"))
        .unwrap()
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            (fields[0] == file).then(|| (fields[1].into(), fields[2].into(), fields[3].into()))
        })
        .collect()
}

fn joined(
    sentences: &[(String, String, String)],
    pick: fn(&(String, String, String)) -> &String,
) -> String {
    sentences
        .iter()
        .map(pick)
        .cloned()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The share of `text`'s words that are among `among`.
fn share_of(text: &str, among: &[&str]) -> f64 {
    let words = words(text);
    words.iter().filter(|w| among.contains(&w.as_str())).count() as f64 / words.len().max(1) as f64
}

const ENGLISH: &[&str] = &[
    "the", "is", "are", "a", "to", "of", "in", "on", "you", "me", "we", "it", "my", "i", "at",
    "can", "very", "this", "and", "with", "by", "go", "give", "like",
];
/// Words of each language that English text does not have.
const NATIVE: &[(&str, &[&str])] = &[
    (
        "de",
        &[
            "das", "ist", "die", "der", "mit", "dem", "nach", "du", "mir", "und",
        ],
    ),
    (
        "fr",
        &[
            "le", "la", "les", "nous", "il", "est", "au", "sur", "ce", "fait",
        ],
    ),
    (
        "es",
        &[
            "el", "la", "los", "mi", "en", "una", "es", "de", "me", "sale",
        ],
    ),
];

#[test]
fn german_french_and_spanish_are_detected_and_transcribed() {
    let _turn = whisper_turn();
    // The most Whisper base gets wrong of espeak-ng's voices, word for word (BENCHMARKS.md
    // "Languages"): the French voice is the hardest to understand.
    let most_wer = [("de", 0.3), ("fr", 0.9), ("es", 0.35)];
    let mut sureness = BTreeMap::new();
    for (code, most) in most_wer {
        let file = format!("languages-{code}.flac");
        let spoken = sentences(&file);
        let (segments, report) =
            jsonl_and_report(&["--model", "base", "--language", "auto"], &fixture(&file));
        assert_eq!(segments.len(), spoken.len(), "{file}: {segments:?}");
        for segment in &segments {
            assert_eq!(
                segment.language.as_deref(),
                Some(code),
                "{file}: {segment:?}"
            );
            let p = segment.language_probability.unwrap();
            assert!(p > 0.0 && p <= 1.0, "{file}: {segment:?}");
        }
        let counted: BTreeMap<String, u64> =
            serde_json::from_value(report["languages"].clone()).unwrap();
        assert_eq!(counted, BTreeMap::from([(code.to_owned(), 3)]), "{report}");
        let heard = texts(&segments).join(" ");
        let error = wer(&joined(&spoken, |s| &s.1), &heard);
        assert!(error <= most, "{file}: WER {error:.2} > {most}: {heard}");
        // Whisper says how sure it is of every segment.
        for segment in &segments {
            let (logprob, no_speech) = (
                segment.avg_logprob.unwrap(),
                segment.no_speech_prob.unwrap(),
            );
            assert!((-5.0..=0.0).contains(&logprob), "{segment:?}");
            assert!((0.0..=1.0).contains(&no_speech), "{segment:?}");
        }
        let mean = segments
            .iter()
            .map(|s| f64::from(s.avg_logprob.unwrap()))
            .sum::<f64>()
            / segments.len() as f64;
        sureness.insert(code, mean);
        // Given the language, the text is the same: detection only chose it.
        let given = run_ok(
            steno()
                .args(["transcribe", "--model", "base", "--language", code])
                .arg(fixture(&file)),
        );
        assert_eq!(
            String::from_utf8(given.stdout).unwrap().trim(),
            texts(&segments).join("\n")
        );
    }
    // The voice it understands worst is the one it is least sure of: confidence means
    // something (French: most of the words wrong; German and Spanish: a few).
    assert!(
        sureness["fr"] < sureness["de"].min(sureness["es"]) - 0.3,
        "mean log-probabilities {sureness:?}"
    );
}

#[test]
fn translate_turns_german_french_and_spanish_into_english() {
    let _turn = whisper_turn();
    for (code, native) in NATIVE {
        let file = format!("languages-{code}.flac");
        let out = run_ok(
            steno()
                .args([
                    "transcribe",
                    "--model",
                    "base",
                    "--language",
                    code,
                    "--translate",
                ])
                .arg(fixture(&file)),
        );
        let text = String::from_utf8(out.stdout).unwrap();
        assert_eq!(text.lines().count(), 3, "{file}: {text}");
        // English, not the language spoken: English's common words, hardly any of the other.
        let english = share_of(&text, ENGLISH);
        let foreign = share_of(&text, native);
        assert!(english >= 0.3, "{file}: {english:.2} English words: {text}");
        assert!(
            foreign <= 0.1,
            "{file}: {foreign:.2} words in {code}: {text}"
        );
    }
    // Where the voice is clear enough, the meaning comes through word for word.
    let out = run_ok(
        steno()
            .args([
                "transcribe",
                "--model",
                "base",
                "--language",
                "es",
                "--translate",
            ])
            .arg(fixture("languages-es.flac")),
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("My brother lives in a big house"), "{text}");
}

#[test]
fn without_packing_each_utterance_gets_its_own_language() {
    let _turn = whisper_turn();
    let spoken = sentences("languages-mixed.flac");
    let args = ["--model", "base", "--language", "auto", "--no-pack"];
    let (segments, report) = jsonl_and_report(&args, &fixture("languages-mixed.flac"));
    let detected: Vec<&str> = segments
        .iter()
        .filter_map(|s| s.language.as_deref())
        .collect();
    let expected: Vec<&str> = spoken.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(detected, expected, "{segments:?}");
    assert_eq!(
        report["languages"].as_object().unwrap().len(),
        4,
        "{report}"
    );
    // Process workers started with the same options write the same, languages and confidence
    // included.
    let mut process_args = args.to_vec();
    process_args.extend(["--backend", "process", "--workers", "1"]);
    let (by_workers, _) = jsonl_and_report(&process_args, &fixture("languages-mixed.flac"));
    type Content = (String, Option<String>, Option<f32>, Option<f32>);
    let content = |segments: &[Segment]| -> Vec<Content> {
        segments
            .iter()
            .map(|s| {
                (
                    s.text.clone(),
                    s.language.clone(),
                    s.avg_logprob,
                    s.no_speech_prob,
                )
            })
            .collect()
    };
    assert_eq!(content(&by_workers), content(&segments));
}

#[test]
fn an_english_only_model_refuses_other_languages_and_translation() {
    let session = fixture("session.wav");
    for (args, says) in [
        (&["--language", "de"][..], "--language de: the model"),
        (&["--translate"][..], "--translate: the model"),
        (
            &["--model", "base", "--language", "klingon"][..],
            "--language klingon: not a language",
        ),
    ] {
        let output = steno()
            .arg("transcribe")
            .args(args)
            .arg(&session)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        if !args.contains(&"base") {
            assert!(stderr.contains("knows only English"), "{stderr}");
            assert!(stderr.contains("steno model install base"), "{stderr}");
        }
    }
}

/// In real time, partials with `auto` would each need a detection pass of their own: refused
/// in one line that says why and what to do, before any model is loaded.
#[test]
fn interim_results_in_real_time_need_the_language_given() {
    let output = steno()
        .args(["transcribe", "--model", "base", "--language", "auto"])
        .args(["--realtime", "--interim"])
        .arg(fixture("languages-de.flac"))
        .output()
        .expect("steno runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("--interim in real time with --language auto")
            && stderr.contains("--language de"),
        "{stderr}"
    );
}

#[test]
fn temperature_fallback_decodes_again_what_looks_failed_the_same_on_every_backend() {
    let _turn = whisper_turn();
    // Whisper base is unsure of espeak-ng's French: mean log-probabilities near or under -1.
    let french = fixture("languages-fr.flac");
    let plain = ["--model", "base", "--language", "fr", "--no-pack"];
    let mut fallback = plain.to_vec();
    fallback.push("--temperature-fallback");
    let (before, before_report) = jsonl_and_report(&plain, &french);
    let (after, after_report) = jsonl_and_report(&fallback, &french);
    assert_eq!(before_report["temperature_fallbacks"], 0, "{before_report}");
    let fallbacks = after_report["temperature_fallbacks"].as_u64().unwrap();
    assert!(fallbacks >= 1, "{after_report}");
    assert_eq!(before.len(), after.len());
    let mut changed = 0;
    for (was, is) in before.iter().zip(&after) {
        let (was_p, is_p) = (was.avg_logprob.unwrap(), is.avg_logprob.unwrap());
        if was_p < -1.0 {
            // A failed-looking decode is replaced by one at least as likely.
            assert!(is_p >= was_p, "{was:?} -> {is:?}");
            changed += usize::from(was.text != is.text);
        } else {
            assert_eq!(was.text, is.text, "a decode that looked fine was redone");
        }
    }
    assert!(changed >= 1, "{before:?} {after:?}");
    // Sampling starts from a fresh state each time: worker processes write the same.
    let mut by_workers = fallback.clone();
    by_workers.extend(["--backend", "process", "--workers", "1"]);
    let (workers, workers_report) = jsonl_and_report(&by_workers, &french);
    assert_eq!(texts(&workers), texts(&after));
    assert_eq!(
        workers_report["temperature_fallbacks"],
        after_report["temperature_fallbacks"]
    );
}
