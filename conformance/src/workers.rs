//! The process backend as the suite runs it: for each pipeline, worker processes that serve
//! that pipeline's own transcriber.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use steno_core::{
    Backend, Chunk, Error, Pipeline, Result, RunReport, ScriptedTranscriber, Transcriber,
    TranscriberFactory, Transcription,
};
use steno_process::{ProcessBackend, WorkerCommand};

/// The name [`ProcessBackend`] reports.
const PROCESS: &str = "process";

/// Runs each pipeline on a [`ProcessBackend`] whose workers run `steno-conformance-worker
/// --model NAME --threads N`, where NAME and N are the pipeline transcriber's name and threads:
/// a [`WorkerScript`] name or a Whisper model's path. The workers then transcribe exactly
/// what an in-process backend would, and the scheduling under test is the process backend's
/// own.
///
/// A pipeline whose transcriber cannot run in a worker is declined with
/// [`Error::Unsupported`], which the suite records.
#[derive(Debug, Clone)]
pub struct ProcessWorkers {
    program: PathBuf,
}

impl ProcessWorkers {
    /// Workers run `program`, the `steno-conformance-worker` binary (in this crate's tests,
    /// `env!("CARGO_BIN_EXE_steno-conformance-worker")`).
    pub fn new(program: impl Into<PathBuf>) -> Self {
        ProcessWorkers {
            program: program.into(),
        }
    }
}

impl Backend for ProcessWorkers {
    fn name(&self) -> &'static str {
        PROCESS
    }

    /// # Errors
    /// [`Error::Unsupported`] when the transcriber is neither a scripted spec nor a model
    /// file; otherwise what [`ProcessBackend::run`] returns.
    fn run(&self, pipeline: Pipeline) -> Result<RunReport> {
        let model_args = worker_model_args(&pipeline.transcriber().name(), PROCESS)?;
        let threads = pipeline.transcriber().threads_per_transcriber();
        let command = WorkerCommand::new(&self.program)
            .args(model_args)
            .args(["--threads".to_owned(), threads.to_string()]);
        ProcessBackend::new(command).run(pipeline)
    }
}

/// The arguments that make `steno-conformance-worker` serve the transcriber called `name`:
/// a [`WorkerScript`] or a model file by name, or the model of a case with options (see
/// `model::worker_args`).
///
/// # Errors
/// [`Error::Unsupported`] for `backend` when no worker can serve it.
pub(crate) fn worker_model_args(name: &str, backend: &'static str) -> Result<Vec<String>> {
    if WorkerScript::parse(name).is_ok() || Path::new(name).is_file() {
        return Ok(vec!["--model".to_owned(), name.to_owned()]);
    }
    #[cfg(feature = "model")]
    if let Some(args) = crate::model::worker_args(name) {
        return Ok(args);
    }
    Err(Error::Unsupported {
        backend,
        what: format!(
            "the transcriber `{name}`: its workers run a model file (maybe with a model case's \
             options) or a scripted transcriber's spec"
        ),
    })
}

/// The words of a [`WorkerScript`] name before the script's spec.
const STALL_UNTIL: &str = "stall-until=";
const STALL_LIMIT_MS: &str = "stall-limit-ms=";
const COUNT_STARTS: &str = "count-starts=";

/// How a worker's scripted transcriber stalls: every transcription first appends one byte to
/// `starts` (so the suite counts transcriptions started in other processes), then waits until
/// the file `until` exists, at most `limit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerStall {
    /// The file whose existence ends the stall (the suite's source creates it at its end).
    pub until: PathBuf,
    /// The longest a transcription waits for it.
    pub limit: Duration,
    /// The file each transcription appends a byte to when it starts.
    pub starts: PathBuf,
}

/// A scripted transcriber as a worker process runs it for the suite, named so that its name
/// alone rebuilds it: the script's [spec](ScriptedTranscriber::spec), optionally preceded by
/// `stall-until=PATH stall-limit-ms=N count-starts=PATH` (a [`WorkerStall`]). The suite's
/// source creates the `stall-until` file when it ends, so a worker stalls until the source
/// has ended, as the suite's in-process transcribers do.
#[derive(Debug, Clone)]
pub struct WorkerScript {
    name: String,
    script: ScriptedTranscriber,
    stall: Option<WorkerStall>,
}

impl WorkerScript {
    /// The name of `script`, stalled as `stall` says, or `None` when the script has no spec or
    /// a path is not UTF-8 or holds whitespace.
    pub fn name_for(script: &ScriptedTranscriber, stall: Option<&WorkerStall>) -> Option<String> {
        let spec = script.spec()?;
        let Some(stall) = stall else {
            return Some(spec);
        };
        let word = |path: &Path| {
            path.to_str()
                .filter(|path| !path.contains(char::is_whitespace))
                .map(str::to_owned)
        };
        Some(format!(
            "{STALL_UNTIL}{} {STALL_LIMIT_MS}{} {COUNT_STARTS}{} {spec}",
            word(&stall.until)?,
            stall.limit.as_millis(),
            word(&stall.starts)?
        ))
    }

    /// The worker script called `name`.
    ///
    /// # Errors
    /// [`Error::Config`] when `name` is not a worker script's name.
    pub fn parse(name: &str) -> Result<Self> {
        let invalid = |problem: &str| Error::Config(format!("worker script `{name}`: {problem}"));
        let mut rest = name;
        let (mut until, mut limit, mut starts) = (None, None, None);
        while let Some((word, after)) = rest.split_once(' ') {
            if let Some(path) = word.strip_prefix(STALL_UNTIL) {
                until = Some(PathBuf::from(path));
            } else if let Some(path) = word.strip_prefix(COUNT_STARTS) {
                starts = Some(PathBuf::from(path));
            } else if let Some(ms) = word.strip_prefix(STALL_LIMIT_MS) {
                let ms = ms
                    .parse()
                    .map_err(|_| invalid(&format!("`{ms}` is not a number")))?;
                limit = Some(Duration::from_millis(ms));
            } else {
                break;
            }
            rest = after;
        }
        let stall = match (until, limit, starts) {
            (Some(until), Some(limit), Some(starts)) => Some(WorkerStall {
                until,
                limit,
                starts,
            }),
            (None, None, None) => None,
            _ => {
                return Err(invalid(&format!(
                    "{STALL_UNTIL}, {STALL_LIMIT_MS} and {COUNT_STARTS} go together"
                )));
            }
        };
        Ok(WorkerScript {
            name: name.to_owned(),
            script: ScriptedTranscriber::from_spec(rest)?,
            stall,
        })
    }
}

impl TranscriberFactory for WorkerScript {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn create(&self) -> Result<Box<dyn Transcriber>> {
        Ok(Box::new(StalledScript {
            script: self.script.create()?,
            stall: self.stall.clone(),
        }))
    }
}

struct StalledScript {
    script: Box<dyn Transcriber>,
    stall: Option<WorkerStall>,
}

impl Transcriber for StalledScript {
    fn transcribe(&mut self, chunk: &Chunk) -> Result<Transcription> {
        self.stall(chunk)?;
        self.script.transcribe(chunk)
    }

    fn transcribe_partial(
        &mut self,
        chunk: &Chunk,
        overtaken: &steno_core::Overtaken,
    ) -> Result<Option<Transcription>> {
        self.stall(chunk)?;
        self.script.transcribe_partial(chunk, overtaken)
    }
}

impl StalledScript {
    /// Counts the start, then waits for the parent's source to end, if the case asks to.
    fn stall(&self, chunk: &Chunk) -> Result<()> {
        if let Some(stall) = &self.stall {
            // Appends of one byte are atomic, so concurrent workers are counted exactly.
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&stall.starts)
                .and_then(|mut file| file.write_all(b"."))
                .map_err(|error| {
                    Error::transcribe_caused_by(
                        chunk.index,
                        format!("{}: cannot count the start", stall.starts.display()),
                        error,
                    )
                })?;
            let deadline = Instant::now() + stall.limit;
            // A worker cannot be woken by the parent's source: it polls for the file.
            while !stall.until.exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_reports_the_process_backends_name() {
        let backend = ProcessBackend::new(WorkerCommand::new("unused"));
        assert_eq!(ProcessWorkers::new("unused").name(), backend.name());
    }

    #[test]
    fn a_worker_script_is_rebuilt_from_its_name() {
        let script = ScriptedTranscriber::new().with_failure_on_chunk(2);
        let stall = WorkerStall {
            until: PathBuf::from("/tmp/ended"),
            limit: Duration::from_secs(3),
            starts: PathBuf::from("/tmp/starts"),
        };
        let name = WorkerScript::name_for(&script, Some(&stall)).unwrap();
        assert_eq!(
            name,
            "stall-until=/tmp/ended stall-limit-ms=3000 count-starts=/tmp/starts \
             scripted fail-on-chunk=2"
        );
        let parsed = WorkerScript::parse(&name).unwrap();
        assert_eq!(parsed.name(), name);
        assert_eq!(parsed.stall, Some(stall.clone()));
        assert_eq!(parsed.script.spec().unwrap(), "scripted fail-on-chunk=2");
        assert!(WorkerScript::parse("scripted").unwrap().stall.is_none());
        assert!(WorkerScript::parse("stall-until=/tmp/x scripted").is_err());
        assert!(WorkerScript::parse("models/ggml-tiny.en.bin").is_err());
        let spaced = WorkerStall {
            until: PathBuf::from("/tmp/a b"),
            ..stall
        };
        assert_eq!(WorkerScript::name_for(&script, Some(&spaced)), None);
    }

    #[test]
    fn a_stalled_script_counts_its_starts_and_waits_for_its_file() {
        let base = std::env::temp_dir().join(format!("steno-stall-test-{}", std::process::id()));
        let stall = WorkerStall {
            until: base.with_extension("ended"),
            limit: Duration::from_millis(50),
            starts: base.with_extension("starts"),
        };
        let _ = std::fs::remove_file(&stall.until);
        let _ = std::fs::remove_file(&stall.starts);
        let name = WorkerScript::name_for(&ScriptedTranscriber::new(), Some(&stall)).unwrap();
        let mut transcriber = WorkerScript::parse(&name).unwrap().create().unwrap();
        let chunk = Chunk::new(0, 0, vec![0.0; 160]);
        let began = Instant::now();
        transcriber.transcribe(&chunk).unwrap();
        assert!(
            began.elapsed() >= Duration::from_millis(50),
            "it waited for the file until its limit"
        );
        std::fs::write(&stall.until, b"").unwrap();
        assert_eq!(
            transcriber.transcribe(&chunk).unwrap().text,
            "chunk 0 at 0.00-0.01"
        );
        assert_eq!(
            std::fs::read(&stall.starts).unwrap(),
            b"..",
            "two starts counted"
        );
        std::fs::remove_file(&stall.until).unwrap();
        std::fs::remove_file(&stall.starts).unwrap();
    }
}
