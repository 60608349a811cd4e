//! The real clients against `steno serve`: WhisperLive's own Python client streaming speech
//! in real time, and the official OpenAI Python SDK uploading files. Each client is driven by
//! a small script of `tests/serve_clients/` in the venv of `cargo xtask deps`; the scripts
//! print JSON, and these tests check it against the reference text and `steno transcribe`.

mod common;

use std::ffi::OsStr;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use common::server::{Server, client_python};
use common::{SESSION_SECONDS, fixture, parse_jsonl, run_ok, session_sentences, steno, wer, words};
use serde::Deserialize;
use serde_json::{Value, json};

/// The tests take turns: ggml's threads spin, and two decodes at once thrash; a real-time
/// stream shares the cores with nothing else, or the server skips its partials (even the
/// Python of another test's SDK calls is enough to lose some).
static WHISPER: Mutex<()> = Mutex::new(());

fn whisper_turn() -> std::sync::MutexGuard<'static, ()> {
    WHISPER.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A script of `tests/serve_clients/` running in the clients' venv: its stdout read line by
/// line as it comes, its stderr kept for failure messages; killed when dropped, also when a
/// test fails.
struct Driver {
    script: String,
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: File,
}

impl Driver {
    /// Starts `script` with `args` in `dir` (WhisperLive's client writes a copy of its audio
    /// into the current directory).
    fn start<I, S>(script: &str, args: I, dir: &Path) -> Driver
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/serve_clients")
            .join(script);
        let stderr = tempfile::tempfile().expect("a temporary file");
        let mut child = Command::new(client_python())
            .arg(&path)
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr.try_clone().expect("the file can be shared"))
            .spawn()
            .unwrap_or_else(|e| panic!("{script} starts: {e}"));
        let stdout = child.stdout.take().expect("stdout is piped");
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Driver {
            script: script.to_owned(),
            child,
            lines,
            stderr,
        }
    }

    /// The next JSON line, within `limit`.
    fn next(&mut self, limit: Duration) -> Value {
        match self.lines.recv_timeout(limit) {
            Ok(line) => serde_json::from_str(&line).unwrap_or_else(|e| {
                panic!("{}: {line:?} is not JSON: {e}{}", self.script, self.log())
            }),
            Err(RecvTimeoutError::Timeout) => {
                panic!("{}: nothing in {limit:?}{}", self.script, self.log())
            }
            Err(RecvTimeoutError::Disconnected) => {
                let status = self.child.wait();
                panic!("{}: exited ({status:?}) early{}", self.script, self.log())
            }
        }
    }

    /// The last JSON line (its result), once the script has exited successfully within
    /// `limit`.
    fn finish(mut self, limit: Duration) -> Value {
        let deadline = Instant::now() + limit;
        let mut last = None;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => last = Some(line),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    panic!("{}: not done in {limit:?}{}", self.script, self.log())
                }
            }
        }
        let status = self.child.wait().expect("the script is waited for");
        assert!(status.success(), "{}: {status}{}", self.script, self.log());
        let last = last.unwrap_or_else(|| panic!("{}: no result{}", self.script, self.log()));
        serde_json::from_str(&last)
            .unwrap_or_else(|e| panic!("{}: {last:?} is not JSON: {e}", self.script))
    }

    /// The end of what the script printed on stderr (the clients' own messages, Python's
    /// traceback), for a failure message.
    fn log(&self) -> String {
        let mut text = String::new();
        let mut file = &self.stderr;
        let _ = file.rewind();
        let _ = file.read_to_string(&mut text);
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(40)..].join("\n");
        format!("; the end of its stderr:\n{tail}")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `script` to its end and returns its result.
fn run_script<I, S>(script: &str, args: I, dir: &Path, limit: Duration) -> Value
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    Driver::start(script, args, dir).finish(limit)
}

/// A new directory `name` in `parent`.
fn subdir(parent: &Path, name: &str) -> PathBuf {
    let dir = parent.join(name);
    std::fs::create_dir(&dir).expect("a scratch directory");
    dir
}

// ----- WhisperLive -----

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
/// `srt`, in `dir`.
fn start_whisperlive(server: &Server, audio: &Path, srt: &Path, dir: &Path) -> Driver {
    Driver::start(
        "whisperlive_stream.py",
        [OsStr::new(port(server)), audio.as_os_str(), srt.as_os_str()],
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

/// A subtitle cue.
#[derive(Debug)]
struct Cue {
    start: f64,
    end: f64,
    text: String,
}

/// Parses SRT (numbered cues, `,` before the milliseconds) or, when `vtt`, WebVTT (a `WEBVTT`
/// header, `.` before the milliseconds), strictly: each cue its timing and one line of text,
/// in order and not overlapping.
fn cues(subtitles: &str, vtt: bool) -> Vec<Cue> {
    let body = if vtt {
        subtitles
            .strip_prefix("WEBVTT\n\n")
            .unwrap_or_else(|| panic!("no WEBVTT header: {subtitles:?}"))
    } else {
        subtitles
    };
    assert!(
        body.ends_with("\n\n"),
        "the last cue is not ended: {subtitles:?}"
    );
    let separator = if vtt { '.' } else { ',' };
    let cues: Vec<Cue> = body
        .trim_end()
        .split("\n\n")
        .enumerate()
        .map(|(i, block)| {
            let mut lines = block.lines();
            if !vtt {
                assert_eq!(
                    lines.next(),
                    Some((i + 1).to_string().as_str()),
                    "{block:?}"
                );
            }
            let timing = lines.next().unwrap_or_default();
            let (start, end) = timing
                .split_once(" --> ")
                .unwrap_or_else(|| panic!("no timing in {block:?}"));
            let text = lines.collect::<Vec<_>>().join("\n");
            assert!(
                !text.is_empty() && !text.contains('\n'),
                "a cue's text: {block:?}"
            );
            Cue {
                start: cue_time(start, separator),
                end: cue_time(end, separator),
                text,
            }
        })
        .collect();
    for cue in &cues {
        assert!(cue.start < cue.end, "{cue:?}");
    }
    for pair in cues.windows(2) {
        assert!(pair[0].end <= pair[1].start, "overlapping: {pair:?}");
    }
    cues
}

/// `HH:MM:SS,mmm` (or `.mmm`) in seconds.
fn cue_time(time: &str, separator: char) -> f64 {
    let parse = || -> Option<f64> {
        let (clock, millis) = time.split_once(separator)?;
        let parts: Vec<&str> = clock.split(':').collect();
        if parts.len() != 3 || millis.len() != 3 || parts.iter().any(|p| p.len() != 2) {
            return None;
        }
        let number = |s: &str| s.parse::<u32>().ok().map(f64::from);
        Some(
            number(parts[0])? * 3600.0
                + number(parts[1])? * 60.0
                + number(parts[2])?
                + number(millis)? / 1000.0,
        )
    };
    parse().unwrap_or_else(|| panic!("{time:?}: not HH:MM:SS{separator}mmm"))
}

#[test]
fn whisperlive_client_streams_speech_while_a_second_client_is_told_to_wait() {
    let _turn = whisper_turn();
    let server = Server::start(&["--max-streams", "1"]);
    let scratch = tempfile::tempdir().expect("a temporary directory");
    let session = fixture("session.wav");
    let srt = scratch.path().join("session.srt");
    let mut streaming = start_whisperlive(&server, &session, &srt, &subdir(scratch.path(), "a"));
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

    // The place is given back when the client leaves: a new client is admitted (once the
    // server has sent the stream's last text) and transcribed.
    let word = fixture("word.wav");
    let deadline = Instant::now() + Duration::from_secs(30);
    let next = loop {
        let dir = tempfile::tempdir_in(scratch.path()).expect("a scratch directory");
        let next = streamed(
            start_whisperlive(&server, &word, &dir.path().join("word.srt"), dir.path())
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

// ----- OpenAI -----

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

#[test]
fn openai_sdk_gets_what_steno_transcribe_writes_in_every_response_format() {
    let _turn = whisper_turn();
    let session = fixture("session.wav");
    let reference = parse_jsonl(
        &String::from_utf8(
            run_ok(
                steno()
                    .args(["transcribe", "--format", "jsonl"])
                    .arg(&session),
            )
            .stdout,
        )
        .expect("UTF-8 output"),
    );
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
            assert_eq!(cue.text, segment.text, "{format}");
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

    let refusals = [
        (&session, json!({"language": "de"}), "language"),
        (&session, json!({"temperature": 0.5}), "temperature"),
        (&session, json!({"prompt": "x"}), "prompt"),
        (&notes, json!({}), "notes.txt"),
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
