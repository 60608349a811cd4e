//! Where the default Whisper model is found: one lookup for the `steno` CLI and for
//! applications that embed steno, so both load the same model without a path of their own.

use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// The default model's file name, as `cargo xtask model` installs it in the steno
/// workspace's `models/`: Whisper tiny.en with its weight matrices quantized to q8_0.
pub const DEFAULT_MODEL_FILE: &str = "ggml-tiny.en-q8_0.bin";

/// The environment variable that names the model to use.
pub const MODEL_ENV: &str = "STENO_MODEL";

/// The model to load when the user named none: the file `$STENO_MODEL` names if it is set,
/// else the first `models/ggml-tiny.en-q8_0.bin` found in the current directory or in the
/// folder of the running program or any folder above it (a program built under a
/// workspace's `target/` finds the workspace's `models/`). Hand it to `WhisperModel::load`
/// (feature `whisper`):
///
/// ```no_run
/// let path = steno_core::default_model()?;
/// println!("the model is {}", path.display());
/// # Ok::<(), steno_core::Error>(())
/// ```
///
/// # Errors
/// [`Error::Model`] when `$STENO_MODEL` names no file, or [`Error::Config`] saying where
/// steno looked when there is no model in any of those places.
pub fn default_model() -> Result<PathBuf> {
    if let Some(named) = std::env::var_os(MODEL_ENV).filter(|v| !v.is_empty()) {
        let path = PathBuf::from(named);
        if !path.is_file() {
            return Err(Error::model(
                &path,
                format!("no such file (named by ${MODEL_ENV})"),
            ));
        }
        return Ok(path);
    }
    let program = std::env::current_exe().ok();
    let folders = std::iter::once(PathBuf::from(".")).chain(
        program
            .iter()
            .flat_map(|exe| exe.ancestors().skip(1).map(Path::to_path_buf)),
    );
    folders
        .map(|folder| folder.join("models").join(DEFAULT_MODEL_FILE))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            Error::Config(format!(
                "no Whisper model found: set ${MODEL_ENV} to a ggml model file, or install \
                 models/{DEFAULT_MODEL_FILE} with `cargo xtask model` in the steno workspace \
                 (looked in ./models and beside the running program)"
            ))
        })
}
