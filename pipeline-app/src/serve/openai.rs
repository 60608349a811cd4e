//! OpenAI-compatible HTTP: `POST /v1/audio/transcriptions` and `GET /v1/models`, so the
//! official SDKs and the many apps built on them can use steno by changing their base URL.
//!
//! An upload is transcribed like `steno transcribe` transcribes a file (the same decoders,
//! packed windows, the same text), on the shared pool. What steno cannot honour yet is
//! refused with a 400 naming the field, never ignored: a `language` other than English, a
//! `prompt` other than the server's own (`steno serve --prompt`), a `temperature` other than 0
//! (steno decodes deterministically), word times (`timestamp_granularities[]=word`) from a
//! server started without `--word-timestamps`.

use std::io::Cursor;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{ConnectInfo, Multipart, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use steno_core::{CollectingSink, FileSource, Format, FormatSink, Segment, Sink};

use super::{Server, auth};

/// The model name OpenAI's clients send by default; steno answers it with its own model.
const OPENAI_MODEL: &str = "whisper-1";

/// An error in OpenAI's shape: `{"error": {"message", "type", "code"}}`.
pub(crate) fn error_body(message: &str, code: &str) -> Json<Value> {
    Json(json!({
        "error": {
            "message": message,
            "type": "invalid_request_error",
            "code": code,
        }
    }))
}

/// `status` with an error in OpenAI's shape.
pub(crate) fn refuse(status: StatusCode, message: &str, code: &str) -> Response {
    (status, error_body(message, code)).into_response()
}

/// `GET /v1/models`: the one model served (it also answers to `whisper-1`).
pub(crate) async fn models(State(server): State<Arc<Server>>, headers: HeaderMap) -> Response {
    if let Some(refused) = auth::refusal(&server, &headers, None) {
        return refused;
    }
    Json(json!({
        "object": "list",
        "data": [{
            "id": server.model_id,
            "object": "model",
            "created": 0,
            "owned_by": "steno",
        }],
    }))
    .into_response()
}

/// What an upload asks for.
struct Request {
    file: Vec<u8>,
    file_name: String,
    format: ResponseFormat,
    granularities: Granularities,
}

/// Which times a `verbose_json` response carries (`timestamp_granularities[]`): segments when
/// none is named, as OpenAI does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Granularities {
    segment: bool,
    word: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ResponseFormat {
    Json,
    Text,
    Srt,
    Vtt,
    VerboseJson,
}

/// `POST /v1/audio/transcriptions`.
pub(crate) async fn transcriptions(
    State(server): State<Arc<Server>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    if let Some(refused) = auth::refusal(&server, &headers, None) {
        return refused;
    }
    let request = match multipart {
        Ok(multipart) => read_request(&server, multipart).await,
        Err(rejection) => Err(refuse(
            rejection.status(),
            &format!(
                "the body must be multipart/form-data: {}",
                rejection.body_text()
            ),
            "invalid_request",
        )),
    };
    let request = match request {
        Ok(request) => request,
        Err(refused) => return refused,
    };
    let Some(_admission) = server.admit() else {
        return server.busy();
    };
    match transcribe(&server, request.file, &request.file_name).await {
        Ok((segments, duration)) => respond(
            &server,
            request.format,
            request.granularities,
            &segments,
            duration,
        ),
        Err(Failure::BadInput(problem)) => {
            refuse(StatusCode::BAD_REQUEST, &problem, "invalid_file")
        }
        Err(Failure::Server(problem)) => {
            tracing::warn!("transcription of an upload from {peer} failed: {problem}");
            refuse(StatusCode::INTERNAL_SERVER_ERROR, &problem, "server_error")
        }
    }
}

/// Reads the form's fields, refusing what steno cannot honour.
async fn read_request(server: &Server, mut multipart: Multipart) -> Result<Request, Response> {
    let bad = |message: String| refuse(StatusCode::BAD_REQUEST, &message, "invalid_request");
    let mut file = None;
    let mut format = ResponseFormat::Json;
    let mut model = None;
    let mut granularities = Granularities::default();
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) => {
                let status = e.status();
                return Err(refuse(
                    status,
                    &format!("the form could not be read: {}", e.body_text()),
                    if status == StatusCode::PAYLOAD_TOO_LARGE {
                        "file_too_large"
                    } else {
                        "invalid_request"
                    },
                ));
            }
        };
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            let file_name = field.file_name().unwrap_or("upload").to_owned();
            let bytes = field.bytes().await.map_err(|e| {
                refuse(
                    e.status(),
                    &format!("the file could not be read: {}", e.body_text()),
                    "file_too_large",
                )
            })?;
            file = Some((bytes.to_vec(), file_name));
            continue;
        }
        let value = field
            .text()
            .await
            .map_err(|e| bad(format!("field `{name}`: {}", e.body_text())))?;
        match name.as_str() {
            "model" => model = Some(value),
            "response_format" => {
                format = match value.as_str() {
                    "json" => ResponseFormat::Json,
                    "text" => ResponseFormat::Text,
                    "srt" => ResponseFormat::Srt,
                    "vtt" => ResponseFormat::Vtt,
                    "verbose_json" => ResponseFormat::VerboseJson,
                    other => {
                        return Err(bad(format!(
                            "response_format `{other}`: use json, text, srt, vtt or verbose_json"
                        )));
                    }
                }
            }
            "language" => {
                if let Some(refusal) = server.other_language(&value) {
                    return Err(bad(refusal));
                }
            }
            "prompt"
                if value.is_empty() || server.options.prompt.as_deref() == Some(value.as_str()) => {
            }
            "prompt" => return Err(bad(server.other_prompt())),
            "temperature" => match value.trim().parse::<f64>() {
                Ok(0.0) => {}
                _ => {
                    return Err(bad(format!(
                        "temperature `{value}`: steno decodes deterministically; only 0 is \
                         accepted"
                    )));
                }
            },
            "timestamp_granularities[]" | "timestamp_granularities" => match value.as_str() {
                "segment" => granularities.segment = true,
                "word" => match server.untimed_words("timestamp_granularities `word`") {
                    Some(refusal) => return Err(bad(refusal)),
                    None => granularities.word = true,
                },
                other => {
                    return Err(bad(format!(
                        "timestamp_granularities `{other}`: use segment or word"
                    )));
                }
            },
            // Fields of newer API versions that change nothing here are let through.
            _ => {}
        }
    }
    if let Some(model) = model
        && model != OPENAI_MODEL
        && model != server.model_id
    {
        return Err(bad(format!(
            "model `{model}`: this server has `{}` (also called `{OPENAI_MODEL}`)",
            server.model_id
        )));
    }
    if granularities.word && format != ResponseFormat::VerboseJson {
        return Err(bad(
            "timestamp_granularities `word` needs response_format `verbose_json`".into(),
        ));
    }
    let Some((file, file_name)) = file else {
        return Err(bad(
            "the form has no `file` field: send the audio as `file`".into(),
        ));
    };
    Ok(Request {
        file,
        file_name,
        format,
        granularities,
    })
}

/// Why an upload was not transcribed: the client's file, or the server.
enum Failure {
    BadInput(String),
    Server(String),
}

/// The upload's segments and its length in seconds.
async fn transcribe(
    server: &Server,
    file: Vec<u8>,
    file_name: &str,
) -> Result<(Vec<Segment>, f64), Failure> {
    let name = file_name.to_owned();
    let opened =
        tokio::task::spawn_blocking(move || FileSource::from_stream(name, Cursor::new(file)))
            .await
            .map_err(|_| Failure::Server("the decoder stopped unexpectedly".into()))?;
    let source = opened.map_err(|e| Failure::BadInput(e.chain()))?;
    let sink = CollectingSink::new();
    let running = server
        .start(Box::new(source), Box::new(sink.clone()), false, false)
        .map_err(|e| Failure::Server(format!("{e:#}")))?;
    match running.finish().await {
        Ok(report) => Ok((sink.segments(), report.audio_seconds)),
        Err(error) => match error.downcast_ref::<steno_core::Error>() {
            Some(steno_core::Error::Input { .. }) => Err(Failure::BadInput(format!("{error:#}"))),
            _ => Err(Failure::Server(format!("{error:#}"))),
        },
    }
}

/// The response in the asked format.
fn respond(
    server: &Server,
    format: ResponseFormat,
    granularities: Granularities,
    segments: &[Segment],
    duration: f64,
) -> Response {
    let text = segments
        .iter()
        .map(|segment| segment.text.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    match format {
        ResponseFormat::Json => Json(json!({ "text": text })).into_response(),
        ResponseFormat::Text => text_response("text/plain; charset=utf-8", format!("{text}\n")),
        ResponseFormat::Srt => {
            text_response("application/x-subrip", subtitles(Format::Srt, segments))
        }
        ResponseFormat::Vtt => {
            text_response("text/vtt; charset=utf-8", subtitles(Format::Vtt, segments))
        }
        ResponseFormat::VerboseJson => {
            let mut body = json!({
                "task": server.task(),
                "language": response_language(server, segments),
                "duration": duration,
                "text": text,
            });
            if granularities.segment || !granularities.word {
                body["segments"] = segments
                    .iter()
                    .enumerate()
                    .map(|(id, segment)| {
                        json!({
                            "id": id,
                            "start": segment.start,
                            "end": segment.end,
                            "text": segment.text,
                            "avg_logprob": segment.avg_logprob,
                            "no_speech_prob": segment.no_speech_prob,
                        })
                    })
                    .collect();
            }
            if granularities.word {
                // Every segment has its words on a server that times them.
                body["words"] = segments
                    .iter()
                    .flat_map(|segment| segment.words.iter().flatten())
                    .map(|word| json!({"word": word.word, "start": word.start, "end": word.end}))
                    .collect();
            }
            Json(body).into_response()
        }
    }
}

/// The `language` of a `verbose_json` response, named as OpenAI names it ("english"): the text's
/// language (English when translated), the first detected one with `--language auto`.
fn response_language(server: &Server, segments: &[Segment]) -> &'static str {
    let options = &server.options;
    let code = if options.translate {
        "en"
    } else if options.detects_language() {
        segments
            .iter()
            .find_map(|segment| segment.language.as_deref())
            .unwrap_or("en")
    } else {
        options.language.as_str()
    };
    steno_core::language_name(code).unwrap_or("english")
}

fn text_response(content_type: &'static str, body: String) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// SRT or WebVTT of `segments`, written by the same sink `steno transcribe` uses.
fn subtitles(format: Format, segments: &[Segment]) -> String {
    let mut sink = FormatSink::new(format, Vec::new(), "response");
    for segment in segments {
        // Writing to memory cannot fail.
        let _ = sink.write(segment);
    }
    let _ = sink.finish();
    String::from_utf8_lossy(&sink.into_inner()).into_owned()
}
