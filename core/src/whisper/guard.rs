//! The loop guard around a chunk's decode with the window sized to it (`steno_core::window`):
//! a degenerate output is cut after its first copy when it is the transcript written over
//! again, kept when it is no words where Whisper hears no speech or a lone chunk the no-speech
//! rule leaves out, and decoded again with Whisper's full window otherwise.

use std::ops::Range;

use super::full::Decoded;
use super::{WhisperTranscriber, whisper_input};
use crate::stage::window_spans;
use crate::window::{Degenerate, WindowPlan, degenerate, first_copy};
use crate::{Chunk, Result, Transcription};

/// From this probability of no speech (OpenAI's no-speech threshold), a chunk whose decode
/// with the window sized to it wrote no words is taken at its word: a sound the voice
/// detector let through, not a decode gone wrong, so no full-window retry (about 1 s on 2
/// cores, for nothing). A packed window taken so still has its utterances of a second or more
/// decoded alone (`wordless_utterance`), each judged the same way. Measured with tiny.en:
/// such decodes of sounds (noise bursts, clicks, tones, a chord) scored 0.70-0.93, and their
/// full-window retries wrote nothing or a caption ("You", "I'm gonna go to the next one.");
/// the one spoken chunk seen to decode to no words ("Go on." right after clicks) scored 0.23,
/// and is still decoded again (BENCHMARKS.md, "Whisper's window sized to the utterance").
const EMPTY_NO_SPEECH_PROBABILITY: f32 = 0.6;

/// What the loop guard did with a chunk's decode with the window sized to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Guard {
    /// Nothing: it did not look degenerate.
    Passed,
    /// It wrote the transcript over again; the first copy is kept.
    RestartCut,
    /// It looked degenerate, but the no-speech rule leaves the chunk out anyway.
    NoSpeech,
    /// It looked degenerate otherwise; this is the full window's decode.
    FullWindowRetry,
}

impl WhisperTranscriber {
    /// One decode of `chunk` with the window sized to it, guarded: a restart cut after its
    /// first copy, no words where Whisper hears no speech kept, any other degenerate output
    /// decoded again with the full window.
    pub(super) fn transcribe_window(&mut self, chunk: &Chunk) -> Result<Transcription> {
        let samples = &whisper_input(chunk);
        // A packed window is decoded with timestamps, and its pieces cut where its
        // utterances meet.
        let spans: Option<Vec<Range<u64>>> =
            (chunk.utterances.len() > 1).then(|| window_spans(&chunk.utterances).collect());
        let spans = spans.as_deref();
        let plan = WindowPlan::for_samples(samples.len());
        let detected = self.detect_language(chunk.index, samples)?;
        let decoded = self.decode_timed(chunk.index, samples, plan, spans, detected.clone())?;
        let reason = if plan.is_full() {
            None
        } else {
            degenerate(&decoded.text, decoded.tokens, plan)
        };
        tracing::debug!(
            chunk = chunk.index,
            audio_ctx = plan.audio_ctx,
            tokens = decoded.tokens,
            avg_logprob = decoded.confidence.map(|c| c.avg_logprob),
            "decoded"
        );
        let reason = match reason {
            Some(Degenerate::Empty) if self.hears_no_speech(chunk.index)? => None,
            reason => reason,
        };
        let Some(reason) = reason else {
            return self.fall_back_if_failed(chunk.index, samples, spans, decoded, Guard::Passed);
        };
        let copy = self.restart_to_cut(&decoded, spans);
        // A lone chunk the no-speech rule leaves out: its text goes, whatever a full window
        // would write (as temperature fallback does not retry it either).
        let no_speech = spans.is_none() && self.settings.options.is_no_speech(decoded.confidence);
        tracing::debug!(
            chunk = chunk.index,
            ?reason,
            audio_ctx = plan.audio_ctx,
            tokens = decoded.tokens,
            text = %decoded.text,
            remedy = if copy.is_some() {
                "first copy kept"
            } else if no_speech {
                "none: no speech"
            } else {
                "full window"
            },
            "trimmed window looks degenerate"
        );
        let (decoded, guard) = match copy {
            Some(copy) => {
                let decoded = Decoded {
                    text: copy,
                    ..decoded
                };
                (decoded, Guard::RestartCut)
            }
            None if no_speech => (decoded, Guard::NoSpeech),
            None => {
                let full = WindowPlan::FULL;
                let decoded = self.decode_timed(chunk.index, samples, full, spans, detected)?;
                (decoded, Guard::FullWindowRetry)
            }
        };
        self.fall_back_if_failed(chunk.index, samples, spans, decoded, guard)
    }

    /// Whether Whisper hears no speech (at least [`EMPTY_NO_SPEECH_PROBABILITY`]) in chunk
    /// `index`, which the state has just decoded to no words.
    fn hears_no_speech(&mut self, index: usize) -> Result<bool> {
        let no_speech = self
            .settings
            .no_speech_probability(&mut self.state, index)?;
        tracing::debug!(chunk = index, no_speech, "no words from the trimmed window");
        Ok(no_speech >= EMPTY_NO_SPEECH_PROBABILITY)
    }

    /// The first copy of a degenerate decode that wrote the chunk's transcript over again
    /// ([`first_copy`]), when it can stand for the chunk: a lone utterance (a packed window's
    /// text is cut by its timestamps, which a loop scrambles) whose words are not timed (their
    /// alignment spreads every copy over the audio) and whose copy is not degenerate itself.
    pub(super) fn restart_to_cut(
        &self,
        decoded: &Decoded,
        spans: Option<&[Range<u64>]>,
    ) -> Option<String> {
        if spans.is_some() || self.settings.words().is_some() {
            return None;
        }
        let copy = first_copy(&decoded.text)?;
        degenerate(copy, 0, WindowPlan::FULL)
            .is_none()
            .then(|| copy.to_owned())
    }
}
