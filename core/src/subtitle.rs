//! Subtitle cues: a segment's text wrapped at word boundaries into lines of at most
//! [`LineLimits::max_line_chars`] characters, and split into cues of at most
//! [`LineLimits::max_lines`] lines, as subtitle guidelines ask (42 characters, two lines),
//! instead of one long line for a long sentence. A cue of a segment with timed words
//! (`--word-timestamps`) starts at its first word; without them, the segment's time is shared
//! out by the cues' lengths.

use crate::Segment;

/// How long a subtitle line may be and how many lines a cue may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineLimits {
    /// The most characters in a line (a longer word gets a line of its own); 0 means no limit.
    pub max_line_chars: usize,
    /// The most lines in a cue; 0 means no limit.
    pub max_lines: usize,
}

impl Default for LineLimits {
    /// 42 characters and two lines: the common guideline (the BBC's, Netflix's).
    fn default() -> Self {
        LineLimits {
            max_line_chars: 42,
            max_lines: 2,
        }
    }
}

/// One subtitle cue: its lines and when it shows, in seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct Cue {
    /// When it appears.
    pub start: f64,
    /// When it goes.
    pub end: f64,
    /// Its lines, each within the line limit (but for a single longer word).
    pub lines: Vec<String>,
}

/// The cues of `segment`, its text led by `prefix` (a speaker label, repeated on every cue;
/// empty for none), within `limits`. Cues follow each other without overlap and cover the
/// segment's time.
///
/// ```
/// use steno_core::{LineLimits, Segment, subtitle_cues};
/// let text = "The quick brown fox jumps over the lazy dog and keeps on running far away.";
/// let cues = subtitle_cues(&Segment::new(0, 1.0, 5.0, text), "", LineLimits::default());
/// assert_eq!(cues.len(), 1);
/// assert_eq!(
///     cues[0].lines,
///     ["The quick brown fox jumps over the lazy", "dog and keeps on running far away."]
/// );
/// ```
pub fn subtitle_cues(segment: &Segment, prefix: &str, limits: LineLimits) -> Vec<Cue> {
    // Each word with its start, when the words are timed.
    let words: Vec<(&str, Option<f64>)> = match &segment.words {
        Some(timed) if !timed.is_empty() => timed
            .iter()
            .map(|word| (word.word.as_str(), Some(word.start)))
            .collect(),
        _ => segment.text.split_whitespace().map(|w| (w, None)).collect(),
    };
    let fits = |line: &str, word: &str| {
        limits.max_line_chars == 0
            || line.chars().count() + 1 + word.chars().count() <= limits.max_line_chars
    };
    // Lines, each with the index of its first word.
    let mut lines: Vec<(String, usize)> = Vec::new();
    for (i, (word, _)) in words.iter().enumerate() {
        let starts_cue = limits.max_lines > 0 && lines.len().is_multiple_of(limits.max_lines);
        match lines.last_mut() {
            Some((line, _)) if fits(line, word) => {
                line.push(' ');
                line.push_str(word);
            }
            _ => {
                // A cue's first line opens with the prefix.
                let opening = if prefix.is_empty() || (!lines.is_empty() && !starts_cue) {
                    (*word).to_owned()
                } else {
                    format!("{prefix} {word}")
                };
                lines.push((opening, i));
            }
        }
    }
    if lines.is_empty() {
        return Vec::new();
    }
    let per_cue = if limits.max_lines == 0 {
        lines.len()
    } else {
        limits.max_lines
    };
    let groups: Vec<&[(String, usize)]> = lines.chunks(per_cue).collect();
    let total_chars: usize = words.iter().map(|(w, _)| w.chars().count() + 1).sum();
    let chars_before = |word: usize| -> usize {
        words[..word]
            .iter()
            .map(|(w, _)| w.chars().count() + 1)
            .sum()
    };
    let span = (segment.end - segment.start).max(0.0);
    // Where a cue starting at `first_word` starts by its share of the characters.
    let share_of = |first_word: usize| {
        segment.start + span * chars_before(first_word) as f64 / total_chars.max(1) as f64
    };
    // Where cue `k` (after the first) starts: its first word's time, else its share of the time.
    let start_of = |first_word: usize| match words[first_word].1 {
        Some(at) => at.clamp(segment.start, segment.end),
        None => share_of(first_word),
    };
    // Each cue must show for a while: a start not after the one before it, or at the very end
    // (an aligner may time a last word there), falls back to the cue's share of the time, and
    // failing that to halfway.
    let mut starts: Vec<f64> = Vec::with_capacity(groups.len());
    for group in &groups {
        let start = match starts.last().copied() {
            None => segment.start,
            Some(before) => {
                let within = |t: f64| t > before && t < segment.end;
                [start_of(group[0].1), share_of(group[0].1)]
                    .into_iter()
                    .find(|&t| within(t))
                    .unwrap_or((before + segment.end) / 2.0)
            }
        };
        starts.push(start);
    }
    groups
        .iter()
        .enumerate()
        .map(|(k, group)| {
            let start = starts[k];
            let end = starts.get(k + 1).copied().unwrap_or(segment.end).max(start);
            Cue {
                start,
                end,
                lines: group.iter().map(|(line, _)| line.clone()).collect(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TimedWord;

    const LONG: &str = "It was a bright cold day in April, and the clocks were striking \
        thirteen. Winston Smith, his chin nuzzled into his breast in an effort to escape the \
        vile wind, slipped quickly through the glass doors.";

    #[test]
    fn lines_and_cues_keep_to_the_limits_and_the_words() {
        let segment = Segment::new(0, 2.0, 12.0, LONG);
        let cues = subtitle_cues(&segment, "", LineLimits::default());
        assert!(cues.len() > 1, "{cues:?}");
        let mut previous_end = segment.start;
        for cue in &cues {
            assert!((1..=2).contains(&cue.lines.len()), "{cue:?}");
            assert!(cue.lines.iter().all(|l| l.chars().count() <= 42), "{cue:?}");
            assert!(
                (cue.start - previous_end).abs() < 1e-9 && cue.start < cue.end,
                "{cue:?}"
            );
            previous_end = cue.end;
        }
        assert!((previous_end - segment.end).abs() < 1e-9);
        let rejoined: Vec<&str> = cues
            .iter()
            .flat_map(|c| c.lines.iter())
            .map(String::as_str)
            .collect();
        assert_eq!(rejoined.join(" "), LONG);
        // No limits: one cue, one line.
        let none = LineLimits {
            max_line_chars: 0,
            max_lines: 0,
        };
        assert_eq!(subtitle_cues(&segment, "", none)[0].lines, [LONG]);
    }

    #[test]
    fn timed_words_start_their_cues_and_labels_lead_every_cue() {
        let mut segment = Segment::new(0, 0.0, 8.0, LONG);
        let words: Vec<&str> = LONG.split_whitespace().collect();
        segment.words = Some(
            words
                .iter()
                .enumerate()
                .map(|(i, word)| TimedWord {
                    word: (*word).to_owned(),
                    start: 0.5 + i as f64 * 0.2,
                    end: 0.7 + i as f64 * 0.2,
                    p: 0.9,
                })
                .collect(),
        );
        let cues = subtitle_cues(&segment, "[me]", LineLimits::default());
        assert!(cues.len() > 1);
        for cue in &cues[1..] {
            let first = cue.lines[0]
                .trim_start_matches("[me] ")
                .split(' ')
                .next()
                .unwrap();
            let index = words.iter().position(|w| *w == first).unwrap();
            assert!(
                (cue.start - (0.5 + index as f64 * 0.2)).abs() < 1e-9,
                "{cue:?}"
            );
        }
        assert!(
            cues.iter().all(|cue| cue.lines[0].starts_with("[me] ")),
            "{cues:?}"
        );
        assert!(
            cues.iter()
                .all(|cue| cue.lines.iter().all(|l| l.chars().count() <= 42))
        );
    }
}
