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
//! of text goes to the utterance its middle falls in, and every utterance is written as a
//! segment of its own, as without packing.

use crate::{Chunk, Confidence, SAMPLE_RATE, TimedText, Utterance, Word};
#[cfg(feature = "whisper")]
use crate::{Result, Transcription};

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

/// An utterance's part of a packed window's transcription.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct WindowPart {
    /// Its text (empty when the window gave it none).
    pub text: String,
    /// How sure the transcriber is of that text: its pieces' confidences together
    /// ([`Confidence::both`]).
    pub confidence: Option<Confidence>,
    /// Its words, timed from the window's start.
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

/// Gives each utterance of a window starting at `window_start` its part of the window's
/// transcription: each timed piece (text, confidence, words) goes to the utterance its middle
/// falls in (or the nearest one); without timed pieces, `whole` (the window's untimed
/// transcription) goes to the first utterance. An unpacked chunk is a window of one
/// utterance and no pieces: its part is `whole`.
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
/// let parts = window_parts(&utterances, 16_000, &timed, whole);
/// let texts: Vec<_> = parts.iter().map(|part| part.text.as_str()).collect();
/// assert_eq!(texts, ["Hello there.", "Goodbye."]);
/// ```
pub fn window_parts(
    utterances: &[Utterance],
    window_start: u64,
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
    for piece in timed {
        let Some(nearest) = utterance_of(utterances, window_start, piece) else {
            break;
        };
        let part = &mut parts[nearest];
        if !part.text.is_empty() {
            part.text.push(' ');
        }
        part.text.push_str(&piece.text);
        part.confidence = Confidence::both(part.confidence, piece.confidence);
        part.words.extend_from_slice(&piece.words);
    }
    parts
}

/// The index of the utterance `piece`'s middle falls in, or the nearest one.
fn utterance_of(utterances: &[Utterance], window_start: u64, piece: &TimedText) -> Option<usize> {
    let middle = window_start + (piece.start + piece.end) / 2;
    let distance = |u: &Utterance| {
        if middle < u.start_sample {
            u.start_sample - middle
        } else {
            middle.saturating_sub(u.end_sample.saturating_sub(1))
        }
    };
    utterances
        .iter()
        .enumerate()
        .min_by_key(|(_, u)| distance(u))
        .map(|(nearest, _)| nearest)
}

// The Whisper transcriber's guard for packed windows whose timed text leaves an utterance
// without words: it lives beside the packing it corrects.

/// Speech an utterance of a packed window must have for its missing words to be a failed
/// decode rather than a cough or a breath.
#[cfg(feature = "whisper")]
const WORDLESS_SPEECH: std::time::Duration = std::time::Duration::from_secs(1);

/// The first utterance of a packed window that `done`, the window's decode, left without a
/// word although it holds at least `WORDLESS_SPEECH` of speech.
#[cfg(feature = "whisper")]
pub(crate) fn wordless_utterance(window: &Chunk, done: &Transcription) -> Option<usize> {
    if window.utterances.is_empty() {
        return None;
    }
    let least = WORDLESS_SPEECH.as_millis() as u64 * u64::from(SAMPLE_RATE) / 1000;
    let whole = WindowPart::whole(done.text.clone(), None, Vec::new());
    let parts = window_parts(&window.utterances, window.start_sample, &done.timed, whole);
    window.utterances.iter().zip(&parts).position(|(u, part)| {
        part.text.is_empty() && u.speech_end_sample.saturating_sub(u.start_sample) >= least
    })
}

/// A packed window's utterances decoded one by one with `decode`, each as a chunk of its
/// own, the window's text timed so that each utterance gets exactly its own; `retries` are the
/// window's own full-window retries, which the result keeps counting.
#[cfg(feature = "whisper")]
pub(crate) fn decode_alone(
    window: &Chunk,
    retries: u32,
    mut decode: impl FnMut(&Chunk) -> Result<Transcription>,
) -> Result<Transcription> {
    let mut done = Transcription {
        full_window_retries: retries,
        ..Transcription::default()
    };
    let offset = |sample: u64| {
        usize::try_from(sample.saturating_sub(window.start_sample))
            .unwrap_or(usize::MAX)
            .min(window.samples.len())
    };
    for utterance in &window.utterances {
        let (from, to) = (offset(utterance.start_sample), offset(utterance.end_sample));
        let to = to.max(from);
        let mut alone = Chunk::new(
            utterance.index,
            utterance.start_sample,
            window.samples[from..to].to_vec(),
        );
        alone.speech_end_sample = utterance.speech_end_sample;
        let text = decode(&alone)?;
        done.full_window_retries += text.full_window_retries;
        // One language for the window's segments: the first one detected.
        done.language = done.language.or(text.language);
        done.confidence = Confidence::both(done.confidence, text.confidence);
        done.temperature_fallbacks += text.temperature_fallbacks;
        if !text.text.is_empty() {
            if !done.text.is_empty() {
                done.text.push(' ');
            }
            done.text.push_str(&text.text);
        }
        // The utterance's words, timed from the window's start.
        let words = text
            .words
            .into_iter()
            .map(|word| Word {
                start: word.start + from as u64,
                end: word.end + from as u64,
                ..word
            })
            .collect();
        done.timed.push(TimedText {
            start: from as u64,
            end: to as u64,
            text: text.text,
            confidence: text.confidence,
            words,
        });
    }
    Ok(done)
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
    fn pieces_between_utterances_go_to_the_nearest() {
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
            piece(5.0, 7.0, "three"),
        ];
        let parts = window_parts(&utterances, 0, &timed, WindowPart::default());
        let texts: Vec<_> = parts.iter().map(|part| part.text.as_str()).collect();
        assert_eq!(texts, ["one", "two three"]);
        // Each utterance's confidence is over its own pieces' tokens.
        assert_eq!(parts[0].confidence, Some(sure(0.0)));
        let second = parts[1].confidence.unwrap();
        assert!((second.avg_logprob + 4.45).abs() < 1e-5, "{second:?}");
        assert!((second.no_speech_prob - 0.5).abs() < 1e-6, "{second:?}");
        assert_eq!(second.tokens, 4);
        // Each gets its pieces' words.
        let texts_of = |words: &[Word]| words.iter().map(|w| w.text.clone()).collect::<Vec<_>>();
        assert_eq!(texts_of(&parts[0].words), ["one"]);
        assert_eq!(texts_of(&parts[1].words), ["two", "three"]);
        // No pieces: the whole goes to the first utterance.
        let whole = WindowPart::whole("all".into(), Some(sure(-1.0)), Vec::new());
        assert_eq!(
            window_parts(&utterances, 0, &[], whole.clone()),
            [whole, WindowPart::default()]
        );
    }

    #[cfg(feature = "whisper")]
    #[test]
    fn a_packed_window_that_leaves_a_spoken_utterance_wordless_is_unpacked() {
        let utterance = |index: usize, start: u64, speech_end: u64| Utterance {
            index,
            start_sample: start,
            end_sample: speech_end + 1_600,
            speech_end_sample: speech_end,
        };
        let mut window = Chunk::new(0, 16_000, vec![0.0; 160_000]);
        // 2 s of speech, then 0.5 s (too short to judge), then 3 s.
        window.utterances = vec![
            utterance(0, 16_000, 48_000),
            utterance(1, 64_000, 72_000),
            utterance(2, 96_000, 144_000),
        ];
        let piece = |start, end, text: &str| TimedText {
            start,
            end,
            text: text.into(),
            confidence: None,
            words: Vec::new(),
        };
        let mut done = Transcription {
            text: "One. Three.".into(),
            full_window_retries: 0,
            timed: vec![piece(0, 32_000, "One."), piece(80_000, 128_000, "Three.")],
            language: None,
            confidence: None,
            words: Vec::new(),
            temperature_fallbacks: 0,
        };
        // The short one without words is not judged.
        assert_eq!(wordless_utterance(&window, &done), None);
        // Both pieces given to the first: the third is left wordless.
        done.timed = vec![piece(0, 20_000, "One."), piece(20_000, 40_000, "Three.")];
        assert_eq!(wordless_utterance(&window, &done), Some(2));
        // An utterance is not a window.
        assert_eq!(
            wordless_utterance(&Chunk::new(0, 0, vec![0.0; 48_000]), &done),
            None
        );
    }

    #[cfg(feature = "whisper")]
    #[test]
    fn a_windows_utterances_are_decoded_alone_each_timed_over_itself() {
        let mut window = Chunk::new(3, 16_000, (0..64_000).map(|i| i as f32).collect());
        let utterance = |index, start_sample, end_sample| Utterance {
            index,
            start_sample,
            end_sample,
            speech_end_sample: end_sample - 1_600,
        };
        window.utterances = vec![utterance(3, 16_000, 32_000), utterance(4, 48_000, 80_000)];
        let mut seen = Vec::new();
        let done = decode_alone(&window, 1, |alone| {
            seen.push((alone.index, alone.start_sample, alone.speech_end_sample));
            // Each chunk holds its own samples: the first is where it starts in the window.
            let first = alone.samples.first().copied().unwrap_or_default();
            Ok(Transcription {
                text: format!("from {first}"),
                full_window_retries: 1,
                timed: Vec::new(),
                language: None,
                confidence: None,
                words: Vec::new(),
                temperature_fallbacks: 0,
            })
        })
        .unwrap();
        assert_eq!(seen, [(3, 16_000, 30_400), (4, 48_000, 78_400)]);
        assert_eq!(done.text, "from 0 from 32000");
        assert_eq!(done.full_window_retries, 3);
        let parts = window_parts(
            &window.utterances,
            window.start_sample,
            &done.timed,
            WindowPart::default(),
        );
        let texts: Vec<_> = parts.iter().map(|part| part.text.as_str()).collect();
        assert_eq!(texts, ["from 0", "from 32000"]);
    }
}
