//! The Whisper decoding options of `transcribe`, `live`, `serve` and `worker`.

use clap::Args;

/// The decoding options that change the text (`steno_core::DecodingOptions`): the same for
/// every chunk of a run, and for the workers that serve it.
#[derive(Debug, Clone, Args)]
pub(crate) struct WhisperArgs {
    /// Decode with beam search of N beams instead of greedily (1): often a few words better,
    /// slower (BENCHMARKS.md measures both).
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u16).range(1..=16))]
    pub(crate) beam_size: u16,

    /// Text Whisper hears as said before every utterance: names, jargon and spellings to
    /// prefer ("Minutes of the Dashwood family meeting at Norland Park."). The same for every
    /// utterance, so the text is still the same on every backend. At most 221 tokens.
    #[arg(long, value_name = "TEXT")]
    pub(crate) prompt: Option<String>,

    /// The spoken language: a Whisper code (en, de, fr, es, ...), or `auto` to detect it in
    /// every chunk: each packed window of a file, each utterance in real time or with
    /// --no-pack (one more full-window encoder pass each, about 2 s for base on 2 cores; the
    /// language and its probability are in JSONL and the report). Other languages than
    /// English need a multilingual model (`--model base`).
    #[arg(long, value_name = "CODE", default_value = "en")]
    pub(crate) language: String,

    /// Translate the speech into English text (multilingual models only).
    #[arg(long)]
    pub(crate) translate: bool,

    /// Time every word: JSON Lines finals gain `words` ([{word, start, end, p}]), aligned by
    /// whisper.cpp's DTW on the released Whisper sizes, and subtitle cues split at word times.
    #[arg(long)]
    pub(crate) word_timestamps: bool,

    /// When a decode looks failed (a loop, or a mean log-probability under
    /// --logprob-threshold), decode it again by sampling at temperatures 0.2 to 1.0, as
    /// OpenAI's Whisper does, until one does not (deterministic: the same text on every
    /// backend). Counted in the report's `temperature_fallbacks`.
    #[arg(long)]
    pub(crate) temperature_fallback: bool,

    /// Leave out the text of an utterance Whisper judges to hold no speech: its no-speech
    /// probability (`no_speech_prob` in JSON) over P and its mean log-probability under
    /// --logprob-threshold, OpenAI's rule and default (also faster-whisper's and whisper-cli's).
    /// For noise, music or a cough that the voice detector let through and Whisper would
    /// caption anyway. `off` keeps every caption.
    #[arg(long, value_name = "P|off", value_parser = no_speech_threshold,
          default_value_t = NoSpeechThreshold(Some(steno_core::DecodingOptions::NO_SPEECH_THRESHOLD)))]
    pub(crate) no_speech_threshold: NoSpeechThreshold,

    /// The mean log-probability (`avg_logprob` in JSON) under which a decode counts as failed
    /// for --temperature-fallback and as unsure for --no-speech-threshold.
    #[arg(long, value_name = "L", default_value_t = steno_core::DecodingOptions::LOGPROB_THRESHOLD,
          allow_negative_numbers = true, value_parser = log_probability)]
    pub(crate) logprob_threshold: f32,
}

/// `--no-speech-threshold`: the rule's threshold, or `None` when it is off.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NoSpeechThreshold(Option<f32>);

impl std::fmt::Display for NoSpeechThreshold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(threshold) => write!(f, "{threshold}"),
            None => f.write_str(steno_core::DecodingOptions::OFF),
        }
    }
}

/// A probability from 0 to 1, or `off`.
fn no_speech_threshold(value: &str) -> Result<NoSpeechThreshold, String> {
    if value == steno_core::DecodingOptions::OFF {
        return Ok(NoSpeechThreshold(None));
    }
    match value.parse::<f32>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(NoSpeechThreshold(Some(p))),
        _ => Err("a probability, from 0 to 1, or `off`".to_owned()),
    }
}

/// A mean log-probability: a number of 0 or below.
fn log_probability(value: &str) -> Result<f32, String> {
    match value.parse::<f32>() {
        Ok(l) if l.is_finite() && l <= 0.0 => Ok(l),
        _ => Err("a mean log-probability, 0 or below (-1 is OpenAI's)".to_owned()),
    }
}

impl WhisperArgs {
    /// The options as the library takes them.
    pub(crate) fn options(&self) -> steno_core::DecodingOptions {
        let mut options = steno_core::DecodingOptions::default();
        options.beam_size = usize::from(self.beam_size);
        options.prompt.clone_from(&self.prompt);
        options.language.clone_from(&self.language);
        options.translate = self.translate;
        options.word_timestamps = self.word_timestamps;
        options.temperature_fallback = self.temperature_fallback;
        options.no_speech_threshold = self.no_speech_threshold.0;
        options.logprob_threshold = self.logprob_threshold;
        options
    }
}
