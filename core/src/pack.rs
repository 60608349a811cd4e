//! Offline packing: consecutive utterances decoded together in windows of up to 12 s, and
//! the window's text given back to the utterances it was spoken in.
//!
//! A Whisper call has a fixed cost (the trimmed window's floor of 7.7 s, the decoder's
//! start) and Whisper hears words better with the sentences around them, so when the whole input is available
//! ([`RunOptions::pack`](crate::RunOptions::pack)) the chunk stage groups utterances: a
//! window runs from its first utterance's start to its last one's end (the audio between
//! them included) and takes the next utterance while that still ends within 12 s of the
//! window's start (see `MAX_WINDOW_SAMPLES` for why not 30). Window boundaries depend only on the utterances' boundaries, so every
//! backend decodes the same windows. A window is decoded with segment timestamps; each piece
//! of text goes to the utterance its middle falls in ([`window_spans`]; a piece Whisper ran
//! on over the pause into the next utterance is cut there first), and every utterance is
//! written as a segment of its own, as without packing.

use std::ops::Range;

use crate::{Chunk, Confidence, SAMPLE_RATE, TimedText, Utterance, Word};

/// The longest window. Whisper takes 30 s, but its cost grows with the window it encodes
/// (`crate::window`), so packing pays where it saves the floor of a trimmed window on short
/// utterances and the calls themselves, not by filling 30 s. Measured offline (one run each,
/// 2 cores): with windows of up to 8 / 12 / 16 / 20 / 30 s, the 2.5 min reading took 9.0 /
/// 7.9 / 7.4 / 9.0 / 10.4 s (8.4 s unpacked) and the 40 short utterances 5.5 / 5.2 / 5.6 /
/// 6.5 / 7.4 s (10.7 s unpacked); WER moved by a few words either way (BENCHMARKS.md).
const MAX_WINDOW_SAMPLES: u64 = 12 * SAMPLE_RATE as u64;

/// Groups a stream's utterances into windows, keeping the audio they need.
#[derive(Debug, Default)]
pub(crate) struct Packer {
    /// Every sample from `history_start` on, as the chunk stage received them.
    history: Vec<f32>,
    history_start: u64,
    /// The utterances of the window being filled.
    open: Vec<Utterance>,
    next_window: usize,
}

impl Packer {
    /// Keeps `block`, the stream's next samples.
    pub(crate) fn record(&mut self, block: &[f32]) {
        self.history.extend_from_slice(block);
    }

    /// Adds utterance `chunk`; a window it does not fit in is closed into `out` first.
    pub(crate) fn push(&mut self, chunk: &Chunk, out: &mut Vec<Chunk>) {
        if let Some(first) = self.open.first()
            && chunk.end_sample() - first.start_sample > MAX_WINDOW_SAMPLES
        {
            self.close(out);
        }
        self.open.push(Utterance::of(chunk));
    }

    /// Closes the window being filled (at the end of the stream).
    pub(crate) fn finish(&mut self, out: &mut Vec<Chunk>) {
        self.close(out);
    }

    /// Forgets the audio before `needed_from` that no window will take: the open window's
    /// start, or where the chunker's next utterance can start at the earliest.
    pub(crate) fn forget_before(&mut self, needed_from: u64) {
        let keep_from = self
            .open
            .first()
            .map_or(needed_from, |first| first.start_sample.min(needed_from));
        let droppable = keep_from.saturating_sub(self.history_start) as usize;
        // In large steps, so the drain cost is amortised.
        if droppable >= SAMPLE_RATE as usize {
            self.history.drain(..droppable.min(self.history.len()));
            self.history_start += droppable as u64;
        }
    }

    fn close(&mut self, out: &mut Vec<Chunk>) {
        let (Some(first), Some(last)) = (self.open.first(), self.open.last()) else {
            return;
        };
        let from = (first.start_sample - self.history_start) as usize;
        let to = (last.end_sample - self.history_start) as usize;
        out.push(Chunk {
            index: self.next_window,
            start_sample: first.start_sample,
            samples: self.history[from..to.min(self.history.len())].to_vec(),
            speech_end_sample: last.speech_end_sample,
            utterances: std::mem::take(&mut self.open),
        });
        self.next_window += 1;
    }
}

/// Where each of a packed window's `utterances` lies in the window's samples, which start
/// with the first one's: the clock Whisper's timestamps in the window run on.
///
/// ```
/// use steno_core::Utterance;
/// use steno_core::stage::window_spans;
/// let utterance = |index, start, end| Utterance {
///     index, start_sample: start, end_sample: end, speech_end_sample: end };
/// // 1 s and 2 s of audio, 3 s apart.
/// let utterances = [utterance(0, 16_000, 32_000), utterance(1, 80_000, 112_000)];
/// let spans: Vec<_> = window_spans(&utterances).collect();
/// assert_eq!(spans, [0..16_000, 64_000..96_000]);
/// ```
pub fn window_spans(utterances: &[Utterance]) -> impl Iterator<Item = Range<u64>> + '_ {
    let window_start = utterances.first().map_or(0, |first| first.start_sample);
    utterances
        .iter()
        .map(move |u| u.start_sample - window_start..u.end_sample - window_start)
}

/// An utterance's part of a packed window's transcription.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct WindowPart {
    /// Its text (empty when the window gave it none).
    pub text: String,
    /// How sure the transcriber is of that text: its pieces' confidences together
    /// ([`Confidence::both`]).
    pub confidence: Option<Confidence>,
    /// Its words, timed from the utterance's start (a word that began in the utterance
    /// before starts at 0).
    pub words: Vec<Word>,
}

impl WindowPart {
    /// A part holding a whole (untimed) transcription: `text`, `confidence` and `words`.
    pub fn whole(text: String, confidence: Option<Confidence>, words: Vec<Word>) -> Self {
        WindowPart {
            text,
            confidence,
            words,
        }
    }
}

/// Gives each utterance of a window its part of the window's transcription: each timed
/// piece (text, confidence, words; times in the window, [`window_spans`]) goes to the
/// utterance its middle falls in (or the nearest one); without timed pieces, `whole` (the
/// window's untimed transcription) goes to the first utterance. An unpacked chunk is a
/// window of one utterance and no pieces: its part is `whole`.
///
/// ```
/// use steno_core::stage::{WindowPart, window_parts};
/// use steno_core::{TimedText, Utterance};
/// let utterance = |index, start, end| Utterance {
///     index, start_sample: start, end_sample: end, speech_end_sample: end };
/// let utterances = [utterance(4, 16_000, 48_000), utterance(5, 64_000, 96_000)];
/// let piece = |start, end, text: &str| TimedText {
///     start, end, text: text.into(), confidence: None, words: Vec::new() };
/// // Times are from the window's start (sample 16 000).
/// let timed = [piece(0, 20_000, "Hello there."), piece(50_000, 78_000, "Goodbye.")];
/// let whole = WindowPart::whole("Hello there. Goodbye.".into(), None, Vec::new());
/// let parts = window_parts(&utterances, &timed, whole);
/// let texts: Vec<_> = parts.iter().map(|part| part.text.as_str()).collect();
/// assert_eq!(texts, ["Hello there.", "Goodbye."]);
/// ```
pub fn window_parts(
    utterances: &[Utterance],
    timed: &[TimedText],
    whole: WindowPart,
) -> Vec<WindowPart> {
    let mut parts = vec![WindowPart::default(); utterances.len()];
    if timed.is_empty() {
        if let Some(first) = parts.first_mut() {
            *first = whole;
        }
        return parts;
    }
    let spans: Vec<Range<u64>> = window_spans(utterances).collect();
    for piece in timed {
        let Some(nearest) = span_of(&spans, (piece.start + piece.end) / 2) else {
            break;
        };
        let part = &mut parts[nearest];
        if !part.text.is_empty() {
            part.text.push(' ');
        }
        part.text.push_str(&piece.text);
        part.confidence = Confidence::both(part.confidence, piece.confidence);
        let from = spans[nearest].start;
        part.words.extend(piece.words.iter().map(|word| Word {
            start: word.start.saturating_sub(from),
            end: word.end.saturating_sub(from),
            ..word.clone()
        }));
    }
    parts
}

/// The index of the span `sample` falls in, or the nearest one.
pub(crate) fn span_of(spans: &[Range<u64>], sample: u64) -> Option<usize> {
    let distance = |span: &Range<u64>| {
        if sample < span.start {
            span.start - sample
        } else {
            sample.saturating_sub(span.end.saturating_sub(1))
        }
    };
    spans
        .iter()
        .enumerate()
        .min_by_key(|(_, span)| distance(span))
        .map(|(nearest, _)| nearest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utterance(index: usize, start_s: f64, end_s: f64) -> Chunk {
        let rate = f64::from(SAMPLE_RATE);
        Chunk::new(
            index,
            (start_s * rate) as u64,
            vec![0.0; ((end_s - start_s) * rate) as usize],
        )
    }

    #[test]
    fn windows_take_utterances_while_they_end_within_12_s() {
        let mut packer = Packer::default();
        packer.record(&vec![0.5; 40 * SAMPLE_RATE as usize]);
        let mut windows = Vec::new();
        for (i, (start, end)) in [
            (1.0, 5.0),
            (6.0, 13.0),
            (14.0, 18.0),
            (19.0, 25.0),
            (31.0, 33.0),
        ]
        .into_iter()
        .enumerate()
        {
            packer.push(&utterance(i, start, end), &mut windows);
        }
        packer.finish(&mut windows);
        let shape: Vec<(usize, Vec<usize>, u64, u64)> = windows
            .iter()
            .map(|w| {
                (
                    w.index,
                    w.utterances.iter().map(|u| u.index).collect(),
                    w.start_sample,
                    w.end_sample(),
                )
            })
            .collect();
        let s = |seconds: u64| seconds * u64::from(SAMPLE_RATE);
        assert_eq!(
            shape,
            [
                (0, vec![0, 1], s(1), s(13)),
                (1, vec![2, 3], s(14), s(25)),
                (2, vec![4], s(31), s(33)),
            ]
        );
        assert!(windows.iter().all(|w| w.samples.iter().all(|&x| x == 0.5)));
    }

    #[test]
    fn audio_no_window_needs_is_forgotten() {
        let mut packer = Packer::default();
        packer.record(&vec![0.0; 10 * SAMPLE_RATE as usize]);
        packer.forget_before(8 * u64::from(SAMPLE_RATE));
        assert_eq!(packer.history.len(), 2 * SAMPLE_RATE as usize);
        let mut windows = Vec::new();
        packer.push(&utterance(0, 8.5, 9.5), &mut windows);
        packer.forget_before(10 * u64::from(SAMPLE_RATE));
        packer.finish(&mut windows);
        assert_eq!(
            windows[0].samples.len(),
            SAMPLE_RATE as usize,
            "kept for the window"
        );
    }

    #[test]
    fn spans_are_the_utterances_from_the_windows_start() {
        let utterances = [
            Utterance::of(&utterance(0, 1.0, 2.0)),
            Utterance::of(&utterance(1, 5.0, 7.5)),
            Utterance::of(&utterance(2, 7.5, 8.0)),
        ];
        let spans: Vec<_> = window_spans(&utterances).collect();
        assert_eq!(spans, [0..16_000, 64_000..104_000, 104_000..112_000]);
        assert_eq!(window_spans(&[]).count(), 0);
    }

    #[test]
    fn pieces_go_to_the_utterance_they_fall_in_or_the_nearest() {
        let utterances = [
            Utterance::of(&utterance(0, 0.0, 2.0)),
            Utterance::of(&utterance(1, 5.0, 7.0)),
        ];
        let sure = |avg_logprob| Confidence {
            avg_logprob,
            no_speech_prob: -avg_logprob / 10.0,
            tokens: 2,
        };
        let piece = |start_s: f64, end_s: f64, text: &str| TimedText {
            start: (start_s * 16_000.0) as u64,
            end: (end_s * 16_000.0) as u64,
            text: text.into(),
            confidence: Some(sure(-start_s as f32)),
            words: text
                .split(' ')
                .map(|word| Word {
                    text: word.into(),
                    start: (start_s * 16_000.0) as u64,
                    end: (end_s * 16_000.0) as u64,
                    probability: 1.0,
                })
                .collect(),
        };
        let timed = [
            piece(0.0, 2.6, "one"),
            piece(3.9, 4.5, "two"),
            piece(5.5, 7.0, "three"),
        ];
        let parts = window_parts(&utterances, &timed, WindowPart::default());
        let texts: Vec<_> = parts.iter().map(|part| part.text.as_str()).collect();
        assert_eq!(texts, ["one", "two three"]);
        // Each utterance's confidence is over its own pieces' tokens.
        assert_eq!(parts[0].confidence, Some(sure(0.0)));
        let second = parts[1].confidence.unwrap();
        assert!((second.avg_logprob + 4.7).abs() < 1e-5, "{second:?}");
        assert!((second.no_speech_prob - 0.55).abs() < 1e-6, "{second:?}");
        assert_eq!(second.tokens, 4);
        // Each gets its pieces' words.
        let texts_of = |words: &[Word]| words.iter().map(|w| w.text.clone()).collect::<Vec<_>>();
        assert_eq!(texts_of(&parts[0].words), ["one"]);
        assert_eq!(texts_of(&parts[1].words), ["two", "three"]);
        // Timed from their utterance's start (a word before it starts at 0).
        let starts: Vec<u64> = parts[1].words.iter().map(|w| w.start).collect();
        assert_eq!(starts, [0, 8_000]);
        // No pieces: the whole goes to the first utterance.
        let whole = WindowPart::whole("all".into(), Some(sure(-1.0)), Vec::new());
        assert_eq!(
            window_parts(&utterances, &[], whole.clone()),
            [whole, WindowPart::default()]
        );
    }
}
