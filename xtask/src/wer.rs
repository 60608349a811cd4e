//! Word error rate, for judging transcripts against a reference text.

/// Lower-case words without punctuation (apostrophes kept).
fn words(text: &str) -> Vec<String> {
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

/// Word-level edit distance from `reference` to `hypothesis`, over the reference's length.
pub(crate) fn wer(reference: &str, hypothesis: &str) -> f64 {
    let (r, h) = (words(reference), words(hypothesis));
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

#[cfg(test)]
mod tests {
    #[test]
    fn wer_counts_edits_per_reference_word() {
        assert_eq!(
            super::wer("The quick brown fox.", "the quick brown fox"),
            0.0
        );
        assert_eq!(super::wer("the quick brown fox", "the quick fox"), 0.25);
        assert_eq!(
            super::wer("the quick brown fox", "a quick brown fox jumps"),
            0.5
        );
    }
}
