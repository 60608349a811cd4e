//! The Whisper transcriber: whisper.cpp through `whisper-rs`, with every parameter that
//! affects the output pinned here, in one place, for every backend (the window sizing and its
//! guard are in [`crate::window`]).

use std::borrow::Cow;
use std::io::Read;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Once};

use whisper_rs::{
    FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters, WhisperState,
};

mod abort;
mod clean;
mod fallback;
mod first_timestamp;
mod full;
mod guard;
mod language;
mod no_speech;
mod options;
mod packed;
mod upstream_beams;
mod words;

use abort::stop_when_overtaken;
pub use clean::clean_text;
use full::{Decoded, run_full};
pub use language::language_name;
pub use options::DecodingOptions;
use packed::{decode_alone, wordless_utterance};

use crate::window::{MIN_INPUT_SAMPLES, WindowPlan, degenerate};
use crate::{
    Chunk, DetectedLanguage, Error, Overtaken, Result, Transcriber, TranscriberFactory,
    Transcription,
};

/// The magic number at the start of every ggml Whisper model ("ggml" as a little-endian u32).
const GGML_MAGIC: u32 = 0x6767_6d6c;

/// Threads each Whisper state uses by default. Two saturate the two cores steno is tuned on;
/// backends running several states at once divide the cores between them. For a whole file,
/// states of one thread each decode faster together (independent windows side by side; the
/// CLI's default offline): load the model with `threads_per_state` 1 and every backend runs
/// one state per core.
pub const DEFAULT_THREADS_PER_STATE: usize = 2;

/// A Whisper model loaded once and shared by every worker (each gets its own state).
///
/// ```no_run
/// use steno_core::{Chunk, TranscriberFactory, WhisperModel};
/// let model = WhisperModel::load("models/ggml-tiny.en-q8_0.bin", 2)?;
/// let mut transcriber = model.create()?;
/// let samples = steno_core::read_file("speech.wav")?;
/// let done = transcriber.transcribe(&Chunk::new(0, 0, samples))?;
/// println!("{}", done.text);
/// # Ok::<(), steno_core::Error>(())
/// ```
pub struct WhisperModel {
    /// Shared with each transcriber that may need a fresh state (temperature fallback).
    context: Arc<WhisperContext>,
    path: PathBuf,
    threads_per_state: usize,
    options: DecodingOptions,
    /// The prompt's tokens between two timestamps (empty without one), made once: every
    /// decode is given them ([`Settings::prompt`]).
    prompt_tokens: Arc<[i32]>,
    /// The context was loaded with DTW alignment: words are timed by it.
    aligned: bool,
}

impl std::fmt::Debug for WhisperModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WhisperModel")
            .field("path", &self.path)
            .field("threads_per_state", &self.threads_per_state)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl WhisperModel {
    /// Loads the ggml model at `path`; each state will run inference on `threads_per_state`
    /// threads.
    ///
    /// # Errors
    /// Returns [`Error::Model`] naming the file when it is missing, not a ggml Whisper model,
    /// or fails to load.
    pub fn load(path: impl AsRef<Path>, threads_per_state: usize) -> Result<Self> {
        let path = path.as_ref();
        check_model_file(path)?;
        route_whisper_logs_to_tracing();
        let mut params = WhisperContextParameters::default();
        params.use_gpu(false);
        let context = WhisperContext::new_with_params(path, params)
            .map_err(|e| Error::model_caused_by(path, "whisper.cpp could not load it", e))?;
        Ok(WhisperModel {
            context: Arc::new(context),
            path: path.to_path_buf(),
            threads_per_state: threads_per_state.max(1),
            options: DecodingOptions::default(),
            prompt_tokens: Arc::from([]),
            aligned: false,
        })
    }

    /// Where the model was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// whisper.cpp's own long-form transcription of a whole recording, decoded the way its
    /// `whisper-cli` does by default (beam search of 5, temperature fallback, timestamps),
    /// with no text carried from one 30 s window to the next (`-mc 0`): the anchor `cargo
    /// xtask compare --anchors` measures steno against. Not a pipeline stage: it needs the
    /// whole recording at once and gives one text.
    ///
    /// Its beam search is upstream's, which draws each beam's candidates at random
    /// (`vendor/README.md`): while this runs, beam decodes elsewhere in the process draw too.
    /// `steno floor --whisper-cli` runs it alone in its process.
    ///
    /// # Errors
    /// [`Error::Model`] when no state can be created; [`Error::Transcribe`] (chunk 0) when
    /// whisper.cpp fails.
    pub fn transcribe_like_whisper_cli(&self, samples: &[f32]) -> Result<String> {
        let mut transcriber = self.transcriber()?;
        let mut params = FullParams::new(SamplingStrategy::BeamSearch {
            beam_size: 5,
            patience: -1.0,
        });
        params.set_n_threads(i32::try_from(self.threads_per_state).unwrap_or(1));
        params.set_language(Some("en"));
        params.set_n_max_text_ctx(0);
        params.set_print_special(false);
        params.set_print_progress(false);
        params.set_print_realtime(false);
        params.set_print_timestamps(false);
        let eot = transcriber.settings.tokens.eot;
        let _upstream = upstream_beams::UpstreamBeamSearch::on();
        Ok(run_full(&mut transcriber.state, params, samples, 0, None, eot, None)?.text)
    }

    /// A transcriber with its own state on this model.
    ///
    /// # Errors
    /// Returns [`Error::Model`] when whisper.cpp cannot allocate a state.
    pub fn transcriber(&self) -> Result<WhisperTranscriber> {
        let create_state = || {
            self.context
                .create_state()
                .map_err(|e| Error::model_caused_by(&self.path, "cannot create a state", e))
        };
        let state = create_state()?;
        let detector = if self.options.detects_language() {
            Some(create_state()?)
        } else {
            None
        };
        Ok(WhisperTranscriber {
            state,
            detector,
            context: Arc::clone(&self.context),
            settings: Settings {
                threads: self.threads_per_state,
                options: self.options.clone(),
                prompt_tokens: Arc::clone(&self.prompt_tokens),
                aligned: self.aligned,
                tokens: SpecialTokens {
                    eot: self.context.token_eot(),
                    sot: self.context.token_sot(),
                    prev: self.context.token_prev(),
                    no_speech: self.context.token_nosp(),
                },
            },
        })
    }
}

impl TranscriberFactory for WhisperModel {
    /// The model's path and its decoding options other than the defaults (a prompt by its
    /// hash): what a worker must serve.
    fn name(&self) -> String {
        WhisperModel::name_for(&self.path, &self.options())
    }

    fn threads_per_transcriber(&self) -> usize {
        self.threads_per_state
    }

    fn create(&self) -> Result<Box<dyn Transcriber>> {
        Ok(Box::new(self.transcriber()?))
    }
}

/// Checks the file before whisper.cpp sees it, so a wrong file gets a clear message.
fn check_model_file(path: &Path) -> Result<()> {
    let mut file = std::fs::File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::model(path, "no such file"),
        _ => Error::model_caused_by(path, "cannot read", e),
    })?;
    if file.metadata().is_ok_and(|m| m.is_dir()) {
        return Err(Error::model(path, "is a directory, not a model file"));
    }
    let mut magic = [0u8; 4];
    file.read_exact(&mut magic)
        .map_err(|_| Error::model(path, "not a ggml Whisper model (file too short)"))?;
    if u32::from_le_bytes(magic) != GGML_MAGIC {
        return Err(Error::model(
            path,
            "not a ggml Whisper model (bad magic number)",
        ));
    }
    Ok(())
}

fn route_whisper_logs_to_tracing() {
    static ONCE: Once = Once::new();
    ONCE.call_once(whisper_rs::install_logging_hooks);
}

/// One Whisper state: transcribes chunks one at a time.
pub struct WhisperTranscriber {
    state: WhisperState,
    /// With `auto`: the state that detects the language (see `detect_language`).
    detector: Option<WhisperState>,
    /// The model, to make a fresh state for each temperature-fallback decode.
    context: Arc<WhisperContext>,
    settings: Settings,
}

impl std::fmt::Debug for WhisperTranscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WhisperTranscriber")
            .field("threads", &self.settings.threads)
            .field("options", &self.settings.options)
            .finish_non_exhaustive()
    }
}

/// What every decode of a transcriber is given, fixed for the run. Everything that changes
/// the text is set from here ([`Settings::params`]), so every backend, worker and run
/// produces the same output for the same chunk.
struct Settings {
    threads: usize,
    options: DecodingOptions,
    /// The prompt's tokens between two timestamps (empty without one): see [`Settings::prompt`].
    prompt_tokens: Arc<[i32]>,
    /// Words are timed by DTW alignment (else by whisper.cpp's token timestamps).
    aligned: bool,
    tokens: SpecialTokens,
}

/// The model's special tokens steno uses.
#[derive(Debug, Clone, Copy)]
struct SpecialTokens {
    /// End of text: ids from it on are special (timestamps, markers), not text.
    eot: i32,
    /// Start of transcript.
    sot: i32,
    /// Opens the text said before (the prompt).
    prev: i32,
    /// No speech: what Whisper predicts after start of transcript for audio without speech.
    no_speech: i32,
}

impl Settings {
    /// The prompt as a decode is given it: between its two timestamps when the decode is
    /// `timed` (a packed window's), as plain text otherwise (empty without a prompt).
    fn prompt(&self, timed: bool) -> &[i32] {
        match &*self.prompt_tokens {
            [_, text @ .., _] if !timed => text,
            all => all,
        }
    }

    /// With word timestamps: whether the words are aligned by DTW; `None` without them.
    fn words(&self) -> Option<bool> {
        self.options.word_timestamps.then_some(self.aligned)
    }

    /// The language to decode in: the detected one with `auto`, else the one given.
    fn language<'a>(&'a self, detected: Option<&'a DetectedLanguage>) -> &'a str {
        detected.map_or(self.options.language.as_str(), |found| found.code.as_str())
    }

    /// The options' search: greedy, or beam search with their beams.
    fn search(&self) -> SamplingStrategy {
        match self.options.beam_size {
            0 | 1 => SamplingStrategy::Greedy { best_of: 1 },
            beams => SamplingStrategy::BeamSearch {
                beam_size: i32::try_from(beams).unwrap_or(1),
                // whisper.cpp's default: no patience factor.
                patience: -1.0,
            },
        }
    }

    /// One whole decode (not a partial) of chunk `index`'s `samples` on `state` by `search`
    /// (a strategy and its temperature) under `plan`, in the `detected` language (else the
    /// one given), with segment timestamps when `spans` (a packed window's utterances: its
    /// pieces are cut where they meet, `run_full`), and words when asked for; its
    /// confidence carries the no-speech probability. The chunk's decode and each temperature
    /// fallback's are this.
    #[allow(
        clippy::too_many_arguments,
        reason = "one decode's inputs, each used once"
    )]
    fn decode(
        &self,
        state: &mut WhisperState,
        samples: &[f32],
        index: usize,
        plan: WindowPlan,
        spans: Option<&[Range<u64>]>,
        detected: Option<&DetectedLanguage>,
        (strategy, temperature): (SamplingStrategy, f32),
    ) -> Result<Decoded> {
        let words = self.words();
        let language = self.language(detected);
        let timestamps = spans.is_some();
        let mut params = self.params(strategy, plan, timestamps, language, words.is_some());
        params.set_temperature(temperature);
        let mut decoded = run_full(state, params, samples, index, spans, self.tokens.eot, words)?;
        decoded.language = detected.cloned();
        self.set_no_speech(state, index, &mut decoded)?;
        Ok(decoded)
    }

    /// The parameters of one decode by `strategy` in `language` under `plan`, with segment
    /// timestamps when the chunk is a packed window and token timestamps when `words`.
    fn params<'a>(
        &'a self,
        strategy: SamplingStrategy,
        plan: WindowPlan,
        timestamps: bool,
        language: &'a str,
        words: bool,
    ) -> FullParams<'a, 'a> {
        let mut params = FullParams::new(strategy);
        params.set_n_threads(i32::try_from(self.threads).unwrap_or(1));
        // 0 is whisper.cpp's "the model's full window" and "no limit of our own".
        let audio_ctx = if plan.is_full() { 0 } else { plan.audio_ctx };
        params.set_audio_ctx(i32::try_from(audio_ctx).unwrap_or(0));
        params.set_max_tokens(plan.max_tokens.map_or(0, |n| i32::try_from(n).unwrap_or(0)));
        // The language is given, never left to whisper.cpp to detect: its own detection runs
        // the encoder with the window size of the state's previous decode, which would make
        // the text depend on which chunk a state saw before (`detect_language` does it
        // deterministically).
        params.set_language(Some(language));
        params.set_translate(self.options.translate);
        // A packed window's words are timed even when not asked for: they say where to cut a
        // segment that runs over two utterances.
        params.set_token_timestamps(words || timestamps);
        // Each chunk stands alone: no text carried over from earlier chunks, so the order in
        // which workers see chunks cannot change the output.
        params.set_no_context(true);
        // The initial prompt, the same for every chunk. Given as tokens (made once per
        // model): whisper-rs leaks the string it is given as text on every call.
        let prompt = self.prompt(timestamps);
        if !prompt.is_empty() {
            params.set_tokens(prompt);
        }
        // Temperature 0 and no fallback inside whisper.cpp: decoding is deterministic (the
        // opt-in fallback is steno's own, `whisper/fallback.rs`).
        params.set_temperature(0.0);
        params.set_temperature_inc(0.0);
        // whisper.cpp's own no-speech rule off (a probability is never over 1): it drops a
        // segment by a no-speech probability read from a row of logits the decode never
        // wrote, which holds whatever the state's previous decode left there, so the text of
        // a low-confidence chunk depended on which chunk the state had decoded before
        // (upstream whisper.cpp #3945 and #4068). steno's rule, `--no-speech-threshold`,
        // computes the probability itself (`whisper/no_speech.rs`).
        params.set_no_speech_thold(1.0);
        params.set_suppress_blank(true);
        params.set_suppress_nst(true);
        // A lone utterance is one segment; a packed window's segments are timed, so that each
        // piece of text can go back to the utterance it was spoken in.
        params.set_no_timestamps(!timestamps);
        if timestamps {
            first_timestamp::open_with_a_timestamp(&mut params);
        }
        params.set_print_special(false);
        params.set_print_progress(false);
        params.set_print_realtime(false);
        params.set_print_timestamps(false);
        params
    }
}

/// What one unguarded decode gave ([`WhisperTranscriber::decode`]).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Decode {
    /// The cleaned text.
    pub text: String,
    /// Tokens of the longest segment (what the window's token budget limits).
    pub tokens: usize,
    /// Mean log-probability of the text tokens: Whisper's own confidence (0 without text).
    pub avg_logprob: f32,
}

impl WhisperTranscriber {
    /// One whisper.cpp call on chunk `index`'s `samples` under `plan`, without the guard:
    /// the cleaned text, the tokens written and Whisper's confidence. Pipelines use
    /// [`Transcriber::transcribe`]; this is for measuring window recipes
    /// (`examples/window_sweep.rs`).
    ///
    /// # Errors
    /// [`Error::Transcribe`] naming the chunk when whisper.cpp fails.
    pub fn decode(&mut self, index: usize, samples: &[f32], plan: WindowPlan) -> Result<Decode> {
        let detected = self.detect_language(index, samples)?;
        let decoded = self.decode_timed(index, samples, plan, None, detected)?;
        Ok(Decode {
            text: decoded.text,
            tokens: decoded.tokens,
            avg_logprob: decoded.confidence.map_or(0.0, |c| c.avg_logprob),
        })
    }

    /// The chunk's decode by the options' search, on the transcriber's own state
    /// ([`Settings::decode`]).
    fn decode_timed(
        &mut self,
        index: usize,
        samples: &[f32],
        plan: WindowPlan,
        spans: Option<&[Range<u64>]>,
        detected: Option<DetectedLanguage>,
    ) -> Result<Decoded> {
        let search = (self.settings.search(), 0.0);
        self.settings.decode(
            &mut self.state,
            samples,
            index,
            plan,
            spans,
            detected.as_ref(),
            search,
        )
    }

    /// A partial chunk's decode, stopped by whisper.cpp's abort callback as soon as
    /// `overtaken` says newer audio of the utterance has been handed out; `None` then. Never
    /// with `--language auto` (see `transcribe_partial`): the language is the one given.
    fn decode_partial(
        &mut self,
        index: usize,
        samples: &[f32],
        plan: WindowPlan,
        overtaken: &Overtaken,
    ) -> Result<Option<Decoded>> {
        let settings = &self.settings;
        let language = settings.language(None);
        // A partial's words are not written: no need to time them.
        let mut params = settings.params(settings.search(), plan, false, language, false);
        stop_when_overtaken(&mut params, overtaken);
        let outcome = run_full(
            &mut self.state,
            params,
            samples,
            index,
            None,
            settings.tokens.eot,
            None,
        );
        if overtaken.is_overtaken() {
            return Ok(None);
        }
        let mut decoded = outcome?;
        // Only the no-speech rule needs it: a partial's confidence is not written.
        if settings.options.no_speech_threshold.is_some() {
            settings.set_no_speech(&mut self.state, index, &mut decoded)?;
        }
        Ok(Some(decoded))
    }
}

/// `chunk`'s samples as whisper.cpp takes them: padded with silence to its shortest input.
fn whisper_input(chunk: &Chunk) -> Cow<'_, [f32]> {
    if chunk.samples.len() < MIN_INPUT_SAMPLES {
        let mut padded = chunk.samples.clone();
        padded.resize(MIN_INPUT_SAMPLES, 0.0);
        Cow::Owned(padded)
    } else {
        Cow::Borrowed(&chunk.samples)
    }
}

impl Transcriber for WhisperTranscriber {
    /// Decodes with the window sized to the chunk; when that output looks degenerate (a
    /// loop, the token budget used up, no words), decodes again with the full 30 s window and
    /// keeps that, counting the retry, unless the output is the transcript written over
    /// again, which is cut after its first copy instead (counted too; `window::first_copy`),
    /// or no words from a chunk Whisper hears as no speech (probability at least 0.6), which
    /// is kept: a sound the voice detector let through.
    /// A packed window ([`Chunk::utterances`]) is decoded with segment timestamps, and its
    /// text comes with them; when its timed text leaves an utterance of at least a second of
    /// speech without a word (Whisper sometimes gives up early on a window that ends inside a
    /// word), its utterances are decoded alone. A chunk Whisper judges to hold no speech gives
    /// no text ([`DecodingOptions::is_no_speech`]; on by default): a packed window judged as a
    /// whole, or each of its utterances when they were decoded alone.
    fn transcribe(&mut self, chunk: &Chunk) -> Result<Transcription> {
        let done = self.transcribe_window(chunk)?;
        let Some(wordless) = wordless_utterance(chunk, &done) else {
            return Ok(self.settings.drop_if_no_speech(chunk.index, done));
        };
        tracing::debug!(
            chunk = chunk.index,
            utterance = chunk.utterances[wordless].index,
            "a packed window left a spoken utterance without words; decoding its utterances \
             alone"
        );
        // Each utterance decoded alone is judged alone, as with `--no-pack`: judged together,
        // a sound's unsure caption took the window's spoken words out with it.
        decode_alone(chunk, done.full_window_retries, |alone| {
            let text = self.transcribe_window(alone)?;
            Ok(self.settings.drop_if_no_speech(alone.index, text))
        })
    }

    /// Decodes with the window sized to the chunk and stops as soon as the chunk is
    /// overtaken, so the utterance's final decode waits for no stale partial. A degenerate
    /// output gives its first copy when it is the transcript written over again, and no text
    /// otherwise rather than a full-window retry: a partial is not worth a whole window's
    /// cost, and the final decode hears the utterance anyway.
    ///
    /// With `--language auto` there are no partials (`None`, counted as skipped): each would
    /// need a language detection of its own, a full-window encoder pass that cannot be stopped
    /// midway (about 2 s for base on 2 cores). In real time every such partial was overtaken
    /// before it ended, and the finals waited behind them (BENCHMARKS.md, Languages).
    fn transcribe_partial(
        &mut self,
        chunk: &Chunk,
        overtaken: &Overtaken,
    ) -> Result<Option<Transcription>> {
        if self.settings.options.detects_language() {
            return Ok(None);
        }
        let samples = &whisper_input(chunk);
        let plan = WindowPlan::for_samples(samples.len());
        let Some(decoded) = self.decode_partial(chunk.index, samples, plan, overtaken)? else {
            return Ok(None);
        };
        let degenerate =
            !plan.is_full() && degenerate(&decoded.text, decoded.tokens, plan).is_some();
        let no_speech = self.settings.options.is_no_speech(decoded.confidence);
        let text = if no_speech {
            String::new()
        } else if degenerate {
            self.restart_to_cut(&decoded, None).unwrap_or_default()
        } else {
            decoded.text
        };
        Ok(Some(Transcription {
            word_probabilities: words::word_probabilities(&text, &decoded.scored),
            text,
            full_window_retries: 0,
            restarts_cut: 0,
            timed: Vec::new(),
            language: decoded.language,
            confidence: decoded.confidence,
            words: decoded.words,
            temperature_fallbacks: 0,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_that_is_not_a_model_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.bin");
        std::fs::write(&path, "definitely not ggml").unwrap();
        let err = WhisperModel::load(&path, 1).unwrap_err().to_string();
        assert!(err.contains("model.bin"), "{err}");
        assert!(err.contains("not a ggml Whisper model"), "{err}");
        let err = WhisperModel::load(dir.path().join("missing.bin"), 1)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no such file"), "{err}");
    }
}
