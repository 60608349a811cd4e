//! Interim results on a terminal: the utterance being spoken on one line, rewritten in place
//! (stable words plain, the rest dimmed), replaced by its final text.

use std::io::{IsTerminal, Write};

use steno_core::{Error, Partial, Result, Segment, Sink};

/// Clears the terminal line the cursor is on and returns to its start.
const CLEAR_LINE: &str = "\r\x1b[2K";
const DIM: &str = "\x1b[2m";
const PLAIN: &str = "\x1b[0m";

/// Writes text segments to a terminal, each partial hypothesis over the previous one.
pub(crate) struct LiveLine<W> {
    out: W,
    /// Whether a partial is on the current line.
    showing: bool,
    /// The terminal's width, when it can be read (a partial longer than it would wrap, and
    /// the next one could only clear the last row of it).
    width: fn() -> Option<usize>,
}

impl LiveLine<std::io::Stdout> {
    /// The live line on stdout, when stdout is a terminal.
    pub(crate) fn on_stdout() -> Option<Self> {
        std::io::stdout().is_terminal().then(|| LiveLine {
            out: std::io::stdout(),
            showing: false,
            width: stdout_width,
        })
    }
}

fn stdout_width() -> Option<usize> {
    rustix::termios::tcgetwinsize(std::io::stdout())
        .ok()
        .map(|size| usize::from(size.ws_col))
        .filter(|&cols| cols > 0)
}

/// `stable` then `rest` (the text after it, with its own leading space or punctuation), cut
/// from the front to fit in `width` columns (one left free for the cursor): the newest words
/// are the ones worth seeing.
fn fit(stable: &str, rest: &str, width: Option<usize>) -> (String, String) {
    let room = width.map_or(usize::MAX, |w| w.saturating_sub(1));
    let (stable_len, rest_len) = (stable.chars().count(), rest.chars().count());
    if stable_len + rest_len <= room {
        return (stable.to_owned(), rest.to_owned());
    }
    // Drop enough characters from the front to fit the ellipsis that marks the cut.
    let skip = stable_len + rest_len - room + 1;
    let stable_shown: String = stable.chars().skip(skip).collect();
    let rest_shown: String = rest.chars().skip(skip.saturating_sub(stable_len)).collect();
    (format!("…{stable_shown}"), rest_shown)
}

impl<W: Write + Send> LiveLine<W> {
    fn io(&mut self, write: impl FnOnce(&mut W) -> std::io::Result<()>) -> Result<()> {
        write(&mut self.out)
            .and_then(|()| self.out.flush())
            .map_err(|e| Error::sink_caused_by("stdout", "cannot write", e))
    }
}

impl<W: Write + Send> Sink for LiveLine<W> {
    fn write(&mut self, segment: &Segment) -> Result<()> {
        self.showing = false;
        self.io(|out| writeln!(out, "{CLEAR_LINE}{}", segment.text))
    }

    fn partial(&mut self, partial: &Partial) -> Result<()> {
        let (stable, unstable) = fit(&partial.stable, partial.after_stable(), (self.width)());
        self.showing = true;
        self.io(|out| write!(out, "{CLEAR_LINE}{stable}{DIM}{unstable}{PLAIN}"))
    }

    fn finish(&mut self) -> Result<()> {
        // A partial whose final never came (the utterance was empty) must not stay behind.
        if std::mem::take(&mut self.showing) {
            self.io(|out| out.write_all(CLEAR_LINE.as_bytes()))?;
        }
        self.io(|_| Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(width: Option<usize>) -> LiveLine<Vec<u8>> {
        LiveLine {
            out: Vec::new(),
            showing: false,
            width: match width {
                Some(20) => || Some(20),
                _ => || None,
            },
        }
    }

    #[test]
    fn partials_rewrite_the_line_and_the_final_takes_it() {
        let mut sink = line(None);
        sink.partial(&Partial::new(0, 0.0, 0.5, "Hello", ""))
            .unwrap();
        sink.partial(&Partial::new(0, 0.0, 1.0, "Hello there my", "Hello"))
            .unwrap();
        sink.write(&Segment::new(0, 0.0, 1.4, "Hello there, my friend."))
            .unwrap();
        sink.finish().unwrap();
        assert_eq!(
            String::from_utf8(sink.out).unwrap(),
            "\r\x1b[2K\x1b[2mHello\x1b[0m\
             \r\x1b[2KHello\x1b[2m there my\x1b[0m\
             \r\x1b[2KHello there, my friend.\n"
        );
    }

    #[test]
    fn a_partial_left_at_the_end_is_cleared() {
        let mut sink = line(None);
        sink.partial(&Partial::new(0, 0.0, 0.5, "Hmm", "")).unwrap();
        sink.finish().unwrap();
        assert!(String::from_utf8(sink.out).unwrap().ends_with("\r\x1b[2K"));
    }

    #[test]
    fn a_long_partial_keeps_its_newest_words_within_the_width() {
        assert_eq!(
            fit("one two three", " four five six", Some(20)),
            ("…hree".to_owned(), " four five six".to_owned())
        );
        assert_eq!(
            fit("a", " very long unstable tail here", Some(20)),
            ("…".to_owned(), "unstable tail here".to_owned())
        );
        // Punctuation after the stable words is dimmed with the rest, and no space is added.
        assert_eq!(
            fit("of his life", ". Had", None),
            ("of his life".to_owned(), ". Had".to_owned())
        );
        let mut sink = line(Some(20));
        sink.partial(&Partial::new(
            0,
            0.0,
            3.0,
            "one two three four five six",
            "one two three",
        ))
        .unwrap();
        let shown = String::from_utf8(sink.out).unwrap();
        let visible = shown
            .replace(CLEAR_LINE, "")
            .replace(DIM, "")
            .replace(PLAIN, "");
        assert_eq!(visible.chars().count(), 19, "{visible:?}");
    }
}
