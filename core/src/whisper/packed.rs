//! The Whisper transcriber's side of packed windows ([`crate::pack`]): a segment that ran on
//! over the pause between two utterances is cut there, and a window whose text still leaves
//! a spoken utterance without words is decoded utterance by utterance instead.

use std::ops::Range;

use crate::pack::{WindowPart, span_of, window_parts, window_spans};
use crate::{Chunk, Confidence, Result, SAMPLE_RATE, TimedText, Transcription, Word};

/// Speech an utterance of a packed window must have for its missing words to be a failed
/// decode rather than a cough or a breath.
const WORDLESS_SPEECH: std::time::Duration = std::time::Duration::from_secs(1);

/// The first utterance of a packed window that `done`, the window's decode, left without a
/// word although it holds at least `WORDLESS_SPEECH` of speech.
pub(crate) fn wordless_utterance(window: &Chunk, done: &Transcription) -> Option<usize> {
    if window.utterances.is_empty() {
        return None;
    }
    let least = WORDLESS_SPEECH.as_millis() as u64 * u64::from(SAMPLE_RATE) / 1000;
    let whole = WindowPart::whole(done.text.clone(), None, Vec::new());
    let parts = window_parts(&window.utterances, &done.timed, whole);
    window.utterances.iter().zip(&parts).position(|(u, part)| {
        part.text.is_empty() && u.speech_end_sample.saturating_sub(u.start_sample) >= least
    })
}

/// `piece`, a segment of a packed window whose utterances lie at `spans`, cut where its
/// words pass from one utterance to the next: Whisper ends a segment at most pauses but not
/// at all, and a piece goes whole to one utterance ([`window_parts`]). `cut_words` are its
/// words timed for this (token timestamps); a word belongs to the utterance its middle falls
/// in, but those times are often a word early or late, so a cut moves to the nearest place
/// within `SNAP_WORDS` that ends a sentence (or else a clause), where the speaker paused. A
/// cut piece's confidence is the whole piece's, over its share of the tokens, and its
/// `words` (when the piece has them: the same words, perhaps timed otherwise) are its share.
pub(crate) fn cut_at_utterances(
    piece: TimedText,
    cut_words: &[Word],
    spans: &[Range<u64>],
) -> Vec<TimedText> {
    let owners: Vec<Option<usize>> = cut_words
        .iter()
        .map(|word| span_of(spans, (word.start + word.end) / 2))
        .collect();
    // Cut before word i where it is another utterance's than the word before.
    let mut cuts: Vec<usize> = Vec::new();
    for i in (1..owners.len()).filter(|&i| owners[i] != owners[i - 1]) {
        let earliest = cuts.last().copied().unwrap_or(0);
        cuts.push(snap_cut(cut_words, i, earliest));
    }
    cuts.retain(|&cut| cut > 0 && cut < cut_words.len());
    cuts.dedup();
    let words_match = piece.words.is_empty() || piece.words.len() == cut_words.len();
    if cuts.is_empty() || !words_match {
        return vec![piece];
    }
    let total = cut_words.len() as u64;
    let bounds: Vec<usize> = [0]
        .into_iter()
        .chain(cuts)
        .chain([cut_words.len()])
        .collect();
    bounds
        .windows(2)
        .map(|range| {
            let (from, to) = (range[0], range[1]);
            let group = &cut_words[from..to];
            let share = |tokens: u32| {
                let share = u64::from(tokens) * group.len() as u64 / total;
                u32::try_from(share).unwrap_or(tokens).max(1)
            };
            TimedText {
                start: group.first().map_or(piece.start, |word| word.start),
                end: group.last().map_or(piece.end, |word| word.end),
                text: group
                    .iter()
                    .map(|word| word.text.as_str())
                    .collect::<Vec<_>>()
                    .join(" "),
                confidence: piece.confidence.map(|c| Confidence {
                    tokens: share(c.tokens),
                    ..c
                }),
                words: piece
                    .words
                    .get(from..to)
                    .map_or_else(Vec::new, <[Word]>::to_vec),
            }
        })
        .collect()
}

/// How many words a cut between utterances may move to land after punctuation.
const SNAP_WORDS: usize = 2;

/// Titles that end in a full stop but never end a sentence.
const TITLES: [&str; 7] = ["Mr.", "Mrs.", "Ms.", "Dr.", "St.", "Prof.", "Jr."];

/// Where to cut `words` (before which word) near `cut`, no earlier than `earliest`: at the
/// nearest place within `SNAP_WORDS` that ends a sentence (the piece's own start or end
/// counts: Whisper ends segments there), else a clause; `cut` itself when none does. A cut
/// at 0 or at the end leaves the piece whole.
fn snap_cut(words: &[Word], cut: usize, earliest: usize) -> usize {
    let near = (0..=SNAP_WORDS).flat_map(|d| [cut.checked_add(d), cut.checked_sub(d)]);
    let candidates: Vec<usize> = near
        .flatten()
        .filter(|&i| i >= earliest && i <= words.len())
        .collect();
    let ends = |i: usize, marks: &[char]| {
        let word = words[i - 1].text.as_str();
        word.ends_with(marks) && !TITLES.contains(&word)
    };
    let after = |i: usize, marks: &[char]| i == 0 || i == words.len() || ends(i, marks);
    candidates
        .iter()
        .find(|&&i| after(i, &['.', '?', '!']))
        .or_else(|| candidates.iter().find(|&&i| after(i, &[',', ';', ':'])))
        .copied()
        .unwrap_or(cut.max(earliest))
}

/// A packed window's utterances decoded one by one with `decode`, each as a chunk of its
/// own, the window's text timed so that each utterance gets exactly its own; `retries` are the
/// window's own full-window retries, which the result keeps counting.
pub(crate) fn decode_alone(
    window: &Chunk,
    retries: u32,
    mut decode: impl FnMut(&Chunk) -> Result<Transcription>,
) -> Result<Transcription> {
    let mut done = Transcription {
        full_window_retries: retries,
        ..Transcription::default()
    };
    for (utterance, span) in window
        .utterances
        .iter()
        .zip(window_spans(&window.utterances))
    {
        let to = usize::try_from(span.end)
            .unwrap_or(usize::MAX)
            .min(window.samples.len());
        let from = usize::try_from(span.start).unwrap_or(usize::MAX).min(to);
        let mut alone = Chunk::new(
            utterance.index,
            utterance.start_sample,
            window.samples[from..to].to_vec(),
        );
        alone.speech_end_sample = utterance.speech_end_sample;
        let text = decode(&alone)?;
        done.full_window_retries += text.full_window_retries;
        done.restarts_cut += text.restarts_cut;
        // One language for the window's segments: the first one detected.
        done.language = done.language.or(text.language);
        done.confidence = Confidence::both(done.confidence, text.confidence);
        done.temperature_fallbacks += text.temperature_fallbacks;
        if !text.text.is_empty() {
            if !done.text.is_empty() {
                done.text.push(' ');
            }
            done.text.push_str(&text.text);
        }
        // The utterance's words, timed from the window's start.
        let words = text
            .words
            .into_iter()
            .map(|word| Word {
                start: word.start + from as u64,
                end: word.end + from as u64,
                ..word
            })
            .collect();
        done.timed.push(TimedText {
            start: from as u64,
            end: to as u64,
            text: text.text,
            confidence: text.confidence,
            words,
        });
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Utterance;

    #[test]
    fn a_packed_window_that_leaves_a_spoken_utterance_wordless_is_unpacked() {
        let utterance = |index: usize, start: u64, speech_end: u64| Utterance {
            index,
            start_sample: start,
            end_sample: speech_end + 1_600,
            speech_end_sample: speech_end,
        };
        let mut window = Chunk::new(0, 16_000, vec![0.0; 160_000]);
        // 2 s of speech, then 0.5 s (too short to judge), then 3 s.
        window.utterances = vec![
            utterance(0, 16_000, 48_000),
            utterance(1, 64_000, 72_000),
            utterance(2, 96_000, 144_000),
        ];
        let piece = |start, end, text: &str| TimedText {
            start,
            end,
            text: text.into(),
            confidence: None,
            words: Vec::new(),
        };
        let mut done = Transcription {
            text: "One. Three.".into(),
            full_window_retries: 0,
            restarts_cut: 0,
            timed: vec![piece(0, 32_000, "One."), piece(80_000, 128_000, "Three.")],
            language: None,
            confidence: None,
            words: Vec::new(),
            temperature_fallbacks: 0,
            word_probabilities: Vec::new(),
        };
        // The short one without words is not judged.
        assert_eq!(wordless_utterance(&window, &done), None);
        // Both pieces given to the first: the third is left wordless.
        done.timed = vec![piece(0, 20_000, "One."), piece(20_000, 40_000, "Three.")];
        assert_eq!(wordless_utterance(&window, &done), Some(2));
        // An utterance is not a window.
        assert_eq!(
            wordless_utterance(&Chunk::new(0, 0, vec![0.0; 48_000]), &done),
            None
        );
    }

    #[test]
    fn a_windows_utterances_are_decoded_alone_each_timed_over_itself() {
        let mut window = Chunk::new(3, 16_000, (0..64_000).map(|i| i as f32).collect());
        let utterance = |index, start_sample, end_sample| Utterance {
            index,
            start_sample,
            end_sample,
            speech_end_sample: end_sample - 1_600,
        };
        window.utterances = vec![utterance(3, 16_000, 32_000), utterance(4, 48_000, 80_000)];
        let mut seen = Vec::new();
        let done = decode_alone(&window, 1, |alone| {
            seen.push((alone.index, alone.start_sample, alone.speech_end_sample));
            // Each chunk holds its own samples: the first is where it starts in the window.
            let first = alone.samples.first().copied().unwrap_or_default();
            Ok(Transcription {
                text: format!("from {first}"),
                full_window_retries: 1,
                restarts_cut: 1,
                timed: Vec::new(),
                language: None,
                confidence: None,
                words: Vec::new(),
                temperature_fallbacks: 0,
                word_probabilities: Vec::new(),
            })
        })
        .unwrap();
        assert_eq!(seen, [(3, 16_000, 30_400), (4, 48_000, 78_400)]);
        assert_eq!(done.text, "from 0 from 32000");
        assert_eq!(done.full_window_retries, 3);
        assert_eq!(done.restarts_cut, 2);
        let parts = window_parts(&window.utterances, &done.timed, WindowPart::default());
        let texts: Vec<_> = parts.iter().map(|part| part.text.as_str()).collect();
        assert_eq!(texts, ["from 0", "from 32000"]);
    }

    #[test]
    fn a_piece_over_two_utterances_is_cut_after_the_nearest_sentence_end() {
        // Two utterances of 2 s, one after the other (the first ends at 32 000).
        let spans = [0..32_000, 32_000..64_000];
        // Words at the times given, in tenths of a second.
        let words = |words: &[(&str, u64, u64)]| -> Vec<Word> {
            words
                .iter()
                .map(|&(text, start, end)| Word {
                    text: text.into(),
                    start: start * 1_600,
                    end: end * 1_600,
                    probability: 0.9,
                })
                .collect()
        };
        let piece = |words: &[Word], with_words: bool| TimedText {
            start: words[0].start,
            end: words[words.len() - 1].end,
            text: words
                .iter()
                .map(|w| w.text.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            confidence: Some(Confidence {
                avg_logprob: -0.5,
                no_speech_prob: 0.1,
                tokens: 12,
            }),
            words: if with_words {
                words.to_vec()
            } else {
                Vec::new()
            },
        };
        let texts = |pieces: &[TimedText]| {
            pieces
                .iter()
                .map(|piece| piece.text.clone())
                .collect::<Vec<_>>()
        };
        // The times put "Yes," in the first utterance, a word late: the cut goes after
        // "morning.".
        let late = words(&[
            ("Call", 2, 5),
            ("me", 5, 7),
            ("tomorrow", 7, 12),
            ("morning.", 12, 17),
            ("Yes,", 17, 21),
            ("that", 21, 25),
            ("works.", 25, 30),
        ]);
        let cut = cut_at_utterances(piece(&late, false), &late, &spans);
        assert_eq!(
            texts(&cut),
            ["Call me tomorrow morning.", "Yes, that works."]
        );
        assert!(
            cut.iter().all(|piece| piece.words.is_empty()),
            "none asked for"
        );
        let tokens: Vec<u32> = cut
            .iter()
            .map(|piece| piece.confidence.unwrap().tokens)
            .collect();
        assert_eq!(tokens, [6, 5], "shared by words");
        let utterance = |index, start_sample, end_sample| Utterance {
            index,
            start_sample,
            end_sample,
            speech_end_sample: end_sample,
        };
        let utterances = [utterance(0, 0, 32_000), utterance(1, 32_000, 64_000)];
        let parts = window_parts(&utterances, &cut, WindowPart::default());
        assert_eq!(parts[1].text, "Yes, that works.");
        // A segment's first word timed into the utterance before: the segment stays whole.
        let early = words(&[("Yes,", 18, 21), ("that", 21, 25), ("works.", 25, 30)]);
        let whole = cut_at_utterances(piece(&early, true), &early, &spans);
        assert_eq!(whole, [piece(&early, true)]);
        // A title is no sentence end: the cut goes before it.
        let title = words(&[
            ("it.", 10, 16),
            ("Mr.", 16, 19),
            ("Dashwood", 24, 28),
            ("said", 28, 31),
        ]);
        let cut = cut_at_utterances(piece(&title, false), &title, &spans);
        assert_eq!(texts(&cut), ["it.", "Mr. Dashwood said"]);
        // No punctuation near: the cut is where the times say, and the piece's own words
        // (timed otherwise) are shared the same way.
        let plain = words(&[
            ("one", 2, 6),
            ("two", 6, 10),
            ("three", 10, 15),
            ("four", 15, 19),
            ("five", 21, 25),
            ("six", 25, 29),
            ("seven", 29, 33),
            ("eight", 33, 37),
        ]);
        let mut aligned = piece(&plain, true);
        aligned.words.iter_mut().for_each(|word| word.start += 100);
        let cut = cut_at_utterances(aligned.clone(), &plain, &spans);
        assert_eq!(texts(&cut), ["one two three four", "five six seven eight"]);
        assert_eq!(cut[1].words, aligned.words[4..]);
        assert_eq!((cut[1].start, cut[1].end), (21 * 1_600, 37 * 1_600));
    }
}
