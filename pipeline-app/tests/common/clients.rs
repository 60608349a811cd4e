//! The real clients `steno serve` is tested with: a driver for the small Python scripts of
//! `tests/serve_clients/` (run in the venv `cargo xtask deps` makes; they print JSON), and a
//! strict parser of the subtitles those clients receive.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::server::client_python;

/// A script of `tests/serve_clients/` running in the clients' venv: its stdout read line by
/// line as it comes, its stderr kept for failure messages; killed when dropped, also when a
/// test fails.
pub(crate) struct Driver {
    script: String,
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: File,
}

impl Driver {
    /// Starts `script` with `args` in `dir` (WhisperLive's client writes a copy of its audio
    /// into the current directory).
    pub(crate) fn start<I, S>(script: &str, args: I, dir: &Path) -> Driver
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
    pub(crate) fn next(&mut self, limit: Duration) -> Value {
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
    pub(crate) fn finish(mut self, limit: Duration) -> Value {
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
    pub(crate) fn log(&self) -> String {
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
pub(crate) fn run_script<I, S>(script: &str, args: I, dir: &Path, limit: Duration) -> Value
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    Driver::start(script, args, dir).finish(limit)
}

/// A new directory `name` in `parent`.
pub(crate) fn subdir(parent: &Path, name: &str) -> PathBuf {
    let dir = parent.join(name);
    std::fs::create_dir(&dir).expect("a scratch directory");
    dir
}

/// A subtitle cue.
#[derive(Debug)]
pub(crate) struct Cue {
    pub(crate) start: f64,
    pub(crate) end: f64,
    pub(crate) text: String,
}

/// Parses SRT (numbered cues, `,` before the milliseconds) or, when `vtt`, WebVTT (a `WEBVTT`
/// header, `.` before the milliseconds), strictly: each cue its timing and one or two lines of
/// text, in order and not overlapping.
pub(crate) fn cues(subtitles: &str, vtt: bool) -> Vec<Cue> {
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
            // One or two lines: steno wraps a long sentence at 42 characters.
            assert!(
                !text.is_empty() && text.lines().count() <= 2,
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
pub(crate) fn cue_time(time: &str, separator: char) -> f64 {
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
