//! One `whisper_full` call and what it gave: the cleaned text, the longest segment's tokens,
//! timed pieces, confidence and words.

use std::ops::Range;

use whisper_rs::{FullParams, WhisperState};

use super::clean_text;
use super::packed::cut_at_utterances;
use super::words::{spoken_end, text_tokens, words_of};
use crate::{Confidence, DetectedLanguage, Error, Result, SAMPLE_RATE, TimedText, Word};

/// What one whisper.cpp call gave.
#[derive(Debug)]
pub(super) struct Decoded {
    pub(super) text: String,
    /// Tokens of the longest segment (the budget is per segment).
    pub(super) tokens: usize,
    pub(super) timed: Vec<TimedText>,
    /// How sure Whisper is of the text (`None` without text).
    pub(super) confidence: Option<Confidence>,
    /// The language detected before decoding (with `--language auto`).
    pub(super) language: Option<DetectedLanguage>,
    /// With word timestamps, a lone chunk's words (a packed window's are in `timed`).
    pub(super) words: Vec<Word>,
    /// A lone chunk's words and their probabilities, whether or not word timestamps were
    /// asked for (see [`word_probabilities`](super::words::word_probabilities)); empty for a
    /// packed window.
    pub(super) scored: Vec<(String, f32)>,
}

/// One `whisper_full` call on chunk `index`'s `samples` with `params`: the cleaned text, the
/// tokens of its longest segment, with `spans` (a packed window's utterances) its segments as
/// timed pieces, cut where they run over from one utterance into the next, and with `words`
/// (`Some(aligned)`) its words timed.
#[allow(
    clippy::too_many_arguments,
    reason = "one call's inputs, each used once"
)]
pub(super) fn run_full(
    state: &mut WhisperState,
    params: FullParams<'_, '_>,
    samples: &[f32],
    index: usize,
    spans: Option<&[Range<u64>]>,
    eot: i32,
    words: Option<bool>,
) -> Result<Decoded> {
    state
        .full(params, samples)
        .map_err(|e| Error::transcribe_caused_by(index, "whisper.cpp failed", e))?;
    let mut decoded = Decoded {
        text: String::new(),
        tokens: 0,
        timed: Vec::new(),
        confidence: None,
        language: None,
        words: Vec::new(),
        scored: Vec::new(),
    };
    // Whisper's timestamps are in centiseconds.
    let to_samples = |t: i64| u64::try_from(t).unwrap_or(0) * u64::from(SAMPLE_RATE) / 100;
    // Where the DTW alignment of the speech so far ended (one alignment covers every segment).
    let mut aligned_after = 0;
    for segment in state.as_iter() {
        let piece = segment
            .to_str_lossy()
            .map_err(|e| Error::transcribe_caused_by(index, "cannot read segment text", e))?;
        let tokens = text_tokens(&segment, eot);
        let segment_after = aligned_after;
        if words == Some(true) {
            aligned_after = spoken_end(&tokens, aligned_after);
        }
        decoded.text.push_str(&piece);
        decoded.text.push(' ');
        decoded.tokens = decoded
            .tokens
            .max(usize::try_from(segment.n_tokens()).unwrap_or(0));
        let (mut logprob_sum, mut text_tokens) = (0.0f64, 0u32);
        for token in (0..segment.n_tokens()).filter_map(|i| segment.get_token(i)) {
            let data = token.token_data();
            // Ids from the end-of-text token on are markers and timestamps, not text.
            if data.id < eot {
                logprob_sum += f64::from(data.plog);
                text_tokens += 1;
            }
        }
        let confidence = Confidence {
            avg_logprob: if text_tokens == 0 {
                0.0
            } else {
                (logprob_sum / f64::from(text_tokens)) as f32
            },
            no_speech_prob: segment.no_speech_probability(),
            tokens: text_tokens,
        };
        let cleaned = clean_text(&piece);
        if cleaned.is_empty() {
            continue;
        }
        decoded.confidence = Confidence::both(decoded.confidence, Some(confidence));
        let segment_start = segment.start_timestamp().max(segment_after);
        let segment_words = words.map_or_else(Vec::new, |aligned| {
            words_of(&tokens, segment_start, aligned)
        });
        // The words as whisper.cpp's tokens give them, whether or not words are written: a
        // packed window's pieces are cut by their token timestamps, and a lone chunk's words
        // keep their probabilities.
        let untimed = words_of(&tokens, 0, false);
        if let Some(spans) = spans {
            let piece = TimedText {
                start: to_samples(segment.start_timestamp()),
                end: to_samples(segment.end_timestamp()),
                text: cleaned,
                confidence: Some(confidence),
                words: segment_words,
            };
            // Cut by token timestamps, asked for in every packed window, whether or not
            // the words are written (and however they are timed), so that asking for
            // words never changes the text.
            decoded
                .timed
                .extend(cut_at_utterances(piece, &untimed, spans));
        } else {
            decoded.scored.extend(
                untimed
                    .into_iter()
                    .map(|word| (word.text, word.probability)),
            );
            decoded.words.extend(segment_words);
        }
    }
    decoded.text = clean_text(&decoded.text);
    Ok(decoded)
}
