//! WhisperLive's WebSocket protocol at `/`, so its clients (the `whisper-live` Python client,
//! its browser extensions, OBS plugins) work against steno unchanged.
//!
//! The protocol, as WhisperLive's client (0.10) speaks it: the client's first message is a
//! JSON object of options with its `uid`; the server answers `SERVER_READY` naming its
//! backend, or the `WAIT` status (minutes until a place frees) when full, or `ERROR`. Then
//! binary float32 16 kHz mono frames come in, and `segments` messages go out: the last
//! `send_last_n_segments` finished segments (`completed: true`) and the utterance being
//! spoken (`completed: false`), times as strings of seconds. `END_OF_AUDIO` (a binary
//! message) ends the audio; `DISCONNECT` tells the client its time is up. Every message
//! carries the client's `uid`: the client ignores any other. A client that asks for
//! `word_timestamps` gets each finished segment's `words` (`word`, `start`, `end` as strings,
//! `probability`), from a server started with `--word-timestamps`.
//!
//! steno reports its backend as `faster_whisper`: WhisperLive's client keeps the finished
//! segments (its transcript, its SRT file) only from a server that says so, and steno's
//! segments behave as faster-whisper's do (finished ones never change).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocketUpgrade, close_code};
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use futures_util::stream::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use steno_core::{Segment, Update};
use tokio::time::timeout;

use super::feed::{AudioFormat, feed};
use super::session::{
    AudioEnd, Ending, Reader, SendFailure, Writer, close, read_audio, send, until_all_sent,
};
use super::{MAX_MESSAGE_BYTES, Server, auth, page};

/// The backend steno names in `SERVER_READY` (see the module docs for why).
const BACKEND: &str = "faster_whisper";

/// Segments sent with each update when the client does not say.
const DEFAULT_LAST_N: usize = 10;

/// `/`: a WebSocket upgrade speaks WhisperLive; a plain GET gets the captions page.
pub(crate) async fn root(
    State(server): State<Arc<Server>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    headers: HeaderMap,
    Query(query): Query<TokenQuery>,
) -> Response {
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(_) if !headers.contains_key(header::UPGRADE) => {
            return page::index().await.into_response();
        }
        Err(rejection) => return rejection.into_response(),
    };
    if let Some(refused) = auth::refusal(&server, &headers, query.token.as_deref()) {
        return refused;
    }
    upgrade
        .max_message_size(MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| async move {
            let (writer, mut reader) = socket.split();
            let mut client = Client {
                writer,
                peer,
                uid: None,
                send_timeout: server.limits.send_timeout,
                sending: false,
            };
            match serve(&server, &mut client, &mut reader).await {
                Ok(()) => {}
                // A client that left ends its own session: there is nobody to tell.
                Err(Ending::Unreachable(failure)) => {
                    if matches!(failure, SendFailure::TooSlow(_)) {
                        tracing::warn!("WhisperLive client {}: {failure}", client.name());
                    }
                    return;
                }
                Err(Ending::Refused(reason)) => {
                    tracing::warn!("WhisperLive client {}: {reason}", client.name());
                    let _ = client.status("ERROR", json!(reason)).await;
                }
            }
            // A normal close: WhisperLive's client does not reconnect after one.
            let frame = CloseFrame {
                code: close_code::NORMAL,
                reason: "".into(),
            };
            let (drain, limit) = (client.sending, client.send_timeout);
            close(&mut client.writer, &mut reader, frame, drain, limit).await;
        })
}

/// The token of a WebSocket URL (`?token=`).
#[derive(Debug, Deserialize)]
pub(crate) struct TokenQuery {
    token: Option<String>,
}

/// The options message WhisperLive's client sends first (the fields steno reads; the rest,
/// such as `model` or `use_vad`, steno decides itself). What steno cannot do (translation
/// into another language, speaker labels, hotwords) is refused when asked for, not ignored.
#[derive(Debug, Deserialize)]
struct Options {
    uid: String,
    #[serde(default)]
    language: Option<String>,
    #[serde(default)]
    task: Option<String>,
    #[serde(default)]
    send_last_n_segments: Option<usize>,
    #[serde(default)]
    initial_prompt: Option<String>,
    #[serde(default)]
    word_timestamps: Option<bool>,
    #[serde(default)]
    enable_translation: Option<bool>,
    #[serde(default)]
    enable_diarization: Option<bool>,
    #[serde(default)]
    hotwords: Option<String>,
}

/// A connected client's writing half and the uid it gave.
struct Client {
    writer: Writer,
    peer: SocketAddr,
    uid: Option<String>,
    send_timeout: std::time::Duration,
    /// From `SERVER_READY` until the client ends its audio: it may be sending some.
    sending: bool,
}

impl Client {
    /// Who the client is, for the log: its uid once it gave one, and its address.
    fn name(&self) -> String {
        format!(
            "{} from {}",
            self.uid.as_deref().unwrap_or("(no uid yet)"),
            self.peer
        )
    }

    /// Sends one JSON message with the client's uid.
    async fn send(&mut self, mut message: Value) -> Result<(), SendFailure> {
        message["uid"] = json!(self.uid);
        send(&mut self.writer, message.to_string(), self.send_timeout).await
    }

    async fn status(&mut self, status: &str, message: Value) -> Result<(), SendFailure> {
        self.send(json!({"status": status, "message": message}))
            .await
    }
}

/// One client's session, from its options to its last segment.
async fn serve(
    server: &Arc<Server>,
    client: &mut Client,
    reader: &mut Reader,
) -> Result<(), Ending> {
    let options = read_options(server, client, reader).await?;
    let Some(_admission) = server.admit() else {
        let minutes = server.wait_estimate().as_secs_f64() / 60.0;
        return Ok(client.status("WAIT", json!(minutes)).await?);
    };
    let (feed, source) = feed(
        format!("whisperlive {}", options.uid),
        AudioFormat::WHISPERLIVE,
    )?;
    let (sink, mut updates) = steno_tokio::update_stream(64);
    let running = server
        .start(Box::new(source), Box::new(sink), true, true)
        .map_err(|e| format!("{e:#}"))?;
    client
        .send(json!({"message": "SERVER_READY", "backend": BACKEND}))
        .await?;
    client.sending = true;
    let last_n = options
        .send_last_n_segments
        .unwrap_or(DEFAULT_LAST_N)
        .clamp(1, 100);
    let mut transcript = Transcript::new(last_n, options.word_timestamps == Some(true));
    let reading = read_audio(server, reader, feed, AudioFormat::WHISPERLIVE, true);
    let writing = async {
        while let Some(update) = updates.next().await {
            for segments in transcript.show(update) {
                client.send(json!({ "segments": segments })).await?;
            }
        }
        Ok(())
    };
    let end = until_all_sent(reading, writing).await?;
    if end == AudioEnd::Left {
        return Ok(());
    }
    client.sending = end != AudioEnd::Sent;
    for segments in transcript.end() {
        client.send(json!({ "segments": segments })).await?;
    }
    let report = running.finish().await.map_err(|e| format!("{e:#}"))?;
    tracing::debug!(
        "WhisperLive client {}: {:.1} s of audio, {} segment(s)",
        client.name(),
        report.audio_seconds,
        transcript.finished.len()
    );
    if matches!(end, AudioEnd::TimeUp | AudioEnd::Stopping) {
        client.send(json!({"message": "DISCONNECT"})).await?;
    }
    Ok(())
}

/// Reads and checks the first message: the client's options.
async fn read_options(
    server: &Server,
    client: &mut Client,
    reader: &mut Reader,
) -> Result<Options, String> {
    let first = timeout(server.limits.idle, reader.next())
        .await
        .map_err(|_| format!("no options for {} s", server.limits.idle.as_secs()))?;
    let text = match first {
        Some(Ok(Message::Text(text))) => text.to_string(),
        Some(Ok(Message::Binary(bytes))) => String::from_utf8(bytes.to_vec())
            .map_err(|_| "the first message must be the JSON options, not audio".to_owned())?,
        _ => return Err("the connection closed before the options".into()),
    };
    let options: Options = serde_json::from_str(&text).map_err(|e| {
        format!("the first message must be a JSON object of options with a `uid`: {e}")
    })?;
    client.uid = Some(options.uid.clone());
    if let Some(refusal) = options
        .language
        .as_deref()
        .and_then(|language| server.other_language(language))
    {
        return Err(refusal);
    }
    if let Some(prompt) = options.initial_prompt.as_deref()
        && !prompt.is_empty()
        && server.options.prompt.as_deref() != Some(prompt)
    {
        return Err(server.other_prompt());
    }
    if options.enable_translation == Some(true) {
        return Err(
            "enable_translation: steno translates only into English, as Whisper does: \
                    send the task `translate` to a `steno serve --translate` server"
                .into(),
        );
    }
    if options.enable_diarization == Some(true) {
        return Err("enable_diarization: steno does not tell speakers apart".into());
    }
    if options
        .hotwords
        .as_deref()
        .is_some_and(|words| !words.is_empty())
    {
        return Err(
            "hotwords: this server decodes every stream with one prompt (`steno \
                    serve --prompt`), which can name the words to prefer"
                .into(),
        );
    }
    if options.word_timestamps == Some(true)
        && let Some(refusal) = server.untimed_words("word_timestamps")
    {
        return Err(refusal);
    }
    // The server's task is its own (`--translate`); a client's default `transcribe` is let
    // through either way, a `translate` only where the server translates.
    if let Some(task) = options.task.as_deref()
        && task != "transcribe"
        && task != server.task()
    {
        return Err(format!(
            "task `{task}`: this server transcribes; start it with `steno serve --translate` \
             (and a multilingual model) to translate"
        ));
    }
    Ok(options)
}

/// What a client is shown — its finished segments and the utterance being spoken — and the
/// `segments` messages that show it.
///
/// WhisperLive's client keeps the last incomplete segment it was sent and, at the end, adds
/// it to its transcript (and SRT file) unless its text is the last finished segment's: a
/// WhisperLive server finishes a segment only after sending the same text incomplete. steno's
/// final text may differ from its last partial, or come without one, so each final is first
/// sent incomplete, then finished. And an utterance can end without words after a partial
/// had some (the emitter writes no empty final): then the partial would be the client's last
/// incomplete segment for good, so [`end`](Self::end) shows the last final incomplete again.
struct Transcript {
    finished: VecDeque<Segment>,
    last_n: usize,
    /// A partial is shown, and no final has come after it.
    partial_shown: bool,
    /// The client asked for finals' words.
    words: bool,
}

impl Transcript {
    fn new(last_n: usize, words: bool) -> Self {
        Transcript {
            finished: VecDeque::new(),
            last_n,
            partial_shown: false,
            words,
        }
    }

    /// The `segments` messages that end the stream (none or one): when the last thing shown
    /// was a partial whose utterance ended without words, the last final, incomplete, so the
    /// client's last incomplete segment is that final and not the stale partial. (Before any
    /// final there is nothing to show instead: WhisperLive's client cannot take an empty
    /// `segments` list.)
    fn end(&mut self) -> Vec<Vec<Value>> {
        let stale = std::mem::take(&mut self.partial_shown);
        match self.finished.back() {
            Some(last) if stale => vec![self.finished_and(self.final_segment(last, false))],
            _ => Vec::new(),
        }
    }

    /// The `segments` messages that show `update`, in order (none, one or two). The emitter
    /// writes no final or partial without words, so every update here has some.
    fn show(&mut self, update: Update) -> Vec<Vec<Value>> {
        match update {
            Update::Partial(partial) => {
                self.partial_shown = true;
                vec![self.finished_and(segment(partial.start, partial.end, &partial.text, false))]
            }
            Update::Final(last) => {
                self.partial_shown = false;
                let speaking = self.finished_and(self.final_segment(&last, false));
                if self.finished.len() == self.last_n {
                    self.finished.pop_front();
                }
                self.finished.push_back(last);
                vec![speaking, self.finished_and(None)]
            }
            // A kind of update this server does not know yet.
            _ => Vec::new(),
        }
    }

    /// The finished segments, then `speaking` if any.
    fn finished_and(&self, speaking: impl Into<Option<Value>>) -> Vec<Value> {
        self.finished
            .iter()
            .map(|s| self.final_segment(s, true))
            .chain(speaking.into())
            .collect()
    }

    /// A final's segment, with its words when the client asked for them, as WhisperLive
    /// writes them: times as strings with three decimals, probabilities to four.
    fn final_segment(&self, last: &Segment, completed: bool) -> Value {
        let mut value = segment(last.start, last.end, &last.text, completed);
        if let Some(words) = last.words.as_ref().filter(|_| self.words) {
            value["words"] = words
                .iter()
                .map(|word| {
                    json!({
                        "word": word.word,
                        "start": format!("{:.3}", word.start),
                        "end": format!("{:.3}", word.end),
                        "probability": (f64::from(word.p) * 1e4).round() / 1e4,
                    })
                })
                .collect();
        }
        value
    }
}

/// One segment as WhisperLive formats it: times as strings with three decimals.
fn segment(start: f64, end: f64, text: &str, completed: bool) -> Value {
    json!({
        "start": format!("{start:.3}"),
        "end": format!("{end:.3}"),
        "text": text,
        "completed": completed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use steno_core::Partial;

    #[test]
    fn a_final_is_sent_incomplete_then_finished() {
        let mut transcript = Transcript::new(2, false);
        let partial = |chunk: usize, text: &str| {
            Update::Partial(Partial::new(
                chunk,
                chunk as f64,
                chunk as f64 + 0.25,
                text,
                "",
            ))
        };
        let last = |chunk: usize, text: &str| {
            Update::Final(Segment::new(chunk, chunk as f64, chunk as f64 + 0.5, text))
        };
        let done = |chunk: u32, text: &str, completed: bool| {
            let start = f64::from(chunk);
            segment(start, start + 0.5, text, completed)
        };
        assert_eq!(
            transcript.show(partial(0, "One")),
            [vec![segment(0.0, 0.25, "One", false)]]
        );
        assert_eq!(
            transcript.show(last(0, "One.")),
            [vec![done(0, "One.", false)], vec![done(0, "One.", true)]]
        );
        // A final without a partial, and only the last two finished segments are sent.
        transcript.show(last(1, "Two."));
        assert_eq!(
            transcript.show(last(2, "Three.")),
            [
                vec![
                    done(0, "One.", true),
                    done(1, "Two.", true),
                    done(2, "Three.", false)
                ],
                vec![done(1, "Two.", true), done(2, "Three.", true)]
            ]
        );
        // Nothing is stale: the stream ends as it is.
        assert!(transcript.end().is_empty());
        // The last utterance showed words in a partial, then ended without any: the last
        // final is shown incomplete again, replacing the partial as the client's last
        // incomplete segment.
        transcript.show(partial(3, "Fou"));
        assert_eq!(
            transcript.end(),
            [vec![
                done(1, "Two.", true),
                done(2, "Three.", true),
                done(2, "Three.", false)
            ]]
        );
        assert!(transcript.end().is_empty(), "once");
    }

    #[test]
    fn a_stale_partial_before_any_final_has_nothing_to_replace_it() {
        let mut transcript = Transcript::new(2, false);
        transcript.show(Update::Partial(Partial::new(0, 0.0, 0.25, "Hm", "")));
        assert!(transcript.end().is_empty());
    }

    #[test]
    fn finals_carry_their_words_when_the_client_asked() {
        let mut last = Segment::new(0, 1.0, 2.0, "Hi there.");
        last.words = Some(vec![
            steno_core::TimedWord {
                word: "Hi".into(),
                start: 1.0,
                end: 1.25,
                p: 0.987_66,
            },
            steno_core::TimedWord {
                word: "there.".into(),
                start: 1.25,
                end: 1.9,
                p: 0.5,
            },
        ]);
        let words = json!([
            {"word": "Hi", "start": "1.000", "end": "1.250", "probability": 0.9877},
            {"word": "there.", "start": "1.250", "end": "1.900", "probability": 0.5},
        ]);
        let mut asked = Transcript::new(2, true);
        let shown = asked.show(Update::Final(last.clone()));
        for (message, completed) in shown.iter().zip([false, true]) {
            assert_eq!(message[0]["words"], words, "{message:?}");
            assert_eq!(message[0]["completed"], completed);
        }
        let mut not_asked = Transcript::new(2, false);
        let shown = not_asked.show(Update::Final(last));
        assert!(
            shown.iter().all(|m| m[0].get("words").is_none()),
            "{shown:?}"
        );
    }
}
