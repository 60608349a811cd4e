//! `steno serve` under bad input, admission limits, the token, concurrent streams and a stop
//! signal: each problem is answered clearly, and the server keeps serving everyone else. And
//! the server on a NATS fleet (`--nats`) instead of a model of its own.
//!
//! The real clients (WhisperLive's, the OpenAI SDK, a browser) have tests of their own; these
//! speak the protocols directly, to send what no well-behaved client would.

mod common;

use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::server::Server;
use common::wire::{
    Socket, all_json, connect, final_texts, get, http, json_until_close, next_json, s16le,
    stream_file, stream_paced, upload, whisperlive_error, whisperlive_options,
};
use common::{fixture, parse_jsonl, run_ok, session_sentences, steno, texts, wer, whisper_turn};
use serde_json::{Value, json};
use tungstenite::Message;

/// What a stream of `session.wav` must give: the same cut as a stream's (utterances decoded
/// alone, the real-time trailing padding) through `steno transcribe`.
fn session_as_streamed() -> Vec<String> {
    texts(&parse_jsonl(&String::from_utf8_lossy(
        &run_ok(
            steno()
                .args(["transcribe", "--no-pack", "--trailing-padding-ms", "100"])
                .args(["--format", "jsonl"])
                .arg(fixture("session.wav")),
        )
        .stdout,
    )))
}

#[test]
fn every_bad_input_is_answered_in_one_clear_line_and_the_server_keeps_serving() {
    let _turn = whisper_turn();
    let server = Server::start(&["--idle-secs", "2", "--max-upload-mib", "1"]);

    // WhisperLive: options that are not JSON, an unserved language, audio that is not
    // float32 frames, and numbers that are not numbers.
    let mut socket = connect(&server, "/").expect("admitted");
    socket
        .send(Message::Text("{not json".into()))
        .expect("sent");
    let problem = whisperlive_error(&mut socket);
    assert!(problem.contains("JSON object of options"), "{problem}");

    let mut socket = connect(&server, "/").expect("admitted");
    socket.send(whisperlive_options("u1", "de")).expect("sent");
    let problem = whisperlive_error(&mut socket);
    assert!(problem.contains("language `de`"), "{problem}");

    // What this server cannot do is refused by name, not ignored: word times (it was started
    // without --word-timestamps), translation into other languages, speakers, hotwords.
    for (option, value, named) in [
        ("word_timestamps", json!(true), "--word-timestamps"),
        ("enable_translation", json!(true), "enable_translation"),
        ("enable_diarization", json!(true), "enable_diarization"),
        ("hotwords", json!("Dashwood"), "hotwords"),
    ] {
        let mut socket = connect(&server, "/").expect("admitted");
        let mut options = json!({"uid": "u0", "language": "en"});
        options[option] = value;
        socket
            .send(Message::Text(options.to_string().into()))
            .expect("sent");
        let problem = whisperlive_error(&mut socket);
        assert!(
            problem.starts_with(option) && problem.contains(named),
            "{problem}"
        );
    }

    let mut socket = connect(&server, "/").expect("admitted");
    socket.send(whisperlive_options("u2", "en")).expect("sent");
    let ready = next_json(&mut socket).expect("an answer");
    assert_eq!(ready["message"], "SERVER_READY", "{ready}");
    assert_eq!(ready["uid"], "u2", "{ready}");
    socket
        .send(Message::Binary(vec![0u8; 4_099].into()))
        .expect("sent");
    let problem = whisperlive_error(&mut socket);
    assert!(problem.contains("4099 bytes"), "{problem}");

    let mut socket = connect(&server, "/").expect("admitted");
    socket.send(whisperlive_options("u3", "en")).expect("sent");
    next_json(&mut socket).expect("SERVER_READY");
    let nan: Vec<u8> = [0.1f32, f32::NAN]
        .iter()
        .flat_map(|s| s.to_le_bytes())
        .collect();
    socket.send(Message::Binary(nan.into())).expect("sent");
    let problem = whisperlive_error(&mut socket);
    assert!(problem.contains("NaN"), "{problem}");

    // /v1/stream: an absurd format is refused before the upgrade.
    for (query, expected) in [
        ("rate=5", "rate 5 Hz"),
        ("rate=100000000", "rate 100000000 Hz"),
        ("channels=99", "channels 99"),
        ("encoding=mp3", "encoding `mp3`"),
        ("rate=abc", "rate"),
    ] {
        let (status, _, body) = get(
            &server,
            &format!("/v1/stream?{query}"),
            "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
        );
        assert_eq!(status, 400, "{query}: {body}");
        assert!(body.contains(expected), "{query}: {body}");
    }
    // A text message that is not END_OF_AUDIO.
    let mut socket = connect(&server, "/v1/stream").expect("admitted");
    socket.send(Message::Text("hello".into())).expect("sent");
    let events = all_json(&mut socket);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["type"], "error");
    assert!(
        events[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("a text message (`hello`)")),
        "{events:?}"
    );
    // A message over the size limit closes the connection.
    let mut socket = connect(&server, "/v1/stream").expect("admitted");
    let _ = socket.send(Message::Binary(vec![0u8; 2 << 20].into()));
    assert!(
        all_json(&mut socket).is_empty(),
        "an oversized message gets no events"
    );
    // A client that says nothing is closed after --idle-secs.
    let started = Instant::now();
    let mut socket = connect(&server, "/v1/stream").expect("admitted");
    let events = all_json(&mut socket);
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(
        events[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("no audio for 2 s")),
        "{events:?}"
    );

    // Uploads: not audio, too big, a field steno cannot honour.
    let (status, _, body) = upload(&server, b"just some text, not audio", &[]);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("upload.wav"), "{body}");
    let (status, _, body) = upload(&server, &vec![0u8; 3 << 20], &[]);
    assert_eq!(status, 413, "{body}");
    let (status, _, body) = upload(&server, &s16le("word.wav"), &[("temperature", "0.7")]);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("temperature `0.7`"), "{body}");
    let (status, _, body) = http(
        &server,
        b"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: steno\r\nConnection: close\r\n\
          Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("multipart/form-data"), "{body}");

    // After all that, a good stream is transcribed.
    let events = stream_file(&server, &s16le("session.wav"), "");
    let text = final_texts(&events).join(" ");
    let rate = wer(&session_sentences().join(" "), &text);
    assert!(rate < 0.15, "WER {rate:.2}: {text}");
    assert_eq!(
        events.last().map(|e| e["type"].clone()),
        Some(json!("report"))
    );
    let log = server.log();
    assert!(!log.contains("panicked"), "{log}");
}

#[test]
fn a_refused_client_gets_its_error_and_a_close_even_with_its_audio_unread() {
    let _turn = whisper_turn();
    let server = Server::start(&[]);
    // What a client streaming without reading has sent after its bad message: the server
    // never reads it as audio, and must not drop the connection with it unread.
    let send_more = |socket: &mut Socket| {
        for _ in 0..4 {
            socket
                .send(Message::Binary(vec![0u8; 256 << 10].into()))
                .expect("sent");
        }
        socket
            .send(Message::Text("END_OF_AUDIO".into()))
            .expect("sent");
    };

    let mut socket = connect(&server, "/v1/stream").expect("admitted");
    socket
        .send(Message::Binary(vec![0u8; 3].into()))
        .expect("sent");
    send_more(&mut socket);
    let (events, code) = json_until_close(&mut socket);
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(
        events[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("3 bytes")),
        "{events:?}"
    );
    assert_eq!(
        code,
        tungstenite::protocol::frame::coding::CloseCode::Policy
    );

    let mut socket = connect(&server, "/").expect("admitted");
    socket.send(whisperlive_options("u1", "en")).expect("sent");
    let ready = next_json(&mut socket).expect("an answer");
    assert_eq!(ready["message"], "SERVER_READY", "{ready}");
    socket
        .send(Message::Binary(vec![0u8; 4_099].into()))
        .expect("sent");
    send_more(&mut socket);
    let (events, code) = json_until_close(&mut socket);
    assert!(
        events.iter().any(|e| e["status"] == "ERROR"
            && e["message"]
                .as_str()
                .is_some_and(|m| m.contains("4099 bytes"))),
        "{events:?}"
    );
    assert_eq!(
        code,
        tungstenite::protocol::frame::coding::CloseCode::Normal
    );
}

#[test]
fn the_token_is_checked_before_any_upgrade_or_work() {
    let server = Server::start(&["--token", "s3cret"]);
    assert_eq!(connect(&server, "/v1/stream").err(), Some(401));
    assert_eq!(connect(&server, "/v1/stream?token=wrong").err(), Some(401));
    assert_eq!(connect(&server, "/").err(), Some(401));
    let (status, head, body) = get(&server, "/v1/models", "");
    assert_eq!(status, 401, "{body}");
    assert!(head.contains("www-authenticate: bearer"), "{head}");
    let (status, _, body) = get(&server, "/v1/models", "Authorization: Bearer s3cret\r\n");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("tiny.en"), "{body}");
    // The page itself is public: it asks for the token. So is the health check, which a
    // load balancer's probe makes without one.
    assert_eq!(get(&server, "/", "").0, 200);
    let (status, _, body) = get(&server, "/health", "");
    assert_eq!(status, 200, "{body}");
    // With the token, a stream runs: ended at once, it reports no audio.
    let mut socket = connect(&server, "/v1/stream?token=s3cret").expect("admitted");
    socket
        .send(Message::Text("END_OF_AUDIO".into()))
        .expect("sent");
    let events = all_json(&mut socket);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["type"], "report");
    assert_eq!(events[0]["audio_seconds"], 0.0);
}

#[test]
fn a_full_server_turns_clients_away_until_a_place_frees() {
    let server = Server::start(&["--max-streams", "1"]);
    let health = || -> Value {
        let (status, _, body) = get(&server, "/health", "");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).expect("JSON")
    };
    let idle = json!({"status": "ok", "model": "tiny.en-q8_0", "streams": {"open": 0, "max": 1}});
    assert_eq!(health(), idle);
    let mut first = connect(&server, "/v1/stream").expect("admitted");
    assert_eq!(health()["streams"], json!({"open": 1, "max": 1}));
    // Full: WebSocket and upload alike get 503 with Retry-After; WhisperLive gets WAIT.
    assert_eq!(connect(&server, "/v1/stream").err(), Some(503));
    let (status, head, body) = upload(&server, &s16le("word.wav"), &[]);
    assert_eq!(status, 503, "{body}");
    assert!(head.contains("retry-after: "), "{head}");
    let mut waiting = connect(&server, "/").expect("upgraded");
    waiting.send(whisperlive_options("w", "en")).expect("sent");
    let wait = next_json(&mut waiting).expect("an answer");
    assert_eq!(wait["status"], "WAIT", "{wait}");
    assert_eq!(wait["uid"], "w", "{wait}");
    // The estimate is the first stream's remaining time: up to --max-stream-secs (an hour).
    let minutes = wait["message"].as_f64().expect("minutes");
    assert!(minutes > 59.0 && minutes <= 60.0, "{wait}");
    // The first stream ends; its place is free again.
    first
        .send(Message::Text("END_OF_AUDIO".into()))
        .expect("sent");
    all_json(&mut first);
    let deadline = Instant::now() + Duration::from_secs(10);
    let second = loop {
        match connect(&server, "/v1/stream") {
            Ok(socket) => break socket,
            Err(503) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(status) => panic!("HTTP {status}"),
        }
    };
    drop(second);
    while health() != idle {
        assert!(Instant::now() < deadline, "{}", health());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn concurrent_streams_each_get_exactly_what_steno_transcribe_writes() {
    let _turn = whisper_turn();
    let expected = session_as_streamed();
    assert_eq!(expected.len(), 5, "{expected:?}");
    let server = Server::start(&[]);
    let audio = s16le("session.wav");
    let stereo_f32_48k: Vec<u8> = {
        // The same audio as another client would send it: float32, 48 kHz, two channels.
        let samples: Vec<f32> = audio
            .chunks_exact(2)
            .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32_768.0)
            .collect();
        samples
            .iter()
            .flat_map(|&s| [s, s, s, s, s, s])
            .flat_map(f32::to_le_bytes)
            .collect()
    };
    let results: Vec<Vec<Value>> = std::thread::scope(|scope| {
        let streams = [
            scope.spawn(|| stream_file(&server, &audio, "")),
            // Its first sentence in real time: partials come while it is spoken (audio that
            // arrives faster than it is decoded overtakes them, so they are skipped).
            scope.spawn(|| stream_paced(&server, &audio, "interim=true", 40)),
            // A misbehaving client among them: odd bytes after some audio.
            scope.spawn(|| {
                let mut socket = connect(&server, "/v1/stream").expect("admitted");
                socket
                    .send(Message::Binary(audio[..64_000].to_vec().into()))
                    .expect("sent");
                socket
                    .send(Message::Binary(vec![1u8; 3].into()))
                    .expect("sent");
                all_json(&mut socket)
            }),
        ];
        streams
            .into_iter()
            .map(|s| s.join().expect("a client thread"))
            .collect()
    });
    assert_eq!(final_texts(&results[0]), expected);
    assert_eq!(final_texts(&results[1]), expected);
    assert!(
        results[1].iter().any(|e| e["type"] == "partial"),
        "interim=true gives partials: {:?}",
        results[1]
    );
    let bad = results[2].last().expect("an event");
    assert_eq!(bad["type"], "error", "{:?}", results[2]);
    // Resampled from 48 kHz stereo float32, the words are the same sentences (resampling
    // changes samples slightly, so not necessarily every word).
    let resampled = stream_file(
        &server,
        &stereo_f32_48k,
        "encoding=f32&rate=48000&channels=2",
    );
    let text = final_texts(&resampled).join(" ");
    let rate = wer(&expected.join(" "), &text);
    assert!(rate < 0.1, "WER {rate:.2}: {text}");
}

#[test]
fn a_stop_signal_gives_open_streams_their_final_text_then_exits() {
    let _turn = whisper_turn();
    let mut server = Server::start(&[]);
    let mut socket = connect(&server, "/v1/stream").expect("admitted");
    // The first two sentences (to 8.6 s), and the stream is left open.
    let audio = s16le("session.wav");
    socket
        .send(Message::Binary(audio[..2 * 140_000].to_vec().into()))
        .expect("sent");
    // Once the first final is out, the audio is in the pipeline: stop the server.
    let first = loop {
        let event = next_json(&mut socket).expect("an event");
        if event["type"] == "final" {
            break event;
        }
    };
    let stopping = std::thread::spawn(move || {
        let status = server.terminate(Duration::from_secs(60));
        (status, server.log())
    });
    let mut events = vec![first];
    events.extend(all_json(&mut socket));
    let (status, log) = stopping.join().expect("the stopping thread");
    let texts = final_texts(&events);
    let rate = wer(&session_sentences()[..2].join(" "), &texts.join(" "));
    assert!(rate < 0.15, "WER {rate:.2}: {texts:?}");
    assert_eq!(
        events.last().map(|e| e["type"].clone()),
        Some(json!("report"))
    );
    assert!(status.is_some_and(|s| s.success()), "{status:?}: {log}");
    assert!(log.contains("open streams get their final text"), "{log}");
}

#[test]
fn a_client_that_reads_nothing_is_disconnected_and_the_others_go_on() {
    let _turn = whisper_turn();
    let server = Server::start(&["--send-timeout-secs", "1"]);
    // A WhisperLive client whose socket can hold almost nothing, sending a long reading twice
    // as fast as it can and never reading what the server sends back: up to 100 finished
    // segments in each of its 100-odd updates, far more than the connection's buffers hold.
    let stalled = {
        use rustix::net::{AddressFamily, SocketType, connect, socket, sockopt};
        let address: std::net::SocketAddr = server.address.parse().expect("an address");
        let fd = socket(AddressFamily::INET, SocketType::STREAM, None).expect("a socket");
        sockopt::set_socket_recv_buffer_size(&fd, 1).expect("a small receive buffer");
        connect(&fd, &address).expect("the server accepts");
        let tcp = TcpStream::from(fd);
        let (mut socket, _) =
            tungstenite::client(format!("ws://{}/", server.address), tcp).expect("upgraded");
        socket
            .send(whisperlive_options("stalled", "en"))
            .expect("sent");
        let ready = next_json(&mut socket).expect("an answer");
        assert_eq!(ready["message"], "SERVER_READY", "{ready}");
        socket
    };
    let reading = steno_core::read_file(fixture("reading.flac")).expect("the fixture decodes");
    let sending = std::thread::spawn(move || {
        let mut socket = stalled;
        for second in reading.chunks(16_000).chain(reading.chunks(16_000)) {
            let bytes: Vec<u8> = second.iter().flat_map(|s| s.to_le_bytes()).collect();
            // Once the server has given up on it, its connection is closed.
            if socket.send(Message::Binary(bytes.into())).is_err() {
                break;
            }
        }
    });
    // Meanwhile another client's stream is transcribed, all of it.
    let events = stream_file(&server, &s16le("session.wav"), "");
    let text = final_texts(&events).join(" ");
    let rate = wer(&session_sentences().join(" "), &text);
    assert!(rate < 0.15, "WER {rate:.2}: {text}");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !server.log().contains("could not keep up") {
        assert!(
            Instant::now() < deadline,
            "the stalled client was never disconnected: {}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The line names the client, by its uid and address, and why it was let go.
    let log = server.log();
    let line = log
        .lines()
        .find(|line| line.contains("could not keep up"))
        .unwrap_or_default();
    assert!(
        line.contains("WhisperLive client stalled from 127.0.0.1:"),
        "{line}"
    );
    assert!(line.contains("the client read nothing for 1 s"), "{line}");
    sending.join().expect("the sending thread");
}

#[test]
fn a_server_on_a_nats_fleet_gives_what_steno_transcribe_writes() {
    let _turn = whisper_turn();
    let expected = session_as_streamed();
    let broker = steno_nats::LocalServer::start().expect("nats-server (`cargo xtask deps`)");
    let stream = "SERVE_FLEET";
    // The only model in the test: the worker's. The server loads none.
    let mut worker = steno()
        .args(["worker", "--nats", &broker.url(), "--stream", stream])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("steno worker starts");
    let server = Server::start(&["--nats", &broker.url(), "--nats-stream", stream]);
    assert!(
        server.log().contains("with the NATS fleet at"),
        "{}",
        server.log()
    );
    assert_eq!(
        final_texts(&stream_file(&server, &s16le("session.wav"), "")),
        expected
    );
    let wav = std::fs::read(fixture("session.wav")).expect("the fixture");
    let (status, _, body) = upload(&server, &wav, &[("model", "whisper-1")]);
    assert_eq!(status, 200, "{body}");
    let text = serde_json::from_str::<Value>(&body).expect("JSON")["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(wer(&session_sentences().join(" "), &text) < 0.1, "{text}");
    let _ = worker.kill();
    let _ = worker.wait();
}
