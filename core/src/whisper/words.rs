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

/// The words of `segment` (times in centiseconds from the start of the audio decoded) as
/// [`Word`]s timed in samples: a word starts at a token that begins with a space. With DTW
/// (`aligned`) each token has one aligned time, and a word lasts until the next word's;
/// otherwise each token has a start and an end. Non-speech markers (`[BLANK_AUDIO]`) are left
/// out, as they are of the text.
pub(super) fn words_of(segment: &WhisperSegment<'_>, eot: i32, aligned: bool) -> Vec<Word> {
    let to_samples = |t: i64| u64::try_from(t).unwrap_or(0) * u64::from(SAMPLE_RATE) / 100;
    let segment_end = segment.end_timestamp();
    // (bytes, start, end, lowest probability) of each word so far.
    let mut pieces: Vec<(Vec<u8>, i64, i64, f32)> = Vec::new();
    for token in (0..segment.n_tokens()).filter_map(|i| segment.get_token(i)) {
        let data = token.token_data();
        let Ok(bytes) = token.to_bytes() else {
            continue;
        };
        if data.id >= eot || bytes.is_empty() {
            continue;
        }
        let (start, end) = if aligned {
            (data.t_dtw, data.t_dtw)
        } else {
            (data.t0, data.t1)
        };
        match pieces.last_mut() {
            Some(word) if !bytes.starts_with(b" ") => {
                word.0.extend_from_slice(bytes);
                word.2 = word.2.max(end);
                word.3 = word.3.min(data.p);
            }
            _ => pieces.push((bytes.to_vec(), start, end, data.p)),
        }
    }
    if aligned {
        // An aligned word ends where the next one starts (the last where the segment does).
        let starts: Vec<i64> = pieces.iter().map(|word| word.1).collect();
        for (i, word) in pieces.iter_mut().enumerate() {
            word.2 = starts
                .get(i + 1)
                .copied()
                .unwrap_or(segment_end)
                .max(word.1);
        }
    }
    pieces
        .into_iter()
        .filter_map(|(bytes, start, end, probability)| {
            let text = clean_text(&String::from_utf8_lossy(&bytes));
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
    use super::word_probabilities;

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
