//! Word error rate: how far a transcript is from a reference, for tests and benchmarks.

/// Lower-case words without punctuation (apostrophes kept): the form transcripts are
/// compared in.
///
/// ```
/// assert_eq!(steno_core::normalized_words("Don't stop, Bob."), ["don't", "stop", "bob"]);
/// ```
pub fn normalized_words(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(|w| {
            w.chars()
                .filter(|c| c.is_alphanumeric() || *c == '\'')
                .collect::<String>()
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

/// Word error rate of `hypothesis` against `reference`: [`word_errors`] over the
/// reference's length.
///
/// ```
/// use steno_core::word_error_rate;
/// assert_eq!(word_error_rate("the quick brown fox", "The quick fox."), 0.25);
/// assert_eq!(word_error_rate("a b", "a b c d"), 1.0);
/// ```
pub fn word_error_rate(reference: &str, hypothesis: &str) -> f64 {
    let length = normalized_words(reference).len();
    word_errors(reference, hypothesis) as f64 / length.max(1) as f64
}

/// Word errors of `hypothesis` against `reference`: the word-level edit distance
/// (substitutions, insertions, deletions) between their [`normalized_words`].
///
/// ```
/// use steno_core::word_errors;
/// assert_eq!(word_errors("the quick brown fox", "The quick fox."), 1);
/// assert_eq!(word_errors("a b", "a b c d"), 2);
/// ```
pub fn word_errors(reference: &str, hypothesis: &str) -> usize {
    let (r, h) = (normalized_words(reference), normalized_words(hypothesis));
    let mut previous: Vec<usize> = (0..=h.len()).collect();
    for (i, rw) in r.iter().enumerate() {
        let mut current = vec![i + 1; h.len() + 1];
        for (j, hw) in h.iter().enumerate() {
            let substitution = previous[j] + usize::from(rw != hw);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[h.len()]
}
