//! The parent's handle on one worker process: starting it, the handshake, sending chunks,
//! noticing its death, measuring it, and making sure it never outlives its handle.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, BufWriter};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc::{RecvTimeoutError, channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use steno_core::{Chunk, Error, Overtaken, Result, Transcription};

use crate::protocol::{
    Message, PROTOCOL_VERSION, ProtocolError, read_message, write_chunk, write_message,
    write_partial_chunk,
};

/// How long a worker whose stdin was closed may take to exit before it is killed.
const EXIT_GRACE: Duration = Duration::from_millis(500);

/// How often the parent looks whether the partial chunk a worker decodes has been
/// overtaken, to tell it to stop.
const STOP_POLL: Duration = Duration::from_millis(2);

/// The command that starts one worker process: a program and its arguments. The program must
/// serve the worker protocol on its stdin and stdout (see [`serve`](crate::serve())), such as
/// `steno worker`.
///
/// ```
/// use steno_process::WorkerCommand;
/// let command = WorkerCommand::new("steno").arg("worker").args(["--threads", "1"]);
/// assert_eq!(command.to_string(), "steno worker --threads 1");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerCommand {
    program: OsString,
    args: Vec<OsString>,
}

impl WorkerCommand {
    /// Runs `program` with no arguments.
    pub fn new(program: impl Into<OsString>) -> Self {
        WorkerCommand {
            program: program.into(),
            args: Vec::new(),
        }
    }

    /// Adds one argument.
    #[must_use]
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Adds arguments.
    #[must_use]
    pub fn args(mut self, args: impl IntoIterator<Item = impl Into<OsString>>) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    fn command(&self) -> Command {
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }
}

impl std::fmt::Display for WorkerCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.program.to_string_lossy())?;
        for arg in &self.args {
            write!(f, " {}", arg.to_string_lossy())?;
        }
        Ok(())
    }
}

/// A worker's answer to a chunk.
#[derive(Debug)]
pub(crate) enum Reply {
    /// The chunk's text.
    Text(Transcription),
    /// The transcriber failed on the chunk; the worker is fine.
    Failed(String),
    /// The partial chunk's decode stopped, as the parent asked.
    Stopped,
}

/// Why a chunk got no answer.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The worker process went away: killed, crashed or exited.
    Died,
    /// The worker sent something that is not the protocol.
    Protocol(String),
}

/// Kills a worker from another thread (to cancel a run while it transcribes).
#[derive(Debug, Clone)]
pub(crate) struct Killer(Arc<Mutex<Child>>);

impl Killer {
    /// Kills the process if it still runs. The handle's owner reaps it.
    pub(crate) fn kill(&self) {
        // Killing a process that has already exited is harmless; std never signals a pid
        // it has already reaped.
        let _ = self.0.lock().unwrap_or_else(PoisonError::into_inner).kill();
    }
}

/// What a worker process cost: its peak memory and CPU time, read from `/proc`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Usage {
    /// Peak resident set size (VmHWM) in bytes.
    pub(crate) peak_rss_bytes: u64,
    /// User + system CPU seconds since the process started.
    pub(crate) cpu_seconds: f64,
}

/// One running worker process, after a successful handshake.
///
/// Dropping it ends the process: its stdin is closed (a worker exits at the end of its
/// input), and if it has not exited within a short grace period it is killed; either way it
/// is waited for, so no process outlives its handle.
#[derive(Debug)]
pub(crate) struct Worker {
    slot: usize,
    pid: u32,
    child: Arc<Mutex<Child>>,
    stdin: Option<BufWriter<ChildStdin>>,
    stdout: BufReader<ChildStdout>,
    stderr: Option<JoinHandle<()>>,
    last_stderr: Arc<Mutex<String>>,
    model: String,
    command: String,
    usage: Usage,
    exit: Option<ExitStatus>,
}

impl Worker {
    /// Starts a worker for `slot` and completes the handshake.
    ///
    /// # Errors
    /// [`Error::Stage`] when the process cannot start, exits before its handshake (the
    /// message quotes the last line of its stderr), speaks another protocol version, or
    /// writes something that is not the protocol.
    pub(crate) fn start(command: &WorkerCommand, slot: usize) -> Result<Worker> {
        let shown = command.to_string();
        let fail = |problem: String| Error::Stage {
            stage: "process worker",
            problem,
        };
        let mut child = command
            .command()
            .spawn()
            .map_err(|e| fail(format!("cannot start the worker `{shown}`: {e}")))?;
        let pid = child.id();
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(fail(format!("worker `{shown}`: its pipes are missing")));
        };
        let last_stderr = Arc::new(Mutex::new(String::new()));
        let stderr = forward_stderr(stderr, slot, pid, Arc::clone(&last_stderr)).map_err(|e| {
            let _ = child.kill();
            let _ = child.wait();
            fail(format!(
                "cannot start a thread for worker {slot}'s stderr: {e}"
            ))
        })?;
        let mut worker = Worker {
            slot,
            pid,
            child: Arc::new(Mutex::new(child)),
            stdin: Some(BufWriter::new(stdin)),
            stdout: BufReader::new(stdout),
            stderr: Some(stderr),
            last_stderr,
            model: String::new(),
            command: shown,
            usage: Usage::default(),
            exit: None,
        };
        worker.handshake()?;
        worker.sample_usage();
        tracing::debug!(
            slot,
            pid,
            model = worker.model,
            "worker started and completed its handshake"
        );
        Ok(worker)
    }

    fn handshake(&mut self) -> Result<()> {
        let hello = Message::Hello {
            version: PROTOCOL_VERSION,
        };
        let sent = match self.stdin.as_mut() {
            Some(stdin) => write_message(stdin, &hello),
            None => Err(ProtocolError::Closed),
        };
        let answer = sent.and_then(|()| read_message(&mut self.stdout));
        let problem = match answer {
            Ok(Message::Ready {
                version: PROTOCOL_VERSION,
                model,
                ..
            }) => {
                self.model = model;
                return Ok(());
            }
            Ok(Message::Ready { version, .. }) => format!(
                "speaks worker protocol version {version}, this program speaks \
                 {PROTOCOL_VERSION}: the worker and its parent must be the same steno build"
            ),
            Ok(other) => format!(
                "broke the worker protocol: expected Ready, got {}",
                other.name()
            ),
            Err(error) if error.is_disconnect() => {
                let exit = self.kill_and_wait();
                format!("exited before its handshake ({exit})")
            }
            Err(error) => format!(
                "broke the worker protocol in its handshake: {error} (is it a steno worker? \
                 it wrote something that is not a protocol frame to its stdout)"
            ),
        };
        self.kill_and_wait();
        Err(Error::Stage {
            stage: "process worker",
            problem: format!("worker `{}` (pid {}) {problem}", self.command, self.pid),
        })
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// The identity of the model the worker loaded, as it announced it.
    pub(crate) fn model(&self) -> &str {
        &self.model
    }

    /// The worker's last known usage.
    pub(crate) fn usage(&self) -> Usage {
        self.usage
    }

    /// Moves the worker to another slot (a worker reused by a later run).
    pub(crate) fn set_slot(&mut self, slot: usize) {
        self.slot = slot;
    }

    /// A handle that can kill the process from another thread.
    pub(crate) fn killer(&self) -> Killer {
        Killer(Arc::clone(&self.child))
    }

    /// Sends `chunk` and waits for its answer.
    ///
    /// # Errors
    /// [`Failure::Died`] when the process went away (the pipes closed), [`Failure::Protocol`]
    /// when it answered with something that is not the answer to this chunk.
    pub(crate) fn transcribe(&mut self, chunk: &Chunk) -> std::result::Result<Reply, Failure> {
        let sent = match self.stdin.as_mut() {
            Some(stdin) => write_chunk(stdin, chunk),
            None => Err(ProtocolError::Closed),
        };
        let answer = sent.and_then(|()| read_message(&mut self.stdout));
        reply(chunk, answer, false)
    }

    /// Sends partial `chunk` and waits for its answer, telling the worker to stop once
    /// `overtaken` says so: [`Reply::Stopped`] if it did before its decode ended.
    ///
    /// # Errors
    /// As [`transcribe`](Self::transcribe).
    pub(crate) fn transcribe_partial(
        &mut self,
        chunk: &Chunk,
        overtaken: &Overtaken,
    ) -> std::result::Result<Reply, Failure> {
        let Some(stdin) = self.stdin.as_mut() else {
            return reply(chunk, Err(ProtocolError::Closed), true);
        };
        if let Err(error) = write_partial_chunk(stdin, chunk) {
            return reply(chunk, Err(error), true);
        }
        let stdout = &mut self.stdout;
        let answer = std::thread::scope(|scope| {
            let (answered, wait) = channel::<()>();
            scope.spawn(move || {
                // Until the answer comes (`answered` dropped), watch for the chunk being
                // overtaken. A worker gone meanwhile shows in its answer, not here.
                while let Err(RecvTimeoutError::Timeout) = wait.recv_timeout(STOP_POLL) {
                    if overtaken.is_overtaken() {
                        let _ = write_message(stdin, &Message::Stop { chunk: chunk.index });
                        return;
                    }
                }
            });
            let answer = read_message(stdout);
            drop(answered);
            answer
        });
        reply(chunk, answer, true)
    }

    /// Reads the process's peak memory and CPU time from `/proc` while it runs.
    pub(crate) fn sample_usage(&mut self) {
        if let Some(usage) = read_usage(self.pid) {
            self.usage.peak_rss_bytes = self.usage.peak_rss_bytes.max(usage.peak_rss_bytes);
            self.usage.cpu_seconds = self.usage.cpu_seconds.max(usage.cpu_seconds);
        }
    }

    /// Kills the process (if it still runs), waits for it and its stderr, and describes how it
    /// ended, with the last line it wrote to stderr.
    pub(crate) fn kill_and_wait(&mut self) -> String {
        self.stdin = None;
        let status = match self.exit {
            Some(status) => Ok(status),
            None => {
                let mut child = self.child.lock().unwrap_or_else(PoisonError::into_inner);
                let _ = child.kill();
                child.wait()
            }
        };
        self.finish_stderr();
        let mut how = match status {
            Ok(status) => {
                self.exit = Some(status);
                status.to_string()
            }
            Err(error) => format!("cannot wait for it: {error}"),
        };
        let last = self
            .last_stderr
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if !last.is_empty() {
            how = format!("{how}; its last words: {last}");
        }
        how
    }

    /// Waits for the stderr thread, which ends when the process's stderr closes. A process of
    /// the worker's own that inherited its stderr may keep it open; the thread is then left to
    /// end with it rather than holding up the run.
    fn finish_stderr(&mut self) {
        let Some(thread) = self.stderr.take() else {
            return;
        };
        let deadline = Instant::now() + EXIT_GRACE;
        while !thread.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        if thread.is_finished() {
            let _ = thread.join();
        }
    }

    /// Closes the worker's stdin: a healthy worker exits once it has read to the end.
    pub(crate) fn close_input(&mut self) {
        self.stdin = None;
    }

    /// Ends a healthy worker: closes its stdin and gives it a moment to exit, then kills it.
    fn shut_down(&mut self) {
        if self.exit.is_some() {
            return;
        }
        self.sample_usage();
        self.stdin = None;
        let deadline = Instant::now() + EXIT_GRACE;
        loop {
            let waited = self
                .child
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .try_wait();
            match waited {
                Ok(Some(status)) => {
                    self.exit = Some(status);
                    self.finish_stderr();
                    tracing::debug!(slot = self.slot, pid = self.pid, %status, "worker exited");
                    return;
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Ok(None) | Err(_) => break,
            }
        }
        let how = self.kill_and_wait();
        tracing::debug!(
            slot = self.slot,
            pid = self.pid,
            "worker killed after its grace period: {how}"
        );
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// The worker's `answer` to `chunk` (a partial one if `partial`), as a [`Reply`] or the
/// [`Failure`] it shows.
fn reply(
    chunk: &Chunk,
    answer: std::result::Result<Message, ProtocolError>,
    partial: bool,
) -> std::result::Result<Reply, Failure> {
    let protocol = |problem: String| Failure::Protocol(problem);
    match answer {
        Ok(Message::Text {
            chunk: index,
            transcription,
        }) if index == chunk.index => Ok(Reply::Text(transcription)),
        Ok(Message::Failed {
            chunk: index,
            problem,
        }) if index == chunk.index => Ok(Reply::Failed(problem)),
        Ok(Message::Stopped { chunk: index }) if partial && index == chunk.index => {
            Ok(Reply::Stopped)
        }
        Ok(
            Message::Text { chunk: index, .. }
            | Message::Failed { chunk: index, .. }
            | Message::Stopped { chunk: index },
        ) if index != chunk.index => Err(protocol(format!(
            "answered chunk {index} when asked for chunk {}",
            chunk.index
        ))),
        Ok(other) => Err(protocol(format!(
            "answered a chunk with a {} message",
            other.name()
        ))),
        Err(error) if error.is_disconnect() => Err(Failure::Died),
        Err(ProtocolError::Malformed { message, problem })
            if message.starts_with("Transcribe") && problem.contains("over the limit") =>
        {
            Err(protocol(format!(
                "cannot send chunk {}: {problem}",
                chunk.index
            )))
        }
        Err(error) => Err(protocol(format!(
            "wrote something that is not a protocol frame to its stdout (garbage?): {error}"
        ))),
    }
}

/// Forwards the worker's stderr to the parent's log, line by line, keeping the last line for
/// error messages.
fn forward_stderr(
    stderr: std::process::ChildStderr,
    slot: usize,
    pid: u32,
    last: Arc<Mutex<String>>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("steno-worker-{slot}-stderr"))
        .spawn(move || {
            let mut reader = BufReader::new(stderr);
            let mut line = Vec::new();
            loop {
                line.clear();
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                let text = String::from_utf8_lossy(&line);
                let text = text.trim_end();
                if text.is_empty() {
                    continue;
                }
                log_worker_line(slot, pid, text);
                let mut kept = last.lock().unwrap_or_else(PoisonError::into_inner);
                kept.clear();
                kept.extend(text.chars().take(500));
            }
        })
}

/// Logs one line of a worker's stderr. A line the worker logged through `tracing`
/// (`<time> <LEVEL> <message>`) keeps its level, without the worker's timestamp; anything else
/// (a panic, a native library's complaint) is a warning.
fn log_worker_line(slot: usize, pid: u32, line: &str) {
    // tracing's format pads the level: `<time>  INFO <message>`.
    let logged = line
        .split_once(' ')
        .and_then(|(_time, rest)| rest.trim_start().split_once(' '));
    let (level, message) = logged.map_or((None, None), |(l, m)| (Some(l), Some(m)));
    match (level, message) {
        (Some("TRACE"), Some(message)) => {
            tracing::trace!(target: "steno_process::worker", "worker {slot} (pid {pid}): {message}");
        }
        (Some("DEBUG"), Some(message)) => {
            tracing::debug!(target: "steno_process::worker", "worker {slot} (pid {pid}): {message}");
        }
        (Some("INFO"), Some(message)) => {
            tracing::info!(target: "steno_process::worker", "worker {slot} (pid {pid}): {message}");
        }
        (Some("ERROR"), Some(message)) => {
            tracing::error!(target: "steno_process::worker", "worker {slot} (pid {pid}): {message}");
        }
        (Some("WARN"), Some(message)) => {
            tracing::warn!(target: "steno_process::worker", "worker {slot} (pid {pid}): {message}");
        }
        _ => tracing::warn!(target: "steno_process::worker", "worker {slot} (pid {pid}): {line}"),
    }
}

/// Peak memory (VmHWM) and CPU time of process `pid`, from `/proc` (`None` where unavailable,
/// or once the process has exited).
fn read_usage(pid: u32) -> Option<Usage> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces; fields after its closing ')' are fixed.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some(Usage {
        peak_rss_bytes: kib * 1024,
        // Clock ticks of 1/100 s (USER_HZ) on every mainstream Linux architecture.
        cpu_seconds: (utime + stime) / 100.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_of_a_live_process_is_read_from_proc() {
        let usage = read_usage(std::process::id());
        if cfg!(target_os = "linux") {
            let usage = usage.unwrap();
            assert!(usage.peak_rss_bytes > 1_000_000, "{usage:?}");
        }
        assert!(read_usage(u32::MAX).is_none());
    }

    #[test]
    fn a_program_that_is_not_a_worker_is_refused_with_its_reason() {
        // `sh -c` that prints garbage on stdout: refused as a protocol error, not a crash.
        let garbage = WorkerCommand::new("sh").args(["-c", "echo garbage; exec sleep 5"]);
        let err = Worker::start(&garbage, 0).unwrap_err().to_string();
        assert!(err.contains("broke the worker protocol"), "{err}");
        assert!(err.contains("not a protocol frame"), "{err}");
        // One that exits at once, saying why on stderr.
        let dies = WorkerCommand::new("sh").args(["-c", "echo 'no model here' >&2; exit 3"]);
        let err = Worker::start(&dies, 0).unwrap_err().to_string();
        assert!(err.contains("exited before its handshake"), "{err}");
        assert!(err.contains("exit status: 3"), "{err}");
        assert!(err.contains("no model here"), "{err}");
        // One that does not exist.
        let missing = WorkerCommand::new("/nonexistent/steno");
        let err = Worker::start(&missing, 0).unwrap_err().to_string();
        assert!(
            err.contains("cannot start the worker `/nonexistent/steno`"),
            "{err}"
        );
    }
}
