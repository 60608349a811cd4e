//! `cargo xtask deps`: the system packages steno builds with (whisper.cpp, ALSA for capture).

use std::process::Command;

use anyhow::{Context, bail};

/// Debian/Ubuntu packages the workspace needs to build: whisper-rs-sys compiles whisper.cpp
/// with cmake and generates bindings with libclang; cpal links ALSA through pkg-config.
const BUILD_PACKAGES: &[&str] = &[
    "cmake",
    "clang",
    "libclang-dev",
    "libasound2-dev",
    "pkg-config",
];

/// Packages `cargo xtask test` needs on top: a PulseAudio server with a null sink and its
/// tools (`pactl`, `paplay`), and ALSA's pulse plugin, so the live capture test records real,
/// real-time audio without a sound card; tmux, a real terminal for the progress bar's test;
/// for `steno serve`'s tests, PortAudio's headers (WhisperLive's client imports PyAudio) and
/// Chromium with its WebDriver (the captions page in a real browser); and the NATS broker the
/// NATS backend's tests start on free ports.
const TEST_PACKAGES: &[&str] = &[
    "pulseaudio",
    "pulseaudio-utils",
    "libasound2-plugins",
    "tmux",
    "portaudio19-dev",
    "chromium",
    "chromium-driver",
    // The NATS backend's tests run a real broker (`steno_nats::LocalServer`).
    "nats-server",
    // Certificates for the NATS backend's TLS test.
    "openssl",
];

/// Installs the missing test packages, like [`ensure`] does for the build packages.
pub(crate) fn ensure_test_packages() -> anyhow::Result<()> {
    install_missing(TEST_PACKAGES)
}

/// Installs the missing build packages with apt-get when running as root; otherwise prints
/// the command to run and fails.
pub(crate) fn ensure() -> anyhow::Result<()> {
    install_missing(BUILD_PACKAGES)
}

fn install_missing(packages: &[&str]) -> anyhow::Result<()> {
    if which("dpkg-query").is_none() || which("apt-get").is_none() {
        eprintln!(
            "xtask: not a Debian-like system; make sure these are installed: {}",
            packages.join(" ")
        );
        return Ok(());
    }
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|package| !is_installed(package))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let list = missing.join(" ");
    if !is_root() {
        bail!(
            "missing system packages: {list}\n  install them with: sudo apt-get update && sudo apt-get install -y {list}"
        );
    }
    eprintln!("xtask: installing {list}");
    crate::run(Command::new("apt-get").args(["update", "-qq"]))?;
    crate::run(
        Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
    .with_context(|| format!("apt-get could not install {list}"))
}

fn is_installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains("install ok installed"))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// The path of `program` on `PATH`, if any.
pub(crate) fn which(program: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}
