//! Finding the Whisper model: `--model` (or `STENO_MODEL`), then the library's own lookup
//! (`steno_core::default_model`), then the `models/` of the workspace this binary was built in.

use std::path::{Path, PathBuf};

use anyhow::bail;
use steno_core::DEFAULT_MODEL_FILE;

/// The model to use: `explicit` (from `--model` or `STENO_MODEL`) or the installed default.
pub(crate) fn resolve(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = explicit {
        return Ok(path.to_path_buf());
    }
    if let Ok(found) = steno_core::default_model() {
        return Ok(found);
    }
    // A binary copied out of the workspace it was built in still finds that workspace's model.
    let built_in = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../models")
        .join(DEFAULT_MODEL_FILE);
    if built_in.is_file() {
        return Ok(built_in);
    }
    bail!(
        "no Whisper model found: pass --model PATH, set STENO_MODEL, or run `cargo xtask model` \
         in the steno workspace to install models/{DEFAULT_MODEL_FILE}"
    )
}
