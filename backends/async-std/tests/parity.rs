//! With the real model, the async-std backend writes the same JSON Lines as the threads backend:
//! same chunks, same text, same audio timestamps.
#![allow(clippy::unwrap_used, reason = "a test that cannot set up should panic")]

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use steno_core::{Backend, FileSource, Format, FormatSink, Pipeline, WhisperModel};

/// A writer whose bytes stay readable after the sink holding it is gone.
#[derive(Clone, Default)]
struct SharedBuffer(Arc<Mutex<Vec<u8>>>);

impl Write for SharedBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn workspace_file(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

/// The session fixture through `backend`, as JSON Lines reduced to what must not depend on the
/// backend: chunk, start, end and text (not the wall-clock fields).
fn transcribe(backend: &dyn Backend, model: &Arc<WhisperModel>) -> Vec<serde_json::Value> {
    let buffer = SharedBuffer::default();
    let source = FileSource::open(workspace_file("conformance/inputs/session.wav")).unwrap();
    let sink = FormatSink::new(Format::Jsonl, buffer.clone(), "buffer");
    let report = backend
        .run(Pipeline::new(source, model.clone(), sink))
        .unwrap();
    assert_eq!(report.backend, backend.name());
    let jsonl = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    jsonl
        .lines()
        .map(|line| {
            let segment: serde_json::Value = serde_json::from_str(line).unwrap();
            serde_json::json!({
                "chunk": segment["chunk"],
                "start": segment["start"],
                "end": segment["end"],
                "text": segment["text"],
            })
        })
        .collect()
}

#[test]
fn the_session_fixture_gives_the_same_jsonl_as_the_threads_backend() {
    let model_path = workspace_file("models/ggml-tiny.en.bin");
    assert!(
        model_path.exists(),
        "{} is missing: run `cargo xtask model` to install it",
        model_path.display()
    );
    let model = Arc::new(WhisperModel::load(&model_path, 2).unwrap());
    let reference = transcribe(&steno_threads::ThreadsBackend::new(), &model);
    let async_std = transcribe(&steno_async_std::AsyncStdBackend::new(), &model);
    // The fixture holds five sentences; an empty transcript would prove nothing.
    assert!(reference.len() >= 5, "{reference:#?}");
    assert_eq!(async_std, reference);
}
