//! The decoding options a model is built with ([`DecodingOptions`]: beams, an initial
//! prompt, the language, translation, word timestamps, temperature fallback) and the name
//! that carries them: what a process worker must announce to be used.

use std::path::Path;
use std::sync::Arc;

use super::WhisperModel;
use crate::{Error, Result};

/// Every decoding option that changes the text, pinned once per run and the same for every
/// chunk, so every backend, worker and run writes the same text for the same options. A
/// model is built with them ([`WhisperModel::with_options`]); its
/// [`name`](crate::TranscriberFactory::name) carries them, and process and NATS workers must
/// announce the same name ([`DecodingOptions::worker_args`] gives the arguments that start
/// one with them).
///
/// ```
/// let mut options = steno_core::DecodingOptions::default();
/// options.language = "auto".into();
/// options.translate = true;
/// assert_eq!(options.worker_args(), ["--language", "auto", "--translate"]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DecodingOptions {
    /// Beams of the decode; 1 is greedy (the default).
    pub beam_size: usize,
    /// Whisper's initial prompt for every chunk.
    pub prompt: Option<String>,
    /// The spoken language: a Whisper language code (`en`, the default; `de`, `fr`, ...), or
    /// `auto` to detect it in every chunk.
    pub language: String,
    /// Translate into English instead of transcribing (multilingual models only).
    pub translate: bool,
    /// Time every word ([`Transcription::words`](crate::Transcription::words)).
    pub word_timestamps: bool,
    /// Decode again at rising temperatures when a decode looks failed (a loop, or a mean
    /// log-probability under -1), as OpenAI's Whisper does; deterministic, since each such
    /// decode starts from a fresh state (see `whisper/fallback.rs`). Off by default.
    pub temperature_fallback: bool,
}

impl Default for DecodingOptions {
    fn default() -> Self {
        DecodingOptions {
            beam_size: 1,
            prompt: None,
            language: "en".to_owned(),
            translate: false,
            word_timestamps: false,
            temperature_fallback: false,
        }
    }
}

impl DecodingOptions {
    /// The language code that means "detect it".
    pub const AUTO: &'static str = "auto";

    /// The `steno worker` (and conformance worker) arguments that give a worker these
    /// options: only those that differ from the defaults.
    pub fn worker_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if self.beam_size > 1 {
            args.extend(["--beam-size".to_owned(), self.beam_size.to_string()]);
        }
        if let Some(prompt) = &self.prompt {
            args.extend(["--prompt".to_owned(), prompt.clone()]);
        }
        if self.language != "en" {
            args.extend(["--language".to_owned(), self.language.clone()]);
        }
        if self.translate {
            args.push("--translate".to_owned());
        }
        if self.word_timestamps {
            args.push("--word-timestamps".to_owned());
        }
        if self.temperature_fallback {
            args.push("--temperature-fallback".to_owned());
        }
        args
    }

    /// Whether the language is detected in every chunk.
    pub fn detects_language(&self) -> bool {
        self.language == Self::AUTO
    }

    /// What these options add to a model's name (empty for the defaults).
    fn name_parts(&self) -> Vec<String> {
        let mut parts = Vec::new();
        if self.beam_size > 1 {
            parts.push(format!("beam search, {} beams", self.beam_size));
        }
        if let Some(prompt) = &self.prompt {
            parts.push(format!("prompt {:016x}", fnv1a(prompt.as_bytes())));
        }
        if self.language != "en" {
            parts.push(format!("language {}", self.language));
        }
        if self.translate {
            parts.push("translate".to_owned());
        }
        if self.word_timestamps {
            parts.push("word timestamps".to_owned());
        }
        if self.temperature_fallback {
            parts.push("temperature fallback".to_owned());
        }
        parts
    }
}

impl WhisperModel {
    /// Decodes with `options` (see [`DecodingOptions`]): checked against the model, so an
    /// English-only model refuses another language or translation here, not mid-run.
    ///
    /// ```no_run
    /// let mut options = steno_core::DecodingOptions::default();
    /// options.language = "de".into();
    /// let model = steno_core::WhisperModel::load(steno_core::find_model("base")?, 2)?
    ///     .with_options(options)?;
    /// # Ok::<(), steno_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Config`] naming the option: an unknown language code, another language than
    /// English or translation on an English-only model, or a prompt that
    /// [`with_prompt`](Self::with_prompt) refuses.
    pub fn with_options(mut self, mut options: DecodingOptions) -> Result<Self> {
        let language = options.language.as_str();
        if language != DecodingOptions::AUTO && whisper_rs::get_lang_id(language).is_none() {
            return Err(Error::Config(format!(
                "--language {language}: not a language Whisper knows (use a code such as en, \
                 de, fr, es, or auto)"
            )));
        }
        if !self.context.is_multilingual() {
            let model = self.path.display();
            if language != "en" {
                return Err(Error::Config(format!(
                    "--language {language}: the model {model} knows only English; use a \
                     multilingual model such as base (`steno model install base`)"
                )));
            }
            if options.translate {
                return Err(Error::Config(format!(
                    "--translate: the model {model} knows only English and cannot translate; \
                     use a multilingual model such as base (`steno model install base`)"
                )));
            }
        }
        if options.word_timestamps && !self.aligned {
            // DTW alignment is set when whisper.cpp loads a model: load it again with it.
            if let Some(aligning) = super::words::aligning_context(&self.path, &self.context)? {
                self.context = Arc::new(aligning);
                self.aligned = true;
            }
        }
        // The prompt is set by `with_prompt`, which checks it and makes its tokens.
        let prompt = options.prompt.take();
        options.beam_size = options.beam_size.max(1);
        self.options = options;
        self.prompt_tokens = Arc::from([]);
        match prompt {
            Some(prompt) => self.with_prompt(&prompt),
            None => Ok(self),
        }
    }

    /// The options the model decodes with.
    pub fn options(&self) -> DecodingOptions {
        self.options.clone()
    }

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
        self.options.beam_size = beam_size.max(1);
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
        self.options.prompt = Some(prompt.to_owned());
        self.prompt_tokens = Arc::from(tokens);
        Ok(self)
    }

    /// The [`name`](crate::TranscriberFactory::name) of the model at `path` decoding with
    /// `options`, without loading it: what a process backend's workers must announce. A
    /// prompt is named by a hash of its text.
    ///
    /// ```
    /// use steno_core::{DecodingOptions, WhisperModel};
    /// let path = "m.bin".as_ref();
    /// let mut options = DecodingOptions::default();
    /// assert_eq!(WhisperModel::name_for(path, &options), "m.bin");
    /// options.beam_size = 5;
    /// assert_eq!(WhisperModel::name_for(path, &options), "m.bin (beam search, 5 beams)");
    /// options.beam_size = 1;
    /// options.prompt = Some("Dashwood".into());
    /// let prompted = WhisperModel::name_for(path, &options);
    /// assert!(prompted.starts_with("m.bin (prompt "), "{prompted}");
    /// options.language = "auto".into();
    /// assert!(WhisperModel::name_for(path, &options).ends_with("; language auto)"));
    /// ```
    pub fn name_for(path: &Path, options: &DecodingOptions) -> String {
        let parts = options.name_parts();
        if parts.is_empty() {
            return path.display().to_string();
        }
        format!("{} ({})", path.display(), parts.join("; "))
    }
}

/// FNV-1a, 64 bits: a stable name for a prompt in a model's name (not a security hash: a
/// worker that serves another prompt is refused by its name, not defended against).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}
