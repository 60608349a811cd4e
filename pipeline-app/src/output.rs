//! Output destinations: stdout, or a file that only appears once the run has succeeded.
//!
//! A file is written to a temporary file beside it and renamed over it at the end. A target
//! that exists and is not a regular file (`/dev/null`, `/dev/stderr`, a named pipe another
//! program reads) is written in place instead: renaming over it would replace the device or
//! pipe with a plain file, for every program on the machine when steno runs as root.

use std::fs::File;
use std::io::{BufWriter, ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::Context;
use steno_core::{Format, FormatSink, LineLimits, RunReport, Sink};

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
    /// A device or named pipe, written in place as the run goes, like stdout.
    InPlace,
}

impl Output {
    /// Prepares `target` (or stdout); the sink writes to a temporary file until [`commit`](Self::commit).
    /// `label`, when given, names the input in every JSON line (several inputs on stdout).
    /// Subtitles keep to `limits`.
    pub(crate) fn create(
        target: Option<&Path>,
        format: Format,
        limits: LineLimits,
        label: Option<&str>,
    ) -> anyhow::Result<(Self, Box<dyn Sink>)> {
        let Some(target) = target else {
            let stdout = FormatSink::new(format, std::io::stdout(), "stdout");
            let sink = labelled(stdout.with_line_limits(limits), label);
            return Ok((Output::Stdout, Box::new(sink)));
        };
        let (output, file) = if is_in_place(target) {
            let file = open_in_place(target)
                .with_context(|| format!("{}: cannot open the output", target.display()))?;
            (Output::InPlace, file)
        } else {
            let temp = temp_file_for(target)
                .with_context(|| format!("{}: cannot create the output file", target.display()))?;
            let file: File = temp
                .reopen()
                .with_context(|| format!("{}: cannot open the output file", target.display()))?;
            let output = Output::File {
                temp: temp.into_temp_path(),
                target: target.to_path_buf(),
            };
            (output, file)
        };
        let name = target.display().to_string();
        let sink = FormatSink::new(format, BufWriter::new(file), name).with_line_limits(limits);
        Ok((output, Box::new(sink)))
    }

    /// An output held in memory until [`commit`](Self::commit) writes it to stdout.
    pub(crate) fn buffered(
        format: Format,
        limits: LineLimits,
        label: Option<&str>,
    ) -> (Self, Box<dyn Sink>) {
        let buffer = SharedBuffer::default();
        let held = FormatSink::new(format, buffer.clone(), "stdout").with_line_limits(limits);
        let sink = labelled(held, label);
        (Output::Buffered(buffer), Box::new(sink))
    }

    /// Publishes the output of a successful run.
    pub(crate) fn commit(self) -> anyhow::Result<()> {
        match self {
            Output::Stdout => std::io::stdout().flush().context("stdout"),
            // The sink flushed it when the run finished.
            Output::InPlace => Ok(()),
            Output::Buffered(buffer) => {
                let bytes = std::mem::take(&mut *buffer.lock());
                let mut stdout = std::io::stdout().lock();
                stdout
                    .write_all(&bytes)
                    .and_then(|()| stdout.flush())
                    .context("stdout")
            }
            Output::File { temp, target } => {
                let path = temp.to_path_buf();
                let persisted = temp.persist(&target).map_err(|e| plain(e.error));
                forget_pending(&path);
                persisted
                    .with_context(|| format!("{}: cannot write the output file", target.display()))
            }
        }
    }
}

/// `sink`, naming `label` as the input of its JSON lines when there is one.
fn labelled<W: Write + Send>(sink: FormatSink<W>, label: Option<&str>) -> FormatSink<W> {
    match label {
        Some(label) => sink.with_input(label),
        None => sink,
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
    ReportFile::create(path)?.write_bytes(contents)
}

/// A report destination checked (its temporary file created, or a device or pipe opened)
/// before the run, and written when the run has succeeded: an unwritable `--report` fails
/// before minutes of work.
pub(crate) struct ReportFile {
    destination: ReportDestination,
    target: PathBuf,
}

enum ReportDestination {
    Temp(tempfile::NamedTempFile),
    InPlace(File),
}

impl ReportFile {
    /// Creates the temporary file next to `target` (opens `target` when it is a device or a
    /// named pipe).
    pub(crate) fn create(target: &Path) -> anyhow::Result<Self> {
        let context = || format!("{}: cannot create the report", target.display());
        let destination = if is_in_place(target) {
            ReportDestination::InPlace(open_in_place(target).with_context(context)?)
        } else {
            ReportDestination::Temp(temp_file_for(target).with_context(context)?)
        };
        Ok(ReportFile {
            destination,
            target: target.to_path_buf(),
        })
    }

    /// Writes `report` as JSON and renames it into place.
    pub(crate) fn write(self, report: &RunReport) -> anyhow::Result<()> {
        let json = serde_json::to_vec_pretty(report).context("cannot encode the report")?;
        self.write_bytes(&json)
    }

    fn write_bytes(self, contents: &[u8]) -> anyhow::Result<()> {
        let target = self.target;
        let context = || format!("{}: cannot write", target.display());
        match self.destination {
            ReportDestination::InPlace(mut file) => file
                .write_all(contents)
                .and_then(|()| file.flush())
                .with_context(context),
            ReportDestination::Temp(mut temp) => {
                temp.write_all(contents)
                    .map_err(plain)
                    .with_context(context)?;
                let path = temp.path().to_path_buf();
                let persisted = temp.persist(&target).map_err(|e| plain(e.error));
                forget_pending(&path);
                persisted.map(drop).with_context(context)
            }
        }
    }
}

/// Whether `target` is written in place: it exists and is neither a regular file nor a
/// directory (a character device, a named pipe, a socket), following symlinks such as
/// `/dev/stderr`.
fn is_in_place(target: &Path) -> bool {
    std::fs::metadata(target).is_ok_and(|metadata| !metadata.is_file() && !metadata.is_dir())
}

/// Opens a device or named pipe for writing, as shell redirection does (a pipe's open waits
/// for its reader).
fn open_in_place(target: &Path) -> std::io::Result<File> {
    std::fs::OpenOptions::new().write(true).open(target)
}

/// The system's error without the temporary file's name that `tempfile` adds to it: messages
/// name the user's path, never `.steno-XXXXXX.partial`.
fn plain(error: std::io::Error) -> std::io::Error {
    match error.raw_os_error() {
        Some(code) => std::io::Error::from_raw_os_error(code),
        None => std::io::Error::new(error.kind(), error.kind().to_string()),
    }
}

/// Temporary files not yet renamed into place or removed: what an abrupt exit (a second
/// Ctrl-C) must remove itself, since destructors do not run then.
static PENDING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn pending() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    PENDING.lock().unwrap_or_else(PoisonError::into_inner)
}

fn forget_pending(path: &Path) {
    pending().retain(|pending| pending != path);
}

/// Removes every temporary file still pending; for exits that skip destructors.
pub(crate) fn remove_pending_files() {
    for path in pending().drain(..) {
        // Already gone (renamed or dropped) is fine.
        let _ = std::fs::remove_file(path);
    }
}

/// The temporary file `target` is written to before it is renamed into place: in the target's
/// directory (a rename cannot cross file systems), with the permissions the finished file
/// should have. Those are the existing file's when one is replaced, else what creating the
/// file directly would give (0666 less the umask), never the 0600 of a private temporary
/// file: a subtitle file is often read by another program, as another user.
fn temp_file_for(target: &Path) -> std::io::Result<tempfile::NamedTempFile> {
    use std::os::unix::fs::PermissionsExt;
    let dir = match target.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let existing = std::fs::metadata(target)
        .ok()
        .filter(std::fs::Metadata::is_file)
        .map(|metadata| metadata.permissions().mode() & 0o7777);
    let temp = tempfile::Builder::new()
        .prefix(".steno-")
        .suffix(".partial")
        // Created like any new file: the kernel applies the umask to 0666.
        .permissions(std::fs::Permissions::from_mode(0o666))
        .tempfile_in(dir)
        .map_err(|e| match e.kind() {
            // tempfile's error carries no OS code, so `plain` could only name its kind
            // ("entity not found"): say what is missing, or, in a directory that is there
            // (/proc, /sys), that it refuses new files.
            ErrorKind::NotFound if !dir.is_dir() => {
                std::io::Error::new(ErrorKind::NotFound, "no such directory")
            }
            ErrorKind::NotFound => std::io::Error::new(
                ErrorKind::NotFound,
                format!("{} takes no new files", dir.display()),
            ),
            _ => plain(e),
        })?;
    pending().push(temp.path().to_path_buf());
    if let Some(mode) = existing {
        // Exactly the replaced file's mode, which the umask must not narrow.
        temp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode))?;
    }
    Ok(temp)
}
