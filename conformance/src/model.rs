//! The model cases: real Whisper (the default model, `models/ggml-tiny.en-q8_0.bin`) on the speech
//! fixtures in `conformance/inputs/`, each run rendered as text for a snapshot shared by every
//! backend.
//!
//! The model is loaded once per test process and shared by every backend's cases
//! ([`shared_model`]); the cases take [`model_lock`] so that only one Whisper inference runs
//! at a time (on two cores, several at once are only slower). A missing model fails every
//! model case with a message naming `cargo xtask model`: they are never skipped.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use serde::Serialize;
use steno_core::{CollectingSink, FileSource, Pipeline, Segment, TranscriberFactory, WhisperModel};

use crate::run::run;
use crate::{
    BackendFactory, MODEL_INPUTS, ModelInput, ModelOptions, Unsupported, inputs_dir, workspace_root,
};

/// Threads per Whisper state: two saturate the two cores steno is tuned on.
const THREADS_PER_STATE: usize = 2;

/// How long one model run may take before the suite calls it a hang (the longest fixture
/// takes about 10 s on two cores).
const MODEL_DEADLINE: Duration = Duration::from_secs(600);

/// Where the default model is installed (`cargo xtask model`).
pub fn model_path() -> PathBuf {
    workspace_root().join("models/ggml-tiny.en-q8_0.bin")
}

/// The default model, loaded on first use and shared by every case of the process.
///
/// # Panics
/// When the model is missing or cannot be loaded; the message says to run
/// `cargo xtask model`.
pub fn shared_model() -> Arc<WhisperModel> {
    static MODEL: OnceLock<Result<Arc<WhisperModel>, String>> = OnceLock::new();
    let loaded = MODEL.get_or_init(|| {
        WhisperModel::load(model_path(), THREADS_PER_STATE)
            .map(Arc::new)
            .map_err(|error| error.to_string())
    });
    match loaded {
        Ok(model) => Arc::clone(model),
        Err(error) => panic!(
            "the model cases need the default Whisper model: {error}\n\
             Install it with `cargo xtask model` (model cases are never skipped)."
        ),
    }
}

/// The default model decoded with `options` (see [`ModelInput::options`]), loaded on first
/// use and shared like [`shared_model`].
///
/// # Panics
/// As [`shared_model`], and when the options are invalid.
pub fn model_with(options: ModelOptions) -> Arc<WhisperModel> {
    static MODELS: Mutex<Vec<(ModelOptions, Arc<WhisperModel>)>> = Mutex::new(Vec::new());
    let mut models = MODELS.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((_, model)) = models.iter().find(|(kept, _)| *kept == options) {
        return Arc::clone(model);
    }
    let model = WhisperModel::load(model_path(), THREADS_PER_STATE)
        .and_then(|model| model.with_options(options.decoding()))
        .unwrap_or_else(|error| {
            panic!(
                "the model cases need the default Whisper model: {error}\n\
                 Install it with `cargo xtask model` (model cases are never skipped)."
            )
        });
    let model = Arc::new(model);
    models.push((options, Arc::clone(&model)));
    model
}

/// The arguments that make a worker process (`steno-conformance-worker`) serve the model a
/// pipeline's transcriber calls `name`: a model file's path, or the default model with the
/// options of one of the [`MODEL_INPUTS`]. `None` for any other name.
pub fn worker_args(name: &str) -> Option<Vec<String>> {
    if std::path::Path::new(name).is_file() {
        return Some(vec!["--model".into(), name.into()]);
    }
    let path = model_path();
    MODEL_INPUTS
        .iter()
        .filter_map(|input| input.options)
        .find(|options| WhisperModel::name_for(&path, &options.decoding()) == name)
        .map(|options| {
            let mut args = vec!["--model".into(), path.display().to_string()];
            args.extend(options.decoding().worker_args());
            args
        })
}

/// Serialises the model cases: hold the guard while a case runs.
pub fn model_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A segment as it appears in a snapshot: the JSON Lines contract without its wall-clock
/// fields (`emitted_at`, `latency_ms`), audio times rounded to 10 ms.
#[derive(Debug, Serialize)]
struct SnapshotLine<'a> {
    chunk: usize,
    start: f64,
    end: f64,
    speech_end: f64,
    text: &'a str,
    /// Each timed word and its start and end (centiseconds), when words were asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    words: Option<Vec<(&'a str, f64, f64)>>,
}

fn centiseconds(seconds: f64) -> f64 {
    (seconds * 100.0).round() / 100.0
}

/// Renders a run for its snapshot: one JSON line per segment, then either a `report:` line
/// (the report's fields that do not depend on the clock) or an `error:` line. Paths under
/// `conformance/inputs/` are written relative to it, so the text is the same on every machine.
fn render(
    segments: &[Segment],
    outcome: Result<steno_core::RunReport, steno_core::Error>,
) -> String {
    let mut text = String::new();
    for segment in segments {
        let line = SnapshotLine {
            chunk: segment.chunk,
            start: centiseconds(segment.start),
            end: centiseconds(segment.end),
            speech_end: centiseconds(segment.speech_end),
            text: &segment.text,
            words: segment.words.as_ref().map(|words| {
                words
                    .iter()
                    .map(|w| (w.word.as_str(), centiseconds(w.start), centiseconds(w.end)))
                    .collect()
            }),
        };
        match serde_json::to_string(&line) {
            Ok(json) => text.push_str(&json),
            Err(error) => text.push_str(&format!("unrenderable segment: {error}")),
        }
        text.push('\n');
    }
    match outcome {
        Ok(report) => text.push_str(&format!(
            "report: chunks {}, segments {}, audio {:.2} s, dropped {} samples, \
             packed windows {}, full-window retries {}\n",
            report.chunks,
            report.segments,
            report.audio_seconds,
            report.dropped_samples,
            report.packed_windows,
            report.full_window_retries
        )),
        Err(error) => {
            let inputs = format!("{}/", inputs_dir().display());
            text.push_str(&format!(
                "error: {}\n",
                error.to_string().replace(&inputs, "")
            ));
        }
    }
    text
}

/// Transcribes `input` with the default pipeline (earshot VAD, default chunking, offline) on
/// a backend from `make` and the shared model, and renders the run for its snapshot: a
/// backend that diverges from the others produces a different text.
///
/// Takes [`model_lock`] for the duration of the run.
///
/// # Errors
/// [`Unsupported`] when the backend declines the run.
///
/// # Panics
/// When the model is missing (see [`shared_model`]) or the run hangs.
pub fn transcript(make: &BackendFactory, input: &ModelInput) -> Result<String, Unsupported> {
    let _serialised = model_lock();
    let model: Arc<dyn TranscriberFactory> = match input.options {
        Some(options) => model_with(options),
        None => shared_model(),
    };
    let source = match FileSource::open(input.path()) {
        Ok(source) => source,
        Err(error) => return Ok(render(&[], Err(error))),
    };
    let sink = CollectingSink::new();
    // The default pipeline, as `steno transcribe` runs a file: utterances packed.
    let pipeline = Pipeline::builder(source, model, sink.clone())
        .pack(true)
        .build()
        .expect("the default pipeline, packed, is valid");
    let outcome = run(make, pipeline, MODEL_DEADLINE)?;
    Ok(render(&sink.segments(), outcome))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendering_rounds_times_and_drops_wall_clock_fields() {
        let mut segment = Segment::new(2, 1.23456, 3.0049, "Hello \"there\".");
        segment.speech_end = 2.8049;
        segment.emitted_at = 4.5;
        segment.latency_ms = 321;
        let error = steno_core::Error::input(inputs_dir().join("cut.wav"), "truncated");
        assert_eq!(
            render(&[segment], Err(error)),
            "{\"chunk\":2,\"start\":1.23,\"end\":3.0,\"speech_end\":2.8,\"text\":\"Hello \\\"there\\\".\"}\n\
             error: cut.wav: truncated\n"
        );
    }
}
