//! `--word-timestamps`: each word of a decode with its times. The times come from whisper.cpp's
//! DTW alignment of the text to the audio (the cross-attention heads each released Whisper
//! size is known to align with), or, for a model of another shape, from its experimental
//! token timestamps.

use std::path::Path;

use whisper_rs::{
    DtwMode, DtwModelPreset, DtwParameters, WhisperContext, WhisperContextParameters,
    WhisperSegment,
};

use super::clean_text;
use crate::{Error, Result, SAMPLE_RATE, Word};

/// The alignment heads of the released Whisper whose shape `context`'s model has, if any.
fn preset_of(context: &WhisperContext) -> Option<DtwModelPreset> {
    let multilingual = context.is_multilingual();
    let shape = (
        context.model_n_audio_state(),
        context.model_n_audio_layer(),
        context.model_n_text_layer(),
    );
    Some(match (shape, multilingual) {
        ((384, 4, 4), false) => DtwModelPreset::TinyEn,
        ((384, 4, 4), true) => DtwModelPreset::Tiny,
        ((512, 6, 6), false) => DtwModelPreset::BaseEn,
        ((512, 6, 6), true) => DtwModelPreset::Base,
        ((768, 12, 12), false) => DtwModelPreset::SmallEn,
        ((768, 12, 12), true) => DtwModelPreset::Small,
        ((1024, 24, 24), false) => DtwModelPreset::MediumEn,
        ((1024, 24, 24), true) => DtwModelPreset::Medium,
        ((1280, 32, 4), true) => DtwModelPreset::LargeV3Turbo,
        _ => return None,
    })
}

/// The model at `path` loaded again with DTW alignment on, when `context`'s model has a known
/// shape; `None` otherwise (its words are then timed by token timestamps).
pub(super) fn aligning_context(
    path: &Path,
    context: &WhisperContext,
) -> Result<Option<WhisperContext>> {
    let Some(preset) = preset_of(context) else {
        tracing::debug!(model = %path.display(), "no alignment heads known: token timestamps");
        return Ok(None);
    };
    let mut params = WhisperContextParameters::default();
    params.use_gpu(false);
    params.dtw_parameters(DtwParameters {
        mode: DtwMode::ModelPreset {
            model_preset: preset,
        },
        ..DtwParameters::default()
    });
    WhisperContext::new_with_params(path, params)
        .map(Some)
        .map_err(|e| {
            Error::model_caused_by(path, "whisper.cpp could not load it with alignment", e)
        })
}

/// `segment`'s text tokens (not markers or timestamps, nor empty), read from whisper.cpp once
/// for [`words_of`] and [`spoken_end`].
pub(super) fn text_tokens(segment: &WhisperSegment<'_>, eot: i32) -> Vec<TimedToken> {
    (0..segment.n_tokens())
        .filter_map(|i| segment.get_token(i))
        .filter_map(|token| {
            let data = token.token_data();
            let bytes = token.to_bytes().ok()?;
            (data.id < eot && !bytes.is_empty()).then(|| TimedToken {
                bytes: bytes.to_vec(),
                start: data.t0,
                end: data.t1,
                aligned_end: data.t_dtw,
                probability: data.p,
            })
        })
        .collect()
}

/// One text token of a decode, times in centiseconds.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct TimedToken {
    bytes: Vec<u8>,
    /// whisper.cpp's token timestamps.
    start: i64,
    end: i64,
    /// DTW's time for the token: its end.
    aligned_end: i64,
    probability: f32,
}

impl TimedToken {
    /// Whether the token is spoken, not only punctuation (".", "?", " -").
    fn is_spoken(&self) -> bool {
        String::from_utf8_lossy(&self.bytes)
            .chars()
            .any(char::is_alphanumeric)
    }
}

/// Where DTW's alignment of a segment's speech (its `tokens`) ends: its last spoken token's
/// time (centiseconds; punctuation after it may have taken a pause), or `after` if that is
/// later. Only meaningful in a decode aligned by DTW.
pub(super) fn spoken_end(tokens: &[TimedToken], after: i64) -> i64 {
    tokens
        .iter()
        .filter(|token| token.is_spoken())
        .map(|token| token.aligned_end)
        .fold(after, i64::max)
}

/// The words of a segment's `tokens` (times in centiseconds from the start of the audio
/// decoded) as [`Word`]s timed in samples: a word starts at a token that begins with a space.
/// Without DTW each token has a start and an end. With DTW (`aligned`) each token has one
/// time: where the alignment moves on to the next token, so the token's end (whisper.cpp gives
/// the time the path enters a token's row of cross-attention to the token before it, since
/// each row is the decoder predicting the token after its own). A word then ends at the time
/// of its last spoken token, leaving out punctuation, which Whisper may write after a pause;
/// and it starts where the word before it ended, punctuation and all. The first word starts at
/// `segment_start`: where the segment does, or where the last spoken word of the decode's
/// segment before it ended ([`spoken_end`]), if that is later (Whisper's segment times and
/// DTW's disagree). Non-speech markers (`[BLANK_AUDIO]`) are left out, as they are of the text.
pub(super) fn words_of(tokens: &[TimedToken], segment_start: i64, aligned: bool) -> Vec<Word> {
    let to_samples = |t: i64| u64::try_from(t).unwrap_or(0) * u64::from(SAMPLE_RATE) / 100;
    // Where the word before ended: with its punctuation, and without.
    let (mut previous_end, mut previous_spoken_end) = (segment_start, segment_start);
    tokens
        .chunk_by(|_, next| !next.bytes.starts_with(b" "))
        .filter_map(|tokens| {
            let (start, end) = if aligned {
                let last = tokens
                    .last()
                    .map_or(previous_end, |token| token.aligned_end);
                let spoken_end = tokens
                    .iter()
                    .rev()
                    .find(|token| token.is_spoken())
                    .map_or(last, |token| token.aligned_end);
                // A word the alignment left no time of its own takes the time of the
                // punctuation before it ("Mrs. Henry": the "." took Henry's), or else of its
                // own ("fortune,": the "," took fortune's).
                let start = if spoken_end > previous_end {
                    previous_end
                } else {
                    previous_spoken_end.min(previous_end)
                };
                let end = if spoken_end > start { spoken_end } else { last };
                previous_end = last.max(previous_end);
                previous_spoken_end = end.max(start);
                (start, end)
            } else {
                let start = tokens.first().map_or(0, |token| token.start);
                (
                    start,
                    tokens.iter().map(|token| token.end).max().unwrap_or(start),
                )
            };
            let bytes: Vec<u8> = tokens
                .iter()
                .flat_map(|token| token.bytes.iter().copied())
                .collect();
            let text = clean_text(&String::from_utf8_lossy(&bytes));
            let probability = tokens
                .iter()
                .map(|token| token.probability)
                .fold(f32::INFINITY, f32::min);
            (!text.is_empty()).then(|| Word {
                text,
                start: to_samples(start),
                end: to_samples(end.max(start)),
                probability,
            })
        })
        .collect()
}

/// The probability of each word of `text` (split at whitespace) from `scored`, a decode's
/// words with theirs, walked in step: `text` is that decode's text or the start of it (a
/// restart cut after its first copy). A word that does not match its scored word, and every
/// word after it, gets 0: unsure. Empty when nothing was scored (a packed window).
pub(super) fn word_probabilities(text: &str, scored: &[(String, f32)]) -> Vec<f32> {
    if scored.is_empty() {
        return Vec::new();
    }
    let mut in_step = true;
    text.split_whitespace()
        .enumerate()
        .map(|(i, word)| {
            in_step = in_step && scored.get(i).is_some_and(|(text, _)| text == word);
            if in_step { scored[i].1 } else { 0.0 }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{TimedToken, word_probabilities, words_of};

    /// Tokens with DTW times (centiseconds), as whisper.cpp gives them: each token's end.
    fn aligned(tokens: &[(&str, i64)]) -> Vec<TimedToken> {
        tokens
            .iter()
            .map(|&(text, aligned_end)| TimedToken {
                bytes: text.as_bytes().to_vec(),
                start: 0,
                end: 0,
                aligned_end,
                probability: 0.9,
            })
            .collect()
    }

    /// Each word's text and its times in centiseconds.
    fn timed(tokens: Vec<TimedToken>, segment_start: i64) -> Vec<(String, u64, u64)> {
        words_of(&tokens, segment_start, true)
            .into_iter()
            .map(|word| (word.text, word.start / 160, word.end / 160))
            .collect()
    }

    fn expected(words: &[(&str, u64, u64)]) -> Vec<(String, u64, u64)> {
        words
            .iter()
            .map(|&(w, a, b)| (w.to_owned(), a, b))
            .collect()
    }

    #[test]
    fn a_dtw_time_ends_its_token_and_a_word_starts_where_the_one_before_ended() {
        // "The lazy dog." from 40: "lazy" ends at 327, "dog" at 389, and the "." after a pause.
        let tokens = aligned(&[(" The", 91), (" lazy", 327), (" dog", 389), (".", 393)]);
        assert_eq!(
            timed(tokens, 40),
            expected(&[("The", 40, 91), ("lazy", 91, 327), ("dog.", 327, 389)])
        );
        // Words of several tokens end at their last spoken one.
        let tokens = aligned(&[(" Dash", 120), ("wood", 150), ("'s", 170), ("?", 240)]);
        assert_eq!(timed(tokens, 100), expected(&[("Dashwood's?", 100, 170)]));
    }

    #[test]
    fn a_word_left_without_time_takes_its_punctuations() {
        // The "." after "Mrs" took Henry's time; the "," after "fortune" took fortune's.
        let tokens = aligned(&[
            (" Mrs", 6349),
            (".", 6399),
            (" Henry", 6399),
            (" her", 6420),
            (" fortune", 6420),
            (",", 6455),
        ]);
        assert_eq!(
            timed(tokens, 6300),
            expected(&[
                ("Mrs.", 6300, 6349),
                ("Henry", 6349, 6399),
                ("her", 6399, 6420),
                ("fortune,", 6420, 6455),
            ])
        );
    }

    #[test]
    fn token_timestamps_without_dtw_keep_their_own_start_and_end() {
        let tokens = vec![
            TimedToken {
                bytes: b" Hello".to_vec(),
                start: 10,
                end: 40,
                aligned_end: -1,
                probability: 0.8,
            },
            TimedToken {
                bytes: b".".to_vec(),
                start: 40,
                end: 45,
                aligned_end: -1,
                probability: 0.6,
            },
        ];
        let words = words_of(&tokens, 0, false);
        assert_eq!(words.len(), 1);
        assert_eq!((words[0].start, words[0].end), (1_600, 7_200));
        assert_eq!(words[0].probability, 0.6);
    }

    #[test]
    fn each_word_of_the_text_gets_its_scored_words_probability_while_they_match() {
        let scored: Vec<(String, f32)> =
            [("Where", 0.9), ("are", 0.8), ("my", 0.7), ("keys?", 0.6)]
                .into_iter()
                .map(|(w, p)| (w.to_owned(), p))
                .collect();
        assert_eq!(
            word_probabilities("Where are my keys?", &scored),
            [0.9, 0.8, 0.7, 0.6]
        );
        // A restart cut after its first copy: the start of the decode's words.
        assert_eq!(word_probabilities("Where are", &scored), [0.9, 0.8]);
        // Words out of step with the scored ones are unsure from there on.
        assert_eq!(
            word_probabilities("Where were my keys? Here.", &scored),
            [0.9, 0.0, 0.0, 0.0, 0.0]
        );
        // Nothing scored (a packed window): the transcriber does not say.
        assert!(word_probabilities("Where are my keys?", &[]).is_empty());
    }
}
