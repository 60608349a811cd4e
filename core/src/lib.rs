//! # steno-core
//!
//! The heart of steno, a real-time speech transcription pipeline: the stage traits, the data
//! types, and the pure, synchronous stage logic that every scheduling backend shares.
//!
//! Audio comes from a [`Source`] (a file through [`FileSource`], raw PCM through
//! [`RawPcmSource`], memory through [`VecSource`]), crosses a lock-free [`ring()`], is cut into
//! utterances by the [`Chunker`] (voice activity detection), turned into text by a
//! [`Transcriber`] ([`WhisperModel`] for real, [`ScriptedTranscriber`] for tests) and written
//! to a [`Sink`] ([`FormatSink`] for text, JSON Lines, SRT and WebVTT; [`CallbackSink`] and
//! [`ChannelSink`] for applications) as [`Segment`]s, with [`Partial`] hypotheses before them
//! when interim results are on.
//!
//! A pipeline may have several labelled sources (a meeting's microphone and speakers,
//! [`PipelineBuilder::source`]): each is cut on its own and their segments are written as one
//! transcript in order of end of speech, each with its source's label; [`echo`] drops a
//! microphone's repeats of the speakers.
//!
//! Use this crate to build a [`Pipeline`]; run it with a backend crate such as
//! `steno-threads`. Use it directly if you write a backend. It depends on no async runtime,
//! no thread pool and no channel library.
//!
//! The crate root holds what an application uses: the pipeline and its builder, sources,
//! sinks, the transcriber traits, the chunking options, reports and errors. What a backend
//! author needs besides is in [`stage`] (the stage state machines, [`stage::RunControl`],
//! [`stage::PreparedRun`]); the rules behind Whisper's window, early start and interim
//! results (partial hypotheses while an utterance is spoken, and what their stable prefix
//! promises) are in [`window`], [`early`] and [`interim`].
//!
//! ## Features
//!
//! - `whisper` (default): [`WhisperModel`], through whisper-rs, which builds whisper.cpp
//!   (cmake and a C++ compiler).
//! - `decode` (default): [`FileSource`] and [`read_file`]: WAV through hound; FLAC, MP3, Ogg
//!   Vorbis and AAC (M4A/MP4, ADTS) through symphonia.
//! - `capture`: `push_captured`, the body of a cpal audio callback (needs ALSA's headers on
//!   Linux).
//!
//! An application that brings its own [`Transcriber`] and its own audio turns the defaults off
//! (`default-features = false`): everything else here, from the ring to the sinks, builds in
//! pure Rust.
//!
//! ```
//! use std::sync::Arc;
//! use steno_core::{Chunker, ChunkerConfig, ScriptedTranscriber, Transcriber, VadKind};
//!
//! // Cut two "utterances" (loud tones) out of silence, then transcribe them.
//! let tone = |n| (0..n).map(|i| 0.3 * (i as f32 * 0.05).sin()).collect::<Vec<f32>>();
//! let audio = [vec![0.0; 8_000], tone(16_000), vec![0.0; 16_000], tone(8_000)].concat();
//! let config = ChunkerConfig::default().with_vad(VadKind::Energy);
//! let mut chunker = Chunker::new(&config)?;
//! let mut chunks = Vec::new();
//! chunker.push(&audio, &mut chunks);
//! chunker.finish(&mut chunks);
//! let mut transcriber = ScriptedTranscriber::new();
//! let texts: Vec<String> = chunks.iter().map(|c| transcriber.transcribe(c).map(|t| t.text)).collect::<Result<_, _>>()?;
//! // Boundaries fall on 16 ms VAD frames, padded by 0.2 s.
//! assert_eq!(texts, ["chunk 0 at 0.29-1.71", "chunk 1 at 2.29-3.00"]);
//! # Ok::<(), steno_core::Error>(())
//! ```

mod capture;
mod chunker;
mod control;
#[cfg(feature = "decode")]
mod decode;
pub mod early;
pub mod echo;
mod error;
pub mod interim;
mod models;
mod pack;
mod pipeline;
mod pool;
mod raw;
mod report;
mod resample;
mod ring;
mod segment;
mod sink;
mod source;
mod subtitle;

pub mod stage;
mod transcriber;
mod vad;
mod wer;
#[cfg(feature = "whisper")]
mod whisper;
pub mod window;

#[cfg(feature = "capture")]
pub use capture::push_captured;
pub use capture::{CaptureControl, CaptureSource, MAX_CAPTURE_CHANNELS};
pub use chunker::{Chunk, Chunker, ChunkerConfig, MAX_CHUNK_LIMIT, PartialCut, Utterance};
pub use control::{CancelToken, Progress};
#[cfg(feature = "decode")]
pub use decode::{FileSource, is_audio_container, read_file};
pub use error::{Cause, Error, Result};
pub use interim::Overtaken;
pub use models::{
    DEFAULT_MODEL, DEFAULT_MODEL_FILE, KNOWN_MODELS, KnownModel, MODEL_ENV, MODELS_DIR_ENV,
    default_model, find_model, installed_model, known_model, models_dir,
};
pub use pipeline::{Backend, Pipeline, PipelineBuilder, RunOptions};
pub use pool::TranscriberPool;
pub use raw::RawPcmSource;
pub use report::{LatencySummary, ProcessUsage, RunReport, SourceReport};
pub use resample::Conditioner;
pub use ring::{RingReader, RingWriter, ring};
pub use segment::{Partial, Segment, TimedWord, Update};
pub use sink::{CallbackSink, ChannelSink, CollectingSink, Format, FormatSink, Sink};
pub use source::{Source, VecSource};
pub use subtitle::{Cue, LineLimits, subtitle_cues};
pub use transcriber::{
    Confidence, CountingTranscriber, DetectedLanguage, ScriptedTranscriber, TimedText, Transcriber,
    TranscriberFactory, Transcription, Word,
};
pub use vad::{EarshotVad, EnergyVad, FRAME_LEN, VadKind, VoiceDetector, level_db};
pub use wer::{normalized_words, word_error_rate, word_errors};
#[cfg(feature = "whisper")]
pub use whisper::{
    DEFAULT_THREADS_PER_STATE, Decode, DecodingOptions, WhisperModel, WhisperTranscriber,
    clean_text, language_name,
};

/// The sample rate of every stage after decoding: Whisper's 16 kHz.
pub const SAMPLE_RATE: u32 = 16_000;
