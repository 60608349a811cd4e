//! Interim results: partial hypotheses of the utterance being spoken, in what order they are
//! written, and the stability rule that says which of their words later ones keep.
//!
//! With [`RunOptions::interim_step`](crate::RunOptions::interim_step) the chunker cuts the open
//! utterance at fixed points (every step of audio after its first voiced frame, unless the
//! speaker is silent there) and the transcribers decode each cut like any chunk. The emitter
//! writes each result as a [`Partial`](crate::Partial) between the final segments, in the
//! order the points were reached:
//!
//! - offline, every partial is decoded and written, and a final segment waits for the partials
//!   cut before it, so every backend writes the same sequence;
//! - in real time finals go first: a partial already overtaken by newer audio of its utterance
//!   is not decoded (see [`Overtaken`]; a transcriber may also stop one midway, as
//!   `WhisperTranscriber` does between two graph nodes of whisper.cpp), and one whose final has
//!   been written is dropped; both are counted as skipped. A provisional chunk's early decode
//!   (see [`crate::early`]) is shown as a partial as well, in its place among them
//!   ([`TimedChunk::shown_as_partial`](crate::stage::TimedChunk::shown_as_partial)): the
//!   utterance heard up to a pause, at no extra decode.
//!
//! A hypothesis without words (nothing heard yet, or a decode that looked degenerate) is not
//! written.
//!
//! **The stability contract.** Each partial carries its whole hypothesis (`text`) and a prefix
//! of it that later partials of the utterance keep (`stable`): the longest common word prefix
//! of the last two hypotheses (LocalAgreement-2) without the punctuation after its last word,
//! which never shrinks. That punctuation is Whisper's guess at what follows the audio heard so
//! far ("his life." where the speaker goes on "his life had"), so it stays unstable. So does
//! an agreed word that either hypothesis gives a probability under [`STABLE_PROBABILITY`]
//! (with a transcriber that gives none, every word counts as sure): two decodes agreeing on a
//! guess ("There estate" where the whole sentence makes it "Their estate") is what broke the
//! prefix most often. A
//! hypothesis that does not begin with the stable text (followed by a space, punctuation or
//! nothing: a whole word) is shown as the stable text followed by its own words past it, so
//! `stable` is always a prefix of `text`. The final segment is what the run writes without
//! interim results; how often it does not begin with the last stable prefix is reported
//! (`stable_prefix_violations`), with the words revised on the way.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use crate::stage::Transcript;

/// Whether a partial chunk has been overtaken: the chunk stage has since handed out a newer
/// partial, the provisional or the final chunk of its utterance, or, on a transcriber shared
/// by several pipelines ([`TranscriberPool`](crate::TranscriberPool)), another pipeline's final
/// chunk waits for it. A transcriber that finds it overtaken skips it (and may stop decoding
/// it midway); offline partials carry none.
#[derive(Debug, Clone)]
pub struct Overtaken {
    handed_out: Arc<AtomicU64>,
    number: u64,
    /// On a shared pool, how many final chunks wait for a transcriber: a partial gives way.
    finals_waiting: Option<Arc<AtomicUsize>>,
}

impl Overtaken {
    /// Overtaken once `handed_out` counts more than `number`: the chunk numbered `number`
    /// among those the chunk stage has handed out, or, for a host that learns of it otherwise
    /// (a worker process told by its parent), a counter it raises to say so.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// let stop = Arc::new(AtomicU64::new(0));
    /// let overtaken = steno_core::Overtaken::new(Arc::clone(&stop), 0);
    /// assert!(!overtaken.is_overtaken());
    /// stop.store(1, Ordering::SeqCst);
    /// assert!(overtaken.is_overtaken());
    /// ```
    pub fn new(handed_out: Arc<AtomicU64>, number: u64) -> Self {
        Overtaken {
            handed_out,
            number,
            finals_waiting: None,
        }
    }

    /// Overtaken as well while `finals_waiting` counts a final chunk waiting for a
    /// transcriber of the pool this partial is decoded on.
    pub(crate) fn or_while_finals_wait(&self, finals_waiting: Arc<AtomicUsize>) -> Self {
        Overtaken {
            finals_waiting: Some(finals_waiting),
            ..self.clone()
        }
    }

    /// Whether a newer chunk has been handed out, or a final waits for this transcriber.
    pub fn is_overtaken(&self) -> bool {
        self.handed_out.load(Ordering::SeqCst) > self.number
            || self
                .finals_waiting
                .as_ref()
                .is_some_and(|waiting| waiting.load(Ordering::SeqCst) > 0)
    }
}

/// The words of `text`, as partials compare them.
fn words(text: &str) -> Vec<&str> {
    text.split_whitespace().collect()
}

/// How many words `a` and `b` share from the start.
fn common_prefix<S: AsRef<str>, T: AsRef<str>>(a: &[S], b: &[T]) -> usize {
    a.iter()
        .zip(b)
        .take_while(|(x, y)| x.as_ref() == y.as_ref())
        .count()
}

/// The probability (of a word's least likely token, in both of the last two hypotheses) from
/// which an agreed word may become stable. The prefix breaks when any one of its 10-15 words
/// changes, so to break in at most 1 utterance in 10 a stable word may be wrong about once in
/// 100-150. Replayed against their finals on read speech, agreed words under 0.5 were changed
/// by the final 1 time in 4 to 7, those from 0.5 to 0.6 1 in 13 to 34, those from 0.6 on 1 in
/// 105 to 155. On six fixtures the final broke the stable prefix in 3 of 301 utterances (60
/// with no threshold, 8 at 0.5), keeping a third to three quarters of the stable text 0.5
/// kept (BENCHMARKS.md, "Interim results").
pub const STABLE_PROBABILITY: f32 = 0.6;

/// Punctuation that ends a word and that the words after it can change.
const TRAILING_PUNCTUATION: &[char] = &['.', ',', '?', '!', ';', ':', '…'];

/// Whether `text` begins with `stable` as whole words: what follows it is nothing, or
/// punctuation up to a space or the end ("life" begins "life. Had", not "lifeless" or
/// "10" "10,000").
pub(crate) fn begins_with(text: &str, stable: &str) -> bool {
    let Some(rest) = text.strip_prefix(stable) else {
        return false;
    };
    let rest = rest.trim_start_matches(TRAILING_PUNCTUATION);
    stable.is_empty() || rest.is_empty() || rest.starts_with(char::is_whitespace)
}

/// The stable prefix of each open utterance's hypotheses (LocalAgreement-2), and what was
/// revised. Kept per utterance: in a packed run, partials of the next utterances come before
/// the window that finishes an earlier one.
#[derive(Debug, Default)]
pub(crate) struct Stability {
    /// Utterances with partials shown and no final text yet.
    open: BTreeMap<usize, Hypotheses>,
}

/// One utterance's hypotheses so far.
#[derive(Debug, Default)]
struct Hypotheses {
    /// The last hypothesis' words.
    previous: Vec<String>,
    /// How likely each of them is (1 where the transcriber does not say).
    previous_probabilities: Vec<f32>,
    /// The stable text: whole words, without the punctuation after the last one; never
    /// shrinks.
    stable: String,
    /// How many of a hypothesis' words `stable` covers.
    stable_words: usize,
    /// The words last shown (a partial's text).
    shown: Vec<String>,
    /// Words shown and then changed, over the utterance.
    revised: u64,
}

/// What an utterance's partials amounted to once its final text was known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Settled {
    /// The final text does not begin with the last stable prefix.
    pub(crate) violated: bool,
    /// Words shown in a partial and changed later (by a partial or the final).
    pub(crate) revised: u64,
}

impl Stability {
    /// Whether a partial of `utterance` has been shown: the next one is not its first.
    pub(crate) fn has_shown(&self, utterance: usize) -> bool {
        self.open
            .get(&utterance)
            .is_some_and(|h| !h.shown.is_empty())
    }

    /// Takes a hypothesis of `utterance` with the probability of each of its words (any
    /// other count: the transcriber does not say); its text and stable prefix, as written.
    pub(crate) fn partial(
        &mut self,
        utterance: usize,
        hypothesis: &str,
        probabilities: &[f32],
    ) -> (String, String) {
        let h = self.open.entry(utterance).or_default();
        let words = words(hypothesis);
        let probabilities = if probabilities.len() == words.len() {
            probabilities.to_vec()
        } else {
            vec![1.0; words.len()]
        };
        let joined = words.join(" ");
        let keeps_stable = begins_with(&joined, &h.stable);
        let agreed = common_prefix(&h.previous, &words);
        let agreed = h
            .previous_probabilities
            .iter()
            .zip(&probabilities)
            .take(agreed)
            .take_while(|(before, now)| before.min(**now) >= STABLE_PROBABILITY)
            .count();
        if keeps_stable && agreed > h.stable_words {
            let candidate = words[..agreed].join(" ");
            let candidate = candidate.trim_end_matches(TRAILING_PUNCTUATION);
            if candidate.len() > h.stable.len() {
                h.stable = candidate.to_owned();
                h.stable_words = agreed;
            }
        }
        let text = if keeps_stable {
            joined
        } else {
            let tail = words.get(h.stable_words..).unwrap_or_default();
            [h.stable.as_str()]
                .into_iter()
                .chain(tail.iter().copied())
                .collect::<Vec<_>>()
                .join(" ")
        };
        let shown: Vec<String> = text.split_whitespace().map(str::to_owned).collect();
        h.revised += (h.shown.len() - common_prefix(&h.shown, &shown)) as u64;
        h.previous = words.iter().map(|w| (*w).to_owned()).collect();
        h.previous_probabilities = probabilities;
        h.shown = shown;
        (text, h.stable.clone())
    }

    /// The final text of `utterance`: what its partials amounted to, or `None` when none of
    /// them was shown.
    pub(crate) fn settle(&mut self, utterance: usize, final_text: &str) -> Option<Settled> {
        let h = self
            .open
            .remove(&utterance)
            .filter(|h| !h.shown.is_empty())?;
        let words = words(final_text);
        Some(Settled {
            violated: !begins_with(&words.join(" "), &h.stable),
            revised: h.revised + (h.shown.len() - common_prefix(&h.shown, &words)) as u64,
        })
    }
}

/// Partial transcripts waiting for their turn, and the rule that gives it.
#[derive(Debug)]
pub(crate) struct PartialQueue {
    realtime: bool,
    /// Offline: the partial to write next, in the order they were cut.
    next_seq: u64,
    /// Partials written or skipped (offline: all of those before `next_seq`).
    accounted: u64,
    held: BTreeMap<u64, Transcript>,
    /// Real time: the last partial written, its utterance and where it was cut.
    last_written: Option<(usize, u64)>,
    /// Partials skipped (overtaken, or too late for their utterance).
    pub(crate) skipped: u64,
}

impl PartialQueue {
    pub(crate) fn new(realtime: bool) -> Self {
        PartialQueue {
            realtime,
            next_seq: 0,
            accounted: 0,
            held: BTreeMap::new(),
            last_written: None,
            skipped: 0,
        }
    }

    /// Whether finals go first (a real-time run).
    pub(crate) fn realtime(&self) -> bool {
        self.realtime
    }

    /// Partials written or skipped so far, in order: offline, a final chunk waits until the
    /// partials cut before it are all accounted for.
    pub(crate) fn accounted(&self) -> u64 {
        self.accounted
    }

    /// Takes a partial transcript.
    pub(crate) fn push(&mut self, transcript: Transcript) {
        let seq = transcript.partial.as_ref().map_or(0, |p| p.seq);
        self.held.insert(seq, transcript);
    }

    /// The next partial to write, if one is due now that the final chunks before `next_chunk`
    /// (and so every utterance before `next_utterance`) are written; skipped ones are counted
    /// on the way.
    pub(crate) fn next_due(
        &mut self,
        next_chunk: usize,
        next_utterance: usize,
    ) -> Option<Transcript> {
        if self.realtime {
            self.next_due_realtime(next_utterance)
        } else {
            self.next_due_in_order(next_chunk)
        }
    }

    /// Offline: partials and final chunks in the order the chunk stage handed them out.
    fn next_due_in_order(&mut self, next_chunk: usize) -> Option<Transcript> {
        loop {
            let transcript = self.held.get(&self.next_seq)?;
            if transcript
                .partial
                .as_ref()
                .is_some_and(|point| point.finals_before > next_chunk)
            {
                return None;
            }
            let transcript = self.held.remove(&self.next_seq)?;
            self.next_seq += 1;
            self.accounted += 1;
            if transcript.skipped {
                self.skipped += 1;
                continue;
            }
            return Some(transcript);
        }
    }

    fn next_due_realtime(&mut self, next_utterance: usize) -> Option<Transcript> {
        // Finals went first: a partial of an utterance already written is too late, and of
        // several partials of the next one only the newest is worth showing.
        let mut newest = None;
        while let Some((_, transcript)) = self.held.first_key_value() {
            if transcript.chunk > next_utterance {
                break;
            }
            let (_, transcript) = self.held.pop_first()?;
            self.accounted += 1;
            let stale = transcript.skipped
                || transcript.chunk < next_utterance
                || self
                    .last_written
                    .is_some_and(|(u, end)| u == transcript.chunk && end >= transcript.end_sample);
            if stale || newest.replace(transcript).is_some() {
                self.skipped += 1;
            }
        }
        let transcript = newest?;
        self.last_written = Some((transcript.chunk, transcript.end_sample));
        Some(transcript)
    }

    /// Partials never written by the end of the run: skipped.
    pub(crate) fn finish(&mut self) {
        self.skipped += self.held.len() as u64;
        self.held.clear();
    }
}

/// When a partial's first words reached the reader, counted from the utterance's first voiced
/// sample.
pub(crate) fn first_words_ms(speech_start_at: Instant, now: Instant) -> f64 {
    now.saturating_duration_since(speech_start_at).as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_is_the_agreement_of_the_last_two_hypotheses_and_never_shrinks() {
        let mut s = Stability::default();
        assert_eq!(
            s.partial(0, "The quick", &[]),
            ("The quick".into(), String::new())
        );
        assert_eq!(
            s.partial(0, "The quick brown.", &[]),
            ("The quick brown.".into(), "The quick".into())
        );
        assert_eq!(
            s.partial(0, "The quick brown fox", &[]),
            ("The quick brown fox".into(), "The quick".into())
        );
        assert_eq!(
            s.partial(0, "The quick brown fox jumps", &[]),
            (
                "The quick brown fox jumps".into(),
                "The quick brown fox".into()
            )
        );
        // A hypothesis that contradicts the stable words keeps them: stable never shrinks and
        // stays a prefix of the text.
        assert_eq!(
            s.partial(0, "A quick brown box jumps over", &[]),
            (
                "The quick brown fox jumps over".into(),
                "The quick brown fox".into()
            )
        );
        let settled = s
            .settle(0, "The quick brown fox jumps over the dog.")
            .unwrap();
        assert!(!settled.violated);
        // "brown." was revised once (to "brown"); nothing else shown was taken back.
        assert_eq!(settled.revised, 1);
    }

    #[test]
    fn an_agreed_word_either_hypothesis_is_unsure_of_stays_unstable() {
        let mut s = Stability::default();
        s.partial(0, "There estate was large", &[0.4, 0.9, 0.9, 0.9]);
        // Both hypotheses agree on every word, but the first was unsure of "There".
        assert_eq!(
            s.partial(0, "There estate was large and", &[0.8, 0.9, 0.9, 0.9, 0.9]),
            ("There estate was large and".into(), String::new())
        );
        // Now sure of it twice; "its" is agreed but unsure in the last hypothesis.
        assert_eq!(
            s.partial(
                0,
                "There estate was large and its",
                &[0.8, 0.9, 0.9, 0.9, 0.9, 0.6]
            ),
            (
                "There estate was large and its".into(),
                "There estate was large and".into()
            )
        );
        assert_eq!(
            s.partial(
                0,
                "There estate was large and its half",
                &[0.8, 0.9, 0.9, 0.9, 0.9, 0.3, 0.9]
            )
            .1,
            "There estate was large and"
        );
        // Likelier right than wrong in both is not enough: agreed words that sure were still
        // changed by the final 1 time in 13 to 34.
        let mut s = Stability::default();
        s.partial(2, "which proceed and", &[0.9, 0.56, 0.2]);
        assert_eq!(
            s.partial(2, "which proceed and not", &[0.9, 0.53, 0.3, 0.5])
                .1,
            "which"
        );
        // Without a probability for each word (a transcriber that gives none), every word
        // counts as sure: LocalAgreement-2 alone.
        let mut s = Stability::default();
        s.partial(1, "Hello there", &[0.1]);
        assert_eq!(s.partial(1, "Hello there friend", &[]).1, "Hello there");
    }

    #[test]
    fn the_punctuation_after_the_last_agreed_word_stays_unstable() {
        // Two decodes cut at the same pause both end the sentence there; the speaker goes on.
        let mut s = Stability::default();
        s.partial(0, "and who for many years of his life.", &[]);
        assert_eq!(
            s.partial(0, "and who for many years of his life.", &[]),
            (
                "and who for many years of his life.".into(),
                "and who for many years of his life".into()
            )
        );
        assert_eq!(
            s.partial(0, "and who for many years of his life, had a", &[]),
            (
                "and who for many years of his life, had a".into(),
                "and who for many years of his life".into()
            )
        );
        let settled = s
            .settle(
                0,
                "and who for many years of his life had a constant companion.",
            )
            .unwrap();
        assert!(!settled.violated);
    }

    #[test]
    fn stable_text_is_kept_only_as_whole_words() {
        assert!(begins_with("his life. Had", "his life"));
        assert!(begins_with("his life", "his life"));
        assert!(begins_with("his life...", "his life"));
        assert!(begins_with("anything", ""));
        assert!(!begins_with("his lifeless", "his life"));
        assert!(!begins_with("paid 10,000 pounds", "paid 10"));
        assert!(!begins_with("His life", "his life"));
        // A hypothesis that changes a stable word keeps the stable text, then its own words.
        let mut s = Stability::default();
        s.partial(1, "paid 10,", &[]);
        s.partial(1, "paid 10, then", &[]);
        assert_eq!(
            s.partial(1, "paid 10,000 pounds", &[]),
            ("paid 10 pounds".into(), "paid 10".into())
        );
        assert!(s.settle(1, "paid 10,000 pounds.").unwrap().violated);
    }

    #[test]
    fn a_final_that_drops_a_stable_word_is_a_violation() {
        let mut s = Stability::default();
        s.partial(3, "Hello there", &[]);
        s.partial(3, "Hello there friend", &[]);
        let settled = s.settle(3, "Hello, their friend.").unwrap();
        assert!(settled.violated);
        assert_eq!(settled.revised, 3);
        // A new utterance starts afresh, and one without partials settles to nothing.
        assert_eq!(s.settle(4, "Anything."), None);
    }

    #[test]
    fn an_utterance_keeps_its_state_while_the_next_one_has_partials() {
        // Packed offline: partials of utterance 1 come before the window finishing 0.
        let mut s = Stability::default();
        s.partial(0, "one two", &[]);
        s.partial(0, "one two three", &[]);
        s.partial(1, "four five", &[]);
        assert!(s.has_shown(0) && s.has_shown(1));
        assert_eq!(
            s.settle(0, "one two three."),
            Some(Settled {
                violated: false,
                revised: 1
            })
        );
        assert_eq!(
            s.partial(1, "four five six", &[]),
            ("four five six".into(), "four five".into())
        );
        assert!(s.settle(1, "four five six.").is_some());
        assert!(!s.has_shown(1));
    }

    #[test]
    fn each_utterance_starts_afresh() {
        let mut s = Stability::default();
        s.partial(0, "one two", &[]);
        s.partial(0, "one two three", &[]);
        assert_eq!(s.partial(1, "four", &[]), ("four".into(), String::new()));
    }

    #[test]
    fn overtaken_compares_with_the_chunks_handed_out_since() {
        let handed = Arc::new(AtomicU64::new(3));
        let point = Overtaken::new(Arc::clone(&handed), 3);
        assert!(!point.is_overtaken());
        handed.fetch_add(1, Ordering::SeqCst);
        assert!(point.is_overtaken());
    }
}
