//! The transcription stage: turning a chunk of speech into text.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::stage::window_spans;
use crate::{Chunk, Error, Result};

/// What a [`Transcriber`] made of one chunk.
///
/// ```
/// let done = steno_core::Transcription::from("Hello.".to_owned());
/// assert_eq!((done.text.as_str(), done.full_window_retries), ("Hello.", 0));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Transcription {
    /// The text, or an empty string when there is no speech.
    pub text: String,
    /// Times the chunk was decoded again with Whisper's full 30 s window because the
    /// decode with the window sized to the chunk looked degenerate (a loop, the token budget
    /// used up, nothing at all). Counted in the run report.
    pub full_window_retries: u32,
    /// Times the decode with the window sized to the chunk wrote its transcript over again
    /// (Whisper finished the chunk and started it anew) and was cut after the first copy
    /// instead of decoded again ([`window::first_copy`](crate::window::first_copy)). Counted
    /// in the run report.
    pub restarts_cut: u32,
    /// For a packed window ([`Chunk::utterances`]): the text in pieces with their times, so
    /// each piece can be given to the utterance it was spoken in. Empty otherwise.
    pub timed: Vec<TimedText>,
    /// The language detected in the chunk, when the transcriber detects it (Whisper with
    /// `--language auto`); `None` when the language was given.
    pub language: Option<DetectedLanguage>,
    /// How sure the transcriber is of the text, when it says (Whisper does).
    pub confidence: Option<Confidence>,
    /// The text's words with their times, when they were asked for (Whisper with
    /// `--word-timestamps`); empty otherwise. For a packed window they are in its pieces.
    pub words: Vec<Word>,
    /// Decodes at a temperature above 0 the chunk needed because its decode looked failed
    /// (Whisper with temperature fallback on). Counted in the run report.
    pub temperature_fallbacks: u32,
    /// The transcriber's probability for each word of `text` (split at whitespace), the
    /// lowest of its tokens', when it says (Whisper does for a chunk decoded alone); empty
    /// otherwise. Interim results keep a word out of the stable prefix while Whisper thinks it
    /// less likely than not ([`crate::interim`]).
    pub word_probabilities: Vec<f32>,
}

/// A word of a transcription and when it was spoken, in samples from the chunk's (or, in a
/// [`TimedText`], the window's) first sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Word {
    /// The word as written, punctuation attached (`"Hello,"`).
    pub text: String,
    /// Where it starts.
    pub start: u64,
    /// Where it ends.
    pub end: u64,
    /// The transcriber's probability for it: the lowest of its tokens', 0 to 1.
    pub probability: f32,
}

/// How sure Whisper is of a piece of text: what applications compare to decide what to trust
/// (the fields of OpenAI's `verbose_json` segments).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Confidence {
    /// Mean log-probability of the text's tokens: 0 is certain; Whisper's own fallback treats
    /// below -1 as a failed decode.
    pub avg_logprob: f32,
    /// The probability that the audio held no speech at all.
    pub no_speech_prob: f32,
    /// The text tokens the mean is over.
    pub tokens: u32,
}

impl Confidence {
    /// The confidence of `self`'s and `other`'s text together: the mean over both texts'
    /// tokens, and the larger no-speech probability.
    ///
    /// ```
    /// use steno_core::Confidence;
    /// let a = Confidence { avg_logprob: -0.2, no_speech_prob: 0.1, tokens: 3 };
    /// let b = Confidence { avg_logprob: -1.0, no_speech_prob: 0.3, tokens: 1 };
    /// let both = a.and(b);
    /// assert!((both.avg_logprob + 0.4).abs() < 1e-6);
    /// assert_eq!((both.no_speech_prob, both.tokens), (0.3, 4));
    /// ```
    #[must_use]
    pub fn and(self, other: Confidence) -> Confidence {
        let tokens = self.tokens + other.tokens;
        let sum = self.avg_logprob * self.tokens as f32 + other.avg_logprob * other.tokens as f32;
        Confidence {
            avg_logprob: if tokens == 0 {
                0.0
            } else {
                sum / tokens as f32
            },
            no_speech_prob: self.no_speech_prob.max(other.no_speech_prob),
            tokens,
        }
    }

    /// `a` and `b` together ([`Confidence::and`]), either one alone, or none.
    pub fn both(a: Option<Confidence>, b: Option<Confidence>) -> Option<Confidence> {
        match (a, b) {
            (Some(a), Some(b)) => Some(a.and(b)),
            (a, b) => a.or(b),
        }
    }
}

/// The language a transcriber detected in a chunk.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectedLanguage {
    /// Whisper's code for it: `en`, `de`, `fr`, ...
    pub code: String,
    /// The detector's probability for it, 0 to 1.
    pub probability: f32,
}

/// A piece of a packed window's text and when it was spoken, in samples from the window's
/// first sample ([`window_spans`]).
#[derive(Debug, Clone, PartialEq)]
pub struct TimedText {
    /// Where the piece starts.
    pub start: u64,
    /// Where it ends.
    pub end: u64,
    /// Its words.
    pub text: String,
    /// How sure the transcriber is of them, when it says.
    pub confidence: Option<Confidence>,
    /// Its words with their times, when they were asked for.
    pub words: Vec<Word>,
}

impl From<String> for Transcription {
    fn from(text: String) -> Self {
        Transcription {
            text,
            full_window_retries: 0,
            restarts_cut: 0,
            timed: Vec::new(),
            language: None,
            confidence: None,
            words: Vec::new(),
            temperature_fallbacks: 0,
            word_probabilities: Vec::new(),
        }
    }
}

/// Transcribes chunks one at a time. One instance per worker; it may keep state (a Whisper
/// state with its buffers) between chunks, but its output for a chunk must not depend on the
/// chunks before it, so that any backend, in any order, gets the same text.
pub trait Transcriber: Send {
    /// The text spoken in `chunk` (empty when there is no speech) and how it was obtained.
    ///
    /// # Errors
    /// Returns [`Error::Transcribe`] naming the chunk when transcription fails.
    fn transcribe(&mut self, chunk: &Chunk) -> Result<Transcription>;

    /// The text of a partial chunk (interim results), or `None` when it was overtaken by newer
    /// audio before its decode finished: a transcriber that can stop midway checks
    /// `overtaken` while it works, so the utterance's final text need not wait for it. By
    /// default it decodes to the end, as [`transcribe`](Self::transcribe).
    ///
    /// # Errors
    /// As [`transcribe`](Self::transcribe).
    fn transcribe_partial(
        &mut self,
        chunk: &Chunk,
        overtaken: &crate::Overtaken,
    ) -> Result<Option<Transcription>> {
        let _ = overtaken;
        self.transcribe(chunk).map(Some)
    }
}

/// Makes [`Transcriber`]s that share one loaded model: a backend asks for one per worker.
pub trait TranscriberFactory: Send + Sync {
    /// What transcribes, for reports: a model path or a description.
    fn name(&self) -> String;

    /// CPU threads one transcriber uses while it works; backends size their worker pools so
    /// that workers x threads does not exceed the cores.
    fn threads_per_transcriber(&self) -> usize {
        1
    }

    /// A new transcriber.
    ///
    /// # Errors
    /// Returns [`Error::Model`] when a worker's state cannot be created (for example, out of
    /// memory).
    fn create(&self) -> Result<Box<dyn Transcriber>>;
}

/// How many transcribers using `threads_per_transcriber` threads each fit side by side on this
/// machine's cores: at least one, and at most `at_most` when given. Backends size their worker
/// pools with it, so that (concurrent transcribers) x (threads per transcriber) never
/// oversubscribes the cores.
pub fn transcribers_fitting_cores(threads_per_transcriber: usize, at_most: Option<usize>) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let fit = (cores / threads_per_transcriber.max(1)).max(1);
    at_most.map_or(fit, |most| fit.min(most.max(1)))
}

/// The scripted transcriber's name, and the first word of its [`spec`](ScriptedTranscriber::spec).
const SCRIPTED: &str = "scripted";

/// A stand-in transcriber for fast tests and benchmarks of the pipeline itself: it returns
/// text derived from the chunk's position, takes a configurable time per second of audio, and
/// can fail on a chosen chunk.
///
/// ```
/// use steno_core::{Chunk, ScriptedTranscriber, Transcriber};
/// let mut transcriber = ScriptedTranscriber::new();
/// let chunk = Chunk::new(2, 16_000, vec![0.0; 8_000]);
/// assert_eq!(transcriber.transcribe(&chunk).unwrap().text, "chunk 2 at 1.00-1.50");
/// ```
#[derive(Debug, Clone, Default)]
pub struct ScriptedTranscriber {
    cost_per_audio_second: Duration,
    fail_on_chunk: Option<usize>,
    texts: Option<Vec<String>>,
}

impl ScriptedTranscriber {
    /// A scripted transcriber that costs nothing and never fails.
    pub fn new() -> Self {
        Self::default()
    }

    /// Spends `cost` of wall time (sleeping) per second of audio, like a model would.
    #[must_use]
    pub fn with_cost_per_audio_second(mut self, cost: Duration) -> Self {
        self.cost_per_audio_second = cost;
        self
    }

    /// Fails with [`Error::Transcribe`] on the chunk with this index.
    #[must_use]
    pub fn with_failure_on_chunk(mut self, index: usize) -> Self {
        self.fail_on_chunk = Some(index);
        self
    }

    /// Returns `texts[i]` for chunk `i` (chunks past the end get the default text).
    #[must_use]
    pub fn with_texts(mut self, texts: Vec<String>) -> Self {
        self.texts = Some(texts);
        self
    }

    /// One line that [`from_spec`](Self::from_spec) turns back into this transcriber, so the
    /// same script can run in another process (a worker of the process backend):
    /// `scripted`, or `scripted` followed by `cost-us-per-s=N` (microseconds per second of
    /// audio) and `fail-on-chunk=K`. `None` when it has scripted texts, which a spec does not
    /// carry.
    ///
    /// ```
    /// use std::time::Duration;
    /// use steno_core::ScriptedTranscriber;
    /// let script = ScriptedTranscriber::new()
    ///     .with_cost_per_audio_second(Duration::from_millis(20))
    ///     .with_failure_on_chunk(3);
    /// let spec = script.spec().unwrap();
    /// assert_eq!(spec, "scripted cost-us-per-s=20000 fail-on-chunk=3");
    /// assert_eq!(ScriptedTranscriber::from_spec(&spec).unwrap().spec(), Some(spec));
    /// assert!(ScriptedTranscriber::from_spec("whisper").is_err());
    /// ```
    pub fn spec(&self) -> Option<String> {
        if self.texts.is_some() {
            return None;
        }
        let mut spec = String::from(SCRIPTED);
        if !self.cost_per_audio_second.is_zero() {
            spec.push_str(&format!(
                " cost-us-per-s={}",
                self.cost_per_audio_second.as_micros()
            ));
        }
        if let Some(index) = self.fail_on_chunk {
            spec.push_str(&format!(" fail-on-chunk={index}"));
        }
        Some(spec)
    }

    /// The scripted transcriber a [`spec`](Self::spec) describes.
    ///
    /// # Errors
    /// [`Error::Config`] naming the spec and the part of it that is not understood.
    pub fn from_spec(spec: &str) -> Result<Self> {
        let invalid =
            |problem: String| Error::Config(format!("scripted transcriber `{spec}`: {problem}"));
        let mut words = spec.split_whitespace();
        if words.next() != Some(SCRIPTED) {
            return Err(invalid(format!("a spec starts with `{SCRIPTED}`")));
        }
        let mut script = ScriptedTranscriber::new();
        for word in words {
            let (key, value) = word
                .split_once('=')
                .ok_or_else(|| invalid(format!("`{word}` is not key=value")))?;
            let number: u64 = value
                .parse()
                .map_err(|_| invalid(format!("`{value}` is not a whole number")))?;
            match key {
                "cost-us-per-s" => {
                    script = script.with_cost_per_audio_second(Duration::from_micros(number));
                }
                "fail-on-chunk" => {
                    let index = usize::try_from(number)
                        .map_err(|_| invalid(format!("chunk {number} is out of range")))?;
                    script = script.with_failure_on_chunk(index);
                }
                other => return Err(invalid(format!("unknown setting `{other}`"))),
            }
        }
        Ok(script)
    }
}

impl ScriptedTranscriber {
    /// The text of utterance `index` spanning `start..end` (samples).
    fn text_of(&self, index: usize, start: u64, end: u64) -> String {
        if let Some(text) = self.texts.as_ref().and_then(|t| t.get(index)) {
            return text.clone();
        }
        let rate = f64::from(crate::SAMPLE_RATE);
        format!(
            "chunk {index} at {:.2}-{:.2}",
            start as f64 / rate,
            end as f64 / rate
        )
    }
}

impl Transcriber for ScriptedTranscriber {
    fn transcribe(&mut self, chunk: &Chunk) -> Result<Transcription> {
        if !self.cost_per_audio_second.is_zero() {
            std::thread::sleep(self.cost_per_audio_second.mul_f64(chunk.seconds()));
        }
        self.script(chunk)
    }

    /// Spends its cost in steps of at most 5 ms and stops at the first step that finds the
    /// chunk overtaken, as `WhisperTranscriber` stops between decoder steps.
    fn transcribe_partial(
        &mut self,
        chunk: &Chunk,
        overtaken: &crate::Overtaken,
    ) -> Result<Option<Transcription>> {
        const STEP: Duration = Duration::from_millis(5);
        let mut left = self.cost_per_audio_second.mul_f64(chunk.seconds());
        while !left.is_zero() {
            if overtaken.is_overtaken() {
                return Ok(None);
            }
            let step = left.min(STEP);
            std::thread::sleep(step);
            left -= step;
        }
        self.script(chunk).map(Some)
    }
}

impl ScriptedTranscriber {
    /// The scripted answer for `chunk`, its cost spent.
    fn script(&self, chunk: &Chunk) -> Result<Transcription> {
        if self.fail_on_chunk == Some(chunk.index) {
            return Err(Error::transcribe(chunk.index, "scripted failure"));
        }
        if !chunk.utterances.is_empty() {
            // A packed window: each utterance's own text, timed inside it, as if unpacked.
            let timed: Vec<TimedText> = chunk
                .utterances
                .iter()
                .zip(window_spans(&chunk.utterances))
                .map(|(u, span)| TimedText {
                    start: span.start,
                    end: span.end,
                    text: self.text_of(u.index, u.start_sample, u.end_sample),
                    confidence: None,
                    words: Vec::new(),
                })
                .collect();
            let text = timed
                .iter()
                .map(|piece| piece.text.as_str())
                .collect::<Vec<_>>()
                .join(" ");
            return Ok(Transcription {
                text,
                full_window_retries: 0,
                restarts_cut: 0,
                timed,
                language: None,
                confidence: None,
                words: Vec::new(),
                temperature_fallbacks: 0,
                word_probabilities: Vec::new(),
            });
        }
        Ok(self
            .text_of(chunk.index, chunk.start_sample, chunk.end_sample())
            .into())
    }
}

impl TranscriberFactory for ScriptedTranscriber {
    fn name(&self) -> String {
        SCRIPTED.into()
    }

    fn create(&self) -> Result<Box<dyn Transcriber>> {
        Ok(Box::new(self.clone()))
    }
}

/// Counts what a backend does with a transcriber factory: the states it creates and the most
/// transcriptions running at once. For tests of a backend's scheduling; the text, cost and
/// threads are `inner`'s.
///
/// ```
/// use steno_core::{Chunk, CountingTranscriber, ScriptedTranscriber, TranscriberFactory};
/// let counting = CountingTranscriber::new(ScriptedTranscriber::new());
/// let mut state = counting.create()?;
/// state.transcribe(&Chunk::new(0, 0, vec![0.0; 1_600]))?;
/// assert_eq!((counting.created(), counting.most_at_once()), (1, 1));
/// # Ok::<(), steno_core::Error>(())
/// ```
pub struct CountingTranscriber {
    inner: Box<dyn TranscriberFactory>,
    counts: Arc<Counts>,
}

/// What [`CountingTranscriber`] counts, shared with the states it made.
#[derive(Debug, Default)]
struct Counts {
    created: AtomicUsize,
    running: AtomicUsize,
    most_running: AtomicUsize,
}

impl Counts {
    /// Runs `work` counted as one transcription running.
    fn running<T>(&self, work: impl FnOnce() -> T) -> T {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_running.fetch_max(now, Ordering::SeqCst);
        let outcome = work();
        self.running.fetch_sub(1, Ordering::SeqCst);
        outcome
    }
}

impl CountingTranscriber {
    /// Counts what is done with `inner`.
    pub fn new(inner: impl TranscriberFactory + 'static) -> Self {
        CountingTranscriber {
            inner: Box::new(inner),
            counts: Arc::default(),
        }
    }

    /// The states created so far.
    pub fn created(&self) -> usize {
        self.counts.created.load(Ordering::SeqCst)
    }

    /// The most transcriptions (final or partial) that ran at the same time.
    pub fn most_at_once(&self) -> usize {
        self.counts.most_running.load(Ordering::SeqCst)
    }
}

impl std::fmt::Debug for CountingTranscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CountingTranscriber")
            .field("inner", &self.inner.name())
            .field("counts", &self.counts)
            .finish()
    }
}

impl TranscriberFactory for CountingTranscriber {
    fn name(&self) -> String {
        self.inner.name()
    }

    fn threads_per_transcriber(&self) -> usize {
        self.inner.threads_per_transcriber()
    }

    fn create(&self) -> Result<Box<dyn Transcriber>> {
        self.counts.created.fetch_add(1, Ordering::SeqCst);
        Ok(Box::new(CountingState {
            inner: self.inner.create()?,
            counts: Arc::clone(&self.counts),
        }))
    }
}

/// A state of a [`CountingTranscriber`].
struct CountingState {
    inner: Box<dyn Transcriber>,
    counts: Arc<Counts>,
}

impl Transcriber for CountingState {
    fn transcribe(&mut self, chunk: &Chunk) -> Result<Transcription> {
        self.counts.running(|| self.inner.transcribe(chunk))
    }

    fn transcribe_partial(
        &mut self,
        chunk: &Chunk,
        overtaken: &crate::Overtaken,
    ) -> Result<Option<Transcription>> {
        self.counts
            .running(|| self.inner.transcribe_partial(chunk, overtaken))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripted_failure_names_the_chunk() {
        let mut transcriber = ScriptedTranscriber::new().with_failure_on_chunk(1);
        let chunk = |index| Chunk::new(index, 0, vec![0.0; 10]);
        assert!(transcriber.transcribe(&chunk(0)).is_ok());
        let err = transcriber.transcribe(&chunk(1)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "transcriber failed on chunk 1: scripted failure"
        );
    }

    #[test]
    fn transcribers_never_oversubscribe_and_never_drop_to_zero() {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        assert_eq!(transcribers_fitting_cores(1, None), cores);
        assert_eq!(transcribers_fitting_cores(cores + 1, None), 1);
        assert_eq!(transcribers_fitting_cores(0, None), cores);
        assert_eq!(transcribers_fitting_cores(1, Some(1)), 1);
        assert_eq!(transcribers_fitting_cores(1, Some(0)), 1);
        assert_eq!(transcribers_fitting_cores(1, Some(cores + 8)), cores);
    }

    #[test]
    fn specs_name_what_they_cannot_read() {
        let error = |spec: &str| {
            ScriptedTranscriber::from_spec(spec)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            ScriptedTranscriber::from_spec("scripted")
                .unwrap()
                .spec()
                .unwrap(),
            "scripted"
        );
        assert!(error("scripted cost-us-per-s=ten").contains("`ten` is not a whole number"));
        assert!(error("scripted fail-on-chunk").contains("`fail-on-chunk` is not key=value"));
        assert!(error("scripted speed=3").contains("unknown setting `speed`"));
        assert!(error("models/ggml-tiny.en.bin").contains("starts with `scripted`"));
        assert_eq!(ScriptedTranscriber::new().with_texts(vec![]).spec(), None);
    }

    #[test]
    fn scripted_texts_are_used_in_order() {
        let factory = ScriptedTranscriber::new().with_texts(vec!["hello".into()]);
        let mut transcriber = factory.create().unwrap();
        let chunk = Chunk::new(0, 0, vec![]);
        assert_eq!(transcriber.transcribe(&chunk).unwrap().text, "hello");
    }
}
