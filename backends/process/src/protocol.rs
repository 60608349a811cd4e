//! The worker protocol: small, versioned, length-prefixed binary frames over a worker's stdin
//! (parent to worker) and stdout (worker to parent).
//!
//! Every frame is a little-endian `u32` body length `L` (1 ..= [`MAX_FRAME_LEN`]) followed by
//! `L` bytes of body; the body's first byte is the message type, the rest its payload. All
//! integers are little-endian; text is UTF-8 and fills the rest of its frame.
//!
//! | type | message       | direction       | payload                                                        |
//! |------|---------------|-----------------|----------------------------------------------------------------|
//! | 1    | [`Message::Hello`]      | parent → worker | magic `STNW`, `u16` version                              |
//! | 2    | [`Message::Ready`]      | worker → parent | magic `STNW`, `u16` version, `u32` threads, model name   |
//! | 3    | [`Message::Transcribe`] | parent → worker | `u64` chunk index, `u64` first sample, `u32` sample count `n`, `n` x `f32` (16 kHz mono), `u32` utterance count `m`, `m` x (`u64` index, `u64` first sample, `u64` end, `u64` end of speech) |
//! | 4    | [`Message::Text`]       | worker → parent | `u64` chunk index, `u32` full-window retries, `u32` timed piece count `k`, `k` x (`u64` start, `u64` end, `u32` length `l`, `l` bytes of text, confidence, words), confidence, words, `u8` language code length `c` (0: none), `c` bytes of code and `f32` probability when `c` > 0, `u32` temperature fallbacks, `u32` restarts cut, `u32` word probability count `p`, `p` x `f32`, text |
//! | 5    | [`Message::Failed`]     | worker → parent | `u64` chunk index, what went wrong                       |
//! | 6    | [`Message::TranscribePartial`] | parent → worker | as `Transcribe`                           |
//! | 7    | [`Message::Stop`]       | parent → worker | `u64` chunk index                                        |
//! | 8    | [`Message::Stopped`]    | worker → parent | `u64` chunk index                                        |
//!
//! In `Text`, a confidence is a `u8` flag (0: none), then when it is 1 `f32` mean
//! log-probability, `f32` no-speech probability and `u32` token count; words are a `u32`
//! count `w`, then `w` x (`u64` start, `u64` end, `f32` probability, `u32` length `l`, `l`
//! bytes of text).
//!
//! A session: the parent sends `Hello`; the worker, its model loaded, answers `Ready` with its
//! own version and the identity of its model (the parent refuses a worker of another version or
//! another model). Then, one at a time, the parent sends `Transcribe` and the worker answers
//! `Text` or `Failed` for that chunk. A partial chunk of interim results in real time goes as
//! `TranscribePartial` instead: while it is decoded the parent may send `Stop` for it (newer
//! audio has overtaken it), and the worker answers `Stopped` if the decode had not finished, or
//! its `Text` if it had; the parent ignores a `Stop` that came too late for the worker's answer.
//! The parent ends the session by closing the worker's
//! stdin; the worker then exits. `Hello` and `Ready` keep this layout in every version, so two
//! versions can always tell each other apart.
//!
//! Reading checks every length before allocating: a length over the limit, an unknown type, a
//! payload whose size disagrees with its counts, bad UTF-8 or a frame cut short is a
//! [`ProtocolError`], never a panic, and nothing larger than [`MAX_FRAME_LEN`] is ever
//! allocated.

use std::io::{self, Read, Write};

use steno_core::{
    Chunk, Confidence, DetectedLanguage, MAX_CHUNK_LIMIT, SAMPLE_RATE, TimedText, Transcription,
    Utterance, Word,
};

/// The most words one text may carry: far more than a 30 s window holds.
const MAX_WORDS: usize = 4096;

/// Appends `words` as `Payload::words` reads them.
fn put_words(body: &mut Vec<u8>, words: &[Word]) -> Result<(), ProtocolError> {
    within_limit("Text", words.len(), "words", MAX_WORDS)?;
    body.extend_from_slice(&(words.len() as u32).to_le_bytes());
    for word in words {
        body.extend_from_slice(&word.start.to_le_bytes());
        body.extend_from_slice(&word.end.to_le_bytes());
        body.extend_from_slice(&word.probability.to_le_bytes());
        body.extend_from_slice(&(word.text.len() as u32).to_le_bytes());
        body.extend_from_slice(word.text.as_bytes());
    }
    Ok(())
}

/// Appends `confidence` as `Payload::confidence` reads it.
fn put_confidence(body: &mut Vec<u8>, confidence: Option<Confidence>) {
    match confidence {
        Some(c) => {
            body.push(1);
            body.extend_from_slice(&c.avg_logprob.to_le_bytes());
            body.extend_from_slice(&c.no_speech_prob.to_le_bytes());
            body.extend_from_slice(&c.tokens.to_le_bytes());
        }
        None => body.push(0),
    }
}

/// The protocol version this build speaks.
///
/// Version 2 added the full-window retries to `Text`; version 3 the utterances of a packed
/// window to `Transcribe` and its timed text to `Text`; version 4 the detected language,
/// confidence, words and temperature fallbacks to `Text`; version 5 `TranscribePartial`,
/// `Stop` and `Stopped`; version 6 the restarts cut to `Text`; version 7 the word probabilities
/// to `Text`.
pub const PROTOCOL_VERSION: u16 = 7;

/// The most utterances one packed window, and timed pieces one answer, may hold: a 30 s
/// window of the shortest utterances has a few hundred.
pub const MAX_PARTS: usize = 1024;

/// Bytes of one utterance in `Transcribe`: index, first sample, end, end of speech.
const UTTERANCE_LEN: usize = 4 * 8;

/// The magic bytes opening `Hello` and `Ready`: a steno worker, not some other program.
pub const MAGIC: [u8; 4] = *b"STNW";

/// The longest chunk a frame can carry: Whisper's 30 s window, in samples.
pub const MAX_CHUNK_SAMPLES: usize = MAX_CHUNK_LIMIT.as_secs() as usize * SAMPLE_RATE as usize;

/// The largest frame body, in bytes: a 30 s chunk of `f32` samples plus a margin for its
/// header. Text frames are far smaller.
pub const MAX_FRAME_LEN: usize = 2 * 1024 * 1024;

const HELLO: u8 = 1;
const READY: u8 = 2;
const TRANSCRIBE: u8 = 3;
const TEXT: u8 = 4;
const FAILED: u8 = 5;
const TRANSCRIBE_PARTIAL: u8 = 6;
const STOP: u8 = 7;
const STOPPED: u8 = 8;

/// Size of a `Transcribe` payload before its samples: index, first sample, count.
const CHUNK_HEADER_LEN: usize = 8 + 8 + 4;

// A full-length packed window must fit in a frame.
const _: () = assert!(
    1 + CHUNK_HEADER_LEN + 4 * MAX_CHUNK_SAMPLES + 4 + MAX_PARTS * UTTERANCE_LEN <= MAX_FRAME_LEN
);

/// One message of the worker protocol. See the [module docs](self) for the wire layout.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// Parent to worker, first: the parent's protocol version.
    Hello {
        /// The version the parent speaks.
        version: u16,
    },
    /// Worker to parent, in answer to `Hello`, once its model is loaded.
    Ready {
        /// The version the worker speaks.
        version: u16,
        /// CPU threads the worker's transcriber uses.
        threads: u32,
        /// The identity of the worker's model (its path, or `scripted`).
        model: String,
    },
    /// Parent to worker: transcribe this chunk.
    Transcribe(Chunk),
    /// Worker to parent: what the transcriber made of a chunk (its text is empty when the
    /// chunk held no speech).
    Text {
        /// Index of the chunk.
        chunk: usize,
        /// The transcriber's answer, whole.
        transcription: Transcription,
    },
    /// Worker to parent: the transcriber failed on a chunk (the worker itself is fine).
    Failed {
        /// Index of the chunk.
        chunk: usize,
        /// What went wrong.
        problem: String,
    },
    /// Parent to worker: transcribe this partial chunk (interim results in real time), and
    /// stop if a [`Stop`](Message::Stop) for it comes first.
    TranscribePartial(Chunk),
    /// Parent to worker: newer audio has overtaken the partial chunk being decoded; stop.
    Stop {
        /// Index of the chunk.
        chunk: usize,
    },
    /// Worker to parent: the partial chunk's decode stopped before its end; no text.
    Stopped {
        /// Index of the chunk.
        chunk: usize,
    },
}

impl Message {
    /// The message's name, for errors.
    pub fn name(&self) -> &'static str {
        match self {
            Message::Hello { .. } => "Hello",
            Message::Ready { .. } => "Ready",
            Message::Transcribe(_) => "Transcribe",
            Message::Text { .. } => "Text",
            Message::Failed { .. } => "Failed",
            Message::TranscribePartial(_) => "TranscribePartial",
            Message::Stop { .. } => "Stop",
            Message::Stopped { .. } => "Stopped",
        }
    }
}

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The other side closed the stream between two frames (the parent ended the session, or
    /// the worker exited).
    #[error("the stream ended")]
    Closed,
    /// The stream ended inside a frame.
    #[error("the stream ended inside a frame ({got} of {expected} bytes)")]
    Truncated {
        /// Bytes the frame (with its length prefix) should have had.
        expected: usize,
        /// Bytes that came.
        got: usize,
    },
    /// A frame's length is zero or over [`MAX_FRAME_LEN`].
    #[error("frame length {0} is outside 1..={MAX_FRAME_LEN} bytes")]
    BadLength(u64),
    /// A frame's type byte names no message.
    #[error("unknown message type {0}")]
    UnknownType(u8),
    /// A frame's payload does not match its message's layout.
    #[error("malformed {message} frame: {problem}")]
    Malformed {
        /// Which message.
        message: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// Reading or writing failed.
    #[error("{0}")]
    Io(#[from] io::Error),
}

impl ProtocolError {
    /// Whether the error means the other side went away (its process ended or closed the
    /// pipe), as opposed to sending something that is not the protocol.
    pub fn is_disconnect(&self) -> bool {
        match self {
            ProtocolError::Closed | ProtocolError::Truncated { .. } => true,
            ProtocolError::Io(error) => matches!(
                error.kind(),
                io::ErrorKind::BrokenPipe
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::UnexpectedEof
            ),
            _ => false,
        }
    }
}

fn malformed(message: &'static str, problem: impl Into<String>) -> ProtocolError {
    ProtocolError::Malformed {
        message,
        problem: problem.into(),
    }
}

/// `count` `things` in a `message`, refused when over `limit`.
fn within_limit(
    message: &'static str,
    count: usize,
    things: &str,
    limit: usize,
) -> Result<(), ProtocolError> {
    if count > limit {
        return Err(malformed(
            message,
            format!("{count} {things}, over the limit of {limit}"),
        ));
    }
    Ok(())
}

/// Reads one frame and decodes its message.
///
/// # Errors
/// [`ProtocolError::Closed`] when the stream ends before the frame starts; any other
/// [`ProtocolError`] when it ends inside the frame, or the frame is oversize, of an unknown
/// type or malformed.
pub fn read_message(input: &mut impl Read) -> Result<Message, ProtocolError> {
    let body = read_frame(input)?;
    decode(&body)
}

/// Encodes `message` as one frame, writes it and flushes.
///
/// # Errors
/// [`ProtocolError::Malformed`] when the message does not fit in a frame (a chunk over
/// [`MAX_CHUNK_SAMPLES`]), [`ProtocolError::Io`] when writing fails.
pub fn write_message(output: &mut impl Write, message: &Message) -> Result<(), ProtocolError> {
    let body = encode(message)?;
    write_body(output, &body)
}

/// Writes a `Transcribe` frame for `chunk` without copying it into a [`Message`] first.
pub(crate) fn write_chunk(output: &mut impl Write, chunk: &Chunk) -> Result<(), ProtocolError> {
    let mut body = Vec::new();
    encode_chunk(TRANSCRIBE, chunk, &mut body)?;
    write_body(output, &body)
}

/// Writes a `TranscribePartial` frame for `chunk` without copying it into a [`Message`] first.
pub(crate) fn write_partial_chunk(
    output: &mut impl Write,
    chunk: &Chunk,
) -> Result<(), ProtocolError> {
    let mut body = Vec::new();
    encode_chunk(TRANSCRIBE_PARTIAL, chunk, &mut body)?;
    write_body(output, &body)
}

fn write_body(output: &mut impl Write, body: &[u8]) -> Result<(), ProtocolError> {
    let len = u32::try_from(body.len()).map_err(|_| ProtocolError::BadLength(body.len() as u64))?;
    output.write_all(&len.to_le_bytes())?;
    output.write_all(body)?;
    output.flush()?;
    Ok(())
}

/// Reads a frame body; its length is checked before anything is allocated.
fn read_frame(input: &mut impl Read) -> Result<Vec<u8>, ProtocolError> {
    let mut prefix = [0u8; 4];
    let got = read_full(input, &mut prefix)?;
    if got == 0 {
        return Err(ProtocolError::Closed);
    }
    if got < prefix.len() {
        return Err(ProtocolError::Truncated {
            expected: prefix.len(),
            got,
        });
    }
    let len = u32::from_le_bytes(prefix);
    let len = usize::try_from(len).map_err(|_| ProtocolError::BadLength(u64::from(len)))?;
    if len == 0 || len > MAX_FRAME_LEN {
        return Err(ProtocolError::BadLength(len as u64));
    }
    let mut body = vec![0u8; len];
    let got = read_full(input, &mut body)?;
    if got < len {
        return Err(ProtocolError::Truncated {
            expected: prefix.len() + len,
            got: prefix.len() + got,
        });
    }
    Ok(body)
}

/// Fills `buffer` unless the stream ends first; returns how many bytes came.
fn read_full(input: &mut impl Read, buffer: &mut [u8]) -> Result<usize, ProtocolError> {
    let mut filled = 0;
    while filled < buffer.len() {
        match input.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error.into()),
        }
    }
    Ok(filled)
}

fn encode(message: &Message) -> Result<Vec<u8>, ProtocolError> {
    let mut body = Vec::new();
    match message {
        Message::Hello { version } => {
            body.push(HELLO);
            body.extend_from_slice(&MAGIC);
            body.extend_from_slice(&version.to_le_bytes());
        }
        Message::Ready {
            version,
            threads,
            model,
        } => {
            body.push(READY);
            body.extend_from_slice(&MAGIC);
            body.extend_from_slice(&version.to_le_bytes());
            body.extend_from_slice(&threads.to_le_bytes());
            body.extend_from_slice(model.as_bytes());
        }
        Message::Transcribe(chunk) => encode_chunk(TRANSCRIBE, chunk, &mut body)?,
        Message::TranscribePartial(chunk) => encode_chunk(TRANSCRIBE_PARTIAL, chunk, &mut body)?,
        Message::Stop { chunk } => {
            body.push(STOP);
            body.extend_from_slice(&(*chunk as u64).to_le_bytes());
        }
        Message::Stopped { chunk } => {
            body.push(STOPPED);
            body.extend_from_slice(&(*chunk as u64).to_le_bytes());
        }
        Message::Text {
            chunk,
            transcription:
                Transcription {
                    text,
                    full_window_retries,
                    restarts_cut,
                    timed,
                    language,
                    confidence,
                    words,
                    temperature_fallbacks,
                    word_probabilities,
                },
        } => {
            within_limit("Text", timed.len(), "timed pieces", MAX_PARTS)?;
            let probabilities = word_probabilities.len();
            within_limit("Text", probabilities, "word probabilities", MAX_WORDS)?;
            body.push(TEXT);
            body.extend_from_slice(&(*chunk as u64).to_le_bytes());
            body.extend_from_slice(&full_window_retries.to_le_bytes());
            body.extend_from_slice(&(timed.len() as u32).to_le_bytes());
            for piece in timed {
                body.extend_from_slice(&piece.start.to_le_bytes());
                body.extend_from_slice(&piece.end.to_le_bytes());
                // A piece is a few words; a frame holds at most MAX_FRAME_LEN anyway.
                body.extend_from_slice(&(piece.text.len() as u32).to_le_bytes());
                body.extend_from_slice(piece.text.as_bytes());
                put_confidence(&mut body, piece.confidence);
                put_words(&mut body, &piece.words)?;
            }
            put_confidence(&mut body, *confidence);
            put_words(&mut body, words)?;
            // A language code is a few bytes: its length fits one.
            match language {
                Some(found) if found.code.len() <= usize::from(u8::MAX) => {
                    body.push(found.code.len() as u8);
                    body.extend_from_slice(found.code.as_bytes());
                    body.extend_from_slice(&found.probability.to_le_bytes());
                }
                _ => body.push(0),
            }
            body.extend_from_slice(&temperature_fallbacks.to_le_bytes());
            body.extend_from_slice(&restarts_cut.to_le_bytes());
            body.extend_from_slice(&(word_probabilities.len() as u32).to_le_bytes());
            for probability in word_probabilities {
                body.extend_from_slice(&probability.to_le_bytes());
            }
            body.extend_from_slice(text.as_bytes());
        }
        Message::Failed { chunk, problem } => {
            body.push(FAILED);
            body.extend_from_slice(&(*chunk as u64).to_le_bytes());
            body.extend_from_slice(problem.as_bytes());
        }
    }
    if body.len() > MAX_FRAME_LEN {
        return Err(ProtocolError::BadLength(body.len() as u64));
    }
    Ok(body)
}

/// Appends a chunk's frame body: the type byte `kind` (`Transcribe` or `TranscribePartial`),
/// then the chunk.
fn encode_chunk(kind: u8, chunk: &Chunk, body: &mut Vec<u8>) -> Result<(), ProtocolError> {
    if chunk.samples.len() > MAX_CHUNK_SAMPLES {
        return Err(malformed(
            "Transcribe",
            format!(
                "chunk {} has {} samples, over the limit of {MAX_CHUNK_SAMPLES} (30 s)",
                chunk.index,
                chunk.samples.len()
            ),
        ));
    }
    if chunk.utterances.len() > MAX_PARTS {
        return Err(malformed(
            "Transcribe",
            format!(
                "chunk {} packs {} utterances, over the limit of {MAX_PARTS}",
                chunk.index,
                chunk.utterances.len()
            ),
        ));
    }
    body.reserve(
        1 + CHUNK_HEADER_LEN + 4 * chunk.samples.len() + 4 + UTTERANCE_LEN * chunk.utterances.len(),
    );
    body.push(kind);
    body.extend_from_slice(&(chunk.index as u64).to_le_bytes());
    body.extend_from_slice(&chunk.start_sample.to_le_bytes());
    // Checked above: at most MAX_CHUNK_SAMPLES.
    body.extend_from_slice(&(chunk.samples.len() as u32).to_le_bytes());
    for sample in &chunk.samples {
        body.extend_from_slice(&sample.to_le_bytes());
    }
    // Checked above: at most MAX_PARTS.
    body.extend_from_slice(&(chunk.utterances.len() as u32).to_le_bytes());
    for utterance in &chunk.utterances {
        body.extend_from_slice(&(utterance.index as u64).to_le_bytes());
        body.extend_from_slice(&utterance.start_sample.to_le_bytes());
        body.extend_from_slice(&utterance.end_sample.to_le_bytes());
        body.extend_from_slice(&utterance.speech_end_sample.to_le_bytes());
    }
    Ok(())
}

/// A cursor over a frame's payload that names the message in its errors.
struct Payload<'a> {
    message: &'static str,
    bytes: &'a [u8],
}

impl<'a> Payload<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], ProtocolError> {
        if self.bytes.len() < n {
            return Err(malformed(
                self.message,
                format!("too short for its {what} ({} bytes left)", self.bytes.len()),
            ));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], ProtocolError> {
        let bytes = self.take(N, what)?;
        let mut array = [0u8; N];
        array.copy_from_slice(bytes);
        Ok(array)
    }

    fn u16(&mut self, what: &str) -> Result<u16, ProtocolError> {
        self.array(what).map(u16::from_le_bytes)
    }

    fn u32(&mut self, what: &str) -> Result<u32, ProtocolError> {
        self.array(what).map(u32::from_le_bytes)
    }

    fn u64(&mut self, what: &str) -> Result<u64, ProtocolError> {
        self.array(what).map(u64::from_le_bytes)
    }

    /// A confidence: a flag byte, then (if 1) the mean log-probability and no-speech
    /// probability (f32) and the token count (u32).
    fn confidence(&mut self) -> Result<Option<Confidence>, ProtocolError> {
        if self.array::<1>("confidence flag")?[0] == 0 {
            return Ok(None);
        }
        Ok(Some(Confidence {
            avg_logprob: f32::from_le_bytes(self.array("mean log-probability")?),
            no_speech_prob: f32::from_le_bytes(self.array("no-speech probability")?),
            tokens: self.u32("token count")?,
        }))
    }

    /// Timed words: a count (u32), then each word's start and end (u64 samples), probability
    /// (f32) and text (u32 length, UTF-8).
    fn words(&mut self) -> Result<Vec<Word>, ProtocolError> {
        let count = self.u32("word count")? as usize;
        within_limit(self.message, count, "words", MAX_WORDS)?;
        let mut words = Vec::with_capacity(count);
        for _ in 0..count {
            let start = self.u64("word start")?;
            let end = self.u64("word end")?;
            let probability = f32::from_le_bytes(self.array("word probability")?);
            let len = self.u32("word length")? as usize;
            let text = self.text(len, "word text")?;
            words.push(Word {
                text,
                start,
                end,
                probability,
            });
        }
        Ok(words)
    }

    fn index(&mut self) -> Result<usize, ProtocolError> {
        let index = self.u64("chunk index")?;
        usize::try_from(index)
            .map_err(|_| malformed(self.message, format!("chunk index {index} is out of range")))
    }

    fn magic(&mut self) -> Result<(), ProtocolError> {
        let magic = self.array::<4>("magic")?;
        if magic != MAGIC {
            return Err(malformed(
                self.message,
                format!("bad magic {magic:02x?} (expected {MAGIC:02x?}, \"STNW\")"),
            ));
        }
        Ok(())
    }

    /// The next `n` bytes as UTF-8 text, named `what` in errors.
    fn text(&mut self, n: usize, what: &str) -> Result<String, ProtocolError> {
        let bytes = self.take(n, what)?;
        String::from_utf8(bytes.to_vec())
            .map_err(|e| malformed(self.message, format!("its {what} is not UTF-8 ({e})")))
    }

    fn rest_as_text(mut self) -> Result<String, ProtocolError> {
        self.text(self.bytes.len(), "text")
    }

    fn end(self) -> Result<(), ProtocolError> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(malformed(
                self.message,
                format!("{} unexpected bytes at its end", self.bytes.len()),
            ))
        }
    }
}

fn decode(body: &[u8]) -> Result<Message, ProtocolError> {
    let Some((&kind, bytes)) = body.split_first() else {
        return Err(ProtocolError::BadLength(0));
    };
    let message = match kind {
        HELLO => "Hello",
        READY => "Ready",
        TRANSCRIBE => "Transcribe",
        TEXT => "Text",
        FAILED => "Failed",
        TRANSCRIBE_PARTIAL => "TranscribePartial",
        STOP => "Stop",
        STOPPED => "Stopped",
        other => return Err(ProtocolError::UnknownType(other)),
    };
    let mut payload = Payload { message, bytes };
    match kind {
        HELLO => {
            payload.magic()?;
            let version = payload.u16("version")?;
            payload.end()?;
            Ok(Message::Hello { version })
        }
        READY => {
            payload.magic()?;
            let version = payload.u16("version")?;
            let threads = payload.u32("thread count")?;
            let model = payload.rest_as_text()?;
            Ok(Message::Ready {
                version,
                threads,
                model,
            })
        }
        TRANSCRIBE | TRANSCRIBE_PARTIAL => {
            let index = payload.index()?;
            let start_sample = payload.u64("first sample")?;
            let count = payload.u32("sample count")? as usize;
            if count > MAX_CHUNK_SAMPLES {
                return Err(malformed(
                    message,
                    format!("{count} samples is over the limit of {MAX_CHUNK_SAMPLES} (30 s)"),
                ));
            }
            if payload.bytes.len() < 4 * count + 4 {
                return Err(malformed(
                    message,
                    format!(
                        "{count} samples need {} bytes, the frame holds {}",
                        4 * count,
                        payload.bytes.len()
                    ),
                ));
            }
            let samples = payload
                .take(4 * count, "samples")?
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            let parts = payload.u32("utterance count")? as usize;
            if parts > MAX_PARTS || payload.bytes.len() != parts * UTTERANCE_LEN {
                return Err(malformed(
                    message,
                    format!(
                        "{parts} utterances (at most {MAX_PARTS}) need {} bytes, the frame \
                         holds {}",
                        parts * UTTERANCE_LEN,
                        payload.bytes.len()
                    ),
                ));
            }
            let mut chunk = Chunk::new(index, start_sample, samples);
            for _ in 0..parts {
                chunk.utterances.push(Utterance {
                    index: payload.index()?,
                    start_sample: payload.u64("utterance start")?,
                    end_sample: payload.u64("utterance end")?,
                    speech_end_sample: payload.u64("utterance end of speech")?,
                });
            }
            payload.end()?;
            Ok(if kind == TRANSCRIBE {
                Message::Transcribe(chunk)
            } else {
                Message::TranscribePartial(chunk)
            })
        }
        STOP | STOPPED => {
            let chunk = payload.index()?;
            payload.end()?;
            Ok(if kind == STOP {
                Message::Stop { chunk }
            } else {
                Message::Stopped { chunk }
            })
        }
        TEXT => {
            let chunk = payload.index()?;
            let full_window_retries = payload.u32("full-window retries")?;
            let pieces = payload.u32("timed piece count")? as usize;
            within_limit(message, pieces, "timed pieces", MAX_PARTS)?;
            let mut timed = Vec::with_capacity(pieces);
            for _ in 0..pieces {
                let start = payload.u64("piece start")?;
                let end = payload.u64("piece end")?;
                let len = payload.u32("piece length")? as usize;
                let text = payload.text(len, "piece text")?;
                let confidence = payload.confidence()?;
                let words = payload.words()?;
                timed.push(TimedText {
                    start,
                    end,
                    text,
                    confidence,
                    words,
                });
            }
            let confidence = payload.confidence()?;
            let words = payload.words()?;
            let code_len = usize::from(payload.array::<1>("language length")?[0]);
            let language = if code_len == 0 {
                None
            } else {
                let code = payload.text(code_len, "language code")?;
                let probability = f32::from_le_bytes(payload.array("language probability")?);
                Some(DetectedLanguage { code, probability })
            };
            let temperature_fallbacks = payload.u32("temperature fallbacks")?;
            let restarts_cut = payload.u32("restarts cut")?;
            let count = payload.u32("word probability count")? as usize;
            within_limit(message, count, "word probabilities", MAX_WORDS)?;
            let word_probabilities = (0..count)
                .map(|_| Ok(f32::from_le_bytes(payload.array("word probability")?)))
                .collect::<Result<Vec<f32>, ProtocolError>>()?;
            let text = payload.rest_as_text()?;
            Ok(Message::Text {
                chunk,
                transcription: Transcription {
                    text,
                    full_window_retries,
                    restarts_cut,
                    timed,
                    language,
                    confidence,
                    words,
                    temperature_fallbacks,
                    word_probabilities,
                },
            })
        }
        _ => {
            let chunk = payload.index()?;
            let problem = payload.rest_as_text()?;
            Ok(Message::Failed { chunk, problem })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn frame(body: &[u8]) -> Vec<u8> {
        let mut bytes = (body.len() as u32).to_le_bytes().to_vec();
        bytes.extend_from_slice(body);
        bytes
    }

    fn round_trip(message: Message) {
        let mut wire = Vec::new();
        write_message(&mut wire, &message).unwrap();
        let mut input = Cursor::new(wire);
        assert_eq!(read_message(&mut input).unwrap(), message);
        assert!(matches!(
            read_message(&mut input),
            Err(ProtocolError::Closed)
        ));
    }

    #[test]
    fn every_message_survives_the_wire() {
        round_trip(Message::Hello { version: 1 });
        round_trip(Message::Ready {
            version: 1,
            threads: 2,
            model: "models/ggml-tiny.en.bin".into(),
        });
        round_trip(Message::Transcribe(Chunk::new(
            7,
            123_456,
            vec![0.0, -1.0, 0.5, f32::MIN_POSITIVE],
        )));
        round_trip(Message::Transcribe(Chunk::new(
            0,
            0,
            vec![0.25; MAX_CHUNK_SAMPLES],
        )));
        round_trip(Message::Text {
            chunk: 3,
            transcription: Transcription {
                text: "Héllo, wörld.".into(),
                full_window_retries: 1,
                timed: vec![
                    TimedText {
                        start: 0,
                        end: 16_000,
                        text: "Héllo,".into(),
                        confidence: Some(Confidence {
                            avg_logprob: -0.25,
                            no_speech_prob: 0.125,
                            tokens: 3,
                        }),
                        words: vec![Word {
                            text: "Héllo,".into(),
                            start: 800,
                            end: 15_000,
                            probability: 0.75,
                        }],
                    },
                    TimedText {
                        start: 20_000,
                        end: 40_000,
                        text: "wörld.".into(),
                        confidence: None,
                        words: Vec::new(),
                    },
                ],
                language: Some(DetectedLanguage {
                    code: "de".into(),
                    probability: 0.875,
                }),
                confidence: Some(Confidence {
                    avg_logprob: -0.5,
                    no_speech_prob: 0.25,
                    tokens: 5,
                }),
                words: Vec::new(),
                temperature_fallbacks: 3,
                restarts_cut: 1,
                word_probabilities: vec![0.5, 0.875],
            },
        });
        round_trip(Message::Text {
            chunk: 4,
            transcription: Transcription {
                text: String::new(),
                full_window_retries: 0,
                restarts_cut: 0,
                timed: Vec::new(),
                language: None,
                confidence: None,
                words: vec![Word {
                    text: "Hi.".into(),
                    start: 0,
                    end: 4_000,
                    probability: 0.5,
                }],
                temperature_fallbacks: 0,
                word_probabilities: Vec::new(),
            },
        });
        round_trip(Message::Failed {
            chunk: 5,
            problem: "scripted failure".into(),
        });
        round_trip(Message::TranscribePartial(Chunk::new(
            8,
            16_000,
            vec![0.5, -0.5],
        )));
        round_trip(Message::Stop { chunk: 8 });
        round_trip(Message::Stopped { chunk: 8 });
    }

    #[test]
    fn the_wire_layout_is_the_documented_one() {
        let mut wire = Vec::new();
        write_message(&mut wire, &Message::Hello { version: 1 }).unwrap();
        assert_eq!(wire, [7, 0, 0, 0, 1, b'S', b'T', b'N', b'W', 1, 0]);
        wire.clear();
        let chunk = Chunk::new(2, 3, vec![1.0]);
        write_message(&mut wire, &Message::Transcribe(chunk)).unwrap();
        let mut expected = vec![29, 0, 0, 0, 3];
        expected.extend_from_slice(&2u64.to_le_bytes());
        expected.extend_from_slice(&3u64.to_le_bytes());
        expected.extend_from_slice(&1u32.to_le_bytes());
        expected.extend_from_slice(&1.0f32.to_le_bytes());
        expected.extend_from_slice(&0u32.to_le_bytes());
        assert_eq!(wire, expected);
        wire.clear();
        write_message(&mut wire, &Message::Stop { chunk: 2 }).unwrap();
        let mut expected = vec![9, 0, 0, 0, 7];
        expected.extend_from_slice(&2u64.to_le_bytes());
        assert_eq!(wire, expected);
    }

    #[test]
    fn text_is_garbage_not_a_frame() {
        // "garbage\n" read as a length prefix is 1.6 GB: refused before allocating.
        let err = read_message(&mut Cursor::new(b"garbage\n".to_vec())).unwrap_err();
        assert!(
            matches!(err, ProtocolError::BadLength(1_651_663_207)),
            "{err}"
        );
        assert!(!err.is_disconnect());
    }

    #[test]
    fn oversize_and_empty_frames_are_refused_before_allocating() {
        let oversize = (MAX_FRAME_LEN as u32 + 1).to_le_bytes();
        let err = read_message(&mut Cursor::new(oversize.to_vec())).unwrap_err();
        assert!(matches!(err, ProtocolError::BadLength(n) if n == MAX_FRAME_LEN as u64 + 1));
        let err = read_message(&mut Cursor::new(u32::MAX.to_le_bytes().to_vec())).unwrap_err();
        assert!(matches!(err, ProtocolError::BadLength(_)), "{err}");
        let err = read_message(&mut Cursor::new(vec![0, 0, 0, 0])).unwrap_err();
        assert!(matches!(err, ProtocolError::BadLength(0)), "{err}");
    }

    #[test]
    fn truncated_frames_are_disconnects() {
        let err = read_message(&mut Cursor::new(vec![7, 0])).unwrap_err();
        assert!(
            matches!(
                err,
                ProtocolError::Truncated {
                    expected: 4,
                    got: 2
                }
            ),
            "{err}"
        );
        assert!(err.is_disconnect());
        let mut wire = Vec::new();
        write_message(&mut wire, &Message::Hello { version: 1 }).unwrap();
        wire.truncate(wire.len() - 1);
        let err = read_message(&mut Cursor::new(wire)).unwrap_err();
        assert!(
            matches!(
                err,
                ProtocolError::Truncated {
                    expected: 11,
                    got: 10
                }
            ),
            "{err}"
        );
        assert!(
            read_message(&mut Cursor::new(Vec::new()))
                .unwrap_err()
                .is_disconnect()
        );
    }

    #[test]
    fn malformed_payloads_are_named() {
        let cases: &[(&[u8], &str)] = &[
            (&[9, 1, 2], "unknown message type 9"),
            (
                &[7, 1, 0],
                "malformed Stop frame: too short for its chunk index",
            ),
            (
                &[8, 1, 0, 0, 0, 0, 0, 0, 0, 0],
                "malformed Stopped frame: 1 unexpected bytes",
            ),
            (b"\x01STNX\x01\x00", "bad magic"),
            (b"\x01STNW\x01", "too short for its version"),
            (b"\x01STNW\x01\x00\x00", "1 unexpected bytes"),
            (
                &[
                    4, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                    0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff,
                ],
                "not UTF-8",
            ),
            (
                &[
                    4, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                    0, 0, 0, 0, 0, 0,
                ],
                "too short for its word probability count",
            ),
            (
                &[
                    4, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                    0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0,
                ],
                "too short for its word probability",
            ),
            (
                &[
                    4, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                    0, 0, 0, 0, 0, 0xff, 0xff, 0, 0,
                ],
                "65535 word probabilities, over the limit of 4096",
            ),
            (
                &[
                    4, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                    0, 0,
                ],
                "too short for its restarts cut",
            ),
            (
                &[
                    4, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0,
                ],
                "too short for its temperature fallbacks",
            ),
            (
                &[4, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0],
                "too short for its mean log-probability",
            ),
            (
                &[
                    4, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0,
                ],
                "too short for its word start",
            ),
            (
                &[
                    4, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, b'd',
                ],
                "too short for its language code",
            ),
            (
                &[
                    4, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, b'd',
                    b'e', 0,
                ],
                "too short for its language probability",
            ),
            (
                &[4, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
                "too short for its timed piece count",
            ),
            (
                &[4, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0],
                "too short for its piece start",
            ),
            (
                &[4, 1, 0, 0, 0, 0, 0, 0, 0, 1],
                "too short for its full-window retries",
            ),
            (&[5, 1, 0], "too short for its chunk index"),
        ];
        for (body, expected) in cases {
            let err = read_message(&mut Cursor::new(frame(body))).unwrap_err();
            assert!(err.to_string().contains(expected), "{body:?}: {err}");
            assert!(!err.is_disconnect());
        }
    }

    #[test]
    fn sample_counts_must_match_the_frame() {
        let header = |count: u32| {
            let mut body = vec![TRANSCRIBE];
            body.extend_from_slice(&0u64.to_le_bytes());
            body.extend_from_slice(&0u64.to_le_bytes());
            body.extend_from_slice(&count.to_le_bytes());
            body
        };
        // Claims a billion samples in a tiny frame: refused without allocating them.
        let err = read_message(&mut Cursor::new(frame(&header(1_000_000_000)))).unwrap_err();
        assert!(err.to_string().contains("over the limit"), "{err}");
        let mut body = header(2);
        body.extend_from_slice(&[0; 6]);
        let err = read_message(&mut Cursor::new(frame(&body))).unwrap_err();
        assert!(
            err.to_string()
                .contains("2 samples need 8 bytes, the frame holds 6"),
            "{err}"
        );
        // Claims an utterance the frame does not hold.
        let mut body = header(2);
        body.extend_from_slice(&[0; 8]);
        body.extend_from_slice(&1u32.to_le_bytes());
        let err = read_message(&mut Cursor::new(frame(&body))).unwrap_err();
        assert!(
            err.to_string()
                .contains("1 utterances (at most 1024) need 32 bytes, the frame holds 0"),
            "{err}"
        );
    }

    #[test]
    fn chunks_over_30_seconds_are_not_sent() {
        let chunk = Chunk::new(1, 0, vec![0.0; MAX_CHUNK_SAMPLES + 1]);
        let mut wire = Vec::new();
        let err = write_message(&mut wire, &Message::Transcribe(chunk)).unwrap_err();
        assert!(err.to_string().contains("over the limit"), "{err}");
        assert!(wire.is_empty(), "nothing is written");
    }
}
