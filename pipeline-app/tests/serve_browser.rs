//! The captions page of `steno serve` in a real browser: Chromium driven over WebDriver by
//! Debian's chromedriver, its fake microphone playing `session.wav` in real time. Pressing
//! Start must capture the microphone through the page's AudioWorklet, resample it to 16 kHz
//! and stream it to `/v1/stream` (as s16le, then as f32), and show the spoken sentences as
//! finals, with partials split into stable and unstable words before them; Stop must bring
//! the report. The upload form must transcribe files. A wrong token and a refused
//! microphone must be shown as errors.
//!
//! WebDriver is plain HTTP and JSON on localhost, spoken here over a `TcpStream`.
#![allow(clippy::unwrap_used, reason = "a test that cannot set up should panic")]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::server::Server;
use common::{fixture, session_sentences, wer, words};
use serde::Deserialize;
use serde_json::{Value, json};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const TOKEN: &str = "page-secret";

/// The key of an element reference in WebDriver's JSON.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// What the page shows, read in one script.
const READ_PAGE: &str = r##"
const q = (selector) => document.querySelector(selector);
const shown = (selector) => (q(selector).hidden ? null : q(selector).textContent);
const captions = q("#captions");
return {
  finals: [...document.querySelectorAll("#finals .final")].map((line) => line.textContent),
  partials_shown: Number(captions.dataset.partialsShown),
  partials_split: Number(captions.dataset.partialsSplit),
  partial: q("#partial").hidden ? null
    : [q("#partial .stable").textContent, q("#partial .unstable").textContent],
  button: q("#start").textContent,
  error: shown("#live-error"),
  report: q("#report").hidden ? null : {
    audio: q("#report-audio").textContent,
    latency: q("#report-latency").textContent,
    speech_latency: q("#report-speech-latency").textContent,
  },
  upload_result: shown("#upload-result"),
  upload_error: shown("#upload-error"),
  upload_busy: q("#upload-button").disabled,
};
"##;

#[derive(Debug, Deserialize)]
struct Page {
    finals: Vec<String>,
    partials_shown: u64,
    partials_split: u64,
    /// The partial on screen: its stable and unstable text.
    partial: Option<(String, String)>,
    button: String,
    error: Option<String>,
    report: Option<Report>,
    upload_result: Option<String>,
    upload_error: Option<String>,
    upload_busy: bool,
}

#[derive(Debug, Deserialize)]
struct Report {
    audio: String,
    latency: String,
    speech_latency: String,
}

#[test]
fn the_page_captions_the_microphone_and_transcribes_uploads() {
    let begun = Instant::now();
    let server = Server::start(&["--token", TOKEN]);
    let browser = Browser::start(&fixture("session.wav"), true);
    browser.navigate(&format!("{}/#token={TOKEN}", server.url()));
    assert_eq!(
        browser.script("return document.getElementById('token').value"),
        TOKEN,
        "the token field takes the token from the address's #token="
    );
    let sentences = session_sentences();

    // Live: as s16le (the page's default) for three sentences, then as f32 for two. The fake
    // microphone plays session.wav from its start at each capture, in real time.
    let mut split = 0;
    for (encoding, finals) in [("s16le", 3), ("f32", 2)] {
        let run = live(&browser, &server, encoding, finals);
        run.check(&sentences);
        split += run.partials_split;
    }
    // Only words Whisper is sure of become stable, and through the fake microphone it is
    // sure of few: over the five sentences, not in each run, some partial shows both kinds.
    assert!(
        split >= 1,
        "no partial was shown with both stable and unstable words"
    );
    let styles = browser.script(
        "const style = (s) => getComputedStyle(document.querySelector(s)).fontStyle;
         return [style('#partial .stable'), style('#partial .unstable')];",
    );
    assert_eq!(
        styles,
        json!(["normal", "italic"]),
        "the unstable words are in italics, the stable ones not"
    );

    // Upload: the whole session as json (the text shown), the word as WebVTT.
    let page = browser.upload(&server, &fixture("session.wav"), "json");
    let text = page.upload_result.unwrap();
    let error_rate = wer(&sentences.join(" "), &text);
    assert!(
        error_rate <= 0.1,
        "WER {error_rate:.3} of the upload: {text}"
    );
    let page = browser.upload(&server, &fixture("word.wav"), "vtt");
    let vtt = page.upload_result.unwrap();
    assert!(vtt.starts_with("WEBVTT") && vtt.contains("-->"), "{vtt}");
    assert!(words(&vtt).contains(&"hello".to_owned()), "{vtt}");

    // A wrong token: both parts say so.
    browser.clear("#token");
    browser.type_into("#token", "wrong");
    let page = browser.upload(&server, &fixture("word.wav"), "text");
    let refused = page.upload_error.unwrap();
    assert!(
        refused.contains("401") && refused.contains("token is wrong"),
        "{refused}"
    );
    browser.click("#start");
    let page = browser.wait_for(&server, Duration::from_secs(10), "an error", |page| {
        page.error.is_some()
    });
    assert!(
        page.error.as_deref().unwrap().contains("token is wrong"),
        "{page:?}"
    );
    assert_eq!(page.button, "Start");
    drop(browser);

    // A microphone refused (as headless Chromium does without the fake prompt): the page says
    // so, and how to allow it.
    let browser = Browser::start(&fixture("session.wav"), false);
    browser.navigate(&server.url());
    browser.click("#start");
    let page = browser.wait_for(&server, Duration::from_secs(10), "an error", |page| {
        page.error.is_some()
    });
    assert!(
        page.error
            .as_deref()
            .unwrap()
            .contains("microphone was not allowed"),
        "{page:?}"
    );
    assert_eq!(page.button, "Start");
    eprintln!("the whole test took {:.1} s", begun.elapsed().as_secs_f64());
}

/// What one live run showed.
struct LiveRun {
    encoding: &'static str,
    /// The finals on the page when Stop was pressed.
    finals: Vec<String>,
    /// From Start being pressed to Stop.
    on: Duration,
    /// The page once the report came.
    page: Page,
    /// Partials this run showed, and those with both stable and unstable words.
    partials_shown: u64,
    partials_split: u64,
    /// A partial with both parts, as a look at the page caught it.
    seen_split: Option<(String, String)>,
}

/// Start (with `encoding`) until `finals` finals are shown, then Stop until the report.
fn live(browser: &Browser, server: &Server, encoding: &'static str, finals: usize) -> LiveRun {
    let before = browser.read_page();
    browser.click(&format!("#encoding option[value='{encoding}']"));
    browser.click("#start");
    let started = Instant::now();
    let mut seen_split = None;
    let page = browser.wait_for(server, Duration::from_secs(40), "finals", |page| {
        if let Some((stable, unstable)) = &page.partial
            && !stable.is_empty()
            && !unstable.is_empty()
        {
            seen_split.get_or_insert((stable.clone(), unstable.clone()));
        }
        page.error.is_some() || page.finals.len() >= finals
    });
    assert_eq!(page.error, None, "{encoding}: the page shows an error");
    assert_eq!(page.button, "Stop");
    let on = started.elapsed();
    browser.click("#start");
    // The report comes before the server closes the stream, and the page offers Start again
    // only once the socket has closed: wait for both.
    let after = browser.wait_for(
        server,
        Duration::from_secs(30),
        "report and close",
        |page| (page.report.is_some() && page.button == "Start") || page.error.is_some(),
    );
    LiveRun {
        encoding,
        finals: page.finals,
        on,
        partials_shown: after.partials_shown - before.partials_shown,
        partials_split: after.partials_split - before.partials_split,
        page: after,
        seen_split,
    }
}

impl LiveRun {
    fn check(&self, sentences: &[String]) {
        let (encoding, page, finals) = (self.encoding, &self.page, &self.finals);
        assert_eq!(
            page.error, None,
            "{encoding}: the page shows an error after Stop"
        );
        let report = page.report.as_ref().unwrap();
        let audio_seconds: f64 = report.audio.trim_end_matches(" s").parse().unwrap();
        let on = self.on.as_secs_f64();
        eprintln!(
            "{encoding}: {on:.1} s from Start to Stop, {audio_seconds} s of audio sent; latency \
             p95 {}, from speech end {}; {} partials shown, {} with stable and unstable words \
             (one seen: {:?}); finals {:?}",
            report.latency,
            report.speech_latency,
            self.partials_shown,
            self.partials_split,
            self.seen_split,
            page.finals,
        );
        // The finals shown before Stop are the sentences spoken, one utterance each (after
        // Stop, the sentence being spoken may end early as one more final). The first is held
        // to its first words only: tiny.en hears "brown fox jumps ... dog" in Chromium's fake
        // capture as "roundfark stump ... nog" or so, even when the captured audio is
        // transcribed offline with a reference resampler, while it hears session.wav itself
        // right. Capture starts as the socket opens, so the first words must be there.
        assert!(
            page.finals.starts_with(finals),
            "{encoding}: finals changed: {finals:?} then {:?}",
            page.finals
        );
        assert!(
            words(&finals[0]).starts_with(&["the".into(), "quick".into()]),
            "{encoding}: the first words: {finals:?}"
        );
        let (spoken, heard) = (sentences[1..finals.len()].join(" "), finals[1..].join(" "));
        let error_rate = wer(&spoken, &heard);
        assert!(
            error_rate <= 0.1,
            "{encoding}: WER {error_rate:.3}: heard {heard:?} for {spoken:?}"
        );
        // The fake microphone plays in real time, so the audio sent is the time it was on,
        // less the start-up: a page that lost, repeated or mislabelled the rate of its audio
        // fails here.
        assert!(
            (on - 1.5..=on + 0.5).contains(&audio_seconds),
            "{encoding}: {audio_seconds} s of audio sent in {on:.1} s"
        );
        assert!(report.latency.ends_with(" ms"), "{report:?}");
        assert!(self.partials_shown >= 1, "{encoding}: no partial was shown");
        assert_eq!(
            page.partial, None,
            "{encoding}: the last partial was replaced by its final"
        );
        assert_eq!(page.button, "Start");
    }
}

/// Chromium under chromedriver, with one WebDriver session; both stopped when dropped.
struct Browser {
    driver: Child,
    port: u16,
    session: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Headless Chromium whose microphone plays `audio` (from its start at each capture);
    /// with `allowed`, every page may use it without asking, else it is refused.
    fn start(audio: &Path, allowed: bool) -> Browser {
        for program in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                Path::new(program).is_file(),
                "{program} is missing: run `cargo xtask deps` to install chromium and \
                 chromium-driver"
            );
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let profile = tempfile::tempdir().unwrap();
        let mut browser = Browser {
            driver,
            port,
            session: String::new(),
            _profile: profile,
        };
        let ready = Instant::now() + Duration::from_secs(20);
        while !matches!(
            browser.request("GET", "/status", None),
            Ok((200, ref status)) if status["value"]["ready"] == true
        ) {
            assert!(Instant::now() < ready, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--use-fake-device-for-media-stream".to_owned(),
            format!("--use-file-for-fake-audio-capture={}", audio.display()),
            format!("--user-data-dir={}", browser._profile.path().display()),
        ];
        if allowed {
            args.push("--use-fake-ui-for-media-stream".to_owned());
        }
        let session = browser.call(
            "POST",
            "/session",
            &json!({"capabilities": {"alwaysMatch": {
                "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
                "goog:loggingPrefs": {"browser": "ALL"},
            }}}),
        );
        browser.session = session["sessionId"].as_str().unwrap().to_owned();
        browser
    }

    /// A WebDriver command: its `value`, or a panic with WebDriver's error.
    fn call(&self, method: &str, path: &str, body: &Value) -> Value {
        let body = (method == "POST").then_some(body);
        match self.request(method, path, body) {
            Ok((200, mut reply)) => reply["value"].take(),
            Ok((status, reply)) => panic!("WebDriver {method} {path}: HTTP {status}: {reply}"),
            Err(e) => panic!("WebDriver {method} {path}: {e}"),
        }
    }

    /// A command of this session.
    fn command(&self, method: &str, path: &str, body: &Value) -> Value {
        self.call(method, &format!("/session/{}{path}", self.session), body)
    }

    /// One HTTP/1.1 request to chromedriver: the status and the JSON body.
    fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> std::io::Result<(u16, Value)> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        let body = body.map(Value::to_string).unwrap_or_default();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\
             \r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.port,
            body.len()
        )?;
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or(0);
        let (mut length, mut chunked) = (None, false);
        loop {
            line.clear();
            reader.read_line(&mut line)?;
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            let (name, value) = header.split_once(':').unwrap_or((header, ""));
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse::<usize>().ok();
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.eq_ignore_ascii_case("chunked");
            }
        }
        let mut body = Vec::new();
        if chunked {
            loop {
                line.clear();
                reader.read_line(&mut line)?;
                let size = usize::from_str_radix(line.trim(), 16).unwrap_or(0);
                if size == 0 {
                    break;
                }
                let start = body.len();
                body.resize(start + size, 0);
                reader.read_exact(&mut body[start..])?;
                reader.read_line(&mut line)?;
            }
        } else if let Some(length) = length {
            body.resize(length, 0);
            reader.read_exact(&mut body)?;
        } else {
            reader.read_to_end(&mut body)?;
        }
        let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        Ok((status, value))
    }

    fn navigate(&self, url: &str) {
        self.command("POST", "/url", &json!({ "url": url }));
    }

    /// The element `css` selects.
    fn element(&self, css: &str) -> String {
        let found = self.command(
            "POST",
            "/element",
            &json!({"using": "css selector", "value": css}),
        );
        found[ELEMENT].as_str().unwrap().to_owned()
    }

    fn click(&self, css: &str) {
        let element = self.element(css);
        self.command("POST", &format!("/element/{element}/click"), &json!({}));
    }

    fn clear(&self, css: &str) {
        let element = self.element(css);
        self.command("POST", &format!("/element/{element}/clear"), &json!({}));
    }

    /// Types `text` into `css`; for a file input, `text` is the file's path.
    fn type_into(&self, css: &str, text: &str) {
        let element = self.element(css);
        self.command(
            "POST",
            &format!("/element/{element}/value"),
            &json!({ "text": text }),
        );
    }

    fn script(&self, script: &str) -> Value {
        self.command(
            "POST",
            "/execute/sync",
            &json!({"script": script, "args": []}),
        )
    }

    fn read_page(&self) -> Page {
        serde_json::from_value(self.script(READ_PAGE)).unwrap()
    }

    /// Reads the page every 100 ms until `done` says so; fails after `limit`, with what the
    /// page, the browser's console and the server said.
    fn wait_for(
        &self,
        server: &Server,
        limit: Duration,
        what: &str,
        mut done: impl FnMut(&Page) -> bool,
    ) -> Page {
        let deadline = Instant::now() + limit;
        loop {
            let page = self.read_page();
            if done(&page) {
                return page;
            }
            if Instant::now() > deadline {
                let console = self.command("POST", "/se/log", &json!({"type": "browser"}));
                panic!(
                    "no {what} on the page after {limit:?}: {page:#?}\nconsole: {console:#}\n\
                     server: {}",
                    server.log()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Uploads `file` with the form, as `format`, and waits for the result or an error.
    fn upload(&self, server: &Server, file: &Path, format: &str) -> Page {
        self.type_into("#file", &file.display().to_string());
        self.click(&format!("#response-format option[value='{format}']"));
        self.click("#upload-button");
        self.wait_for(server, Duration::from_secs(30), "upload result", |page| {
            !page.upload_busy && (page.upload_result.is_some() || page.upload_error.is_some())
        })
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.request("DELETE", &format!("/session/{}", self.session), None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
