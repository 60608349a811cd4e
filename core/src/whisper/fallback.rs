//! Temperature fallback (`DecodingOptions::temperature_fallback`, off by default): a decode
//! that looks failed (its words loop or compress like a loop, or its mean log-probability is
//! under `DecodingOptions::logprob_threshold`, -1 by default) and not like silence (the
//! no-speech rule, when it is on) is decoded again by sampling at rising temperatures, as OpenAI's Whisper does,
//! until one does not look failed; when none passes, the likeliest of them is kept.
//!
//! Sampling draws from the random generator of each of the state's decoders. whisper.cpp seeds
//! the first decoder's generator once, when the state is created (the others at every call):
//! on a state that has decoded before, the draws would depend on its history, and so on which
//! chunks that worker saw. Each fallback decode therefore runs on a fresh state, so its text
//! depends only on the chunk and the options, on every backend.

use std::ops::Range;

use whisper_rs::SamplingStrategy;

use super::WhisperTranscriber;
use super::full::Decoded;
use super::guard::Guard;
use super::words::word_probabilities;
use crate::window::{Degenerate, WindowPlan, degenerate};
use crate::{Confidence, Error, Result, Transcription};

/// The temperatures tried in turn (OpenAI's, after 0).
const TEMPERATURES: [f32; 5] = [0.2, 0.4, 0.6, 0.8, 1.0];

/// Candidates sampled at each temperature, the likeliest kept (OpenAI's `best_of`).
const BEST_OF: i32 = 5;

/// Whether a decode's output looks failed: words that loop or compress like a loop, or a mean
/// log-probability under `logprob_threshold`. No words is not a failure here: the voice
/// detector can hear speech in a cough.
fn looks_failed(text: &str, confidence: Option<Confidence>, logprob_threshold: f32) -> bool {
    let looping = matches!(
        degenerate(text, 0, WindowPlan::FULL),
        Some(Degenerate::Repeats | Degenerate::Compresses)
    );
    !text.is_empty() && (looping || confidence.is_some_and(|c| c.avg_logprob < logprob_threshold))
}

/// The mean log-probability of a decode's text (none: the least likely).
fn logprob(decoded: &Decoded) -> f32 {
    decoded
        .confidence
        .map_or(f32::NEG_INFINITY, |c| c.avg_logprob)
}

impl WhisperTranscriber {
    /// `decoded` (after the loop guard did `guard` to it) as the chunk's transcription; with
    /// temperature fallback on and `decoded` looking failed, the fallback's, which counts its
    /// decodes. A decode the no-speech rule judges silence is not failed: it is left to that
    /// rule, as OpenAI's Whisper leaves it.
    pub(super) fn fall_back_if_failed(
        &self,
        index: usize,
        samples: &[f32],
        spans: Option<&[Range<u64>]>,
        decoded: Decoded,
        guard: Guard,
    ) -> Result<Transcription> {
        let settings = &self.settings;
        let options = &settings.options;
        let failed = |decoded: &Decoded| {
            looks_failed(&decoded.text, decoded.confidence, options.logprob_threshold)
                && !options.is_no_speech(decoded.confidence)
        };
        let mut best = decoded;
        let mut tries = 0;
        if options.temperature_fallback && failed(&best) {
            let detected = best.language.clone();
            for temperature in TEMPERATURES {
                tries += 1;
                let mut state = self
                    .context
                    .create_state()
                    .map_err(|e| Error::transcribe_caused_by(index, "cannot create a state", e))?;
                let sampling = SamplingStrategy::Greedy { best_of: BEST_OF };
                let tried = settings.decode(
                    &mut state,
                    samples,
                    index,
                    WindowPlan::FULL,
                    spans,
                    detected.as_ref(),
                    (sampling, temperature),
                )?;
                let failed = failed(&tried);
                tracing::debug!(chunk = index, temperature, failed, text = %tried.text, "fallback");
                if !failed || logprob(&tried) > logprob(&best) {
                    best = tried;
                }
                if !failed {
                    break;
                }
            }
        }
        Ok(Transcription {
            word_probabilities: word_probabilities(&best.text, &best.scored),
            text: best.text,
            full_window_retries: u32::from(guard == Guard::FullWindowRetry),
            restarts_cut: u32::from(guard == Guard::RestartCut),
            timed: best.timed,
            language: best.language,
            confidence: best.confidence,
            words: best.words,
            temperature_fallbacks: tries,
        })
    }
}
