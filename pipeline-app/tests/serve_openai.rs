//! The official OpenAI Python SDK against `steno serve`'s OpenAI-compatible endpoints: every
//! response format of an upload gives what `steno transcribe` writes, and refusals and a
//! wrong token are the SDK's own exceptions. Driven by `tests/serve_clients/openai_*.py` in
//! the venv of `cargo xtask deps`.

mod common;

use std::ffi::OsStr;
use std::path::Path;
use std::time::Duration;

use common::clients::{cues, run_script};
use common::server::Server;
use common::{SESSION_SECONDS, fixture, parse_jsonl, run_ok, steno, whisper_turn, words};
use serde::Deserialize;
use serde_json::{Value, json};

/// What `openai_transcribe.py` or `openai_models.py` reports: the SDK's result and the name
/// of its type, or the exception it raised.
#[derive(Debug, Deserialize)]
struct Outcome {
    result: Option<Value>,
    #[serde(rename = "type")]
    kind: Option<String>,
    error: Option<SdkError>,
}

/// An exception the SDK raised for an HTTP error.
#[derive(Debug, Deserialize)]
struct SdkError {
    class: String,
    status: u16,
    message: String,
}

impl Outcome {
    /// The result and its type's name; fails with the SDK's exception.
    fn ok(self) -> (Value, String) {
        match (self.result, self.kind, self.error) {
            (Some(result), kind, None) => (result, kind.unwrap_or_default()),
            (_, _, error) => panic!("the SDK raised {error:?}"),
        }
    }

    /// The exception; fails when the call succeeded.
    fn err(self) -> SdkError {
        self.error
            .unwrap_or_else(|| panic!("the call succeeded: {:?}", self.result))
    }
}

/// `client.audio.transcriptions.create(model="whisper-1", file=..., response_format=...,
/// **fields)` through the SDK with `key`.
fn sdk_transcribe(
    server: &Server,
    key: &str,
    file: &Path,
    format: &str,
    fields: &Value,
) -> Outcome {
    let base = format!("{}/v1", server.url());
    let dir = tempfile::tempdir().expect("a temporary directory");
    let fields = fields.to_string();
    let args = [
        OsStr::new(&base),
        OsStr::new(key),
        file.as_os_str(),
        OsStr::new(format),
        OsStr::new(&fields),
    ];
    let result = run_script(
        "openai_transcribe.py",
        args,
        dir.path(),
        Duration::from_secs(120),
    );
    serde_json::from_value(result.clone()).unwrap_or_else(|e| panic!("{result}: {e}"))
}

/// `client.models.list()` through the SDK with `key`.
fn sdk_models(server: &Server, key: &str) -> Outcome {
    let base = format!("{}/v1", server.url());
    let dir = tempfile::tempdir().expect("a temporary directory");
    let result = run_script(
        "openai_models.py",
        [base.as_str(), key],
        dir.path(),
        Duration::from_secs(60),
    );
    serde_json::from_value(result.clone()).unwrap_or_else(|e| panic!("{result}: {e}"))
}

/// What `steno transcribe --format jsonl` with `args` writes for `input`: what the server
/// must give.
fn transcribed(args: &[&str], input: &Path) -> Vec<common::Segment> {
    let output = run_ok(
        steno()
            .args(["transcribe", "--format", "jsonl"])
            .args(args)
            .arg(input),
    );
    parse_jsonl(&String::from_utf8(output.stdout).expect("UTF-8 output"))
}

#[test]
fn openai_sdk_gets_what_steno_transcribe_writes_in_every_response_format() {
    let _turn = whisper_turn();
    let session = fixture("session.wav");
    let reference = transcribed(&[], &session);
    let reference_texts: Vec<&str> = reference.iter().map(|s| s.text.as_str()).collect();
    let reference_text = reference_texts.join(" ");
    assert_eq!(reference.len(), 5, "{reference_texts:?}");

    let server = Server::start(&[]);
    let transcribe =
        |format: &str| sdk_transcribe(&server, "unused", &session, format, &json!({})).ok();

    let (json, kind) = transcribe("json");
    assert_eq!(kind, "Transcription");
    assert_eq!(json["text"], reference_text.as_str(), "{json}");

    let (text, kind) = transcribe("text");
    assert_eq!(kind, "str");
    assert_eq!(
        text.as_str().map(str::trim_end),
        Some(reference_text.as_str())
    );

    for format in ["srt", "vtt"] {
        let (subtitles, kind) = transcribe(format);
        assert_eq!(kind, "str");
        let subtitles = subtitles.as_str().expect("subtitles are text");
        let cues = cues(subtitles, format == "vtt");
        assert_eq!(cues.len(), reference.len(), "{format}: {subtitles}");
        for (cue, segment) in cues.iter().zip(&reference) {
            // A long sentence wraps onto a second line (at most 42 characters a line).
            assert_eq!(cue.text.replace('\n', " "), segment.text, "{format}");
            assert!(
                (cue.start - segment.start).abs() < 0.0015,
                "{format}: {cue:?} {segment:?}"
            );
            assert!(
                (cue.end - segment.end).abs() < 0.0015,
                "{format}: {cue:?} {segment:?}"
            );
        }
    }

    let (verbose, kind) = transcribe("verbose_json");
    assert_eq!(kind, "TranscriptionVerbose");
    assert_eq!(verbose["text"], reference_text.as_str(), "{verbose}");
    assert_eq!(verbose["language"], "english");
    let duration = verbose["duration"].as_f64().expect("a duration");
    assert!((duration - SESSION_SECONDS).abs() < 0.01, "{verbose}");
    let segments = verbose["segments"].as_array().expect("segments");
    assert_eq!(segments.len(), reference.len(), "{verbose}");
    let mut previous_end = 0.0;
    for (i, (segment, expected)) in segments.iter().zip(&reference).enumerate() {
        let (start, end) = (
            segment["start"].as_f64().expect("a start"),
            segment["end"].as_f64().expect("an end"),
        );
        assert!(
            previous_end <= start && start < end && end <= duration,
            "segment {i} is not within the audio, after the one before: {segment}"
        );
        previous_end = end;
        assert_eq!(segment["id"], i);
        assert_eq!(segment["text"], expected.text.as_str());
        // Whisper's confidence, as `steno transcribe` writes it in JSONL (rounded there).
        for (key, written) in [
            ("avg_logprob", expected.avg_logprob),
            ("no_speech_prob", expected.no_speech_prob),
        ] {
            let (served, written) = (segment[key].as_f64(), written.map(f64::from));
            let (Some(served), Some(written)) = (served, written) else {
                panic!("segment {i}: {key} {served:?}, written {written:?}: {segment}");
            };
            assert!((served - written).abs() < 0.0015, "{key}: {segment}");
        }
        let p = segment["no_speech_prob"].as_f64().unwrap_or(-1.0);
        assert!(segment["avg_logprob"].as_f64() <= Some(0.0) && (0.0..=1.0).contains(&p));
    }

    let (models, _) = sdk_models(&server, "unused").ok();
    assert_eq!(models, json!(["tiny.en-q8_0"]));
}

#[test]
fn openai_sdk_raises_its_own_errors_for_refusals_and_a_wrong_token() {
    let _turn = whisper_turn();
    let server = Server::start(&["--token", "SECRET"]);
    let session = fixture("session.wav");
    let scratch = tempfile::tempdir().expect("a temporary directory");
    let notes = scratch.path().join("notes.txt");
    std::fs::write(&notes, "Meeting notes: not audio.\n").expect("a text file");
    // Half of an MP3 file: refused after its audio was decoded, not answered as a whole one.
    let mp3 = std::fs::read(fixture("session-opening.mp3")).expect("the fixture");
    let cut = scratch.path().join("cut.mp3");
    std::fs::write(&cut, &mp3[..mp3.len() / 2]).expect("a cut copy");

    let refusals = [
        (&session, json!({"language": "de"}), "language"),
        (&session, json!({"temperature": 0.5}), "temperature"),
        (&session, json!({"prompt": "x"}), "prompt"),
        // Words are timed only by a server started with --word-timestamps.
        (
            &session,
            json!({"timestamp_granularities": ["word"]}),
            "--word-timestamps",
        ),
        (&notes, json!({}), "notes.txt"),
        (&cut, json!({}), "cut.mp3: truncated MP3 data"),
    ];
    for (file, fields, named) in refusals {
        let error = sdk_transcribe(&server, "SECRET", file, "json", &fields).err();
        assert_eq!(
            (error.class.as_str(), error.status),
            ("BadRequestError", 400),
            "{fields}: {error:?}"
        );
        assert!(error.message.contains(named), "{fields}: {error:?}");
    }

    let wrong = sdk_transcribe(&server, "WRONG", &session, "json", &json!({})).err();
    assert_eq!(
        (wrong.class.as_str(), wrong.status),
        ("AuthenticationError", 401),
        "{wrong:?}"
    );
    assert!(wrong.message.contains("token"), "{wrong:?}");
    let wrong = sdk_models(&server, "WRONG").err();
    assert_eq!(wrong.class, "AuthenticationError", "{wrong:?}");
    let (models, _) = sdk_models(&server, "SECRET").ok();
    assert_eq!(models, json!(["tiny.en-q8_0"]));

    let (json, _) =
        sdk_transcribe(&server, "SECRET", &fixture("word.wav"), "json", &json!({})).ok();
    let text = json["text"].as_str().expect("a text");
    assert_eq!(words(text), ["hello"], "{json}");
}

#[test]
fn openai_sdk_gets_the_words_steno_transcribe_times() {
    let _turn = whisper_turn();
    let session = fixture("session.wav");
    let reference = transcribed(&["--word-timestamps"], &session);
    let reference_words: Vec<&steno_core::TimedWord> = reference
        .iter()
        .flat_map(|segment| segment.words.iter().flatten())
        .collect();
    assert!(reference_words.len() > 30, "{reference:?}");

    let server = Server::start(&["--word-timestamps"]);
    let transcribe = |granularities: Value| {
        let fields = json!({ "timestamp_granularities": granularities });
        sdk_transcribe(&server, "unused", &session, "verbose_json", &fields)
    };
    let (verbose, kind) = transcribe(json!(["word"])).ok();
    assert_eq!(kind, "TranscriptionVerbose");
    assert!(
        verbose.get("segments").is_none(),
        "words only, as asked: {verbose}"
    );
    let served = verbose["words"].as_array().expect("words");
    assert_eq!(served.len(), reference_words.len(), "{verbose}");
    for (word, expected) in served.iter().zip(&reference_words) {
        assert_eq!(word["word"], expected.word.as_str(), "{word}");
        for (key, written) in [("start", expected.start), ("end", expected.end)] {
            let served = word[key].as_f64().expect("a time");
            assert!(
                (served - written).abs() < 0.0015,
                "{key}: {word} {expected:?}"
            );
        }
    }
    let (both, _) = transcribe(json!(["word", "segment"])).ok();
    assert_eq!(both["words"], verbose["words"]);
    assert_eq!(
        both["segments"].as_array().map(Vec::len),
        Some(reference.len()),
        "{both}"
    );

    let refused = sdk_transcribe(
        &server,
        "unused",
        &session,
        "json",
        &json!({"timestamp_granularities": ["word"]}),
    )
    .err();
    assert_eq!(refused.status, 400, "{refused:?}");
    assert!(refused.message.contains("verbose_json"), "{refused:?}");
}

#[test]
fn a_multilingual_server_names_detects_and_translates_the_language() {
    let _turn = whisper_turn();
    let german = fixture("languages-de.flac");
    // Detecting: any language a client names is served, and the response names the one heard.
    let server = Server::start(&["--model", "base", "--language", "auto"]);
    let (verbose, _) = sdk_transcribe(
        &server,
        "unused",
        &german,
        "verbose_json",
        &json!({"language": "de"}),
    )
    .ok();
    assert_eq!(
        (&verbose["language"], &verbose["task"]),
        (&json!("german"), &json!("transcribe")),
        "{verbose}"
    );
    assert!(
        verbose["text"]
            .as_str()
            .unwrap_or_default()
            .contains("Berlin"),
        "{verbose}"
    );
    drop(server);
    // Translating German: English text, and a client asking for French is told what is served.
    let server = Server::start(&["--model", "base", "--language", "de", "--translate"]);
    let (verbose, _) = sdk_transcribe(&server, "unused", &german, "verbose_json", &json!({})).ok();
    assert_eq!(
        (&verbose["language"], &verbose["task"]),
        (&json!("english"), &json!("translate")),
        "{verbose}"
    );
    assert!(
        verbose["text"]
            .as_str()
            .unwrap_or_default()
            .contains("weather"),
        "{verbose}"
    );
    let refused = sdk_transcribe(
        &server,
        "unused",
        &german,
        "json",
        &json!({"language": "fr"}),
    )
    .err();
    assert_eq!(refused.status, 400, "{refused:?}");
    assert!(
        refused.message.contains("language `fr`") && refused.message.contains("`de`"),
        "{refused:?}"
    );
}
