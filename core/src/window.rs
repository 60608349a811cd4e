//! Whisper's window sized to the chunk, and the guard against the loops a trimmed window
//! invites. Pure functions, pinned here so every backend and worker decodes a chunk alike.
//!
//! Whisper encodes 30 s of audio (1500 encoder positions, 50 per second) whatever the chunk's
//! length, and the encoder is most of a call's cost. Encoding only the positions the chunk
//! covers (`audio_ctx`) is 3-5x cheaper, but tiny.en then tends to loop: it repeats a phrase
//! until it runs out of tokens. Measured here (issue 11, `short-utterances.flac` and the 200
//! phrases of `make-short-many.sh`): a floor of 384 positions, a margin of 128 after the chunk,
//! a token budget of about 8 per second of audio, and a guard that decodes again with the full
//! window when the output looks degenerate, keep the speed and lose no words. Most loops are
//! the whole transcript written over again; the guard keeps its first copy
//! ([`first_copy`]) instead of paying for the full window, which writes the same words.

use crate::{SAMPLE_RATE, normalized_words};

/// whisper.cpp refuses input shorter than 1 s; shorter chunks are padded with silence to
/// this many samples before they are decoded (and their window planned).
pub const MIN_INPUT_SAMPLES: usize = SAMPLE_RATE as usize * 11 / 10;

/// Encoder positions in Whisper's full 30 s window.
pub const FULL_WINDOW: usize = 1500;

/// Encoder positions per second of audio.
const POSITIONS_PER_SECOND: f64 = 50.0;

/// The smallest trimmed window: under it tiny.en loops on short chunks far more often.
const WINDOW_FLOOR: usize = 384;

/// Positions after the chunk's end: a window that ends right at the audio's end loops.
const WINDOW_MARGIN: usize = 128;

/// Token budget of a trimmed decode: read speech is 3-4 tokens a second, so this leaves room
/// for dense speech while a loop is stopped long before Whisper's own limit (224 tokens).
const TOKENS_PER_SECOND: f64 = 8.0;
const TOKENS_BASE: f64 = 8.0;

/// Text that zlib compresses more than this is repetitive (OpenAI's own threshold).
const MAX_COMPRESSION_RATIO: f64 = 2.4;

/// The fewest words a transcript written over again must have to be cut after its first
/// copy (`first_copy`): "Thank you. Thank you." can be what was said.
const MIN_RESTARTED_WORDS: usize = 3;

/// How much of Whisper's window one decode uses, and how many tokens it may write.
///
/// ```
/// use steno_core::window::WindowPlan;
/// let plan = WindowPlan::for_samples(3 * 16_000); // a 3 s utterance
/// assert_eq!((plan.audio_ctx, plan.max_tokens), (384, Some(32)));
/// assert!(WindowPlan::for_samples(29 * 16_000).is_full());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowPlan {
    /// Encoder positions to encode (at most [`FULL_WINDOW`]).
    pub audio_ctx: usize,
    /// Tokens the decode may write; `None` leaves Whisper's own limit.
    pub max_tokens: Option<usize>,
}

impl WindowPlan {
    /// The full 30 s window with Whisper's own token limit: what the guard falls back to.
    pub const FULL: WindowPlan = WindowPlan {
        audio_ctx: FULL_WINDOW,
        max_tokens: None,
    };

    /// The window for a chunk of `samples` (16 kHz): `max(384, ceil(50 s) + 128)` positions,
    /// `ceil(8 s + 8)` tokens; the full window when that would cover it anyway.
    pub fn for_samples(samples: usize) -> WindowPlan {
        let seconds = samples as f64 / f64::from(SAMPLE_RATE);
        let covered = (seconds * POSITIONS_PER_SECOND).ceil() as usize;
        let audio_ctx = (covered + WINDOW_MARGIN).max(WINDOW_FLOOR);
        if audio_ctx >= FULL_WINDOW {
            return WindowPlan::FULL;
        }
        WindowPlan {
            audio_ctx,
            max_tokens: Some((seconds * TOKENS_PER_SECOND + TOKENS_BASE).ceil() as usize),
        }
    }

    /// Whether this is the full window (no retry can help it).
    pub fn is_full(self) -> bool {
        self.audio_ctx >= FULL_WINDOW
    }
}

/// Why a decode's output was judged degenerate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Degenerate {
    /// No words at all, from a chunk the voice detector heard as speech. (`WhisperTranscriber`
    /// keeps it without a retry when Whisper hears no speech there either: a sound.)
    Empty,
    /// The decode wrote as many tokens as its budget allowed: it was stopped, not finished.
    TokenBudget,
    /// A run of words repeats back to back (see `repeats`).
    Repeats,
    /// The text compresses like a loop does.
    Compresses,
}

/// Whether the output of a trimmed decode (`text` after cleaning, `tokens` written) looks
/// degenerate under `plan`, and why.
pub fn degenerate(text: &str, tokens: usize, plan: WindowPlan) -> Option<Degenerate> {
    let words = normalized_words(text);
    if words.is_empty() {
        return Some(Degenerate::Empty);
    }
    if plan.max_tokens.is_some_and(|budget| tokens >= budget) {
        return Some(Degenerate::TokenBudget);
    }
    if repeats(&words) {
        return Some(Degenerate::Repeats);
    }
    if compression_ratio(text) > MAX_COMPRESSION_RATIO {
        return Some(Degenerate::Compresses);
    }
    None
}

/// Whether a run of `n` words is said again right after itself often enough to be a loop
/// rather than speech: 1- and 2-word runs four times ("no, no, no" is speech), 3- and 4-word
/// runs three times, longer runs twice.
fn repeats(words: &[String]) -> bool {
    (1..=words.len() / 2).any(|n| {
        let times = match n {
            1 | 2 => 4,
            3 | 4 => 3,
            _ => 2,
        };
        let span = n * times;
        span <= words.len()
            && (0..=words.len() - span).any(|start| {
                let run = &words[start..start + n];
                (1..times).all(|k| &words[start + k * n..start + (k + 1) * n] == run)
            })
    })
}

/// When a degenerate decode is one transcript written over and over (Whisper finished the
/// chunk and, instead of ending, started it again), its first copy: the text up to the
/// sentence end after which the same words begin again, each copy after it the same words
/// (the last one cut short by the token budget, perhaps inside a word). `None` for any other
/// text, which the guard decodes again with the full window.
///
/// The loops tiny.en writes on a trimmed window of one utterance are nearly all of this kind,
/// and their first copy is as good a transcript as the full window's retry, which costs a
/// whole 30 s encoder pass (issue 11; BENCHMARKS.md, "Whisper's window sized to the
/// utterance").
///
/// ```
/// use steno_core::window::first_copy;
/// let looped = "Where are my keys? Where are my keys? Where are my ke";
/// assert_eq!(first_copy(looped), Some("Where are my keys?"));
/// // Without a sentence end to cut at, the first copy could be half of what was said.
/// assert_eq!(first_copy("Turn left, turn left, turn left, turn left"), None);
/// assert_eq!(first_copy("Go home. Go home."), None, "too short to tell from speech");
/// ```
pub fn first_copy(text: &str) -> Option<&str> {
    // Each word as written (punctuation attached), its end in `text`, and its normalized form.
    let mut words = Vec::new();
    let mut end = 0;
    for piece in text.split_inclusive(char::is_whitespace) {
        end += piece.len();
        let written = piece.trim_end();
        if let Some(word) = normalized_words(written).pop() {
            words.push((written, end - (piece.len() - written.len()), word));
        }
    }
    // The shortest copy: a short phrase said again and again is a loop of it, not of a
    // transcript that happens to hold it twice.
    let n = (1..=words.len() / 2).find(|&n| {
        let again = &words[n..];
        let same = again.iter().zip(words[..n].iter().cycle()).enumerate().all(
            |(i, ((_, _, word), (_, _, first)))| {
                // The token budget can stop the decode inside the last word.
                word == first || (i + 1 == again.len() && first.starts_with(word.as_str()))
            },
        );
        same && words[n - 1].0.ends_with(['.', '?', '!'])
    })?;
    (n >= MIN_RESTARTED_WORDS).then(|| text[..words[n - 1].1].trim_start())
}

/// `text`'s length over its zlib-compressed length, as OpenAI's Whisper measures loops.
fn compression_ratio(text: &str) -> f64 {
    let compressed = miniz_oxide::deflate::compress_to_vec_zlib(text.as_bytes(), 6);
    text.len() as f64 / compressed.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Outputs of tiny.en on trimmed windows, one per line: `looped<TAB>text` for the loops
    /// seen here, `normal<TAB>text` for ordinary transcripts of the same fixtures.
    const OUTPUTS: &str = include_str!("../tests/data/trimmed-window-outputs.tsv");

    #[test]
    fn windows_cover_the_chunk_with_a_margin_and_a_floor() {
        let second = SAMPLE_RATE as usize;
        assert_eq!(
            WindowPlan::for_samples(second),
            WindowPlan {
                audio_ctx: 384,
                max_tokens: Some(16)
            }
        );
        let ten = WindowPlan::for_samples(10 * second);
        assert_eq!((ten.audio_ctx, ten.max_tokens), (628, Some(88)));
        assert!(WindowPlan::for_samples(28 * second).is_full());
        assert_eq!(WindowPlan::for_samples(29 * second), WindowPlan::FULL);
        assert!(!WindowPlan::for_samples(0).is_full());
    }

    #[test]
    fn repeated_runs_are_loops_and_ordinary_repetition_is_not() {
        let loops = |text: &str| repeats(&normalized_words(text));
        assert!(loops("Turn left. Turn left. Turn left. Turn left."));
        assert!(loops("I don't know. I don't know. I don't know."));
        assert!(loops(
            "Please send the report today. Please send the report today."
        ));
        assert!(!loops("No, no, no, that is wrong."));
        assert!(!loops("Thank you. Thank you."));
        assert!(!loops("The quick brown fox jumps over the lazy dog."));
        assert!(!loops(""));
    }

    #[test]
    fn the_token_budget_and_silence_count_as_degenerate() {
        let plan = WindowPlan::for_samples(SAMPLE_RATE as usize);
        assert_eq!(degenerate("Hello.", 3, plan), None);
        assert_eq!(
            degenerate("Hello.", 16, plan),
            Some(Degenerate::TokenBudget)
        );
        assert_eq!(degenerate(" ", 0, plan), Some(Degenerate::Empty));
        assert_eq!(degenerate("Hello.", 500, WindowPlan::FULL), None);
    }

    #[test]
    fn real_looped_outputs_are_flagged_and_real_transcripts_pass() {
        let mut seen = (0, 0);
        for line in OUTPUTS
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let (kind, text) = line.split_once('\t').expect("kind<TAB>text");
            // The budget check is covered above; judge the text alone here.
            let verdict = degenerate(text, 0, WindowPlan::FULL);
            match kind {
                "looped" => {
                    seen.0 += 1;
                    assert!(verdict.is_some(), "a loop passed: {text}");
                }
                "normal" => {
                    seen.1 += 1;
                    assert_eq!(verdict, None, "flagged: {text}");
                }
                other => panic!("unknown kind {other}"),
            }
        }
        assert!(seen.0 >= 3 && seen.1 >= 3, "too few examples: {seen:?}");
    }

    #[test]
    fn a_transcript_written_over_again_is_cut_after_its_first_copy() {
        let cases = [
            (
                "Where are my keys? Where are my keys? Where are my keys?",
                Some("Where are my keys?"),
            ),
            // The budget stopped the last copy inside a word.
            (
                "It cost $12.00. It cost $12.00. It cost $12.00. It cost $12.",
                Some("It cost $12.00."),
            ),
            (
                " Remember to feed the fish. Remember to feed the fish.",
                Some("Remember to feed the fish."),
            ),
            // The first copy must end a sentence: here it could be half of the utterance.
            (
                "Thanks a lot, David, Thanks a lot, David, Thanks a lot, David",
                None,
            ),
            (
                "close all the windows close all the windows close all",
                None,
            ),
            // A loop that is not the transcript again.
            (
                "Keep it quiet, please. Please, please, please, please, please",
                None,
            ),
            ("Call me. Then go home. Call me. Then go out.", None),
            ("Go home. Go home. Go home. Go home.", None),
        ];
        for (text, copy) in cases {
            assert_eq!(first_copy(text), copy, "{text}");
        }
    }

    #[test]
    fn most_real_loops_are_restarts_and_no_real_transcript_is() {
        let (mut loops, mut cut) = (0, 0);
        for line in OUTPUTS
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let (kind, text) = line.split_once('\t').expect("kind<TAB>text");
            let copy = first_copy(text);
            if kind == "normal" {
                assert_eq!(copy, None, "{text}");
                continue;
            }
            loops += 1;
            if let Some(copy) = copy {
                cut += 1;
                assert_eq!(degenerate(copy, 0, WindowPlan::FULL), None, "{copy}");
                let (copy, looped) = (normalized_words(copy), normalized_words(text));
                assert_eq!(copy[..], looped[..copy.len()], "{text}");
            }
        }
        // 30 of the 45 kept loops are the transcript written over again.
        assert!(cut * 2 > loops, "{cut} of {loops} loops cut");
    }

    #[test]
    fn compression_ratio_separates_loops_from_prose() {
        let prose = "He was not an ill-disposed young man, unless to be rather cold hearted \
                     and rather selfish is to be ill-disposed.";
        assert!(
            compression_ratio(prose) < 1.5,
            "{}",
            compression_ratio(prose)
        );
        let looped = "and the weather is warm and the weather is warm ".repeat(6);
        assert!(
            compression_ratio(&looped) > 2.4,
            "{}",
            compression_ratio(&looped)
        );
    }
}
