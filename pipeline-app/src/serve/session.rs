//! What every streaming protocol shares: reading a client's audio into its pipeline, and
//! sending with a deadline.
//!
//! A connection is split in two halves that run at once: this reader feeds the pipeline
//! (waiting when it is behind, which slows the client down through TCP), while the protocol's
//! writer sends what the pipeline writes. Were one loop to do both, a pipeline waiting for
//! its output to be sent and a connection waiting for the pipeline to take audio would wait
//! for each other forever.

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use std::time::Duration;

use tokio::time::{Instant, timeout, timeout_at};

use super::Server;
use super::feed::{AudioFormat, Feed};

/// The text (or, for WhisperLive, binary) message that ends a client's audio.
pub(crate) const END_OF_AUDIO: &str = "END_OF_AUDIO";

/// How a client's audio ended, when it did not end with an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AudioEnd {
    /// The client sent END_OF_AUDIO.
    Sent,
    /// The stream reached `--max-stream-secs`.
    TimeUp,
    /// The server is stopping (SIGINT/SIGTERM).
    Stopping,
    /// The pipeline stopped taking audio (it ended early; its error comes with its report).
    PipelineEnded,
    /// The client closed the connection: nobody is left to read the text.
    Left,
}

/// Feeds the client's audio to the pipeline until it ends; dropping `feed` on return ends the
/// pipeline's input. `binary_end`: a binary message `END_OF_AUDIO` also ends it (WhisperLive
/// sends it so; for other clients those 12 bytes are audio). An `Err` is why the client's
/// input was refused.
pub(crate) async fn read_audio(
    server: &Server,
    reader: &mut Reader,
    feed: Feed,
    format: AudioFormat,
    binary_end: bool,
) -> Result<AudioEnd, String> {
    let deadline = Instant::now() + server.limits.max_stream;
    let mut stopped = server.stopped.clone();
    loop {
        let idle = Instant::now() + server.limits.idle;
        let message = tokio::select! {
            message = timeout_at(idle, reader.next()) => message.map_err(|_| {
                format!("no audio for {} s: the stream is closed", server.limits.idle.as_secs())
            })?,
            () = tokio::time::sleep_until(deadline) => return Ok(AudioEnd::TimeUp),
            _ = stopped.changed() => return Ok(AudioEnd::Stopping),
        };
        let samples = match message {
            Some(Ok(Message::Binary(bytes)))
                if binary_end && bytes.as_ref() == END_OF_AUDIO.as_bytes() =>
            {
                return Ok(AudioEnd::Sent);
            }
            Some(Ok(Message::Binary(bytes))) => format.decode(&bytes)?,
            Some(Ok(Message::Text(text))) if text.as_str() == END_OF_AUDIO => {
                return Ok(AudioEnd::Sent);
            }
            Some(Ok(Message::Text(text))) => {
                return Err(format!(
                    "a text message (`{}`) where audio was expected: audio comes as binary \
                     frames, and {END_OF_AUDIO} ends it",
                    text.chars().take(40).collect::<String>()
                ));
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(Message::Close(_)) | Err(_)) | None => return Ok(AudioEnd::Left),
        };
        if feed.send(samples).await.is_err() {
            return Ok(AudioEnd::PipelineEnded);
        }
    }
}

/// Runs a stream's two halves at once until all its text is out: `reading` feeds the audio
/// ([`read_audio`]), `writing` sends what the pipeline writes until the run ends. When the
/// audio is over first, every remaining message still goes out; when the run ends first (it
/// failed), reading stops and the pipeline's report says why ([`AudioEnd::PipelineEnded`]).
/// [`AudioEnd::Left`] comes back at once: nobody is left to write to, and the caller's
/// dropped pipeline stops.
pub(crate) async fn until_all_sent(
    reading: impl Future<Output = Result<AudioEnd, String>>,
    writing: impl Future<Output = Result<(), SendFailure>>,
) -> Result<AudioEnd, Ending> {
    tokio::pin!(reading, writing);
    tokio::select! {
        end = &mut reading => {
            let end = end?;
            if end != AudioEnd::Left {
                writing.await?;
            }
            Ok(end)
        }
        written = &mut writing => {
            written?;
            Ok(AudioEnd::PipelineEnded)
        }
    }
}

/// The writing half of a client's connection.
pub(crate) type Writer = SplitSink<WebSocket, Message>;

/// The reading half of a client's connection.
pub(crate) type Reader = SplitStream<WebSocket>;

/// Ends a connection: sends `frame` within `limit`; then, when the client may still be sending
/// audio (`drain`), reads and drops what it sends until its own close, for at most `limit` in
/// all. A connection dropped with the client's messages unread is reset by the kernel, and a
/// reset can destroy the error event and the close that the client has not read yet. A client
/// with nothing more to send (it ended its audio, or never began) is let go at once: WhisperLive's
/// own client, told to wait, closes its socket from one thread while another waits on it, and
/// only the server's end of the connection wakes that one (else it sleeps 10 s).
pub(crate) async fn close(
    writer: &mut Writer,
    reader: &mut Reader,
    frame: CloseFrame,
    drain: bool,
    limit: Duration,
) {
    let deadline = Instant::now() + limit;
    let sent = timeout_at(deadline, writer.send(Message::Close(Some(frame)))).await;
    if !drain || !matches!(sent, Ok(Ok(()))) {
        return;
    }
    let _ = timeout_at(deadline, async {
        while let Some(Ok(message)) = reader.next().await {
            if matches!(message, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

/// Sends one text message within `limit` (`--send-timeout-secs`); `Err` says why the client
/// is given up.
pub(crate) async fn send(
    writer: &mut Writer,
    text: String,
    limit: Duration,
) -> Result<(), SendFailure> {
    match timeout(limit, writer.send(Message::Text(text.into()))).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(SendFailure::Gone),
        Err(_) => Err(SendFailure::TooSlow(limit)),
    }
}

/// Why a session ended before its last message.
#[derive(Debug)]
pub(crate) enum Ending {
    /// The client sent what the server refuses (or its pipeline failed): told, then closed.
    Refused(String),
    /// The client cannot be told anything any more.
    Unreachable(SendFailure),
}

impl From<String> for Ending {
    fn from(problem: String) -> Self {
        Ending::Refused(problem)
    }
}

impl From<SendFailure> for Ending {
    fn from(failure: SendFailure) -> Self {
        Ending::Unreachable(failure)
    }
}

/// Why a message did not reach the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SendFailure {
    /// The connection is closed or broken.
    Gone,
    /// The client read nothing for this long: it cannot keep up.
    TooSlow(Duration),
}

impl std::fmt::Display for SendFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendFailure::Gone => f.write_str("the client's connection closed"),
            SendFailure::TooSlow(limit) => write!(
                f,
                "the client read nothing for {} s and could not keep up: disconnected",
                limit.as_secs()
            ),
        }
    }
}
