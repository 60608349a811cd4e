//! The real clients `steno serve` is tested with: WhisperLive's Python client and the official
//! OpenAI SDK, in a Python venv under `target/`, with the subtitle parsers (`srt`,
//! `webvtt-py`) that read steno's subtitles in the tests. (Chromium, the third, is a Debian package
//! driven over WebDriver, which needs no client library.)
//!
//! WhisperLive's package pulls in its whole server (torch, faster-whisper, ...) as
//! dependencies; its client needs only a few, so it is installed with `--no-deps` plus those.
//! Versions are pinned: the tests prove compatibility with these clients, not with whatever
//! is newest on the day.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;

/// Where the venv lives, relative to the workspace root; the tests look for it there.
pub(crate) const VENV: &str = "target/serve-venv";

/// The client packages, installed with their dependencies.
const PACKAGES: &[&str] = &[
    "openai==3.63.0",
    // What WhisperLive's client imports.
    "websocket-client==1.9.2",
    "numpy==2.4.6",
    "scipy==1.17.1",
    "av==18.1.0",
    "pyaudio==0.2.14",
    // Real subtitle parsers, for the SRT and WebVTT steno writes.
    "srt==3.5.3",
    "webvtt-py==0.6.0",
];

/// WhisperLive, without the server's dependencies.
const WHISPER_LIVE: &str = "whisper-live==0.10.0";

/// Makes the venv and installs the clients, unless a previous run did (a marker file holds
/// the list it installed).
pub(crate) fn ensure(root: &Path) -> anyhow::Result<PathBuf> {
    let venv = root.join(VENV);
    let python = venv.join("bin/python");
    let marker = venv.join("steno-clients.txt");
    let wanted = format!("{}\n{WHISPER_LIVE}\n", PACKAGES.join("\n"));
    if python.is_file() && std::fs::read_to_string(&marker).is_ok_and(|had| had == wanted) {
        return Ok(python);
    }
    eprintln!(
        "xtask: installing the server's test clients in {}",
        venv.display()
    );
    crate::run(
        Command::new("python3")
            .args(["-m", "venv", "--clear"])
            .arg(&venv),
    )
    .context("cannot make the Python venv (Debian: apt-get install python3-venv)")?;
    let pip = |args: &[&str]| {
        crate::run(
            Command::new(&python)
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                ])
                .args(args),
        )
    };
    pip(PACKAGES)?;
    pip(&["--no-deps", WHISPER_LIVE])?;
    std::fs::write(&marker, wanted)
        .with_context(|| format!("cannot write {}", marker.display()))?;
    Ok(python)
}
