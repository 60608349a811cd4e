//! Finding the Whisper model: `--model`, then `STENO_MODEL`, then the workspace's `models/`.

use std::path::{Path, PathBuf};

use anyhow::bail;

/// The default model's file name, as installed by `cargo xtask model`: Whisper tiny.en with
/// its weight matrices quantized to q8_0 (faster than float16 for the same words).
pub(crate) const DEFAULT_MODEL_FILE: &str = "ggml-tiny.en-q8_0.bin";

/// The model to use: `explicit` (from `--model` or `STENO_MODEL`) or the installed default.
pub(crate) fn resolve(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = explicit {
        return Ok(path.to_path_buf());
    }
    let candidates = default_locations();
    if let Some(found) = candidates.iter().find(|p| p.is_file()) {
        return Ok(found.clone());
    }
    bail!(
        "no Whisper model found: pass --model PATH, set STENO_MODEL, or run `cargo xtask model` \
         in the steno workspace to install models/{DEFAULT_MODEL_FILE}"
    )
}

/// `models/` in the current directory, next to any ancestor of the executable (a binary in
/// `target/release` finds the workspace's), and in the workspace this binary was built from.
fn default_locations() -> Vec<PathBuf> {
    let mut dirs = vec![PathBuf::from("models")];
    if let Ok(exe) = std::env::current_exe() {
        dirs.extend(exe.ancestors().skip(1).map(|dir| dir.join("models")));
    }
    dirs.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../models"));
    dirs.into_iter()
        .map(|dir| dir.join(DEFAULT_MODEL_FILE))
        .collect()
}
