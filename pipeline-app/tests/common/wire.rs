//! Speaking `steno serve`'s protocols directly, to send what no well-behaved client would: a
//! WebSocket to a path, its JSON messages, plain HTTP requests and uploads, WhisperLive's first
//! message.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};

use super::fixture;
use super::server::Server;

pub(crate) type Socket = WebSocket<TcpStream>;

/// A WebSocket to `path` of `server`, or the HTTP status that refused it.
pub(crate) fn connect(server: &Server, path: &str) -> Result<Socket, u16> {
    let stream = TcpStream::connect(&server.address).expect("the server accepts");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("a timeout can be set");
    match tungstenite::client(format!("ws://{}{path}", server.address), stream) {
        Ok((socket, _)) => Ok(socket),
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(response))) => {
            Err(response.status().as_u16())
        }
        Err(e) => panic!("{path}: the handshake failed: {e}"),
    }
}

/// The JSON of the next text message, or `None` when the socket closes first.
pub(crate) fn next_json(socket: &mut Socket) -> Option<Value> {
    loop {
        match socket.read() {
            Ok(Message::Text(text)) => {
                return Some(serde_json::from_str(&text).expect("messages are JSON"));
            }
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

/// Every JSON message until the socket closes.
pub(crate) fn all_json(socket: &mut Socket) -> Vec<Value> {
    std::iter::from_fn(|| next_json(socket)).collect()
}

/// The 16 kHz mono s16le samples of a fixture, as bytes.
pub(crate) fn s16le(name: &str) -> Vec<u8> {
    let mut reader = hound::WavReader::open(fixture(name)).expect("the fixture is a WAV");
    assert_eq!(reader.spec().sample_rate, 16_000);
    reader
        .samples::<i16>()
        .flat_map(|s| s.expect("samples decode").to_le_bytes())
        .collect()
}

/// Streams `audio` (s16le) to `/v1/stream` in 100 ms frames as fast as the server takes
/// them, ends it, and returns every event.
pub(crate) fn stream_file(server: &Server, audio: &[u8], query: &str) -> Vec<Value> {
    stream_paced(server, audio, query, 0)
}

/// As [`stream_file`], the first `paced` frames at the pace of speech (a frame every 100 ms).
pub(crate) fn stream_paced(server: &Server, audio: &[u8], query: &str, paced: usize) -> Vec<Value> {
    let mut socket = connect(server, &format!("/v1/stream?{query}")).expect("admitted");
    let started = Instant::now();
    for (index, frame) in audio.chunks(3_200).enumerate() {
        if index < paced {
            let due = started + Duration::from_millis(100 * index as u64);
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
        }
        socket
            .send(Message::Binary(frame.to_vec().into()))
            .expect("the server takes audio");
    }
    socket
        .send(Message::Text("END_OF_AUDIO".into()))
        .expect("the server takes the end");
    all_json(&mut socket)
}

/// The finals' texts among `events`.
pub(crate) fn final_texts(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["type"] == "final")
        .map(|e| e["text"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// A plain HTTP/1.1 request: the status, the headers (lowercase names) and the body.
pub(crate) fn http(server: &Server, request: &[u8]) -> (u16, String, String) {
    let mut stream = TcpStream::connect(&server.address).expect("the server accepts");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("a timeout can be set");
    // A server may answer (413) before reading the whole body: a failed write is fine.
    let _ = stream.write_all(request);
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let response = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {head:?}"));
    (status, head.to_lowercase(), body.to_owned())
}

pub(crate) fn get(server: &Server, path: &str, headers: &str) -> (u16, String, String) {
    http(
        server,
        format!("GET {path} HTTP/1.1\r\nHost: steno\r\n{headers}Connection: close\r\n\r\n")
            .as_bytes(),
    )
}

/// A multipart upload of `file` to the OpenAI endpoint, with `fields`.
pub(crate) fn upload(
    server: &Server,
    file: &[u8],
    fields: &[(&str, &str)],
) -> (u16, String, String) {
    let boundary = "steno-test-boundary";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; \
             filename=\"upload.wav\"\r\nContent-Type: audio/wav\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let mut request = format!(
        "POST /v1/audio/transcriptions HTTP/1.1\r\nHost: steno\r\nConnection: close\r\n\
         Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    http(server, &request)
}

/// WhisperLive's client's first message.
pub(crate) fn whisperlive_options(uid: &str, language: &str) -> Message {
    Message::Text(
        json!({"uid": uid, "language": language, "task": "transcribe", "model": "small",
               "use_vad": true})
        .to_string()
        .into(),
    )
}

/// What a WhisperLive session ends with when it fails: the `ERROR` status's message.
pub(crate) fn whisperlive_error(socket: &mut Socket) -> String {
    let messages = all_json(socket);
    let error = messages
        .iter()
        .find(|m| m["status"] == "ERROR")
        .unwrap_or_else(|| panic!("no ERROR status in {messages:?}"));
    error["message"].as_str().unwrap_or_default().to_owned()
}

/// Every JSON message until the server's close frame, and that frame's code; fails when the
/// connection ends any other way (a reset, which can also destroy the messages before it).
pub(crate) fn json_until_close(
    socket: &mut Socket,
) -> (Vec<Value>, tungstenite::protocol::frame::coding::CloseCode) {
    let mut events = Vec::new();
    loop {
        match socket.read() {
            Ok(Message::Text(text)) => {
                events.push(serde_json::from_str(&text).expect("messages are JSON"));
            }
            Ok(Message::Close(frame)) => {
                let frame =
                    frame.unwrap_or_else(|| panic!("a close without a code after {events:?}"));
                return (events, frame.code);
            }
            Ok(_) => {}
            Err(e) => panic!("the connection ended without a close frame ({e}) after {events:?}"),
        }
    }
}
