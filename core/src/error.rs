//! The one error type of steno: every failure names the input or stage it comes from.

use std::path::Path;

/// A convenient alias for results whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in a steno pipeline.
///
/// Messages are one line and name the input, model or stage they are about, so the CLI can print
/// them as they are.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An audio input could not be opened, decoded or read.
    #[error("{input}: {problem}")]
    Input {
        /// The file path, `-` for stdin, or a description of the source.
        input: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A Whisper model could not be loaded.
    #[error("model {path}: {problem}")]
    Model {
        /// Path of the model file.
        path: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The transcriber failed on one chunk.
    #[error("transcriber failed on chunk {chunk}: {problem}")]
    Transcribe {
        /// Index of the chunk that failed.
        chunk: usize,
        /// What went wrong.
        problem: String,
    },
    /// Writing output failed.
    #[error("{sink}: {problem}")]
    Sink {
        /// The output (file path or `stdout`).
        sink: String,
        /// What went wrong.
        problem: String,
    },
    /// A configuration value is out of range or inconsistent.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The backend cannot do what was asked; it says so instead of silently doing less.
    #[error("the {backend} backend does not support {what}")]
    Unsupported {
        /// Name of the backend.
        backend: &'static str,
        /// What it cannot do.
        what: String,
    },
    /// A pipeline stage ended abnormally (for example a panic in a worker thread).
    #[error("{stage} stage failed: {problem}")]
    Stage {
        /// Name of the stage.
        stage: &'static str,
        /// What happened.
        problem: String,
    },
    /// The run was cancelled through its [`CancelToken`](crate::CancelToken).
    #[error("the run was cancelled")]
    Cancelled,
}

impl Error {
    /// An [`Error::Input`] about the file at `path`.
    pub fn input(path: impl AsRef<Path>, problem: impl Into<String>) -> Self {
        Error::Input {
            input: path.as_ref().display().to_string(),
            problem: problem.into(),
        }
    }

    /// An [`Error::Model`] about the model at `path`.
    pub fn model(path: impl AsRef<Path>, problem: impl Into<String>) -> Self {
        Error::Model {
            path: path.as_ref().display().to_string(),
            problem: problem.into(),
        }
    }

    /// An [`Error::Sink`] for the output named `sink`.
    pub fn sink(sink: impl Into<String>, problem: impl std::fmt::Display) -> Self {
        Error::Sink {
            sink: sink.into(),
            problem: problem.to_string(),
        }
    }
}
