//! What a run writes: each utterance's final [`Segment`] and, with interim results, the
//! [`Partial`] hypotheses before it; their JSON forms are the JSON Lines contract.

use serde::{Deserialize, Serialize};

/// One transcribed utterance, as written to outputs. Its JSON form is the JSON Lines contract
/// (`type` is `final`; a line of [`Partial`] has `partial`):
///
/// ```json
/// {"type":"final","chunk":3,"start":12.48,"end":15.92,"speech_end":15.72,"text":"He was not an ill-disposed young man.","emitted_at":16.31,"latency_ms":392}
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Segment {
    /// Index of the chunk this text came from.
    pub chunk: usize,
    /// The label of the source it was heard in, when the run's sources are labelled (see
    /// [`PipelineBuilder::source`](crate::PipelineBuilder::source)); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Start, in seconds of audio from the start of the stream.
    pub start: f64,
    /// End, in seconds of audio from the start of the stream.
    pub end: f64,
    /// End of speech: the end of the last voiced frame (before the trailing padding), in
    /// seconds of audio from the start of the stream.
    #[serde(default)]
    pub speech_end: f64,
    /// The words.
    pub text: String,
    /// The language detected in the utterance, when it was detected (`--language auto`):
    /// Whisper's code for it (`en`, `de`, ...); absent when the language was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// The detector's probability for [`language`](Self::language), 0 to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language_probability: Option<f32>,
    /// Mean log-probability of the text's tokens, when the transcriber says (Whisper does): 0
    /// is certain, below -1 doubtful.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avg_logprob: Option<f32>,
    /// The probability that the audio held no speech, when the transcriber says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_speech_prob: Option<f32>,
    /// The words with their times, when they were asked for (`--word-timestamps`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub words: Option<Vec<TimedWord>>,
    /// Wall-clock seconds from the start of the stream to writing this segment.
    pub emitted_at: f64,
    /// From the moment the chunk's last sample was available to the pipeline until this
    /// segment was written, in milliseconds.
    pub latency_ms: u64,
}

/// A word of a [`Segment`] and when it was spoken.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimedWord {
    /// The word, punctuation attached.
    pub word: String,
    /// Start, in seconds of audio from the start of the stream.
    pub start: f64,
    /// End, in seconds of audio from the start of the stream.
    pub end: f64,
    /// The transcriber's probability for it (its least likely token's), 0 to 1.
    pub p: f32,
}

impl Segment {
    /// A segment of `text` for chunk `chunk`, from `start` to `end` seconds of audio, its speech
    /// ending at `end`, written at once: for sinks' tests and examples (a run's segments come
    /// from its emitter, with their times measured).
    pub fn new(chunk: usize, start: f64, end: f64, text: impl Into<String>) -> Self {
        Segment {
            chunk,
            source: None,
            start,
            end,
            speech_end: end,
            text: text.into(),
            language: None,
            language_probability: None,
            avg_logprob: None,
            no_speech_prob: None,
            words: None,
            emitted_at: 0.0,
            latency_ms: 0,
        }
    }

    /// The same segment, heard in the source labelled `label`.
    #[must_use]
    pub fn with_source(mut self, label: impl Into<String>) -> Self {
        self.source = Some(label.into());
        self
    }
}

/// A partial hypothesis of an utterance still being spoken (interim results, see
/// [`RunOptions::interim_step`](crate::RunOptions::interim_step)). Later partials of the same
/// utterance keep `stable` (a prefix of `text`, never shrinking); the utterance's final
/// [`Segment`] has the same `chunk`. Its JSON line:
///
/// ```json
/// {"type":"partial","chunk":3,"start":12.48,"end":14.0,"text":"He was not an ill","stable":"He was not","emitted_at":14.21,"latency_ms":206}
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Partial {
    /// Index of the chunk the utterance's final segment will have.
    pub chunk: usize,
    /// Start of the utterance, in seconds of audio from the start of the stream.
    pub start: f64,
    /// Where the audio this hypothesis heard ends (the partial point), in seconds.
    pub end: f64,
    /// The whole hypothesis: the stable words, then the rest.
    pub text: String,
    /// The start of `text` that later partials of the utterance keep: whole words, without
    /// the punctuation after the last of them (`"of his life"` of `"of his life. Had"`).
    pub stable: String,
    /// Wall-clock seconds from the start of the stream to writing this partial.
    pub emitted_at: f64,
    /// From the moment the partial point's audio was available until this was written, in
    /// milliseconds.
    pub latency_ms: u64,
}

impl Partial {
    /// A partial of `text` (of which `stable` is the kept prefix) for chunk `chunk`, from
    /// `start` to `end` seconds of audio, written at once: for sinks' tests and examples.
    pub fn new(
        chunk: usize,
        start: f64,
        end: f64,
        text: impl Into<String>,
        stable: impl Into<String>,
    ) -> Self {
        Partial {
            chunk,
            start,
            end,
            text: text.into(),
            stable: stable.into(),
            emitted_at: 0.0,
            latency_ms: 0,
        }
    }

    /// The part of `text` after `stable`: the words that may still change.
    pub fn unstable(&self) -> &str {
        self.after_stable().trim_start()
    }

    /// The part of `text` after `stable` as it stands, with the space or the punctuation
    /// that follows the stable words (`". Had"` of `"of his life. Had"`): what a display
    /// writes after the stable text.
    pub fn after_stable(&self) -> &str {
        self.text.get(self.stable.len()..).unwrap_or_default()
    }

    /// Whether `stable` begins `text` in whole words, as the stability contract promises:
    /// what follows it is nothing, or the punctuation after its last word up to a space.
    ///
    /// ```
    /// use steno_core::Partial;
    /// assert!(Partial::new(0, 0.0, 1.0, "of his life. Had", "of his life").stable_is_whole_words());
    /// assert!(!Partial::new(0, 0.0, 1.0, "paid 10,000", "paid 10").stable_is_whole_words());
    /// ```
    pub fn stable_is_whole_words(&self) -> bool {
        crate::interim::begins_with(&self.text, &self.stable)
    }
}

/// What a run writes: an utterance's final segment or a partial hypothesis of one. Sinks that
/// hand both on in one stream ([`ChannelSink::with_partials`](crate::ChannelSink::with_partials), the async `segment_stream`)
/// carry this.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Update {
    /// A partial hypothesis; later updates of its utterance replace it.
    Partial(Partial),
    /// The utterance's final text.
    Final(Segment),
}
