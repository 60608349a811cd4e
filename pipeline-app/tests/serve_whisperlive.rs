//! WhisperLive's own Python client against `steno serve`: it streams speech in real time
//! through WhisperLive's protocol, unchanged, with its words timed, while a second client is
//! told to wait. The
//! client is driven by `tests/serve_clients/whisperlive_stream.py` in the venv of `cargo xtask
//! deps`; what it reports is checked against the reference text and the protocol's rules.

mod common;

use std::ffi::OsStr;
use std::path::Path;
use std::time::{Duration, Instant};

use common::clients::{Driver, cues, subdir};
use common::server::Server;
use common::{SESSION_SECONDS, fixture, session_sentences, wer, words};
use serde::Deserialize;
use serde_json::{Value, json};

/// What `whisperlive_stream.py` reports of one run of WhisperLive's client.
#[derive(Debug, Deserialize)]
struct Streamed {
    /// What `TranscriptionClient.__call__` returned.
    transcript: String,
    /// The `segments` of every update, in order.
    updates: Vec<Vec<LiveSegment>>,
    statuses: Vec<Status>,
    /// Whether `SERVER_READY` came.
    admitted: bool,
    backend: Option<String>,
    /// How long the call took.
    seconds: f64,
}

/// One segment of a WhisperLive update.
#[derive(Debug, Clone, PartialEq, Deserialize)]
struct LiveSegment {
    start: String,
    end: String,
    text: String,
    completed: bool,
    /// With `word_timestamps`.
    words: Option<Vec<LiveWord>>,
}

/// A word of a WhisperLive segment.
#[derive(Debug, Clone, PartialEq, Deserialize)]
struct LiveWord {
    word: String,
    start: String,
    end: String,
    probability: f64,
}

impl LiveSegment {
    fn start(&self) -> f64 {
        live_seconds(&self.start)
    }

    fn end(&self) -> f64 {
        live_seconds(&self.end)
    }
}

/// A WhisperLive time: a string of seconds with three decimals, as its server writes them.
fn live_seconds(time: &str) -> f64 {
    let decimals = time.split_once('.').map_or(0, |(_, d)| d.len());
    assert_eq!(decimals, 3, "{time:?}: not seconds with three decimals");
    time.parse().unwrap_or_else(|e| panic!("{time:?}: {e}"))
}

/// A status message (`WAIT`, `ERROR`, `WARNING`).
#[derive(Debug, Deserialize)]
struct Status {
    status: String,
    message: Value,
}

/// WhisperLive's client plays `audio` to `server` in real time, writing its SRT file to
/// `srt`, in `dir`; `options` are more of its arguments (`{"word_timestamps": true}`).
fn start_whisperlive(
    server: &Server,
    audio: &Path,
    srt: &Path,
    dir: &Path,
    options: &Value,
) -> Driver {
    let options = options.to_string();
    Driver::start(
        "whisperlive_stream.py",
        [
            OsStr::new(port(server)),
            audio.as_os_str(),
            srt.as_os_str(),
            OsStr::new(&options),
        ],
        dir,
    )
}

fn streamed(result: Value) -> Streamed {
    serde_json::from_value(result.clone()).unwrap_or_else(|e| panic!("{result}: {e}"))
}

fn port(server: &Server) -> &str {
    server
        .address
        .rsplit_once(':')
        .map(|(_, port)| port)
        .expect("the address has a port")
}

/// Checks every update of an admitted stream, and returns its finished segments: each update
/// holds all the finished segments so far (fewer than `send_last_n_segments`), unchanged,
/// then at most one partial (`completed: false`) last; a partial never comes after its
/// utterance's final, and at least one comes before it.
fn finished_segments(streamed: &Streamed, audio_seconds: f64) -> Vec<LiveSegment> {
    assert!(streamed.admitted, "not admitted: {:?}", streamed.statuses);
    assert_eq!(streamed.backend.as_deref(), Some("faster_whisper"));
    assert!(streamed.statuses.is_empty(), "{:?}", streamed.statuses);
    assert!(!streamed.updates.is_empty(), "no update came");
    let mut finished: Vec<LiveSegment> = Vec::new();
    let mut partials = Vec::new();
    for (i, update) in streamed.updates.iter().enumerate() {
        for segment in update {
            let (start, end) = (segment.start(), segment.end());
            assert!(
                0.0 <= start && start < end && end <= audio_seconds + 0.01,
                "update {i}: {segment:?} is not within the {audio_seconds} s of audio"
            );
        }
        let (done, speaking) = match update.split_last() {
            Some((last, done)) if !last.completed => (done, Some(last)),
            _ => (update.as_slice(), None),
        };
        assert!(
            done.iter().all(|s| s.completed),
            "update {i}: a partial before a finished segment: {update:?}"
        );
        assert!(
            done.starts_with(&finished),
            "update {i}: a finished segment changed or went missing: {finished:?} then \
             {update:?}"
        );
        finished = done.to_vec();
        if let Some(partial) = speaking {
            partials.push((i, partial.clone(), finished.len()));
        }
    }
    // A partial belongs to the utterance whose final spans its start; a partial of the n-th
    // utterance comes while fewer than n+1 finals are shown.
    let mut shown_before_final = 0;
    for (i, partial, shown) in &partials {
        let Some(utterance) = finished
            .iter()
            .position(|f| f.start() <= partial.start() && partial.start() < f.end())
        else {
            continue;
        };
        assert!(
            *shown <= utterance,
            "update {i}: partial {partial:?} after its final {:?}",
            finished[utterance]
        );
        shown_before_final += 1;
    }
    assert!(
        shown_before_final > 0,
        "no partial came before its final; partials: {partials:?}"
    );
    for pair in finished.windows(2) {
        assert!(pair[0].end() <= pair[1].start(), "overlapping: {pair:?}");
    }
    finished
}

#[test]
fn whisperlive_client_streams_speech_while_a_second_client_is_told_to_wait() {
    let server = Server::start(&["--max-streams", "1", "--word-timestamps"]);
    let scratch = tempfile::tempdir().expect("a temporary directory");
    let session = fixture("session.wav");
    let srt = scratch.path().join("session.srt");
    let mut streaming = start_whisperlive(
        &server,
        &session,
        &srt,
        &subdir(scratch.path(), "a"),
        &json!({"word_timestamps": true}),
    );
    assert_eq!(
        streaming.next(Duration::from_secs(60)),
        json!({"event": "ready"})
    );

    // The one place is taken: a second client is told to wait, in minutes (at most the
    // longest stream, 60 by default), and returns without streaming.
    let waiting_srt = scratch.path().join("waiting.srt");
    let waiting = start_whisperlive(
        &server,
        &session,
        &waiting_srt,
        &subdir(scratch.path(), "b"),
        &json!({}),
    );
    let waiting = streamed(waiting.finish(Duration::from_secs(30)));
    assert!(!waiting.admitted, "{waiting:?}");
    assert!(
        matches!(&waiting.statuses[..], [Status { status, message }]
            if status == "WAIT" && message.as_f64().is_some_and(|m| 0.0 < m && m <= 60.0)),
        "{:?}",
        waiting.statuses
    );
    assert!(waiting.updates.is_empty() && waiting.transcript.is_empty());
    assert!(waiting.seconds < 10.0, "it streamed: {waiting:?}");
    assert!(!waiting_srt.exists(), "the waiting client wrote an SRT");

    // The first client's stream: partials then finals, the words of the session, and an SRT
    // file of well-formed cues.
    let first = streamed(streaming.finish(Duration::from_secs(120)));
    let finished = finished_segments(&first, SESSION_SECONDS);
    let texts: Vec<&str> = finished.iter().map(|s| s.text.as_str()).collect();
    let error = wer(&session_sentences().join(" "), &texts.join(" "));
    assert!(error <= 0.15, "WER {error:.3}: {texts:?}");
    assert_eq!(finished.len(), 5, "{texts:?}");
    let srt = std::fs::read_to_string(&srt).expect("the client wrote its SRT");
    let cues = cues(&srt, false);
    // The first client asked for words: each finished segment has its text's, in order and
    // within its time.
    for segment in &finished {
        let timed = segment.words.as_ref();
        let timed = timed.unwrap_or_else(|| panic!("no words: {segment:?}"));
        let said: Vec<&str> = timed.iter().map(|w| w.word.as_str()).collect();
        assert_eq!(words(&said.join(" ")), words(&segment.text), "{segment:?}");
        let mut previous_end = segment.start();
        for word in timed {
            let (start, end) = (live_seconds(&word.start), live_seconds(&word.end));
            assert!(
                previous_end - 0.001 <= start && start <= end && end <= segment.end() + 0.001,
                "{word:?} in {segment:?}"
            );
            assert!((0.0..=1.0).contains(&word.probability), "{word:?}");
            previous_end = end;
        }
    }

    // The place is given back when the client leaves: a new client is admitted (once the
    // server has sent the stream's last text) and transcribed.
    let word = fixture("word.wav");
    let deadline = Instant::now() + Duration::from_secs(30);
    let next = loop {
        let dir = tempfile::tempdir_in(scratch.path()).expect("a scratch directory");
        let next = streamed(
            start_whisperlive(
                &server,
                &word,
                &dir.path().join("word.srt"),
                dir.path(),
                &json!({}),
            )
            .finish(Duration::from_secs(60)),
        );
        if next.admitted {
            break next;
        }
        assert!(
            Instant::now() < deadline,
            "no place 30 s after the first client left: {:?}",
            next.statuses
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let last = next.updates.last().cloned().unwrap_or_default();
    let heard: Vec<&str> = last
        .iter()
        .filter(|s| s.completed)
        .map(|s| s.text.as_str())
        .collect();
    assert_eq!(words(&heard.join(" ")), ["hello"], "{next:?}");
    assert!(
        next.updates.iter().flatten().all(|s| s.words.is_none()),
        "words nobody asked for: {next:?}"
    );

    let log = server.log();
    assert!(!log.contains("WARN"), "the server warned: {log}");

    // What the client returns and writes in its SRT is exactly the finished segments. (The
    // client adds the last partial it was shown to both when its text is not the last
    // final's: the server must leave it showing the final's text.)
    let stale = first.updates.iter().flatten().rfind(|s| !s.completed);
    let trimmed: Vec<&str> = texts.iter().map(|t| t.trim()).collect();
    assert_eq!(
        first.transcript,
        trimmed.join(" "),
        "the client's transcript is not the finished segments; the last partial it was \
         shown: {stale:?}"
    );
    assert_eq!(cues.len(), finished.len(), "{srt}");
    for (cue, segment) in cues.iter().zip(&finished) {
        assert_eq!(cue.text, segment.text, "{srt}");
        // The client truncates to the millisecond.
        assert!(
            (cue.start - segment.start()).abs() < 0.002,
            "{cue:?} {segment:?}"
        );
        assert!(
            (cue.end - segment.end()).abs() < 0.002,
            "{cue:?} {segment:?}"
        );
    }
}
