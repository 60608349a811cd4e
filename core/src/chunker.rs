//! Cutting the sample stream into utterances ("chunks") with a voice activity detector.
//!
//! Chunk boundaries depend only on the samples: the chunker works on fixed 16 ms frames and
//! keeps no clock, so the same audio gives the same chunks however it is split into blocks and
//! whichever backend runs it.

use std::time::Duration;

use crate::vad::{EarshotVad, EnergyVad, FRAME_LEN, VadKind, VoiceDetector, level_db};
use crate::{Error, Result, SAMPLE_RATE};

/// Whisper cannot look at more than 30 s of audio at once.
pub const MAX_CHUNK_LIMIT: Duration = Duration::from_secs(30);

/// One utterance: a run of 16 kHz mono samples and where it sits in the stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    /// Position in the stream's sequence of chunks, from 0.
    pub index: usize,
    /// Index of the first sample in the stream.
    pub start_sample: u64,
    /// The samples.
    pub samples: Vec<f32>,
    /// One past the last sample the voice detector heard as speech: the end of speech, which
    /// the chunk's trailing padding follows. Equal to [`end_sample`](Self::end_sample) for
    /// fixed windows and for chunks made with [`Chunk::new`].
    pub speech_end_sample: u64,
    /// For a packed window ([`RunOptions::pack`](crate::RunOptions::pack)): the utterances
    /// it holds, in order, each written as a segment of its own. Empty for an utterance.
    pub utterances: Vec<Utterance>,
}

/// One utterance inside a packed window: where it sits in the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Utterance {
    /// Its index among the stream's utterances (what it would be as a chunk of its own).
    pub index: usize,
    /// Its first sample in the stream.
    pub start_sample: u64,
    /// One past its last sample.
    pub end_sample: u64,
    /// One past its last voiced sample.
    pub speech_end_sample: u64,
}

impl Utterance {
    /// Where `chunk` (an utterance) sits.
    pub fn of(chunk: &Chunk) -> Self {
        Utterance {
            index: chunk.index,
            start_sample: chunk.start_sample,
            end_sample: chunk.end_sample(),
            speech_end_sample: chunk.speech_end_sample,
        }
    }
}

impl Chunk {
    /// Chunk `index` of `samples` starting at stream sample `start_sample`, speech to its end.
    ///
    /// ```
    /// let chunk = steno_core::Chunk::new(1, 16_000, vec![0.0; 8_000]);
    /// assert_eq!((chunk.end_sample(), chunk.speech_end_sample), (24_000, 24_000));
    /// ```
    pub fn new(index: usize, start_sample: u64, samples: Vec<f32>) -> Self {
        let speech_end_sample = start_sample + samples.len() as u64;
        Chunk {
            index,
            start_sample,
            samples,
            speech_end_sample,
            utterances: Vec::new(),
        }
    }

    /// Index one past the last sample.
    pub fn end_sample(&self) -> u64 {
        self.start_sample + self.samples.len() as u64
    }

    /// Start time in seconds from the start of the stream.
    pub fn start_seconds(&self) -> f64 {
        self.start_sample as f64 / f64::from(SAMPLE_RATE)
    }

    /// End time in seconds from the start of the stream.
    pub fn end_seconds(&self) -> f64 {
        self.end_sample() as f64 / f64::from(SAMPLE_RATE)
    }

    /// Length in seconds.
    pub fn seconds(&self) -> f64 {
        self.samples.len() as f64 / f64::from(SAMPLE_RATE)
    }
}

/// How audio is cut into chunks. The defaults suit conversational speech; each `with_*` method
/// changes one value:
///
/// ```
/// use std::time::Duration;
/// use steno_core::{ChunkerConfig, VadKind};
/// let config = ChunkerConfig::default()
///     .with_vad(VadKind::Energy)
///     .with_min_silence(Duration::from_millis(300));
/// assert_eq!(config.leading_padding, Duration::from_millis(200));
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ChunkerConfig {
    /// The voice activity detector.
    pub vad: VadKind,
    /// Energy VAD: frames quieter than this (dBFS) are never speech.
    pub energy_threshold_db: f32,
    /// Earshot VAD: frames scoring above this probability are speech.
    pub speech_probability: f32,
    /// Silence that ends an utterance (the hangover). Shorter means lower latency but more
    /// utterances cut at pauses inside sentences.
    pub min_silence: Duration,
    /// Audio kept before the first speech frame, so a word's onset is not cut. It costs no
    /// latency: it has already arrived when speech starts.
    pub leading_padding: Duration,
    /// Audio kept after the last speech frame, so a word's fading end is not cut. Real-time
    /// text waits for it (transcription starts once it has arrived), so it is latency: audio
    /// that arrives in real time is better cut with
    /// [`REALTIME_TRAILING_PADDING`](Self::REALTIME_TRAILING_PADDING).
    pub trailing_padding: Duration,
    /// Utterances with less speech than this are dropped as clicks and breaths.
    pub min_speech: Duration,
    /// Longest chunk; a longer utterance is split at its quietest frame. At most 30 s.
    pub max_chunk: Duration,
    /// Window length for [`VadKind::Fixed`].
    pub fixed_window: Duration,
}

impl Default for ChunkerConfig {
    fn default() -> Self {
        ChunkerConfig {
            vad: VadKind::default(),
            energy_threshold_db: -45.0,
            speech_probability: 0.5,
            min_silence: Duration::from_millis(400),
            leading_padding: Duration::from_millis(200),
            trailing_padding: Duration::from_millis(200),
            min_speech: Duration::from_millis(200),
            max_chunk: Duration::from_secs(20),
            fixed_window: Duration::from_secs(5),
        }
    }
}

impl ChunkerConfig {
    /// The trailing padding `steno live` and `steno transcribe --realtime` use (the default,
    /// 200 ms, suits files). Measured on the speech fixtures (BENCHMARKS.md): utterances
    /// decoded one by one, as in real time, lose no words with 100 ms (a word or two fewer
    /// errors on each fixture), and end-of-speech latency on 3-9 s sentences falls from
    /// p95 546 to 421 ms; packed file windows lost words with it, so files keep 200 ms.
    pub const REALTIME_TRAILING_PADDING: Duration = Duration::from_millis(100);

    /// The voice activity detector.
    #[must_use]
    pub fn with_vad(mut self, vad: VadKind) -> Self {
        self.vad = vad;
        self
    }

    /// Energy VAD: frames quieter than this (dBFS) are never speech.
    #[must_use]
    pub fn with_energy_threshold_db(mut self, energy_threshold_db: f32) -> Self {
        self.energy_threshold_db = energy_threshold_db;
        self
    }

    /// Earshot VAD: frames scoring above this probability are speech.
    #[must_use]
    pub fn with_speech_probability(mut self, speech_probability: f32) -> Self {
        self.speech_probability = speech_probability;
        self
    }

    /// Silence that ends an utterance (the hangover).
    #[must_use]
    pub fn with_min_silence(mut self, min_silence: Duration) -> Self {
        self.min_silence = min_silence;
        self
    }

    /// Audio kept before the first speech frame.
    #[must_use]
    pub fn with_leading_padding(mut self, padding: Duration) -> Self {
        self.leading_padding = padding;
        self
    }

    /// Audio kept after the last speech frame.
    #[must_use]
    pub fn with_trailing_padding(mut self, padding: Duration) -> Self {
        self.trailing_padding = padding;
        self
    }

    /// Utterances with less speech than this are dropped.
    #[must_use]
    pub fn with_min_speech(mut self, min_speech: Duration) -> Self {
        self.min_speech = min_speech;
        self
    }

    /// Longest chunk; a longer utterance is split. At most 30 s.
    #[must_use]
    pub fn with_max_chunk(mut self, max_chunk: Duration) -> Self {
        self.max_chunk = max_chunk;
        self
    }

    /// Window length for [`VadKind::Fixed`].
    #[must_use]
    pub fn with_fixed_window(mut self, fixed_window: Duration) -> Self {
        self.fixed_window = fixed_window;
        self
    }

    /// Checks that the values make sense together.
    ///
    /// # Errors
    /// Returns [`Error::Config`] naming the bad value.
    pub fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(Error::Config(msg));
        if self.max_chunk > MAX_CHUNK_LIMIT {
            return bad(format!(
                "max chunk length {:?} is over Whisper's 30 s window",
                self.max_chunk
            ));
        }
        if self.max_chunk < Duration::from_secs(1) {
            return bad(format!(
                "max chunk length {:?} is under 1 s",
                self.max_chunk
            ));
        }
        if (self.leading_padding + self.trailing_padding) >= self.max_chunk {
            return bad(
                "the leading and trailing paddings together must be under the max chunk length"
                    .into(),
            );
        }
        if self.fixed_window > MAX_CHUNK_LIMIT || self.fixed_window < Duration::from_millis(100) {
            return bad(format!(
                "fixed window {:?} must be between 0.1 s and 30 s",
                self.fixed_window
            ));
        }
        if !(0.0..=1.0).contains(&self.speech_probability) {
            return bad(format!(
                "speech probability {} must be between 0 and 1",
                self.speech_probability
            ));
        }
        Ok(())
    }
}

fn frames_in(duration: Duration) -> u64 {
    (duration.as_secs_f64() * f64::from(SAMPLE_RATE) / FRAME_LEN as f64).round() as u64
}

/// Per-frame facts kept while an utterance is open.
#[derive(Debug, Clone, Copy)]
struct FrameInfo {
    speech: bool,
    level_db: f32,
}

#[derive(Debug)]
enum State {
    Idle,
    InSpeech {
        start_frame: u64,
        last_speech_frame: u64,
        /// One entry per frame from `start_frame`.
        frames: Vec<FrameInfo>,
        /// With interim results on: the frame at which the next partial point falls.
        next_partial_frame: u64,
    },
}

/// A partial point of the open utterance ([`RunOptions::interim_step`](crate::RunOptions::interim_step)):
/// its audio so far, cut where the point fell.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct PartialCut {
    /// The utterance from its start to the point; its index is the utterance's, and its
    /// `speech_end_sample` is the point.
    pub chunk: Chunk,
    /// The utterance's first voiced sample, from which its first words are awaited.
    pub speech_start_sample: u64,
}

/// Turns a stream of samples into [`Chunk`]s.
///
/// ```
/// use steno_core::{Chunker, ChunkerConfig, VadKind};
/// let config = ChunkerConfig::default().with_vad(VadKind::Energy);
/// let mut chunker = Chunker::new(&config).unwrap();
/// let mut chunks = Vec::new();
/// // One second of silence, one second of "speech" (a loud tone), one second of silence.
/// let tone = (0..16_000).map(|i| 0.3 * (i as f32 * 0.05).sin());
/// let audio: Vec<f32> = std::iter::repeat(0.0).take(16_000).chain(tone)
///     .chain(std::iter::repeat(0.0).take(16_000)).collect();
/// chunker.push(&audio, &mut chunks);
/// chunker.finish(&mut chunks);
/// assert_eq!(chunks.len(), 1);
/// assert!((chunks[0].start_seconds() - 0.8).abs() < 0.05);
/// ```
pub struct Chunker {
    detector: Option<Box<dyn VoiceDetector>>,
    fixed_window: u64,
    min_silence_frames: u64,
    leading_padding_frames: u64,
    trailing_padding_frames: u64,
    min_speech_frames: u64,
    max_frames: u64,
    /// Samples from `buffer_start` on, including a partial frame at the end.
    buffer: Vec<f32>,
    buffer_start: u64,
    /// Frames classified so far.
    frames_done: u64,
    /// Where the previous chunk ended (frame index), so padding never overlaps it.
    last_chunk_end_frame: u64,
    state: State,
    next_index: usize,
    /// Frames between partial points; `None` when interim results are off.
    interim_step_frames: Option<u64>,
    /// Partial points reached since the caller last took them.
    partials: Vec<PartialCut>,
}

impl std::fmt::Debug for Chunker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chunker")
            .field("state", &self.state)
            .field("frames_done", &self.frames_done)
            .finish_non_exhaustive()
    }
}

impl Chunker {
    /// A chunker for `config`.
    ///
    /// # Errors
    /// Returns [`Error::Config`] when the configuration is invalid.
    pub fn new(config: &ChunkerConfig) -> Result<Self> {
        config.validate()?;
        let detector: Option<Box<dyn VoiceDetector>> = match config.vad {
            VadKind::Energy => Some(Box::new(EnergyVad::new(config.energy_threshold_db))),
            VadKind::Earshot => Some(Box::new(EarshotVad::new(config.speech_probability))),
            VadKind::Fixed => None,
        };
        Ok(Chunker {
            detector,
            fixed_window: (config.fixed_window.as_secs_f64() * f64::from(SAMPLE_RATE)) as u64,
            min_silence_frames: frames_in(config.min_silence).max(1),
            leading_padding_frames: frames_in(config.leading_padding),
            trailing_padding_frames: frames_in(config.trailing_padding),
            min_speech_frames: frames_in(config.min_speech).max(1),
            max_frames: frames_in(config.max_chunk),
            buffer: Vec::new(),
            buffer_start: 0,
            frames_done: 0,
            last_chunk_end_frame: 0,
            state: State::Idle,
            next_index: 0,
            interim_step_frames: None,
            partials: Vec::new(),
        })
    }

    /// Also cuts the open utterance at a partial point every `step` of audio after its first
    /// voiced frame, when the speaker is heard (the frame just before the point is voiced)
    /// and the utterance already has speech enough to be a chunk, so every partial point
    /// belongs to a chunk that will come. A point in a pause is skipped: it would add no
    /// words, and if the pause ends the utterance, its decode would hold up the final one. Points are frame positions,
    /// so they depend only on the samples. [`take_partials`](Self::take_partials) collects them.
    ///
    /// ```
    /// use std::time::Duration;
    /// use steno_core::{Chunker, ChunkerConfig, VadKind};
    /// let config = ChunkerConfig::default().with_vad(VadKind::Energy);
    /// let mut chunker = Chunker::new(&config).unwrap()
    ///     .with_interim_step(Some(Duration::from_millis(500)));
    /// let mut chunks = Vec::new();
    /// // 1.2 s of "speech": points every 0.5 s of it, rounded to whole 16 ms frames (31).
    /// let tone: Vec<f32> = (0..19_200).map(|i| 0.3 * (i as f32 * 0.05).sin()).collect();
    /// chunker.push(&tone, &mut chunks);
    /// let ends: Vec<u64> = chunker.take_partials().iter().map(|p| p.chunk.end_sample()).collect();
    /// assert_eq!(ends, [7_936, 15_872]);
    /// assert!(chunks.is_empty(), "the utterance is still open");
    /// ```
    pub fn with_interim_step(mut self, step: Option<Duration>) -> Self {
        self.interim_step_frames = step.map(|step| frames_in(step).max(1));
        self
    }

    /// The partial points reached since the last call, in order. Each comes after every chunk
    /// of an earlier index and before the chunk of its own index.
    pub fn take_partials(&mut self) -> Vec<PartialCut> {
        std::mem::take(&mut self.partials)
    }

    /// The earliest sample a chunk still to come can start at: the chunker has forgotten the
    /// samples before it.
    pub fn earliest_next_start(&self) -> u64 {
        self.buffer_start
    }

    /// A lower bound on the end of speech ([`Chunk::speech_end_sample`]) of every chunk still
    /// to come: what lets a run with several sources write their segments in time order
    /// without waiting for the end of the stream. While an utterance is open its speech ends
    /// no earlier than its last voiced frame so far, unless it grows long enough to be split:
    /// the split point is in its second half, and the speaker was heard within the hangover
    /// before it. When idle, the next utterance has not started yet.
    pub fn speech_end_bound(&self) -> u64 {
        let frame = FRAME_LEN as u64;
        if self.detector.is_none() {
            return self.buffer_start;
        }
        match &self.state {
            State::Idle => self.frames_done * frame,
            State::InSpeech {
                start_frame,
                last_speech_frame,
                ..
            } => {
                let split_speech_end = (start_frame + self.max_frames / 2 + 1)
                    .saturating_sub(self.min_silence_frames)
                    .max(start_frame + 1);
                (last_speech_frame + 1).min(split_speech_end) * frame
            }
        }
    }

    /// Total samples received so far.
    pub fn samples_seen(&self) -> u64 {
        self.buffer_start + self.buffer.len() as u64
    }

    /// Adds samples; completed chunks are appended to `out`.
    pub fn push(&mut self, samples: &[f32], out: &mut Vec<Chunk>) {
        self.buffer.extend_from_slice(samples);
        if self.detector.is_none() {
            self.cut_fixed_windows(out, false);
            return;
        }
        while self.samples_seen() >= (self.frames_done + 1) * FRAME_LEN as u64 {
            self.classify_next_frame(out);
        }
        if matches!(self.state, State::Idle) {
            self.trim_idle_history();
        }
    }

    /// Ends the stream: flushes the utterance in progress, even without silence after it.
    pub fn finish(&mut self, out: &mut Vec<Chunk>) {
        if self.detector.is_none() {
            self.cut_fixed_windows(out, true);
            return;
        }
        if let State::InSpeech {
            start_frame,
            last_speech_frame,
            frames,
            ..
        } = std::mem::replace(&mut self.state, State::Idle)
        {
            let end_sample =
                (self.padded_end(last_speech_frame) * FRAME_LEN as u64).min(self.samples_seen());
            if self.enough_speech(&frames) {
                let speech_end = ((last_speech_frame + 1) * FRAME_LEN as u64).min(end_sample);
                self.emit(start_frame * FRAME_LEN as u64, end_sample, speech_end, out);
            }
        }
        self.buffer_start = self.samples_seen();
        self.buffer.clear();
    }

    /// The chunk the open utterance becomes if no more speech follows, once its trailing
    /// padding has arrived: its samples are then known, and only the rest of the hangover is
    /// awaited to be sure the speaker stopped. Exactly what [`push`](Self::push) emits for it
    /// when the hangover confirms the end (same index, boundaries and samples), so a
    /// transcriber can start on it early; `None` while there is no such utterance.
    ///
    /// ```
    /// use steno_core::{Chunker, ChunkerConfig, VadKind};
    /// let config = ChunkerConfig::default().with_vad(VadKind::Energy);
    /// let mut chunker = Chunker::new(&config).unwrap();
    /// let mut chunks = Vec::new();
    /// let tone: Vec<f32> = (0..16_000).map(|i| 0.3 * (i as f32 * 0.05).sin()).collect();
    /// chunker.push(&tone, &mut chunks);
    /// chunker.push(&vec![0.0; 4_000], &mut chunks); // 0.25 s of silence: past the padding
    /// let early = chunker.provisional().expect("the padding has arrived");
    /// chunker.push(&vec![0.0; 4_000], &mut chunks); // past the 0.4 s hangover
    /// assert_eq!(chunks, [early]);
    /// ```
    pub fn provisional(&self) -> Option<Chunk> {
        let span = self.provisional_span()?;
        Some(self.next_chunk(span.start_sample, span.end_sample, span.speech_end_sample))
    }

    /// Where [`provisional`](Self::provisional)'s chunk would be, without copying its
    /// samples: a caller polling while the hangover runs can tell whether it changed.
    pub fn provisional_span(&self) -> Option<Utterance> {
        let (start_frame, last_speech_frame, frames) = self.open_utterance()?;
        let end_frame = self.padded_end(last_speech_frame);
        if self.frames_done < end_frame || !self.enough_speech(frames) {
            return None;
        }
        Some(Utterance {
            index: self.next_index,
            start_sample: start_frame * FRAME_LEN as u64,
            end_sample: end_frame * FRAME_LEN as u64,
            speech_end_sample: (last_speech_frame + 1) * FRAME_LEN as u64,
        })
    }

    /// The open utterance's first voiced sample, from which its first words are awaited;
    /// `None` while no utterance is open.
    pub fn speech_start_sample(&self) -> Option<u64> {
        let (start_frame, _, frames) = self.open_utterance()?;
        let first_speech = frames.iter().position(|f| f.speech).unwrap_or(0) as u64;
        Some((start_frame + first_speech) * FRAME_LEN as u64)
    }

    /// The open utterance: its first frame, its last voiced frame and its frames so far.
    fn open_utterance(&self) -> Option<(u64, u64, &[FrameInfo])> {
        match &self.state {
            State::InSpeech {
                start_frame,
                last_speech_frame,
                frames,
                ..
            } => Some((*start_frame, *last_speech_frame, frames)),
            State::Idle => None,
        }
    }

    /// One past the last frame of an utterance whose speech ends with `last_speech_frame`:
    /// its trailing padding included (the audio may not have arrived yet).
    fn padded_end(&self, last_speech_frame: u64) -> u64 {
        last_speech_frame + 1 + self.trailing_padding_frames
    }

    /// Whether an utterance of `frames` has speech enough to be a chunk (not a click).
    fn enough_speech(&self, frames: &[FrameInfo]) -> bool {
        frames.iter().filter(|f| f.speech).count() as u64 >= self.min_speech_frames
    }

    /// The next chunk, from `start_sample` to `end_sample` of the buffer (not emitted).
    fn next_chunk(&self, start_sample: u64, end_sample: u64, speech_end_sample: u64) -> Chunk {
        let from = (start_sample - self.buffer_start) as usize;
        let to = (end_sample - self.buffer_start) as usize;
        Chunk {
            index: self.next_index,
            start_sample,
            samples: self.buffer[from..to].to_vec(),
            speech_end_sample,
            utterances: Vec::new(),
        }
    }

    fn cut_fixed_windows(&mut self, out: &mut Vec<Chunk>, at_end: bool) {
        let window = self.fixed_window as usize;
        while self.buffer.len() >= window || (at_end && !self.buffer.is_empty()) {
            let take = window.min(self.buffer.len());
            let samples: Vec<f32> = self.buffer.drain(..take).collect();
            out.push(Chunk::new(self.next_index, self.buffer_start, samples));
            self.next_index += 1;
            self.buffer_start += take as u64;
        }
    }

    fn classify_next_frame(&mut self, out: &mut Vec<Chunk>) {
        let frame = self.frames_done;
        self.frames_done += 1;
        let offset = (frame * FRAME_LEN as u64 - self.buffer_start) as usize;
        let samples = &self.buffer[offset..offset + FRAME_LEN];
        let level = level_db(samples);
        let speech = self
            .detector
            .as_mut()
            .is_some_and(|detector| detector.is_speech(samples));
        let info = FrameInfo {
            speech,
            level_db: level,
        };
        match &mut self.state {
            State::Idle => {
                if speech {
                    let start_frame = frame
                        .saturating_sub(self.leading_padding_frames)
                        .max(self.last_chunk_end_frame);
                    let mut frames = Vec::new();
                    // The padding frames before the first speech frame are not speech.
                    frames.resize(
                        (frame - start_frame) as usize,
                        FrameInfo {
                            speech: false,
                            level_db: -120.0,
                        },
                    );
                    frames.push(info);
                    self.state = State::InSpeech {
                        start_frame,
                        last_speech_frame: frame,
                        frames,
                        next_partial_frame: frame + self.interim_step_frames.unwrap_or(0),
                    };
                }
            }
            State::InSpeech {
                start_frame,
                last_speech_frame,
                frames,
                next_partial_frame,
            } => {
                frames.push(info);
                if speech {
                    *last_speech_frame = frame;
                }
                let (start, last_speech) = (*start_frame, *last_speech_frame);
                if let Some(step) = self.interim_step_frames
                    && frame + 1 == *next_partial_frame
                {
                    *next_partial_frame += step;
                    self.cut_partial(frame + 1);
                }
                if frame - last_speech >= self.min_silence_frames {
                    self.close_utterance(start, last_speech, out);
                } else if frame + 1 - start >= self.max_frames {
                    self.split_long_utterance(out);
                }
            }
        }
    }

    /// Cuts the open utterance at `end_frame` (a partial point just reached) if the speaker
    /// is heard in the frame before it and it has speech enough to become a chunk.
    fn cut_partial(&mut self, end_frame: u64) {
        let Some((start_frame, last_speech_frame, frames)) = self.open_utterance() else {
            return;
        };
        if end_frame > last_speech_frame + 1 || !self.enough_speech(frames) {
            return;
        }
        let (start, end) = (start_frame * FRAME_LEN as u64, end_frame * FRAME_LEN as u64);
        let speech_start_sample = self.speech_start_sample().unwrap_or(start);
        self.partials.push(PartialCut {
            chunk: self.next_chunk(start, end, end),
            speech_start_sample,
        });
    }

    fn close_utterance(&mut self, start_frame: u64, last_speech_frame: u64, out: &mut Vec<Chunk>) {
        let State::InSpeech { frames, .. } = std::mem::replace(&mut self.state, State::Idle) else {
            return;
        };
        let end_frame = self.padded_end(last_speech_frame).min(self.frames_done);
        if self.enough_speech(&frames) {
            self.emit(
                start_frame * FRAME_LEN as u64,
                end_frame * FRAME_LEN as u64,
                (last_speech_frame + 1).min(end_frame) * FRAME_LEN as u64,
                out,
            );
            self.last_chunk_end_frame = end_frame;
        }
    }

    /// Splits an utterance that reached the maximum length at its quietest frame in the
    /// second half, so words are rarely cut in two.
    fn split_long_utterance(&mut self, out: &mut Vec<Chunk>) {
        let State::InSpeech {
            start_frame,
            last_speech_frame,
            frames,
            ..
        } = std::mem::replace(&mut self.state, State::Idle)
        else {
            return;
        };
        let half = frames.len() / 2;
        let split_offset = frames[half..]
            .iter()
            .enumerate()
            .min_by(|a, b| a.1.level_db.total_cmp(&b.1.level_db))
            .map_or(frames.len(), |(i, _)| half + i)
            .max(1);
        let split_frame = start_frame + split_offset as u64;
        // The split chunk's speech ends after its last voiced frame before the split.
        let speech_end_frame = frames[..split_offset]
            .iter()
            .rposition(|frame| frame.speech)
            .map_or(split_frame, |last| start_frame + last as u64 + 1);
        self.emit(
            start_frame * FRAME_LEN as u64,
            split_frame * FRAME_LEN as u64,
            speech_end_frame * FRAME_LEN as u64,
            out,
        );
        self.last_chunk_end_frame = split_frame;
        let rest = frames[split_offset..].to_vec();
        // The rest is an utterance of its own: its partial points count from its first
        // voiced frame, or from where it starts if it has none yet.
        let first_speech = rest.iter().position(|f| f.speech).unwrap_or(0) as u64;
        let last_frame = split_frame + rest.len() as u64 - 1;
        let next_partial_frame = self.interim_step_frames.map_or(0, |step| {
            let mut next = split_frame + first_speech + step;
            while next <= last_frame + 1 {
                next += step;
            }
            next
        });
        self.state = State::InSpeech {
            start_frame: split_frame,
            last_speech_frame: last_speech_frame.max(split_frame),
            frames: rest,
            next_partial_frame,
        };
    }

    fn emit(
        &mut self,
        start_sample: u64,
        end_sample: u64,
        speech_end_sample: u64,
        out: &mut Vec<Chunk>,
    ) {
        out.push(self.next_chunk(start_sample, end_sample, speech_end_sample));
        self.next_index += 1;
        // Everything before the chunk's end is no longer needed.
        self.buffer
            .drain(..(end_sample - self.buffer_start) as usize);
        self.buffer_start = end_sample;
    }

    /// While idle, only the padding before the next possible utterance must be kept.
    fn trim_idle_history(&mut self) {
        let keep_from = (self
            .frames_done
            .saturating_sub(self.leading_padding_frames)
            .max(self.last_chunk_end_frame))
            * FRAME_LEN as u64;
        let droppable = keep_from.saturating_sub(self.buffer_start) as usize;
        // Trim in large steps so the drain cost is amortised.
        if droppable >= 16 * FRAME_LEN {
            self.buffer.drain(..droppable);
            self.buffer_start = keep_from;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn speech_like(seconds: f32) -> Vec<f32> {
        let n = (seconds * SAMPLE_RATE as f32) as usize;
        (0..n).map(|i| 0.3 * (i as f32 * 0.07).sin()).collect()
    }

    fn silence(seconds: f32) -> Vec<f32> {
        vec![0.0; (seconds * SAMPLE_RATE as f32) as usize]
    }

    fn energy_config() -> ChunkerConfig {
        ChunkerConfig::default().with_vad(VadKind::Energy)
    }

    fn chunk_all(config: &ChunkerConfig, audio: &[f32], block: usize) -> Vec<Chunk> {
        let mut chunker = Chunker::new(config).unwrap();
        let mut out = Vec::new();
        for part in audio.chunks(block) {
            chunker.push(part, &mut out);
        }
        chunker.finish(&mut out);
        out
    }

    #[test]
    fn no_chunk_ends_its_speech_before_the_bound_given_earlier() {
        // Speech and pauses of many lengths, some long enough to be split.
        let mut audio = Vec::new();
        let mut seed = 7_u64;
        for _ in 0..40 {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let speech = 0.1 + (seed >> 40) as f32 / (1u64 << 24) as f32 * 6.0;
            let pause = 0.05 + (seed >> 20 & 0xfff) as f32 / 4096.0 * 0.8;
            audio.extend(speech_like(speech));
            audio.extend(silence(pause));
        }
        for config in [
            energy_config().with_max_chunk(Duration::from_secs(3)),
            energy_config(),
            ChunkerConfig::default().with_vad(VadKind::Fixed),
        ] {
            let mut chunker = Chunker::new(&config).unwrap();
            let (mut out, mut bounds) = (Vec::new(), Vec::new());
            for block in audio.chunks(700) {
                chunker.push(block, &mut out);
                bounds.push((out.len(), chunker.speech_end_bound()));
            }
            chunker.finish(&mut out);
            assert!(out.len() > 5, "{config:?}");
            for (emitted, bound) in bounds {
                for chunk in &out[emitted..] {
                    assert!(
                        chunk.speech_end_sample >= bound,
                        "{config:?}: chunk {} ends speech at {} before the bound {bound}",
                        chunk.index,
                        chunk.speech_end_sample
                    );
                }
            }
        }
    }

    fn session() -> Vec<f32> {
        [
            silence(0.5),
            speech_like(1.0),
            silence(1.0),
            speech_like(2.0),
            silence(0.7),
            speech_like(0.5),
        ]
        .concat()
    }

    #[test]
    fn utterances_separated_by_silence_become_chunks() {
        let chunks = chunk_all(&energy_config(), &session(), 1000);
        assert_eq!(chunks.len(), 3);
        assert_eq!(
            chunks.iter().map(|c| c.index).collect::<Vec<_>>(),
            [0, 1, 2]
        );
        // Padded by 0.2 s on both sides, within a frame.
        assert!(
            (chunks[0].start_seconds() - 0.3).abs() < 0.02,
            "{}",
            chunks[0].start_seconds()
        );
        assert!(
            (chunks[0].end_seconds() - 1.7).abs() < 0.02,
            "{}",
            chunks[0].end_seconds()
        );
        // Speech ends where the tone does, before the trailing padding.
        let speech_end = chunks[0].speech_end_sample as f64 / f64::from(SAMPLE_RATE);
        assert!((speech_end - 1.5).abs() < 0.02, "{speech_end}");
        // The last utterance has no silence after it and is flushed at the end.
        assert!((chunks[2].end_seconds() - 5.7).abs() < 0.02);
        // Flushed without silence after it: speech runs to the last whole frame.
        let tail = chunks[2].end_sample() - chunks[2].speech_end_sample;
        assert!(tail < FRAME_LEN as u64, "{tail}");
    }

    #[test]
    fn leading_and_trailing_padding_are_set_apart() {
        let config = energy_config()
            .with_leading_padding(Duration::from_millis(300))
            .with_trailing_padding(Duration::from_millis(96));
        let chunks = chunk_all(&config, &session(), 1000);
        assert_eq!(chunks.len(), 3);
        assert!((chunks[0].start_seconds() - 0.2).abs() < 0.02, "{chunks:?}");
        assert!((chunks[0].end_seconds() - 1.596).abs() < 0.02, "{chunks:?}");
        // The early chunk is there as soon as the shorter trailing padding has arrived.
        let mut chunker = Chunker::new(&config).unwrap();
        let mut out = Vec::new();
        chunker.push(
            &[silence(0.5), speech_like(1.0), silence(0.08)].concat(),
            &mut out,
        );
        assert!(chunker.provisional().is_none());
        chunker.push(&silence(0.04), &mut out);
        let early = chunker
            .provisional()
            .expect("the trailing padding has arrived");
        assert!((early.end_seconds() - 1.596).abs() < 0.02, "{early:?}");
    }

    #[test]
    fn block_size_never_changes_the_chunks() {
        let audio = session();
        let reference = chunk_all(&energy_config(), &audio, 16_000);
        for block in [1, 37, 256, 4096] {
            assert_eq!(
                chunk_all(&energy_config(), &audio, block),
                reference,
                "block {block}"
            );
        }
    }

    #[test]
    fn chunks_never_overlap_and_stay_inside_the_audio() {
        let audio = session();
        let chunks = chunk_all(&energy_config(), &audio, 500);
        for pair in chunks.windows(2) {
            assert!(pair[0].end_sample() <= pair[1].start_sample);
        }
        assert!(chunks.last().unwrap().end_sample() <= audio.len() as u64);
    }

    #[test]
    fn silence_gives_no_chunks() {
        assert!(chunk_all(&energy_config(), &silence(3.0), 1000).is_empty());
        let earshot = ChunkerConfig::default();
        assert!(chunk_all(&earshot, &silence(3.0), 1000).is_empty());
    }

    #[test]
    fn a_click_shorter_than_min_speech_is_dropped() {
        let audio = [silence(1.0), speech_like(0.05), silence(1.0)].concat();
        assert!(chunk_all(&energy_config(), &audio, 1000).is_empty());
    }

    #[test]
    fn long_utterances_are_split_under_the_max_length() {
        let config = ChunkerConfig {
            max_chunk: Duration::from_secs(5),
            ..energy_config()
        };
        let audio = speech_like(12.0);
        let chunks = chunk_all(&config, &audio, 1000);
        assert!(chunks.len() >= 3, "{}", chunks.len());
        for chunk in &chunks {
            assert!(chunk.seconds() <= 5.0 + 1e-9, "{}", chunk.seconds());
            assert!(
                (chunk.start_sample..=chunk.end_sample()).contains(&chunk.speech_end_sample),
                "{} {} {}",
                chunk.start_sample,
                chunk.speech_end_sample,
                chunk.end_sample()
            );
        }
        // Contiguous: a split loses no audio.
        for pair in chunks.windows(2) {
            assert_eq!(pair[0].end_sample(), pair[1].start_sample);
        }
        assert_eq!(chunks.last().unwrap().end_sample(), audio.len() as u64);
    }

    #[test]
    fn fixed_windows_cover_everything() {
        let config = ChunkerConfig::default().with_vad(VadKind::Fixed);
        let chunks = chunk_all(&config, &silence(12.0), 3000);
        let lengths: Vec<f64> = chunks.iter().map(Chunk::seconds).collect();
        assert_eq!(lengths, [5.0, 5.0, 2.0]);
    }

    #[test]
    fn invalid_configs_are_rejected() {
        let too_long = ChunkerConfig::default().with_max_chunk(Duration::from_secs(31));
        assert!(Chunker::new(&too_long).is_err());
        let bad_probability = ChunkerConfig::default().with_speech_probability(1.5);
        assert!(Chunker::new(&bad_probability).is_err());
    }

    /// A partial cut as the tests compare them: (index, start, end, speech start).
    type CutSeen = (usize, u64, u64, u64);

    /// The partial cuts and chunks of `audio` pushed in blocks of `block`, with a partial
    /// point every `step`.
    fn partials_all(
        config: &ChunkerConfig,
        audio: &[f32],
        block: usize,
        step: Duration,
    ) -> (Vec<CutSeen>, Vec<Chunk>) {
        let mut chunker = Chunker::new(config).unwrap().with_interim_step(Some(step));
        let (mut chunks, mut partials) = (Vec::new(), Vec::new());
        for part in audio.chunks(block) {
            chunker.push(part, &mut chunks);
            partials.extend(chunker.take_partials());
        }
        chunker.finish(&mut chunks);
        partials.extend(chunker.take_partials());
        let cuts = partials
            .iter()
            .map(|p| {
                let c = &p.chunk;
                (
                    c.index,
                    c.start_sample,
                    c.end_sample(),
                    p.speech_start_sample,
                )
            })
            .collect();
        (cuts, chunks)
    }

    #[test]
    fn partial_points_never_depend_on_block_size() {
        let step = Duration::from_millis(300);
        let reference = partials_all(&energy_config(), &session(), 4096, step);
        assert!(reference.0.len() >= 6, "{:?}", reference.0);
        for block in [1, 256, 1000, 16_000] {
            assert_eq!(
                partials_all(&energy_config(), &session(), block, step),
                reference
            );
        }
        // Interim results change no chunk.
        assert_eq!(reference.1, chunk_all(&energy_config(), &session(), 4096));
    }

    #[test]
    fn partial_points_fall_inside_their_utterance_while_it_is_spoken() {
        let config = energy_config();
        let step = Duration::from_millis(300);
        let (cuts, chunks) = partials_all(&config, &session(), 1000, step);
        let step_samples = frames_in(step) * FRAME_LEN as u64;
        for chunk in &chunks {
            let points: Vec<_> = cuts.iter().filter(|c| c.0 == chunk.index).collect();
            assert!(
                !points.is_empty(),
                "utterance {} has no partial point",
                chunk.index
            );
            for (k, &&(_, start, end, speech_start)) in points.iter().enumerate() {
                // From the utterance's start, a whole number of steps after its first voice.
                assert_eq!(start, chunk.start_sample);
                assert_eq!(end, speech_start + (k as u64 + 1) * step_samples);
                // Never in the silence after the speech, its trailing padding included.
                assert!(
                    end <= chunk.speech_end_sample,
                    "{end} past the end of speech at {}",
                    chunk.speech_end_sample
                );
            }
        }
        // The 1 s tone (steps of 19 frames, 0.304 s): points at 0.3, 0.6 and 0.9 s of it; not
        // at 1.2 s, inside the 0.2 s of trailing padding after it, where the speaker is silent.
        assert_eq!(cuts.iter().filter(|c| c.0 == 0).count(), 3);
    }
}
