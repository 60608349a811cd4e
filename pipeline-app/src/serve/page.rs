//! The live-captions page at `/`: plain HTML and JavaScript compiled into the binary (no
//! build step, nothing fetched from elsewhere). The page captures the microphone with an
//! AudioWorklet, resamples it to 16 kHz, streams it over `/v1/stream` and shows the captions;
//! a form uploads a file to `/v1/audio/transcriptions`.

use axum::http::header;
use axum::response::IntoResponse;

const INDEX: &str = include_str!("page/index.html");
const SCRIPT: &str = include_str!("page/captions.js");
const WORKLET: &str = include_str!("page/worklet.js");

pub(crate) async fn index() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], INDEX)
}

pub(crate) async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SCRIPT,
    )
}

pub(crate) async fn worklet() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        WORKLET,
    )
}
