//! The worker side of the protocol: the loop a worker process (`steno worker`) runs.

use std::io::{BufReader, BufWriter, Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Sender, channel};

use steno_core::{Chunk, Error, Overtaken, Result, Transcriber, TranscriberFactory};

use crate::protocol::{Message, PROTOCOL_VERSION, ProtocolError, read_message, write_message};

/// Serves the worker protocol on `input` and `output` (a worker's stdin and stdout) with
/// transcribers from `factory`, until the parent closes `input`.
///
/// The handshake comes first: the parent's `Hello` is read, one transcriber is created, and
/// `Ready` answers with this worker's protocol version, its transcriber's threads and its
/// model's identity ([`TranscriberFactory::name`]). Then each `Transcribe` is answered with
/// `Text`, or `Failed` when the transcriber fails on that chunk (the worker goes on). A
/// `TranscribePartial` goes to [`Transcriber::transcribe_partial`], which stops once a `Stop`
/// for it has come (`input` is read on a thread of its own meanwhile), answering `Stopped`.
///
/// Nothing but protocol frames may reach `output`: a worker writes its logs to stderr.
///
/// ```no_run
/// // A worker serving the scripted transcriber on its stdin and stdout.
/// let factory = steno_core::ScriptedTranscriber::new();
/// steno_process::serve(&factory, std::io::stdin(), std::io::stdout().lock())?;
/// # Ok::<(), steno_core::Error>(())
/// ```
///
/// # Errors
/// [`Error::Stage`] when the parent breaks the protocol (a malformed or unexpected frame) or a
/// frame cannot be written (the parent is gone); [`Error::Config`] when the parent speaks
/// another protocol version (after `Ready` has told it this worker's version);
/// [`Error::Model`] when the transcriber cannot be created. The end of `input` between frames
/// is the normal end, not an error.
pub fn serve(
    factory: &dyn TranscriberFactory,
    input: impl Read + Send,
    output: impl Write,
) -> Result<()> {
    let mut input = BufReader::new(input);
    let mut output = BufWriter::new(output);
    let parent_version = match read_message(&mut input) {
        Ok(Message::Hello { version }) => version,
        // The parent went away before the handshake: nothing to serve.
        Err(ProtocolError::Closed) => return Ok(()),
        Ok(other) => return Err(broken(format!("expected Hello, got {}", other.name()))),
        Err(error) => return Err(broken(error.to_string())),
    };
    let mut transcriber = factory.create()?;
    let ready = Message::Ready {
        version: PROTOCOL_VERSION,
        threads: u32::try_from(factory.threads_per_transcriber()).unwrap_or(u32::MAX),
        model: factory.name(),
    };
    write_message(&mut output, &ready).map_err(|e| cannot_answer(&e))?;
    if parent_version != PROTOCOL_VERSION {
        return Err(Error::Config(format!(
            "the parent speaks worker protocol version {parent_version}, this worker speaks \
             {PROTOCOL_VERSION}"
        )));
    }
    std::thread::scope(|scope| {
        let (requests, received) = channel();
        scope.spawn(move || read_requests(input, &requests));
        for request in received {
            let answer = match request {
                Request::Chunk(chunk) => {
                    tracing::debug!(chunk = chunk.index, "transcribing");
                    answer(transcriber.as_mut(), &chunk)
                }
                Request::Partial(chunk, overtaken) => {
                    tracing::debug!(chunk = chunk.index, "transcribing a partial chunk");
                    answer_partial(transcriber.as_mut(), &chunk, &overtaken)
                }
                Request::End(end) => return end,
            };
            write_message(&mut output, &answer).map_err(|e| cannot_answer(&e))?;
        }
        Ok(())
    })
}

/// What the reading thread hands the worker's loop.
enum Request {
    Chunk(Chunk),
    /// A partial chunk, and what tells that a `Stop` for it has come.
    Partial(Chunk, Overtaken),
    /// The parent ended the session (`Ok`) or broke the protocol.
    End(Result<()>),
}

/// Reads the parent's frames until the session ends. A `Stop` is acted on here, at once, so
/// that it reaches the partial chunk's decode while it runs; a `Stop` for any other chunk came
/// after its answer and is ignored.
fn read_requests(mut input: impl Read, requests: &Sender<Request>) {
    // The last partial chunk handed on, and the counter its `Overtaken` watches.
    let mut partial: Option<(usize, Arc<AtomicU64>)> = None;
    loop {
        let request = match read_message(&mut input) {
            Ok(Message::Transcribe(chunk)) => Request::Chunk(chunk),
            Ok(Message::TranscribePartial(chunk)) => {
                let stop = Arc::new(AtomicU64::new(0));
                partial = Some((chunk.index, Arc::clone(&stop)));
                Request::Partial(chunk, Overtaken::new(stop, 0))
            }
            Ok(Message::Stop { chunk }) => {
                if let Some((index, stop)) = &partial
                    && *index == chunk
                {
                    stop.store(1, Ordering::SeqCst);
                }
                continue;
            }
            Err(ProtocolError::Closed) => Request::End(Ok(())),
            Ok(other) => Request::End(Err(broken(format!(
                "expected Transcribe, got {}",
                other.name()
            )))),
            Err(error) => Request::End(Err(broken(error.to_string()))),
        };
        let end = matches!(request, Request::End(_));
        if requests.send(request).is_err() || end {
            return;
        }
    }
}

/// Transcribes `chunk` and puts the outcome in the message a worker answers with: `Text`, or
/// `Failed` when the transcriber fails (its error and causes as one line of text, since errors
/// cannot cross a pipe or a broker as values).
pub fn answer(transcriber: &mut dyn Transcriber, chunk: &Chunk) -> Message {
    match transcriber.transcribe(chunk) {
        Ok(transcription) => Message::Text {
            chunk: chunk.index,
            transcription,
        },
        Err(error) => failed(chunk.index, error),
    }
}

/// Transcribes partial `chunk` until `overtaken` says to stop, and puts the outcome in the
/// message a worker answers with: `Text`, `Stopped` when the decode stopped before its end, or
/// `Failed` (as [`answer`]).
pub fn answer_partial(
    transcriber: &mut dyn Transcriber,
    chunk: &Chunk,
    overtaken: &Overtaken,
) -> Message {
    match transcriber.transcribe_partial(chunk, overtaken) {
        Ok(Some(transcription)) => Message::Text {
            chunk: chunk.index,
            transcription,
        },
        Ok(None) => Message::Stopped { chunk: chunk.index },
        Err(error) => failed(chunk.index, error),
    }
}

/// The `Failed` message for `error` on chunk `index`.
fn failed(index: usize, error: Error) -> Message {
    match error {
        Error::Transcribe {
            problem, source, ..
        } => Message::Failed {
            chunk: index,
            problem: match source {
                Some(cause) => format!("{problem}: {cause}"),
                None => problem,
            },
        },
        other => Message::Failed {
            chunk: index,
            problem: other.chain(),
        },
    }
}

fn broken(problem: String) -> Error {
    Error::Stage {
        stage: "worker",
        problem: format!("the parent broke the worker protocol: {problem}"),
    }
}

fn cannot_answer(error: &ProtocolError) -> Error {
    Error::Stage {
        stage: "worker",
        problem: format!("cannot answer the parent (is it gone?): {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::MAX_FRAME_LEN;
    use std::io::Cursor;
    use std::time::Duration;
    use steno_core::{Chunk, ScriptedTranscriber};

    fn frames(messages: &[Message]) -> Vec<u8> {
        let mut wire = Vec::new();
        for message in messages {
            write_message(&mut wire, message).unwrap();
        }
        wire
    }

    fn answers(wire: Vec<u8>) -> Vec<Message> {
        let mut input = Cursor::new(wire);
        let mut out = Vec::new();
        loop {
            match read_message(&mut input) {
                Ok(message) => out.push(message),
                Err(ProtocolError::Closed) => return out,
                Err(error) => panic!("{error}"),
            }
        }
    }

    fn chunk(index: usize) -> Message {
        Message::Transcribe(Chunk::new(index, index as u64 * 16_000, vec![0.0; 8_000]))
    }

    #[test]
    fn a_session_is_a_handshake_then_one_answer_per_chunk() {
        let input = frames(&[
            Message::Hello {
                version: PROTOCOL_VERSION,
            },
            chunk(0),
            chunk(1),
            chunk(2),
        ]);
        let mut output = Vec::new();
        let factory = ScriptedTranscriber::new().with_failure_on_chunk(1);
        serve(&factory, Cursor::new(input), &mut output).unwrap();
        assert_eq!(
            answers(output),
            [
                Message::Ready {
                    version: PROTOCOL_VERSION,
                    threads: 1,
                    model: "scripted".into()
                },
                Message::Text {
                    chunk: 0,
                    transcription: "chunk 0 at 0.00-0.50".to_owned().into(),
                },
                Message::Failed {
                    chunk: 1,
                    problem: "scripted failure".into()
                },
                Message::Text {
                    chunk: 2,
                    transcription: "chunk 2 at 2.00-2.50".to_owned().into(),
                },
            ]
        );
    }

    #[test]
    fn a_partial_chunk_stops_when_told_and_a_late_stop_is_ignored() {
        // A minute of decoding per second of audio: chunk 1 (1 s) ends only if it is stopped;
        // chunk 2 (10 ms) takes 0.6 s, with a stop for chunk 1 arriving meanwhile.
        let partial = |index: usize, samples: usize| {
            Message::TranscribePartial(Chunk::new(index, 0, vec![0.0; samples]))
        };
        let input = frames(&[
            Message::Hello {
                version: PROTOCOL_VERSION,
            },
            partial(1, 16_000),
            Message::Stop { chunk: 1 },
            partial(2, 160),
            Message::Stop { chunk: 1 },
            Message::Transcribe(Chunk::new(3, 0, vec![0.0; 160])),
        ]);
        let mut output = Vec::new();
        let factory =
            ScriptedTranscriber::new().with_cost_per_audio_second(Duration::from_secs(60));
        serve(&factory, Cursor::new(input), &mut output).unwrap();
        let answers = answers(output);
        assert_eq!(answers[1], Message::Stopped { chunk: 1 });
        assert_eq!(
            answers[2],
            Message::Text {
                chunk: 2,
                transcription: "chunk 2 at 0.00-0.01".to_owned().into(),
            }
        );
        assert!(matches!(answers[3], Message::Text { chunk: 3, .. }));
        assert_eq!(answers.len(), 4);
    }

    #[test]
    fn a_parent_that_leaves_at_once_is_not_an_error() {
        let mut output = Vec::new();
        serve(
            &ScriptedTranscriber::new(),
            Cursor::new(Vec::new()),
            &mut output,
        )
        .unwrap();
        assert!(output.is_empty());
    }

    #[test]
    fn another_version_is_told_ours_then_refused() {
        let input = frames(&[Message::Hello { version: 99 }, chunk(0)]);
        let mut output = Vec::new();
        let err = serve(&ScriptedTranscriber::new(), Cursor::new(input), &mut output)
            .unwrap_err()
            .to_string();
        assert!(err.contains("version 99"), "{err}");
        assert!(matches!(
            answers(output)[..],
            [Message::Ready {
                version: PROTOCOL_VERSION,
                ..
            }]
        ));
    }

    #[test]
    fn garbage_from_the_parent_is_an_error_not_a_panic() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"garbage\n".to_vec(), "outside 1..="),
            (frames(&[chunk(0)]), "expected Hello, got Transcribe"),
            (
                [
                    frames(&[Message::Hello {
                        version: PROTOCOL_VERSION,
                    }]),
                    (MAX_FRAME_LEN as u32 + 1).to_le_bytes().to_vec(),
                ]
                .concat(),
                "outside 1..=",
            ),
            (
                [
                    frames(&[Message::Hello {
                        version: PROTOCOL_VERSION,
                    }]),
                    vec![20, 0, 0, 0, 3, 1],
                ]
                .concat(),
                "ended inside a frame",
            ),
        ];
        for (input, expected) in cases {
            let err = serve(&ScriptedTranscriber::new(), Cursor::new(input), Vec::new())
                .unwrap_err()
                .to_string();
            assert!(err.contains("broke the worker protocol"), "{err}");
            assert!(err.contains(expected), "{expected}: {err}");
        }
    }
}
