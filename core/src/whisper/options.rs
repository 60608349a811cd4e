//! The decoding options a model is built with ([`DecodingOptions`]: beams, an initial
//! prompt, the language, translation, word timestamps, temperature fallback, the no-speech
//! rule) and the name that carries them: what a process worker must announce to be used.

use std::path::Path;
use std::sync::Arc;

use super::WhisperModel;
use crate::{Confidence, Error, Result};

/// The timestamp after a packed window's prompt, in Whisper's 20 ms steps: `<|2.00|>`. Any
/// end from 1 s to 10 s measured alike (BENCHMARKS.md, "A prompt with packed windows").
const PROMPT_END_TIMESTAMP: i32 = 100;

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
#[derive(Debug, Clone, PartialEq)]
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
    /// log-probability under [`logprob_threshold`](Self::logprob_threshold)), as OpenAI's
    /// Whisper does; deterministic, since each such decode starts from a fresh state (see
    /// `whisper/fallback.rs`). Off by default.
    pub temperature_fallback: bool,
    /// Write no text for a decode Whisper judges to be no speech: its no-speech probability
    /// over this and its mean log-probability under
    /// [`logprob_threshold`](Self::logprob_threshold) (OpenAI's rule). The voice detector has
    /// already left silence out; this catches what it let through (noise, music, a cough)
    /// that Whisper would caption anyway. [`NO_SPEECH_THRESHOLD`](Self::NO_SPEECH_THRESHOLD)
    /// by default; `None` turns the rule off. See [`is_no_speech`](Self::is_no_speech).
    pub no_speech_threshold: Option<f32>,
    /// The mean log-probability under which a decode counts as failed (for temperature
    /// fallback) and as unsure (for the no-speech rule): OpenAI's `logprob_threshold`, -1 by
    /// default.
    pub logprob_threshold: f32,
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
            no_speech_threshold: Some(Self::NO_SPEECH_THRESHOLD),
            logprob_threshold: Self::LOGPROB_THRESHOLD,
        }
    }
}

impl DecodingOptions {
    /// The language code that means "detect it".
    pub const AUTO: &'static str = "auto";

    /// The `--no-speech-threshold` value that turns the no-speech rule off.
    pub const OFF: &'static str = "off";

    /// The default [`logprob_threshold`](Self::logprob_threshold): OpenAI's.
    pub const LOGPROB_THRESHOLD: f32 = -1.0;

    /// The default [`no_speech_threshold`](Self::no_speech_threshold): the default of
    /// OpenAI's Whisper, faster-whisper and whisper-cli. With tiny.en it left out every
    /// caption of a sound and no spoken word on steno's fixtures (BENCHMARKS.md, "No speech").
    pub const NO_SPEECH_THRESHOLD: f32 = 0.6;

    /// Whether a decode of this `confidence` is no speech under these options: with a
    /// [`no_speech_threshold`](Self::no_speech_threshold), Whisper's no-speech probability
    /// over it and the text's mean log-probability under
    /// [`logprob_threshold`](Self::logprob_threshold) (sure-sounding text is kept whatever the
    /// no-speech probability, as OpenAI's Whisper keeps it).
    ///
    /// ```
    /// use steno_core::{Confidence, DecodingOptions};
    /// let mut options = DecodingOptions::default();
    /// let unsure_noise = Confidence { avg_logprob: -1.4, no_speech_prob: 0.9, tokens: 3 };
    /// assert!(options.is_no_speech(Some(unsure_noise)));
    /// let sure = Confidence { avg_logprob: -0.3, ..unsure_noise };
    /// assert!(!options.is_no_speech(Some(sure)));
    /// options.no_speech_threshold = None;
    /// assert!(!options.is_no_speech(Some(unsure_noise)), "the rule off");
    /// ```
    pub fn is_no_speech(&self, confidence: Option<Confidence>) -> bool {
        match (self.no_speech_threshold, confidence) {
            (Some(threshold), Some(confidence)) => {
                confidence.no_speech_prob > threshold
                    && confidence.avg_logprob < self.logprob_threshold
            }
            _ => false,
        }
    }

    /// The `steno worker` (and conformance worker) arguments that give a worker these
    /// options: only those that differ from the defaults.
    pub fn worker_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if self.beam_size > 1 {
            args.extend(["--beam-size".to_owned(), self.beam_size.to_string()]);
        }
        if let Some(prompt) = &self.prompt {
            // One argument, so a prompt that begins with `-` is not taken for a flag.
            args.push(format!("--prompt={prompt}"));
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
        if self.no_speech_threshold != Some(Self::NO_SPEECH_THRESHOLD) {
            let threshold = self
                .no_speech_threshold
                .map_or_else(|| Self::OFF.to_owned(), |p| p.to_string());
            args.extend(["--no-speech-threshold".to_owned(), threshold]);
        }
        if self.logprob_threshold != Self::LOGPROB_THRESHOLD {
            args.extend([
                "--logprob-threshold".to_owned(),
                self.logprob_threshold.to_string(),
            ]);
        }
        args
    }

    /// The options that [`worker_args`](Self::worker_args) wrote, read back from `args`
    /// (the rest the defaults): a worker's way to take its options. Any other argument is
    /// an error.
    ///
    /// ```
    /// use steno_core::DecodingOptions;
    /// let mut options = DecodingOptions::default();
    /// options.beam_size = 3;
    /// options.prompt = Some("-- Norland Park".into());
    /// options.no_speech_threshold = None;
    /// options.logprob_threshold = -0.8;
    /// assert_eq!(DecodingOptions::from_worker_args(&options.worker_args())?, options);
    /// options.no_speech_threshold = Some(0.4);
    /// assert_eq!(DecodingOptions::from_worker_args(&options.worker_args())?, options);
    /// assert!(DecodingOptions::from_worker_args(&["--beam-size".into()]).is_err());
    /// # Ok::<(), steno_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Config`] naming an unknown argument, or one whose value is missing or is not
    /// a number.
    pub fn from_worker_args(args: &[String]) -> Result<Self> {
        fn number<T: std::str::FromStr>(flag: &str, value: Option<&String>) -> Result<T> {
            value
                .and_then(|value| value.parse().ok())
                .ok_or_else(|| Error::Config(format!("{flag} needs a number")))
        }
        let mut options = DecodingOptions::default();
        let mut args = args.iter();
        while let Some(flag) = args.next() {
            match flag.as_str() {
                "--beam-size" => options.beam_size = number(flag, args.next())?,
                "--prompt" => {
                    let prompt = args
                        .next()
                        .ok_or_else(|| Error::Config("--prompt needs a text".to_owned()))?;
                    options.prompt = Some(prompt.clone());
                }
                prompt if prompt.starts_with("--prompt=") => {
                    options.prompt = Some(prompt["--prompt=".len()..].to_owned());
                }
                "--language" => {
                    let code = args
                        .next()
                        .ok_or_else(|| Error::Config("--language needs a code".to_owned()))?;
                    options.language.clone_from(code);
                }
                "--translate" => options.translate = true,
                "--word-timestamps" => options.word_timestamps = true,
                "--temperature-fallback" => options.temperature_fallback = true,
                "--no-speech-threshold" => {
                    options.no_speech_threshold = match args.next() {
                        Some(off) if off == Self::OFF => None,
                        value => Some(number(flag, value)?),
                    };
                }
                "--logprob-threshold" => options.logprob_threshold = number(flag, args.next())?,
                other => {
                    return Err(Error::Config(format!("{other}: not a decoding option")));
                }
            }
        }
        Ok(options)
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
        if self.no_speech_threshold != Some(Self::NO_SPEECH_THRESHOLD) {
            parts.push(self.no_speech_threshold.map_or_else(
                || "no-speech rule off".to_owned(),
                |threshold| format!("no-speech threshold {threshold}"),
            ));
        }
        if self.logprob_threshold != Self::LOGPROB_THRESHOLD {
            parts.push(format!(
                "log-probability threshold {}",
                self.logprob_threshold
            ));
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
    /// English or translation on an English-only model, a no-speech threshold outside 0..=1,
    /// a log-probability threshold above 0, or a prompt that
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
        if let Some(threshold) = options.no_speech_threshold
            && !(0.0..=1.0).contains(&threshold)
        {
            return Err(Error::Config(format!(
                "--no-speech-threshold {threshold}: a probability, from 0 to 1"
            )));
        }
        let logprob = options.logprob_threshold;
        if !(logprob.is_finite() && logprob <= 0.0) {
            return Err(Error::Config(format!(
                "--logprob-threshold {logprob}: a mean log-probability, 0 or below"
            )));
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
    /// Whisper takes (half its text context less the two timestamps around it, below: 221
    /// tokens for every released model).
    ///
    /// A packed window is decoded with timestamps, and the prompt is then given between two
    /// (`<|0.00|>` and `<|2.00|>`), as Whisper's own earlier segments would be: given as plain
    /// text, tiny.en often wrote the window with no timestamp at all, as one segment whose
    /// times say too little to give each utterance its own words (BENCHMARKS.md, "A prompt
    /// with packed windows").
    pub fn with_prompt(mut self, prompt: &str) -> Result<Self> {
        let invalid = |problem: &str| Error::Config(format!("the prompt: {problem}"));
        if prompt.trim().is_empty() {
            return Err(invalid("it is empty"));
        }
        if prompt.contains('\0') {
            return Err(invalid("it holds a NUL character"));
        }
        // Whisper's prompt context is half its text context, the start-of-previous token
        // and the two timestamps included.
        let most = usize::try_from(self.context.n_text_ctx() / 2 - 3).unwrap_or(0);
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
        let first_timestamp = self.context.token_beg();
        let timed: Vec<i32> = std::iter::once(first_timestamp)
            .chain(tokens)
            .chain([first_timestamp + PROMPT_END_TIMESTAMP])
            .collect();
        self.options.prompt = Some(prompt.to_owned());
        self.prompt_tokens = Arc::from(timed);
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
