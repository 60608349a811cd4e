//! Languages: `--language auto`'s detection of a chunk's language before it is decoded, and
//! languages' names as OpenAI writes them.

use super::WhisperTranscriber;
use crate::{DetectedLanguage, Error, Result};

impl WhisperTranscriber {
    /// With `--language auto`: the language spoken in `samples`, by Whisper's own detector
    /// (the first decoder step's language-token probabilities) on the full 30 s window, as
    /// Whisper was trained to detect (and as whisper.cpp's CLI and faster-whisper do): on the
    /// language fixtures it was right more often than on the window sized to the chunk
    /// (BENCHMARKS.md). It runs on a state of its own that never decodes: whisper.cpp's
    /// detector encodes with the window of the state's previous decode, so on the decoding
    /// state the result would depend on which chunk that state saw before. It costs one
    /// full-window encoder pass per chunk; giving the language saves it.
    pub(super) fn detect_language(
        &mut self,
        index: usize,
        samples: &[f32],
    ) -> Result<Option<DetectedLanguage>> {
        let Some(detector) = self.detector.as_mut() else {
            return Ok(None);
        };
        let threads = self.settings.threads;
        let failed = |e| Error::transcribe_caused_by(index, "language detection failed", e);
        detector.pcm_to_mel(samples, threads).map_err(failed)?;
        let (id, probabilities) = detector.lang_detect(0, threads).map_err(failed)?;
        let code = whisper_rs::get_lang_str(id).unwrap_or("en").to_owned();
        let probability = usize::try_from(id)
            .ok()
            .and_then(|id| probabilities.get(id).copied())
            .unwrap_or(0.0);
        tracing::debug!(chunk = index, language = %code, probability, "language detected");
        Ok(Some(DetectedLanguage { code, probability }))
    }
}

/// Whisper's English name of the language with code `code` (`de` is "german"), as OpenAI's
/// `verbose_json` names a language; `None` for a code Whisper does not know.
///
/// ```
/// assert_eq!(steno_core::language_name("de"), Some("german"));
/// assert_eq!(steno_core::language_name("xx"), None);
/// ```
pub fn language_name(code: &str) -> Option<&'static str> {
    whisper_rs::get_lang_id(code).and_then(whisper_rs::get_lang_str_full)
}
