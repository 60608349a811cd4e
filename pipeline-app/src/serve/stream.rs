//! `/v1/stream`: steno's own streaming protocol. Binary frames of audio in; out, one text
//! message per event, each exactly a line of `--format jsonl` (`"type":"final"`, and
//! `"type":"partial"` with `interim=true`), then `{"type":"report", ...}` with the run
//! report, then a normal close. A text message `END_OF_AUDIO` ends the audio (closing the
//! socket instead abandons the stream). A problem is one `{"type":"error","message":...}`
//! before the close.
//!
//! The URL's query describes the audio: `encoding=s16le|f32` (default s16le), `rate` (Hz,
//! default 16000), `channels` (default 1), plus `interim=true` and `token`. Everything is
//! checked, and a place admitted, before the upgrade: a bad URL is HTTP 400, a full server
//! HTTP 503 with `Retry-After`.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::ws::{CloseFrame, WebSocketUpgrade, close_code};
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use futures_util::stream::StreamExt;
use serde::Deserialize;
use serde_json::json;
use steno_core::{Format, FormatSink};
use tokio::sync::mpsc;

use super::feed::{AudioFormat, Encoding, feed};
use super::session::{
    AudioEnd, Ending, Reader, SendFailure, Writer, close, read_audio, send, until_all_sent,
};
use super::{MAX_MESSAGE_BYTES, Server, auth, openai};

/// Event lines queued for a client before its pipeline waits for it.
const EVENT_QUEUE: usize = 64;

/// The query of a `/v1/stream` URL.
#[derive(Debug, Deserialize)]
pub(crate) struct StreamQuery {
    token: Option<String>,
    encoding: Option<String>,
    rate: Option<u32>,
    channels: Option<usize>,
    #[serde(default)]
    interim: bool,
}

pub(crate) async fn upgrade(
    State(server): State<Arc<Server>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    upgrade: WebSocketUpgrade,
    headers: HeaderMap,
    query: Result<Query<StreamQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Query(query) = match query {
        Ok(query) => query,
        Err(rejection) => return bad_request(&rejection.body_text()),
    };
    if let Some(refused) = auth::refusal(&server, &headers, query.token.as_deref()) {
        return refused;
    }
    let encoding = match query.encoding.as_deref() {
        None | Some("s16le") => Encoding::S16le,
        Some("f32") => Encoding::F32,
        Some(other) => return bad_request(&format!("encoding `{other}`: use s16le or f32")),
    };
    let format = match AudioFormat::new(
        encoding,
        query.rate.unwrap_or(steno_core::SAMPLE_RATE),
        query.channels.unwrap_or(1),
    ) {
        Ok(format) => format,
        Err(problem) => return bad_request(&problem),
    };
    let Some(admission) = server.admit() else {
        return server.busy();
    };
    upgrade
        .max_message_size(MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| async move {
            let (mut writer, mut reader) = socket.split();
            let limit = server.limits.send_timeout;
            let outcome = serve(&server, &mut writer, &mut reader, format, query.interim).await;
            drop(admission);
            // The audio is over unless the client was still sending it (see `close`).
            let (code, drain) = match outcome {
                Ok(end) => (close_code::NORMAL, end != AudioEnd::Sent),
                Err(Ending::Unreachable(failure)) => {
                    if matches!(failure, SendFailure::TooSlow(_)) {
                        tracing::warn!("/v1/stream from {peer}: {failure}");
                    }
                    return;
                }
                Err(Ending::Refused(problem)) => {
                    tracing::warn!("/v1/stream from {peer}: {problem}");
                    let event = json!({"type": "error", "message": problem});
                    let _ = send(&mut writer, event.to_string(), limit).await;
                    (close_code::POLICY, true)
                }
            };
            let frame = CloseFrame {
                code,
                reason: "".into(),
            };
            close(&mut writer, &mut reader, frame, drain, limit).await;
        })
}

/// One stream: audio in, events out, until the run's report; how its audio ended.
async fn serve(
    server: &Arc<Server>,
    writer: &mut Writer,
    reader: &mut Reader,
    format: AudioFormat,
    interim: bool,
) -> Result<AudioEnd, Ending> {
    let (feed, source) = feed("/v1/stream".into(), format)?;
    let (lines, mut events) = mpsc::channel(EVENT_QUEUE);
    let sink = FormatSink::new(
        Format::Jsonl,
        LineSender {
            pending: Vec::new(),
            lines,
        },
        "the client",
    );
    let running = server
        .start(Box::new(source), Box::new(sink), true, interim)
        .map_err(|e| format!("{e:#}"))?;
    let reading = read_audio(server, reader, feed, format, false);
    let writing = async {
        while let Some(line) = events.recv().await {
            send(writer, line, server.limits.send_timeout).await?;
        }
        Ok(())
    };
    let end = until_all_sent(reading, writing).await?;
    if end == AudioEnd::Left {
        return Ok(end);
    }
    let report = running.finish().await.map_err(|e| format!("{e:#}"))?;
    let mut event = serde_json::to_value(&report).map_err(|e| e.to_string())?;
    event["type"] = json!("report");
    send(writer, event.to_string(), server.limits.send_timeout).await?;
    Ok(end)
}

/// HTTP 400 with the problem, in the OpenAI error shape every endpoint uses.
fn bad_request(problem: &str) -> Response {
    openai::refuse(StatusCode::BAD_REQUEST, problem, "invalid_request")
}

/// Hands each JSON line the sink writes to the connection as one message. It runs on the
/// pipeline's blocking pool, where waiting for a slow client is allowed: the queue is bounded.
struct LineSender {
    pending: Vec<u8>,
    lines: mpsc::Sender<String>,
}

impl Write for LineSender {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.pending.extend_from_slice(bytes);
        while let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line[..end]).into_owned();
            self.lines
                .blocking_send(line)
                .map_err(|_| std::io::Error::other("the client is gone"))?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
