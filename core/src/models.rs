//! The Whisper models steno knows by name, and where they are found: one lookup for the
//! `steno` CLI and for applications that embed steno, so both load the same model for the
//! same name without a path of their own.
//!
//! A model is named like whisper.cpp names its files (`base` is `ggml-base.bin`,
//! `tiny.en-q8_0` is `ggml-tiny.en-q8_0.bin`) and installed in [`models_dir`] by
//! `steno model install NAME` (or `cargo xtask model NAME` in the workspace).

use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// The environment variable that names the model to use: a name from [`KNOWN_MODELS`] or a
/// path.
pub const MODEL_ENV: &str = "STENO_MODEL";

/// The environment variable that names the folder models are installed in and looked up in
/// (see [`models_dir`]).
pub const MODELS_DIR_ENV: &str = "STENO_MODELS";

/// The model used when none is named: Whisper tiny.en with its weight matrices quantized to
/// q8_0 (about 1.2x faster than float16 here for the same words, BENCHMARKS.md).
pub const DEFAULT_MODEL: &str = "tiny.en-q8_0";

/// The default model's file name.
pub const DEFAULT_MODEL_FILE: &str = "ggml-tiny.en-q8_0.bin";

/// A Whisper model steno can install and find by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct KnownModel {
    /// Its name: `tiny.en`, `base`, `base-q8_0`, ...
    pub name: &'static str,
    /// Its file name in the models folder (whisper.cpp's name for it).
    pub file: &'static str,
    /// Whether it knows languages other than English (and can translate to English). The
    /// `.en` models only transcribe English.
    pub multilingual: bool,
    /// Its size on disk, in megabytes (rounded).
    pub megabytes: u32,
}

impl KnownModel {
    const fn new(name: &'static str, file: &'static str, multilingual: bool, mb: u32) -> Self {
        KnownModel {
            name,
            file,
            multilingual,
            megabytes: mb,
        }
    }
}

/// Every model steno knows by name, smallest first. Where each comes from (the official
/// whisper.cpp files, PyPI copies converted here, q8_0 quantizations made here) is the
/// installer's business (`steno model list` shows it).
pub const KNOWN_MODELS: &[KnownModel] = &[
    KnownModel::new("tiny.en-q8_0", DEFAULT_MODEL_FILE, false, 44),
    KnownModel::new("tiny.en", "ggml-tiny.en.bin", false, 78),
    KnownModel::new("tiny", "ggml-tiny.bin", true, 78),
    KnownModel::new("base-q8_0", "ggml-base-q8_0.bin", true, 82),
    KnownModel::new("base", "ggml-base.bin", true, 148),
    KnownModel::new("base.en", "ggml-base.en.bin", false, 148),
    KnownModel::new("small", "ggml-small.bin", true, 488),
    KnownModel::new("small.en", "ggml-small.en.bin", false, 488),
    KnownModel::new("medium", "ggml-medium.bin", true, 1534),
];

/// The known model called `name`.
///
/// ```
/// let base = steno_core::known_model("base").unwrap();
/// assert_eq!(base.file, "ggml-base.bin");
/// assert!(base.multilingual);
/// assert!(steno_core::known_model("huge").is_none());
/// ```
pub fn known_model(name: &str) -> Option<&'static KnownModel> {
    KNOWN_MODELS.iter().find(|model| model.name == name)
}

/// The folder models are installed in: `$STENO_MODELS` if set; else the `models/` folder of
/// the steno workspace the running program was built in (a program under a workspace's
/// `target/` finds the workspace's `models/`); else `$XDG_DATA_HOME/steno/models` (by
/// default `~/.local/share/steno/models`).
pub fn models_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(MODELS_DIR_ENV).filter(|v| !v.is_empty()) {
        return PathBuf::from(dir);
    }
    if let Some(workspace) = workspace_models_dir() {
        return workspace;
    }
    let data = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    data.join("steno").join("models")
}

/// The `models/` folder of the workspace the running program was built in: the first folder
/// above the program holding both `Cargo.toml` and `models/`.
fn workspace_models_dir() -> Option<PathBuf> {
    let program = std::env::current_exe().ok()?;
    program
        .ancestors()
        .skip(1)
        .find(|folder| folder.join("Cargo.toml").is_file() && folder.join("models").is_dir())
        .map(|folder| folder.join("models"))
}

/// The folders a model name is looked up in: [`models_dir`], then `./models`.
fn search_dirs() -> Vec<PathBuf> {
    let mut dirs = vec![models_dir()];
    let local = PathBuf::from("models");
    let same = |a: &Path, b: &Path| a.canonicalize().ok() == b.canonicalize().ok();
    if local.is_dir() && !same(&dirs[0], &local) {
        dirs.push(local);
    }
    dirs
}

/// The installed file of the known model `model`, if any.
pub fn installed_model(model: &KnownModel) -> Option<PathBuf> {
    search_dirs()
        .into_iter()
        .map(|dir| dir.join(model.file))
        .find(|path| path.is_file())
}

/// The model file `name_or_path` means: the installed file of a known model's name (see
/// [`KNOWN_MODELS`]), or else a path to a ggml file.
///
/// ```no_run
/// let base = steno_core::find_model("base")?;
/// let mine = steno_core::find_model("/opt/models/ggml-medium.bin")?;
/// # Ok::<(), steno_core::Error>(())
/// ```
///
/// # Errors
/// [`Error::Config`] when a known model is not installed (saying how to install it), or when
/// `name_or_path` is neither a known name nor an existing file.
pub fn find_model(name_or_path: &str) -> Result<PathBuf> {
    if let Some(model) = known_model(name_or_path) {
        return installed_model(model).ok_or_else(|| {
            Error::Config(format!(
                "model {}: not installed; run `steno model install {}` (looked in {})",
                model.name,
                model.name,
                shown(&search_dirs())
            ))
        });
    }
    let path = PathBuf::from(name_or_path);
    if path.is_file() || path.components().count() > 1 || path.extension().is_some() {
        // A path: whether it is a usable model is for the loader to say, naming the file.
        return Ok(path);
    }
    Err(Error::Config(format!(
        "model {name_or_path}: neither a file nor a model steno knows ({}); \
         `steno model list` lists them",
        KNOWN_MODELS
            .iter()
            .map(|model| model.name)
            .collect::<Vec<_>>()
            .join(", ")
    )))
}

/// The model to load when the user named none: the one `$STENO_MODEL` names (a name or a
/// path), else [`DEFAULT_MODEL`]. Hand it to `WhisperModel::load` (feature `whisper`):
///
/// ```no_run
/// let path = steno_core::default_model()?;
/// println!("the model is {}", path.display());
/// # Ok::<(), steno_core::Error>(())
/// ```
///
/// # Errors
/// As [`find_model`]; [`Error::Model`] when `$STENO_MODEL` names a path with no file.
pub fn default_model() -> Result<PathBuf> {
    if let Some(named) = std::env::var(MODEL_ENV).ok().filter(|v| !v.is_empty()) {
        let path = find_model(&named)?;
        if !path.is_file() {
            return Err(Error::model(
                &path,
                format!("no such file (named by ${MODEL_ENV})"),
            ));
        }
        return Ok(path);
    }
    find_model(DEFAULT_MODEL)
}

fn shown(dirs: &[PathBuf]) -> String {
    dirs.iter()
        .map(|dir| dir.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_files_are_unique_and_the_default_is_known() {
        for (i, model) in KNOWN_MODELS.iter().enumerate() {
            assert!(
                KNOWN_MODELS[i + 1..]
                    .iter()
                    .all(|other| other.name != model.name && other.file != model.file),
                "{model:?}"
            );
            assert_eq!(model.file, format!("ggml-{}.bin", model.name));
            assert_eq!(model.multilingual, !model.name.contains(".en"));
        }
        assert_eq!(known_model(DEFAULT_MODEL).unwrap().file, DEFAULT_MODEL_FILE);
    }

    #[test]
    fn a_word_that_is_no_model_and_no_file_is_refused_by_name() {
        let err = find_model("huge").unwrap_err().to_string();
        assert!(
            err.contains("model huge: neither a file nor a model"),
            "{err}"
        );
        assert!(err.contains("base.en"), "{err}");
        // Anything that looks like a path is left to the loader, which names the file.
        assert_eq!(find_model("m.bin").unwrap(), PathBuf::from("m.bin"));
        assert_eq!(find_model("dir/m").unwrap(), PathBuf::from("dir/m"));
    }
}
