//! Whisper's text made clean: its non-speech markers removed, its spaces normalised.

/// Removes what Whisper writes for non-speech (`[BLANK_AUDIO]`, `(music)`, `*sigh*`) and
/// normalises spaces; text without a letter or digit left becomes empty.
///
/// ```
/// assert_eq!(steno_core::clean_text(" [BLANK_AUDIO] "), "");
/// assert_eq!(steno_core::clean_text(" Hello (coughs)  world. "), "Hello world.");
/// ```
pub fn clean_text(raw: &str) -> String {
    let mut kept = String::with_capacity(raw.len());
    let mut closing: Option<char> = None;
    for c in raw.chars() {
        match closing {
            Some(close) if c == close => closing = None,
            Some(_) => {}
            None => match c {
                '[' => closing = Some(']'),
                '(' => closing = Some(')'),
                '*' => closing = Some('*'),
                _ => kept.push(c),
            },
        }
    }
    let words: Vec<&str> = kept.split_whitespace().collect();
    let text = words.join(" ");
    if text.chars().any(char::is_alphanumeric) {
        text
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_speech_markers_are_removed() {
        assert_eq!(clean_text("[BLANK_AUDIO]"), "");
        assert_eq!(clean_text(" (upbeat music) "), "");
        assert_eq!(clean_text("*laughs* Okay."), "Okay.");
        assert_eq!(clean_text(" ..."), "");
        assert_eq!(clean_text(" Hello  there. "), "Hello there.");
    }
}
