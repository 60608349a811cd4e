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

/// Word error rate of `hypothesis` against `reference`: the word-level edit distance
/// (substitutions, insertions, deletions) over the reference's length.
///
/// ```
/// use steno_core::word_error_rate;
/// assert_eq!(word_error_rate("the quick brown fox", "The quick fox."), 0.25);
/// assert_eq!(word_error_rate("a b", "a b c d"), 1.0);
/// ```
pub fn word_error_rate(reference: &str, hypothesis: &str) -> f64 {
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
    previous[h.len()] as f64 / r.len().max(1) as f64
}
