//! The echo guard: when a meeting's speakers leak into its microphone, the far side's words are
//! heard twice, once from each source. With [`PipelineBuilder::echo_guard`](crate::PipelineBuilder::echo_guard)
//! the emitter drops a segment of the near source (the microphone) whose words largely repeat
//! a segment of another source that overlaps it in time.
//!
//! "Largely": the longest common subsequence of their words covers at least
//! [`ECHO_MATCH`] of the near segment's words. A near segment that holds the echo *and* the
//! user's own words (they spoke over the far side) falls under that share and is kept whole,
//! so words spoken over the far side are not dropped, at the cost of letting such mixed
//! segments through.
//! For the far segment to be written before its echo, the merge orders the near source's
//! chunks as if their speech ended [`ECHO_LAG`] later (the echo's quieter tail often ends
//! first); near segments may come up to that much later with the guard on.

use std::collections::VecDeque;
use std::time::Duration;

use crate::normalized_words;

/// The share of a near segment's words that must repeat an overlapping far segment for it to
/// be dropped as an echo.
pub const ECHO_MATCH: f64 = 0.6;

/// How much later the near source's chunks are ordered, so that the far segment an echo
/// repeats is written before it.
pub const ECHO_LAG: Duration = Duration::from_millis(500);

/// [`ECHO_LAG`] in samples.
pub(crate) fn lag_samples() -> u64 {
    (ECHO_LAG.as_secs_f64() * f64::from(crate::SAMPLE_RATE)) as u64
}

/// How far apart in time two segments may be and still be one speech and its echo, in
/// seconds: speakers play with a delay, and the two are cut by separate voice detectors.
const OVERLAP_SLACK: f64 = 0.5;

/// Far segments kept to compare with: more than ever overlap one near segment.
const KEPT: usize = 16;

/// What the guard remembers of each far segment written, and which source is near.
#[derive(Debug)]
pub(crate) struct EchoGuard {
    near: usize,
    /// (start, end, words) of the latest segments of the other sources.
    far: VecDeque<(f64, f64, Vec<String>)>,
}

impl EchoGuard {
    /// The source it guards.
    pub(crate) fn near(&self) -> usize {
        self.near
    }

    /// A guard for the source numbered `near` (the microphone).
    pub(crate) fn new(near: usize) -> Self {
        EchoGuard {
            near,
            far: VecDeque::new(),
        }
    }

    /// Judges a segment of `source` from `start` to `end` seconds saying `text`: `true` when it
    /// is the near source's echo of a far segment, which is then not to be written. A far
    /// segment is remembered.
    pub(crate) fn is_echo(&mut self, source: usize, start: f64, end: f64, text: &str) -> bool {
        let words = normalized_words(text);
        if source != self.near {
            if self.far.len() == KEPT {
                self.far.pop_front();
            }
            self.far.push_back((start, end, words));
            return false;
        }
        !words.is_empty()
            && self.far.iter().any(|(far_start, far_end, far_words)| {
                start < far_end + OVERLAP_SLACK
                    && *far_start < end + OVERLAP_SLACK
                    && repeated_share(&words, far_words) >= ECHO_MATCH
            })
    }
}

/// The share of `near`'s words that `far` repeats in order: their longest common subsequence
/// over `near`'s length.
fn repeated_share(near: &[String], far: &[String]) -> f64 {
    let mut previous = vec![0usize; far.len() + 1];
    for word in near {
        let mut current = vec![0usize; far.len() + 1];
        for (j, far_word) in far.iter().enumerate() {
            current[j + 1] = if word == far_word {
                previous[j] + 1
            } else {
                previous[j + 1].max(current[j])
            };
        }
        previous = current;
    }
    previous[far.len()] as f64 / near.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: usize = 0;
    const THEM: usize = 1;

    #[test]
    fn an_echo_of_an_overlapping_far_segment_is_dropped() {
        let mut guard = EchoGuard::new(ME);
        assert!(!guard.is_echo(THEM, 0.3, 3.1, "Good morning, can you hear me clearly?"));
        // The microphone heard the speakers: the same words, a little later.
        assert!(guard.is_echo(ME, 0.4, 3.1, "Good morning, can you hear me clearly?"));
        // Misheard at 18 dB down, still most of the words.
        assert!(guard.is_echo(ME, 0.4, 3.1, "Good morning, can you hear me?"));
    }

    #[test]
    fn real_speech_is_kept() {
        let mut guard = EchoGuard::new(ME);
        guard.is_echo(
            THEM,
            5.8,
            10.2,
            "The budget looks fine, but the travel costs are far too high.",
        );
        // Other words at the same time: the user answering.
        assert!(!guard.is_echo(ME, 6.0, 8.0, "Yes, I can hear you very well."));
        // The echo and the user's own words in one segment: kept whole.
        assert!(!guard.is_echo(
            ME,
            5.9,
            12.4,
            "No magic looks I'm not a travel cost so far. Then let us cut the travel budget by half."
        ));
        // The same words long after the far side said them: the user quoting, not an echo.
        assert!(!guard.is_echo(
            ME,
            20.0,
            24.0,
            "The budget looks fine, but the travel costs are far too high."
        ));
        // Nothing was heard: nothing to drop.
        assert!(!guard.is_echo(ME, 6.0, 8.0, ""));
    }

    #[test]
    fn the_repeated_share_counts_words_in_order() {
        let words = |text: &str| normalized_words(text);
        assert_eq!(repeated_share(&words("a b c d"), &words("a b c d")), 1.0);
        assert_eq!(repeated_share(&words("a b x y"), &words("a b c d")), 0.5);
        assert_eq!(repeated_share(&words("d c b a"), &words("a b c d")), 0.25);
        assert_eq!(repeated_share(&words(""), &words("a")), 0.0);
    }
}
