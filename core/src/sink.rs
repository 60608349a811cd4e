//! Sinks: where finished segments go (text, JSON Lines, SRT, WebVTT, or the host application).

use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// One transcribed utterance, as written to outputs. Its JSON form is the JSON Lines contract:
///
/// ```json
/// {"chunk":3,"start":12.48,"end":15.92,"speech_end":15.72,"text":"He was not an ill-disposed young man.","emitted_at":16.31,"latency_ms":392}
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Segment {
    /// Index of the chunk this text came from.
    pub chunk: usize,
    /// Start, in seconds of audio from the start of the stream.
    pub start: f64,
    /// End, in seconds of audio from the start of the stream.
    pub end: f64,
    /// End of speech: the end of the last voiced frame (before the trailing padding), in
    /// seconds of audio from the start of the stream.
    #[serde(default)]
    pub speech_end: f64,
    /// The words.
    pub text: String,
    /// Wall-clock seconds from the start of the stream to writing this segment.
    pub emitted_at: f64,
    /// From the moment the chunk's last sample was available to the pipeline until this
    /// segment was written, in milliseconds.
    pub latency_ms: u64,
}

impl Segment {
    /// A segment of `text` for chunk `chunk`, from `start` to `end` seconds of audio, its speech
    /// ending at `end`, written at once: for sinks' tests and examples (a run's segments come
    /// from its emitter, with their times measured).
    pub fn new(chunk: usize, start: f64, end: f64, text: impl Into<String>) -> Self {
        Segment {
            chunk,
            start,
            end,
            speech_end: end,
            text: text.into(),
            emitted_at: 0.0,
            latency_ms: 0,
        }
    }
}

/// Receives segments in audio order.
pub trait Sink: Send {
    /// Writes one segment.
    ///
    /// # Errors
    /// Returns [`Error::Sink`] when the output cannot be written.
    fn write(&mut self, segment: &Segment) -> Result<()>;

    /// Called once after the last segment of a successful run.
    ///
    /// # Errors
    /// Returns [`Error::Sink`] when the output cannot be completed (for example, flushed).
    fn finish(&mut self) -> Result<()> {
        Ok(())
    }
}

impl<S: Sink + ?Sized> Sink for Box<S> {
    fn write(&mut self, segment: &Segment) -> Result<()> {
        (**self).write(segment)
    }
    fn finish(&mut self) -> Result<()> {
        (**self).finish()
    }
}

/// The text formats steno writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Format {
    /// One line of plain text per utterance.
    #[default]
    Text,
    /// One JSON object per line ([`Segment`]).
    Jsonl,
    /// SubRip subtitles.
    Srt,
    /// WebVTT subtitles.
    Vtt,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s {
            "text" => Ok(Format::Text),
            "jsonl" => Ok(Format::Jsonl),
            "srt" => Ok(Format::Srt),
            "vtt" => Ok(Format::Vtt),
            other => Err(format!(
                "unknown format '{other}' (expected text, jsonl, srt or vtt)"
            )),
        }
    }
}

/// Writes segments in a [`Format`] to any writer (a file, stdout, a buffer).
///
/// ```
/// use steno_core::{Format, FormatSink, Segment, Sink};
/// let mut sink = FormatSink::new(Format::Srt, Vec::new(), "buffer");
/// sink.write(&Segment::new(0, 1.5, 3.25, "Hello.")).unwrap();
/// sink.finish().unwrap();
/// assert_eq!(String::from_utf8(sink.into_inner()).unwrap(),
///     "1\n00:00:01,500 --> 00:00:03,250\nHello.\n\n");
/// ```
#[derive(Debug)]
pub struct FormatSink<W> {
    format: Format,
    writer: W,
    name: String,
    /// The input each JSON line names, when several inputs share one stream.
    input: Option<String>,
    written: usize,
    header_written: bool,
}

impl<W: Write + Send> FormatSink<W> {
    /// A sink writing `format` to `writer`; `name` (a path or `stdout`) is used in errors.
    pub fn new(format: Format, writer: W, name: impl Into<String>) -> Self {
        FormatSink {
            format,
            writer,
            name: name.into(),
            input: None,
            written: 0,
            header_written: false,
        }
    }

    /// Names `input` in every JSON line (an `"input"` field first), so that the segments of
    /// several inputs written to one stream can be told apart. Other formats are unchanged.
    ///
    /// ```
    /// use steno_core::{Format, FormatSink, Segment, Sink};
    /// let mut sink = FormatSink::new(Format::Jsonl, Vec::new(), "stdout").with_input("a.wav");
    /// sink.write(&Segment::new(0, 0.5, 1.0, "Hi.")).unwrap();
    /// let line = String::from_utf8(sink.into_inner()).unwrap();
    /// assert!(line.starts_with(r#"{"input":"a.wav","chunk":0,"#), "{line}");
    /// ```
    #[must_use]
    pub fn with_input(mut self, input: impl Into<String>) -> Self {
        self.input = Some(input.into());
        self
    }

    /// The writer, once the sink is done.
    pub fn into_inner(self) -> W {
        self.writer
    }

    fn write_header(&mut self) -> std::io::Result<()> {
        if !self.header_written && self.format == Format::Vtt {
            self.writer.write_all(b"WEBVTT\n\n")?;
        }
        self.header_written = true;
        Ok(())
    }

    fn write_segment(&mut self, segment: &Segment) -> std::io::Result<()> {
        self.write_header()?;
        let w = &mut self.writer;
        match self.format {
            Format::Text => writeln!(w, "{}", segment.text)?,
            Format::Jsonl => {
                if let Some(input) = &self.input {
                    // `{"input":...,` then the segment's own fields, in their usual order.
                    let fields = serde_json::to_string(&rounded(segment))?;
                    write!(w, "{{\"input\":{},", serde_json::to_string(input)?)?;
                    w.write_all(fields.get(1..).unwrap_or_default().as_bytes())?;
                } else {
                    serde_json::to_writer(&mut *w, &rounded(segment))?;
                }
                w.write_all(b"\n")?;
            }
            Format::Srt => write!(
                w,
                "{}\n{} --> {}\n{}\n\n",
                self.written + 1,
                timestamp(segment.start, ','),
                timestamp(segment.end, ','),
                segment.text
            )?,
            Format::Vtt => write!(
                w,
                "{} --> {}\n{}\n\n",
                timestamp(segment.start, '.'),
                timestamp(segment.end, '.'),
                segment.text
            )?,
        }
        // Flush per segment: a live reader (a terminal, a pipe) sees each utterance at once.
        w.flush()
    }
}

impl<W: Write + Send> Sink for FormatSink<W> {
    fn write(&mut self, segment: &Segment) -> Result<()> {
        self.write_segment(segment)
            .map_err(|e| Error::sink_caused_by(self.name.clone(), "cannot write", e))?;
        self.written += 1;
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        self.write_header()
            .and_then(|()| self.writer.flush())
            .map_err(|e| Error::sink_caused_by(self.name.clone(), "cannot write", e))
    }
}

/// Times in JSON are rounded to milliseconds: sample-exact floats are noise to readers.
fn rounded(segment: &Segment) -> Segment {
    let ms = |t: f64| (t * 1000.0).round() / 1000.0;
    Segment {
        start: ms(segment.start),
        end: ms(segment.end),
        speech_end: ms(segment.speech_end),
        emitted_at: ms(segment.emitted_at),
        ..segment.clone()
    }
}

/// `HH:MM:SS,mmm` (SRT) or `HH:MM:SS.mmm` (WebVTT).
fn timestamp(seconds: f64, separator: char) -> String {
    let total_ms = (seconds.max(0.0) * 1000.0).round() as u64;
    let (h, rest) = (total_ms / 3_600_000, total_ms % 3_600_000);
    let (m, rest) = (rest / 60_000, rest % 60_000);
    let (s, ms) = (rest / 1000, rest % 1000);
    format!("{h:02}:{m:02}:{s:02}{separator}{ms:03}")
}

/// Hands each segment to a closure: the simplest way for an application to receive text.
///
/// ```
/// use steno_core::{CallbackSink, Sink};
/// let sink = CallbackSink::new(|segment| println!("{}", segment.text));
/// ```
pub struct CallbackSink<F> {
    callback: F,
}

impl<F> std::fmt::Debug for CallbackSink<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallbackSink").finish_non_exhaustive()
    }
}

impl<F: FnMut(&Segment) + Send> CallbackSink<F> {
    /// A sink calling `callback` for every segment.
    pub fn new(callback: F) -> Self {
        CallbackSink { callback }
    }
}

impl<F: FnMut(&Segment) + Send> Sink for CallbackSink<F> {
    fn write(&mut self, segment: &Segment) -> Result<()> {
        (self.callback)(segment);
        Ok(())
    }
}

/// Sends each segment over a std channel to another part of the application. If the receiver
/// is gone, the run stops with an error rather than transcribing for nobody.
#[derive(Debug)]
pub struct ChannelSink {
    sender: std::sync::mpsc::Sender<Segment>,
}

impl ChannelSink {
    /// A sink and the receiver its segments arrive on.
    pub fn new() -> (Self, std::sync::mpsc::Receiver<Segment>) {
        let (sender, receiver) = std::sync::mpsc::channel();
        (ChannelSink { sender }, receiver)
    }
}

impl Sink for ChannelSink {
    fn write(&mut self, segment: &Segment) -> Result<()> {
        self.sender
            .send(segment.clone())
            .map_err(|_| Error::sink("channel", "the receiver was dropped"))
    }
}

/// Keeps every segment in memory; clones share the same list, so a test can keep one clone
/// and give the other to the pipeline.
#[derive(Debug, Clone, Default)]
pub struct CollectingSink {
    segments: Arc<Mutex<Vec<Segment>>>,
    finished: Arc<Mutex<bool>>,
}

impl CollectingSink {
    /// An empty collecting sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// The segments written so far.
    pub fn segments(&self) -> Vec<Segment> {
        self.segments
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Whether [`Sink::finish`] was called (the run completed).
    pub fn is_finished(&self) -> bool {
        *self.finished.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Sink for CollectingSink {
    fn write(&mut self, segment: &Segment) -> Result<()> {
        self.segments
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(segment.clone());
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        *self.finished.lock().unwrap_or_else(PoisonError::into_inner) = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(chunk: usize, start: f64, end: f64, text: &str) -> Segment {
        Segment {
            chunk,
            start,
            end,
            speech_end: end - 0.2,
            text: text.into(),
            emitted_at: end + 0.3,
            latency_ms: 300,
        }
    }

    fn render(format: Format, segments: &[Segment]) -> String {
        let mut sink = FormatSink::new(format, Vec::new(), "test");
        for s in segments {
            sink.write(s).unwrap();
        }
        sink.finish().unwrap();
        String::from_utf8(sink.into_inner()).unwrap()
    }

    #[test]
    fn each_format_renders_as_specified() {
        let segments = [
            segment(0, 0.5, 2.0, "Hello there."),
            segment(1, 3661.0625, 3662.5, "Second."),
        ];
        assert_eq!(render(Format::Text, &segments), "Hello there.\nSecond.\n");
        assert_eq!(
            render(Format::Srt, &segments),
            "1\n00:00:00,500 --> 00:00:02,000\nHello there.\n\n\
             2\n01:01:01,063 --> 01:01:02,500\nSecond.\n\n"
        );
        assert_eq!(
            render(Format::Vtt, &segments),
            "WEBVTT\n\n00:00:00.500 --> 00:00:02.000\nHello there.\n\n\
             01:01:01.063 --> 01:01:02.500\nSecond.\n\n"
        );
        let jsonl = render(Format::Jsonl, &segments);
        let first: Segment = serde_json::from_str(jsonl.lines().next().unwrap()).unwrap();
        assert_eq!(first, segment(0, 0.5, 2.0, "Hello there."));
        assert!(jsonl.lines().nth(1).unwrap().contains("\"start\":3661.063"));
    }

    #[test]
    fn an_empty_vtt_still_has_its_header() {
        assert_eq!(render(Format::Vtt, &[]), "WEBVTT\n\n");
        assert_eq!(render(Format::Srt, &[]), "");
    }

    #[test]
    fn a_dropped_channel_receiver_is_an_error() {
        let (mut sink, receiver) = ChannelSink::new();
        sink.write(&segment(0, 0.0, 1.0, "a")).unwrap();
        assert_eq!(receiver.recv().unwrap().text, "a");
        drop(receiver);
        assert!(sink.write(&segment(1, 1.0, 2.0, "b")).is_err());
    }
}
