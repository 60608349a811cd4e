//! The one error type of steno: every failure names the input or stage it comes from, and keeps
//! the underlying error (an I/O error, whisper.cpp's, a decoder's) as its `source()`.

use std::path::Path;

/// A convenient alias for results whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An underlying error, kept as an [`Error`]'s [`source`](std::error::Error::source).
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in a steno pipeline.
///
/// Messages are one line and name the input, model or stage they are about. Where a failure has
/// an underlying error, the message says what steno was doing and the underlying error is its
/// [`source`](std::error::Error::source), not repeated in the message: print the chain
/// ([`Error::chain`], or `{:#}` through `anyhow`) to show both. Variants that carry a source are
/// made with their constructors ([`Error::input`], [`Error::input_caused_by`], ...).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An audio input could not be opened, decoded or read.
    #[non_exhaustive]
    #[error("{input}: {problem}")]
    Input {
        /// The file path, `-` for stdin, or a description of the source.
        input: String,
        /// What is wrong with it.
        problem: String,
        /// The underlying error, if there is one.
        #[source]
        source: Option<Cause>,
    },
    /// A Whisper model could not be loaded.
    #[non_exhaustive]
    #[error("model {path}: {problem}")]
    Model {
        /// Path of the model file.
        path: String,
        /// What is wrong with it.
        problem: String,
        /// The underlying error, if there is one.
        #[source]
        source: Option<Cause>,
    },
    /// The transcriber failed on one chunk.
    #[non_exhaustive]
    #[error("transcriber failed on chunk {chunk}: {problem}")]
    Transcribe {
        /// Index of the chunk that failed.
        chunk: usize,
        /// What went wrong.
        problem: String,
        /// The underlying error, if there is one.
        #[source]
        source: Option<Cause>,
    },
    /// Writing output failed.
    #[non_exhaustive]
    #[error("{sink}: {problem}")]
    Sink {
        /// The output (file path or `stdout`).
        sink: String,
        /// What went wrong.
        problem: String,
        /// The underlying error, if there is one.
        #[source]
        source: Option<Cause>,
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
        Self::input_named(path.as_ref().display().to_string(), problem, None)
    }

    /// An [`Error::Input`] about the file at `path`, caused by `cause`.
    pub fn input_caused_by(
        path: impl AsRef<Path>,
        problem: impl Into<String>,
        cause: impl Into<Cause>,
    ) -> Self {
        Self::input_named(
            path.as_ref().display().to_string(),
            problem,
            Some(cause.into()),
        )
    }

    /// An [`Error::Input`] about the input called `input` (a path, `-`, a device).
    pub fn input_named(
        input: impl Into<String>,
        problem: impl Into<String>,
        source: Option<Cause>,
    ) -> Self {
        Error::Input {
            input: input.into(),
            problem: problem.into(),
            source,
        }
    }

    /// An [`Error::Model`] about the model at `path`.
    pub fn model(path: impl AsRef<Path>, problem: impl Into<String>) -> Self {
        Error::Model {
            path: path.as_ref().display().to_string(),
            problem: problem.into(),
            source: None,
        }
    }

    /// An [`Error::Model`] about the model at `path`, caused by `cause`.
    pub fn model_caused_by(
        path: impl AsRef<Path>,
        problem: impl Into<String>,
        cause: impl Into<Cause>,
    ) -> Self {
        Error::Model {
            path: path.as_ref().display().to_string(),
            problem: problem.into(),
            source: Some(cause.into()),
        }
    }

    /// An [`Error::Transcribe`] on chunk `chunk`.
    pub fn transcribe(chunk: usize, problem: impl Into<String>) -> Self {
        Error::Transcribe {
            chunk,
            problem: problem.into(),
            source: None,
        }
    }

    /// An [`Error::Transcribe`] on chunk `chunk`, caused by `cause`.
    pub fn transcribe_caused_by(
        chunk: usize,
        problem: impl Into<String>,
        cause: impl Into<Cause>,
    ) -> Self {
        Error::Transcribe {
            chunk,
            problem: problem.into(),
            source: Some(cause.into()),
        }
    }

    /// An [`Error::Sink`] for the output named `sink`.
    pub fn sink(sink: impl Into<String>, problem: impl std::fmt::Display) -> Self {
        Error::Sink {
            sink: sink.into(),
            problem: problem.to_string(),
            source: None,
        }
    }

    /// An [`Error::Sink`] for the output named `sink`, caused by `cause`.
    pub fn sink_caused_by(
        sink: impl Into<String>,
        problem: impl Into<String>,
        cause: impl Into<Cause>,
    ) -> Self {
        Error::Sink {
            sink: sink.into(),
            problem: problem.into(),
            source: Some(cause.into()),
        }
    }

    /// The message followed by every underlying cause, joined by `: `: one line to show where
    /// the causes are not printed on their own.
    ///
    /// ```
    /// use steno_core::Error;
    /// let io = std::io::Error::other("No space left on device");
    /// let error = Error::sink_caused_by("out.srt", "cannot write", io);
    /// assert_eq!(error.to_string(), "out.srt: cannot write");
    /// assert_eq!(error.chain(), "out.srt: cannot write: No space left on device");
    /// ```
    pub fn chain(&self) -> String {
        let mut text = self.to_string();
        let mut cause = std::error::Error::source(self);
        while let Some(error) = cause {
            text.push_str(": ");
            text.push_str(&error.to_string());
            cause = error.source();
        }
        text
    }
}
