//! Output destinations: stdout, or a file that only appears once the run has succeeded.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::Context;
use steno_core::{Format, FormatSink, Sink};

/// Where segments are written.
pub(crate) enum Output {
    Stdout,
    /// A temporary file next to the target, renamed over it on success and deleted otherwise.
    File {
        temp: tempfile::TempPath,
        target: PathBuf,
    },
    /// Held in memory, written to stdout on commit: the output of an input transcribed
    /// alongside earlier ones, whose outputs must reach stdout first.
    Buffered(SharedBuffer),
}

impl Output {
    /// Prepares `target` (or stdout); the sink writes to a temporary file until [`commit`].
    pub(crate) fn create(
        target: Option<&Path>,
        format: Format,
    ) -> anyhow::Result<(Self, Box<dyn Sink>)> {
        let Some(target) = target else {
            let sink = FormatSink::new(format, std::io::stdout(), "stdout");
            return Ok((Output::Stdout, Box::new(sink)));
        };
        let dir = match target.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let temp = tempfile::Builder::new()
            .prefix(".steno-")
            .suffix(".partial")
            .tempfile_in(dir)
            .with_context(|| format!("{}: cannot create the output file", target.display()))?;
        let file: File = temp
            .reopen()
            .with_context(|| format!("{}: cannot open the output file", target.display()))?;
        let name = target.display().to_string();
        let sink = FormatSink::new(format, BufWriter::new(file), name);
        Ok((
            Output::File {
                temp: temp.into_temp_path(),
                target: target.to_path_buf(),
            },
            Box::new(sink),
        ))
    }

    /// An output held in memory until [`commit`](Self::commit) writes it to stdout.
    pub(crate) fn buffered(format: Format) -> (Self, Box<dyn Sink>) {
        let buffer = SharedBuffer::default();
        let sink = FormatSink::new(format, buffer.clone(), "stdout");
        (Output::Buffered(buffer), Box::new(sink))
    }

    /// Publishes the output of a successful run.
    pub(crate) fn commit(self) -> anyhow::Result<()> {
        match self {
            Output::Stdout => std::io::stdout().flush().context("stdout"),
            Output::Buffered(buffer) => {
                let bytes = std::mem::take(&mut *buffer.lock());
                let mut stdout = std::io::stdout().lock();
                stdout
                    .write_all(&bytes)
                    .and_then(|()| stdout.flush())
                    .context("stdout")
            }
            Output::File { temp, target } => temp
                .persist(&target)
                .map(drop)
                .with_context(|| format!("{}: cannot write the output file", target.display())),
        }
    }
}

/// Bytes written by a sink on one thread and published from another.
#[derive(Debug, Clone, Default)]
pub(crate) struct SharedBuffer(Arc<Mutex<Vec<u8>>>);

impl SharedBuffer {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<u8>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Write for SharedBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.lock().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Writes `contents` to `path` atomically (temporary file + rename).
pub(crate) fn write_atomically(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let context = || format!("{}: cannot write", path.display());
    let mut temp = tempfile::Builder::new()
        .prefix(".steno-")
        .suffix(".partial")
        .tempfile_in(dir)
        .with_context(context)?;
    temp.write_all(contents).with_context(context)?;
    temp.persist(path).map(drop).with_context(context)
}
