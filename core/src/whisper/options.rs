//! The decoding options a model is built with (beams, an initial prompt) and the name that
//! carries them: what a process worker must announce to be used.

use std::path::Path;
use std::sync::Arc;

use super::WhisperModel;
use crate::{Error, Result};

impl WhisperModel {
    /// Decodes with beam search of `beam_size` beams instead of greedily (1, the default):
    /// often a few words better, at a cost in time (BENCHMARKS.md). It changes the text, so
    /// it is part of the model's [`name`](crate::TranscriberFactory::name), which process workers
    /// must match.
    ///
    /// ```no_run
    /// let model = steno_core::WhisperModel::load("models/ggml-tiny.en-q8_0.bin", 2)?
    ///     .with_beam_size(5);
    /// # Ok::<(), steno_core::Error>(())
    /// ```
    #[must_use]
    pub fn with_beam_size(mut self, beam_size: usize) -> Self {
        self.beam_size = beam_size.max(1);
        self
    }

    /// Gives every decode `prompt` as Whisper's initial prompt: text "said before" each
    /// chunk, which steers spelling and vocabulary (names, jargon) and style. The same prompt
    /// for every chunk, so the order chunks are decoded in still cannot change the text. It
    /// changes the text, so it is part of the model's [`name`](crate::TranscriberFactory::name),
    /// which process workers must match.
    ///
    /// ```no_run
    /// let model = steno_core::WhisperModel::load("models/ggml-tiny.en-q8_0.bin", 2)?
    ///     .with_prompt("Minutes of the Dashwood family meeting at Norland Park.")?;
    /// # Ok::<(), steno_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Config`] when the prompt is empty, holds a NUL character, or is longer than
    /// Whisper takes (half its text context: 223 tokens for every released model).
    pub fn with_prompt(mut self, prompt: &str) -> Result<Self> {
        let invalid = |problem: &str| Error::Config(format!("the prompt: {problem}"));
        if prompt.trim().is_empty() {
            return Err(invalid("it is empty"));
        }
        if prompt.contains('\0') {
            return Err(invalid("it holds a NUL character"));
        }
        let most = usize::try_from(self.context.n_text_ctx() / 2 - 1).unwrap_or(0);
        // No token is longer than 64 bytes: a longer text has too many tokens, whatever they
        // are. (Asking whisper-rs for fewer tokens than a text has is unsound: the text's
        // length in bytes, which no token count exceeds, is the room given.)
        if prompt.len() > most * 64 {
            return Err(invalid(&format!(
                "it is longer than Whisper's {most} tokens"
            )));
        }
        let tokens = self
            .context
            .tokenize(prompt, prompt.len() + 1)
            .map_err(|e| invalid(&format!("Whisper cannot tokenize it: {e}")))?;
        if tokens.len() > most {
            return Err(invalid(&format!(
                "it is {} tokens, more than Whisper's {most}",
                tokens.len()
            )));
        }
        self.prompt = Some(prompt.to_owned());
        self.prompt_tokens = Arc::from(tokens);
        Ok(self)
    }

    /// The [`name`](crate::TranscriberFactory::name) of the model at `path` decoding with
    /// `beam_size` beams and `prompt`, without loading it: what a process backend's workers
    /// must announce. A prompt is named by a hash of its text.
    ///
    /// ```
    /// use steno_core::WhisperModel;
    /// let path = "m.bin".as_ref();
    /// assert_eq!(WhisperModel::name_for(path, 1, None), "m.bin");
    /// assert_eq!(WhisperModel::name_for(path, 5, None), "m.bin (beam search, 5 beams)");
    /// let prompted = WhisperModel::name_for(path, 1, Some("Dashwood"));
    /// assert!(prompted.starts_with("m.bin (prompt "), "{prompted}");
    /// assert_ne!(prompted, WhisperModel::name_for(path, 1, Some("Dashwoods")));
    /// ```
    pub fn name_for(path: &Path, beam_size: usize, prompt: Option<&str>) -> String {
        let mut options = Vec::new();
        if beam_size > 1 {
            options.push(format!("beam search, {beam_size} beams"));
        }
        if let Some(prompt) = prompt {
            options.push(format!("prompt {:016x}", fnv1a(prompt.as_bytes())));
        }
        if options.is_empty() {
            return path.display().to_string();
        }
        format!("{} ({})", path.display(), options.join("; "))
    }
}

/// FNV-1a, 64 bits: a stable name for a prompt in a model's name (not a security hash: a
/// worker that serves another prompt is refused by its name, not defended against).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}
