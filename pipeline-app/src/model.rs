//! Finding the Whisper model: `--model` (or `STENO_MODEL`), a name or a path, then the
//! default, by the library's own lookup (`steno_core::find_model`); and the name a model goes
//! by on a NATS fleet.

use std::path::{Path, PathBuf};

use anyhow::Context;
use sha2::{Digest, Sha256};
use steno_core::{
    DEFAULT_MODEL_FILE, DecodingOptions, Result as StenoResult, Transcriber, TranscriberFactory,
};

/// The model file to use: the one `explicit` (from `--model` or `STENO_MODEL`) names, or the
/// installed default.
pub(crate) fn resolve(explicit: Option<&str>) -> anyhow::Result<PathBuf> {
    if let Some(named) = explicit {
        return Ok(steno_core::find_model(named)?);
    }
    let found = steno_core::find_model(steno_core::DEFAULT_MODEL);
    // A binary copied out of the workspace it was built in still finds that workspace's model.
    let built_in = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../models")
        .join(DEFAULT_MODEL_FILE);
    match found {
        Err(_) if built_in.is_file() => Ok(built_in),
        found => Ok(found?),
    }
}

/// The name the model at `path`, decoded with these options, goes by on a NATS fleet: its file
/// name and the start of its contents' SHA-256, then the options. A path would differ from one
/// machine to the next; this is the same wherever the same file is installed, and differs for
/// any other file of the same name.
pub(crate) fn fleet_name(path: &Path, options: &DecodingOptions) -> anyhow::Result<String> {
    let mut file = std::fs::File::open(path).with_context(|| {
        format!(
            "model {}: cannot read it (a NATS fleet knows a model by its contents, so the model \
             file must be here too)",
            path.display()
        )
    })?;
    let mut hash = Sha256::new();
    std::io::copy(&mut file, &mut hash)
        .with_context(|| format!("model {}: cannot read it", path.display()))?;
    let digest: String = hash.finalize()[..8]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    let file_name = path.file_name().map_or_else(
        || path.display().to_string(),
        |name| name.to_string_lossy().into_owned(),
    );
    let identity = PathBuf::from(format!("{file_name} sha256:{digest}"));
    Ok(steno_core::WhisperModel::name_for(&identity, options))
}

/// A transcriber factory under another name: a NATS worker's model, named by
/// [`fleet_name`].
pub(crate) struct Renamed {
    pub(crate) inner: Box<dyn TranscriberFactory>,
    pub(crate) name: String,
}

impl TranscriberFactory for Renamed {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn threads_per_transcriber(&self) -> usize {
        self.inner.threads_per_transcriber()
    }

    fn create(&self) -> StenoResult<Box<dyn Transcriber>> {
        self.inner.create()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fleet_name_is_the_file_and_its_contents_not_its_folder() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        std::fs::write(a.join("m.bin"), b"weights").unwrap();
        std::fs::write(b.join("m.bin"), b"weights").unwrap();
        let greedy = DecodingOptions::default();
        let here = fleet_name(&a.join("m.bin"), &greedy).unwrap();
        assert_eq!(here, fleet_name(&b.join("m.bin"), &greedy).unwrap());
        // The file name, then 16 hex digits of the contents' SHA-256.
        assert!(here.starts_with("m.bin sha256:"), "{here}");
        assert_eq!(here.len(), "m.bin sha256:".len() + 16, "{here}");
        std::fs::write(b.join("m.bin"), b"other weights").unwrap();
        assert_ne!(here, fleet_name(&b.join("m.bin"), &greedy).unwrap());
        let mut beams = DecodingOptions::default();
        beams.beam_size = 2;
        assert_ne!(here, fleet_name(&a.join("m.bin"), &beams).unwrap());
        let missing = fleet_name(&a.join("none.bin"), &greedy).unwrap_err();
        assert!(
            format!("{missing:#}").contains("must be here too"),
            "{missing:#}"
        );
    }
}
