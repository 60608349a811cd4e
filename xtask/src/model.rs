//! `cargo xtask model [NAME]`: installs a Whisper model by name into the workspace's
//! `models/`, with the code `steno model install` runs ([`steno_model_store`]); without a
//! name, the default model (`tiny.en-q8_0`).

use std::path::{Path, PathBuf};

/// Installs the default model if needed; returns its path.
pub(crate) fn ensure(root: &Path) -> anyhow::Result<PathBuf> {
    install(root, steno_core::DEFAULT_MODEL)
}

/// Installs the model called `name` in `models/` if needed; returns its path.
pub(crate) fn install(root: &Path, name: &str) -> anyhow::Result<PathBuf> {
    Ok(steno_model_store::install(name, &models(root))?.path)
}

/// A tiny.en model produced by the converter, so that the converter is tested even where the
/// official file was downloaded.
pub(crate) fn ensure_converted(root: &Path) -> anyhow::Result<PathBuf> {
    steno_model_store::ensure_converted_copy("tiny.en", &models(root))
}

/// The CTranslate2 copy of tiny.en the converter starts from: the weights faster-whisper runs
/// in `compare --anchors`.
pub(crate) fn ct2_model_dir(root: &Path) -> anyhow::Result<PathBuf> {
    steno_model_store::ct2_model_dir("tiny.en", &models(root))
}

fn models(root: &Path) -> PathBuf {
    root.join("models")
}
