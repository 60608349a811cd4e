//! Sinks: where finished segments (and, with interim results, partial hypotheses) go: text,
//! JSON Lines, SRT, WebVTT, or the host application.

use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};

use serde::Serialize;

use crate::{Error, LineLimits, Partial, Result, Segment, TimedWord, Update, subtitle_cues};

/// Receives segments in audio order, and partial hypotheses between them when interim results
/// are on.
pub trait Sink: Send {
    /// Writes one segment.
    ///
    /// # Errors
    /// Returns [`Error::Sink`] when the output cannot be written.
    fn write(&mut self, segment: &Segment) -> Result<()>;

    /// Writes a partial hypothesis of the utterance that the next segment will finish (only
    /// called when [`RunOptions::interim_step`](crate::RunOptions::interim_step) is set).
    /// Does nothing unless the sink shows partials.
    ///
    /// # Errors
    /// Returns [`Error::Sink`] when the output cannot be written.
    fn partial(&mut self, partial: &Partial) -> Result<()> {
        let _ = partial;
        Ok(())
    }

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
    fn partial(&mut self, partial: &Partial) -> Result<()> {
        (**self).partial(partial)
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
    /// One JSON object per line: [`Segment`]s (`"type":"final"`) and, with interim results,
    /// [`Partial`]s (`"type":"partial"`).
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

/// Writes segments in a [`Format`] to any writer (a file, stdout, a buffer). Only JSON Lines
/// carries partial hypotheses; text, SRT and WebVTT hold final segments only.
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
    /// Subtitle cues written (a long segment is several).
    cues: usize,
    limits: LineLimits,
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
            cues: 0,
            limits: LineLimits::default(),
            header_written: false,
        }
    }

    /// SRT and WebVTT lines of at most `limits.max_line_chars` characters and cues of at most
    /// `limits.max_lines` lines (default: 42 and 2); a longer segment becomes several cues
    /// ([`subtitle_cues`]). Other formats are unchanged.
    ///
    /// ```
    /// use steno_core::{Format, FormatSink, LineLimits, Segment, Sink};
    /// let limits = LineLimits { max_line_chars: 12, max_lines: 1 };
    /// let mut sink = FormatSink::new(Format::Srt, Vec::new(), "buffer").with_line_limits(limits);
    /// sink.write(&Segment::new(0, 0.0, 2.0, "Hello there, old friend.")).unwrap();
    /// let srt = String::from_utf8(sink.into_inner()).unwrap();
    /// // The second cue starts where its share of the characters does.
    /// assert!(srt.starts_with("1\n00:00:00,000 --> 00:00:01,040\nHello there,\n\n2\n"), "{srt}");
    /// ```
    #[must_use]
    pub fn with_line_limits(mut self, limits: LineLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Names `input` in every JSON line (an `"input"` field first), so that the segments of
    /// several inputs written to one stream can be told apart. Other formats are unchanged.
    ///
    /// ```
    /// use steno_core::{Format, FormatSink, Segment, Sink};
    /// let mut sink = FormatSink::new(Format::Jsonl, Vec::new(), "stdout").with_input("a.wav");
    /// sink.write(&Segment::new(0, 0.5, 1.0, "Hi.")).unwrap();
    /// let line = String::from_utf8(sink.into_inner()).unwrap();
    /// assert!(line.starts_with(r#"{"input":"a.wav","type":"final","chunk":0,"#), "{line}");
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

    /// Text, SRT and WebVTT name a labelled segment's source: `[them] text` in text and SRT,
    /// the cue's voice (`<v them>text`) in WebVTT; JSON Lines carries it as `source`.
    fn write_segment(&mut self, segment: &Segment) -> std::io::Result<()> {
        self.write_header()?;
        let w = &mut self.writer;
        let labelled = |text: &str| match &segment.source {
            Some(label) => format!("[{label}] {text}"),
            None => text.to_owned(),
        };
        match self.format {
            Format::Text => writeln!(w, "{}", labelled(&segment.text))?,
            Format::Jsonl => json_line(w, self.input.as_deref(), "final", &rounded(segment))?,
            Format::Srt => {
                let prefix = segment
                    .source
                    .as_deref()
                    .map(|label| format!("[{label}]"))
                    .unwrap_or_default();
                for cue in subtitle_cues(segment, &prefix, self.limits) {
                    self.cues += 1;
                    write!(
                        w,
                        "{}\n{} --> {}\n{}\n\n",
                        self.cues,
                        timestamp(cue.start, ','),
                        timestamp(cue.end, ','),
                        cue.lines.join("\n")
                    )?;
                }
            }
            Format::Vtt => {
                let voice = segment
                    .source
                    .as_deref()
                    .map(|label| format!("<v {}>", vtt_escape(label)))
                    .unwrap_or_default();
                for cue in subtitle_cues(segment, "", self.limits) {
                    write!(
                        w,
                        "{} --> {}\n{voice}{}\n\n",
                        timestamp(cue.start, '.'),
                        timestamp(cue.end, '.'),
                        cue.lines.join("\n")
                    )?;
                }
            }
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

    fn partial(&mut self, partial: &Partial) -> Result<()> {
        if self.format != Format::Jsonl {
            return Ok(());
        }
        let rounded = Partial {
            start: to_millis(partial.start),
            end: to_millis(partial.end),
            emitted_at: to_millis(partial.emitted_at),
            ..partial.clone()
        };
        json_line(&mut self.writer, self.input.as_deref(), "partial", &rounded)
            .and_then(|()| self.writer.flush())
            .map_err(|e| Error::sink_caused_by(self.name.clone(), "cannot write", e))
    }

    fn finish(&mut self) -> Result<()> {
        self.write_header()
            .and_then(|()| self.writer.flush())
            .map_err(|e| Error::sink_caused_by(self.name.clone(), "cannot write", e))
    }
}

/// Writes one JSON line: `input` (when several inputs share the stream), `type`, then
/// `fields`' own fields in their usual order.
fn json_line(
    w: &mut impl Write,
    input: Option<&str>,
    kind: &str,
    fields: &impl Serialize,
) -> std::io::Result<()> {
    w.write_all(b"{")?;
    if let Some(input) = input {
        write!(w, "\"input\":{},", serde_json::to_string(input)?)?;
    }
    write!(w, "\"type\":\"{kind}\",")?;
    let fields = serde_json::to_string(fields)?;
    w.write_all(fields.get(1..).unwrap_or_default().as_bytes())?;
    w.write_all(b"\n")
}

/// `label` as a WebVTT voice annotation may hold it: no `>` (which ends the tag), `&` or `<`.
fn vtt_escape(label: &str) -> String {
    label
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `seconds` rounded to milliseconds, as times are in JSON: sample-exact floats are noise to
/// readers.
fn to_millis(seconds: f64) -> f64 {
    (seconds * 1000.0).round() / 1000.0
}

/// `value` rounded to three decimals, as probabilities are in JSON.
fn to_thousandths(value: f32) -> f32 {
    ((f64::from(value) * 1000.0).round() / 1000.0) as f32
}

/// `segment` with its times rounded for JSON.
fn rounded(segment: &Segment) -> Segment {
    Segment {
        start: to_millis(segment.start),
        end: to_millis(segment.end),
        speech_end: to_millis(segment.speech_end),
        emitted_at: to_millis(segment.emitted_at),
        language_probability: segment.language_probability.map(to_thousandths),
        avg_logprob: segment.avg_logprob.map(to_thousandths),
        no_speech_prob: segment.no_speech_prob.map(to_thousandths),
        words: segment.words.as_ref().map(|words| {
            words
                .iter()
                .map(|word| TimedWord {
                    word: word.word.clone(),
                    start: to_millis(word.start),
                    end: to_millis(word.end),
                    p: to_thousandths(word.p),
                })
                .collect()
        }),
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
/// [`on_partial`](Self::on_partial) adds a closure for partial hypotheses.
///
/// ```
/// use steno_core::{CallbackSink, Sink};
/// let sink = CallbackSink::new(|segment| println!("{}", segment.text))
///     .on_partial(|partial| eprint!("\r{} ...", partial.text));
/// ```
pub struct CallbackSink<F, P = fn(&Partial)> {
    callback: F,
    on_partial: Option<P>,
}

impl<F, P> std::fmt::Debug for CallbackSink<F, P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallbackSink").finish_non_exhaustive()
    }
}

impl<F: FnMut(&Segment) + Send> CallbackSink<F> {
    /// A sink calling `callback` for every segment.
    pub fn new(callback: F) -> Self {
        CallbackSink {
            callback,
            on_partial: None,
        }
    }
}

impl<F: FnMut(&Segment) + Send, P> CallbackSink<F, P> {
    /// Also calls `on_partial` for every partial hypothesis.
    pub fn on_partial<Q: FnMut(&Partial) + Send>(self, on_partial: Q) -> CallbackSink<F, Q> {
        CallbackSink {
            callback: self.callback,
            on_partial: Some(on_partial),
        }
    }
}

impl<F: FnMut(&Segment) + Send, P: FnMut(&Partial) + Send> Sink for CallbackSink<F, P> {
    fn write(&mut self, segment: &Segment) -> Result<()> {
        (self.callback)(segment);
        Ok(())
    }

    fn partial(&mut self, partial: &Partial) -> Result<()> {
        if let Some(on_partial) = &mut self.on_partial {
            on_partial(partial);
        }
        Ok(())
    }
}

/// Sends each segment over a std channel to another part of the application. If the receiver
/// is gone, the run stops with an error rather than transcribing for nobody.
#[derive(Debug)]
pub struct ChannelSink {
    sender: ChannelSender,
}

#[derive(Debug)]
enum ChannelSender {
    Segments(std::sync::mpsc::Sender<Segment>),
    Updates(std::sync::mpsc::Sender<Update>),
}

impl ChannelSink {
    /// A sink and the receiver its segments arrive on.
    pub fn new() -> (Self, std::sync::mpsc::Receiver<Segment>) {
        let (sender, receiver) = std::sync::mpsc::channel();
        (
            ChannelSink {
                sender: ChannelSender::Segments(sender),
            },
            receiver,
        )
    }

    /// A sink and the receiver its segments and partial hypotheses arrive on, in the order
    /// they were written.
    ///
    /// ```
    /// use steno_core::{ChannelSink, Partial, Segment, Sink, Update};
    /// let (mut sink, updates) = ChannelSink::with_partials();
    /// sink.partial(&Partial::new(0, 0.0, 0.5, "Hello", "")).unwrap();
    /// sink.write(&Segment::new(0, 0.0, 0.9, "Hello there.")).unwrap();
    /// assert!(matches!(updates.recv().unwrap(), Update::Partial(p) if p.text == "Hello"));
    /// assert!(matches!(updates.recv().unwrap(), Update::Final(s) if s.text == "Hello there."));
    /// ```
    pub fn with_partials() -> (Self, std::sync::mpsc::Receiver<Update>) {
        let (sender, receiver) = std::sync::mpsc::channel();
        (
            ChannelSink {
                sender: ChannelSender::Updates(sender),
            },
            receiver,
        )
    }
}

impl Sink for ChannelSink {
    fn write(&mut self, segment: &Segment) -> Result<()> {
        let sent = match &self.sender {
            ChannelSender::Segments(sender) => sender.send(segment.clone()).is_ok(),
            ChannelSender::Updates(sender) => sender.send(Update::Final(segment.clone())).is_ok(),
        };
        sent.then_some(())
            .ok_or_else(|| Error::sink("channel", "the receiver was dropped"))
    }

    fn partial(&mut self, partial: &Partial) -> Result<()> {
        match &self.sender {
            ChannelSender::Segments(_) => Ok(()),
            ChannelSender::Updates(sender) => sender
                .send(Update::Partial(partial.clone()))
                .map_err(|_| Error::sink("channel", "the receiver was dropped")),
        }
    }
}

/// Keeps every segment in memory; clones share the same list, so a test can keep one clone
/// and give the other to the pipeline.
#[derive(Debug, Clone, Default)]
pub struct CollectingSink {
    segments: Arc<Mutex<Vec<Segment>>>,
    updates: Arc<Mutex<Vec<Update>>>,
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

    /// The partial hypotheses written so far.
    pub fn partials(&self) -> Vec<Partial> {
        self.updates()
            .into_iter()
            .filter_map(|update| match update {
                Update::Partial(partial) => Some(partial),
                Update::Final(_) => None,
            })
            .collect()
    }

    /// Segments and partial hypotheses, in the order they were written.
    pub fn updates(&self) -> Vec<Update> {
        self.updates
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
        self.updates
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Update::Final(segment.clone()));
        Ok(())
    }

    fn partial(&mut self, partial: &Partial) -> Result<()> {
        self.updates
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Update::Partial(partial.clone()));
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        *self.finished.lock().unwrap_or_else(PoisonError::into_inner) = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
