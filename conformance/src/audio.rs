//! Synthetic audio for the fast cases: loud tones ("speech") between stretches of silence,
//! with the exact position of every tone known, and the chunks the pure chunker makes of it.

use std::ops::Range;

use steno_core::{Chunker, ChunkerConfig, SAMPLE_RATE, Segment, VadKind, VecSource};

/// Samples in `seconds` of audio at 16 kHz.
pub(crate) fn samples_in(seconds: f64) -> usize {
    (seconds * f64::from(SAMPLE_RATE)).round() as usize
}

/// The sample at `seconds` (a segment's `start` or `end`, which are sample counts divided by
/// the rate).
pub(crate) fn sample_at(seconds: f64) -> u64 {
    (seconds * f64::from(SAMPLE_RATE)).round() as u64
}

/// Seconds of audio in `samples` samples at 16 kHz.
pub(crate) fn seconds_of(samples: u64) -> f64 {
    samples as f64 / f64::from(SAMPLE_RATE)
}

/// A loud tone (about -13 dBFS), which the energy detector hears as speech.
pub(crate) fn tone(samples: usize) -> Vec<f32> {
    (0..samples)
        .map(|i| 0.3 * (i as f32 * 0.05).sin())
        .collect()
}

/// Quiet deterministic noise (about -60 dBFS), under the energy detector's threshold.
pub(crate) fn quiet_noise(samples: usize) -> Vec<f32> {
    let mut state = 0x9e37_79b9_u32;
    (0..samples)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state as f32 / u32::MAX as f32 - 0.5) * 0.003
        })
        .collect()
}

/// Audio built piece by piece, remembering where each utterance (tone) is.
#[derive(Debug, Clone, Default)]
pub(crate) struct Track {
    /// The samples (16 kHz mono).
    pub(crate) samples: Vec<f32>,
    /// Sample ranges of the utterances, in order.
    pub(crate) speech: Vec<Range<u64>>,
}

impl Track {
    /// An empty track.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Appends `seconds` of digital silence.
    pub(crate) fn silence(mut self, seconds: f64) -> Self {
        self.samples
            .resize(self.samples.len() + samples_in(seconds), 0.0);
        self
    }

    /// Appends one utterance of `seconds`.
    pub(crate) fn speech(mut self, seconds: f64) -> Self {
        let start = self.samples.len() as u64;
        self.samples.extend(tone(samples_in(seconds)));
        self.speech.push(start..self.samples.len() as u64);
        self
    }

    /// Appends one utterance per entry of `lengths`, each followed by `gap` seconds of silence.
    pub(crate) fn utterances(self, lengths: &[f64], gap: f64) -> Self {
        lengths
            .iter()
            .fold(self, |track, &seconds| track.speech(seconds).silence(gap))
    }

    /// Length in samples.
    pub(crate) fn len(&self) -> u64 {
        self.samples.len() as u64
    }

    /// A source over the track, in 20 ms blocks.
    pub(crate) fn source(&self) -> VecSource {
        VecSource::new(self.samples.clone())
    }
}

/// The default chunker with the energy detector: fast and exact on tones.
pub(crate) fn energy() -> ChunkerConfig {
    ChunkerConfig::default().with_vad(VadKind::Energy)
}

/// What the scripted transcriber from core writes for a chunk.
pub(crate) fn scripted_text(chunk: usize, start_sample: u64, end_sample: u64) -> String {
    format!(
        "chunk {chunk} at {:.2}-{:.2}",
        seconds_of(start_sample),
        seconds_of(end_sample)
    )
}

/// A segment without its wall-clock fields: what must be identical across backends.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Written {
    /// Chunk index.
    pub(crate) chunk: usize,
    /// Start in seconds of audio.
    pub(crate) start: f64,
    /// End in seconds of audio.
    pub(crate) end: f64,
    /// The text.
    pub(crate) text: String,
}

impl From<&steno_core::Partial> for Written {
    fn from(partial: &steno_core::Partial) -> Self {
        Written {
            chunk: partial.chunk,
            start: partial.start,
            end: partial.end,
            text: partial.text.clone(),
        }
    }
}

impl From<&Segment> for Written {
    fn from(segment: &Segment) -> Self {
        Written {
            chunk: segment.chunk,
            start: segment.start,
            end: segment.end,
            text: segment.text.clone(),
        }
    }
}

/// The segments a correct run writes for `samples` with the scripted transcriber: the chunks
/// of the pure [`Chunker`] (which never depend on scheduling), each with its scripted text.
/// The partial points the pure chunker cuts in `samples` every `step` of speech, with the
/// scripted transcriber's text: what a run with interim results writes offline, in order.
pub(crate) fn expected_partials(
    samples: &[f32],
    config: &ChunkerConfig,
    step: std::time::Duration,
) -> Vec<Written> {
    let mut chunker = match Chunker::new(config) {
        Ok(chunker) => chunker.with_interim_step(Some(step)),
        Err(error) => panic!("the suite's own chunker configuration is invalid: {error}"),
    };
    let mut chunks = Vec::new();
    for block in samples.chunks(4096) {
        chunker.push(block, &mut chunks);
    }
    chunker
        .take_partials()
        .iter()
        .map(|cut| Written {
            chunk: cut.chunk.index,
            start: cut.chunk.start_seconds(),
            end: cut.chunk.end_seconds(),
            text: scripted_text(
                cut.chunk.index,
                cut.chunk.start_sample,
                cut.chunk.end_sample(),
            ),
        })
        .collect()
}

/// The provisional chunks (early start) the pure chunker offers while `samples` arrive a
/// 20 ms piece at a time, each once, with the scripted transcriber's text: what a real-time
/// run with early start and interim results may show as partials.
pub(crate) fn expected_provisionals(samples: &[f32], config: &ChunkerConfig) -> Vec<Written> {
    let mut chunker = match Chunker::new(config) {
        Ok(chunker) => chunker,
        Err(error) => panic!("the suite's own chunker configuration is invalid: {error}"),
    };
    let (mut chunks, mut provisionals) = (Vec::new(), Vec::<Written>::new());
    for piece in samples.chunks(samples_in(0.02)) {
        chunker.push(piece, &mut chunks);
        let Some(span) = chunker.provisional_span() else {
            continue;
        };
        let written = Written {
            chunk: span.index,
            start: seconds_of(span.start_sample),
            end: seconds_of(span.end_sample),
            text: scripted_text(span.index, span.start_sample, span.end_sample),
        };
        if provisionals.last() != Some(&written) {
            provisionals.push(written);
        }
    }
    provisionals
}

pub(crate) fn expected_segments(samples: &[f32], config: &ChunkerConfig) -> Vec<Written> {
    let mut chunker = match Chunker::new(config) {
        Ok(chunker) => chunker,
        Err(error) => panic!("the suite's own chunker configuration is invalid: {error}"),
    };
    let mut chunks = Vec::new();
    for block in samples.chunks(4096) {
        chunker.push(block, &mut chunks);
    }
    chunker.finish(&mut chunks);
    chunks
        .iter()
        .map(|chunk| Written {
            chunk: chunk.index,
            start: chunk.start_seconds(),
            end: chunk.end_seconds(),
            text: scripted_text(chunk.index, chunk.start_sample, chunk.end_sample()),
        })
        .collect()
}
