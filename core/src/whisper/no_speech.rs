//! Whisper's probability that a chunk holds no speech, computed as OpenAI's Whisper computes
//! it, and the no-speech rule (`DecodingOptions::no_speech_threshold`) that drops the text of a
//! chunk judged to hold none.
//!
//! whisper.cpp reports a no-speech probability too, but takes it after the language and task
//! tokens, where the model all but never predicts the no-speech token: it is about 0 for every
//! chunk decoded without timestamps, speech or not. Whisper was trained to predict that token
//! right after start-of-transcript, so that is where it is read here, from the raw logits of
//! one decoder step over the audio the state has just encoded.

use whisper_rs::WhisperState;

use super::Settings;
use super::full::Decoded;
use crate::{Error, Result, Transcription};

impl Settings {
    /// The probability of the no-speech token right after start-of-transcript (after the
    /// prompt, when there is one, as in the decode) for the audio `state` has just decoded.
    pub(super) fn no_speech_probability(
        &self,
        state: &mut WhisperState,
        index: usize,
    ) -> Result<f32> {
        let failed = |e| Error::transcribe_caused_by(index, "the no-speech probability failed", e);
        let mut past = 0;
        let prompt = self.prompt(false);
        if !prompt.is_empty() {
            let mut said_before = Vec::with_capacity(prompt.len() + 1);
            said_before.push(self.tokens.prev);
            said_before.extend_from_slice(prompt);
            state
                .decode(&said_before, 0, self.threads)
                .map_err(failed)?;
            past = said_before.len();
        }
        // One token at a time: whisper-rs hands out the first row of logits only.
        state
            .decode(&[self.tokens.sot], past, self.threads)
            .map_err(failed)?;
        let logits = state.get_logits().map_err(failed)?;
        let no_speech = usize::try_from(self.tokens.no_speech)
            .ok()
            .and_then(|id| logits.get(id).copied())
            .unwrap_or(f32::NEG_INFINITY);
        let top = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let total: f64 = logits.iter().map(|&l| f64::from(l - top).exp()).sum();
        Ok((f64::from(no_speech - top).exp() / total) as f32)
    }

    /// Puts the no-speech probability of the audio `state` has just decoded into `decoded`'s
    /// confidence (and its timed pieces', which share the window).
    pub(super) fn set_no_speech(
        &self,
        state: &mut WhisperState,
        index: usize,
        decoded: &mut Decoded,
    ) -> Result<()> {
        if decoded.confidence.is_none() {
            // No text: nothing to judge or report.
            return Ok(());
        }
        let probability = self.no_speech_probability(state, index)?;
        let confidences = decoded
            .timed
            .iter_mut()
            .filter_map(|piece| piece.confidence.as_mut());
        for confidence in decoded.confidence.iter_mut().chain(confidences) {
            confidence.no_speech_prob = probability;
        }
        Ok(())
    }

    /// `done` without its text when the options' no-speech rule judges it no speech.
    pub(super) fn drop_if_no_speech(&self, index: usize, done: Transcription) -> Transcription {
        if !self.options.is_no_speech(done.confidence) {
            return done;
        }
        tracing::debug!(
            chunk = index,
            confidence = ?done.confidence,
            text = %done.text,
            "no speech: the text is left out"
        );
        Transcription {
            text: String::new(),
            timed: Vec::new(),
            words: Vec::new(),
            word_probabilities: Vec::new(),
            ..done
        }
    }
}
