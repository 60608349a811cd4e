//! `steno-scripted-worker`: a worker process serving core's scripted transcriber, for tests and
//! benchmarks of the process backend without a Whisper model, with faults to inject on demand.
//!
//! ```text
//! steno-scripted-worker [--cost-ms-per-s N] [--fail-on-chunk K] [--crash-on-chunk K]
//!                       [--crash-once-on-chunk K MARKER] [--garbage] [--garbage-on-chunk K]
//!                       [--endless-partials]
//!                       [--model NAME] [--tag TAG]
//!                       [--nats URL [--stream NAME] [--ack-wait-secs N] [--max-deliveries N]]
//! ```
//!
//! - `--cost-ms-per-s N`: spend N ms per second of audio, like a model would.
//! - `--fail-on-chunk K`: the transcriber fails on chunk K (a `Failed` answer).
//! - `--crash-on-chunk K`: the process aborts whenever it is given chunk K.
//! - `--crash-once-on-chunk K MARKER`: aborts on chunk K unless the file MARKER exists, which it
//!   creates first: only the first worker to see chunk K dies.
//! - `--garbage`: writes text instead of the handshake, then waits for its stdin to end.
//! - `--garbage-on-chunk K`: writes text to stdout before answering chunk K.
//! - `--endless-partials`: a partial chunk's decode lasts until the parent stops it (or a
//!   minute).
//! - `--model NAME`: announces NAME as its model instead of `scripted`.
//! - `--tag TAG`: ignored; a label for tests to find their workers in `/proc`.
//! - `--nats URL`: serves the NATS backend's work queue (`steno_nats::NatsWorker`) instead of
//!   stdin and stdout, until it is killed, with the given stream, ack wait and delivery limit.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use steno_core::{
    Chunk, Result, ScriptedTranscriber, Transcriber, TranscriberFactory, Transcription,
};

#[derive(Debug, Clone, Default)]
struct Faults {
    crash_on: Option<usize>,
    crash_once: Option<(usize, PathBuf)>,
    garbage_on: Option<usize>,
    model: Option<String>,
    endless_partials: bool,
}

#[derive(Debug, Clone)]
struct FaultyFactory {
    inner: ScriptedTranscriber,
    faults: Faults,
}

struct FaultyTranscriber {
    inner: Box<dyn Transcriber>,
    faults: Faults,
}

impl TranscriberFactory for FaultyFactory {
    fn name(&self) -> String {
        self.faults
            .model
            .clone()
            .unwrap_or_else(|| self.inner.name())
    }

    fn create(&self) -> Result<Box<dyn Transcriber>> {
        Ok(Box::new(FaultyTranscriber {
            inner: self.inner.create()?,
            faults: self.faults.clone(),
        }))
    }
}

impl Transcriber for FaultyTranscriber {
    fn transcribe(&mut self, chunk: &Chunk) -> Result<Transcription> {
        self.faults.strike(chunk);
        self.inner.transcribe(chunk)
    }

    fn transcribe_partial(
        &mut self,
        chunk: &Chunk,
        overtaken: &steno_core::Overtaken,
    ) -> Result<Option<Transcription>> {
        self.faults.strike(chunk);
        if self.faults.endless_partials {
            let deadline = Instant::now() + Duration::from_secs(60);
            while !overtaken.is_overtaken() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
            return Ok(None);
        }
        self.inner.transcribe_partial(chunk, overtaken)
    }
}

impl Faults {
    /// Does to the process what the faults say for `chunk`.
    fn strike(&self, chunk: &Chunk) {
        if self.crash_on == Some(chunk.index) {
            std::process::abort();
        }
        if let Some((index, marker)) = &self.crash_once
            && *index == chunk.index
            && std::fs::File::create_new(marker).is_ok()
        {
            std::process::abort();
        }
        if self.garbage_on == Some(chunk.index) {
            let mut stdout = std::io::stdout();
            let _ = stdout.write_all(b"this is not a frame\n");
            let _ = stdout.flush();
        }
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> std::result::Result<(), String> {
    let mut args = std::env::args().skip(1);
    let mut scripted = ScriptedTranscriber::new();
    let mut faults = Faults::default();
    let mut garbage = false;
    let mut nats: Option<steno_nats::NatsWorker> = None;
    let number = |value: Option<String>, flag: &str| -> std::result::Result<u64, String> {
        value
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{flag} needs a number"))
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--cost-ms-per-s" => {
                let ms = number(args.next(), &arg)?;
                scripted = scripted.with_cost_per_audio_second(Duration::from_millis(ms));
            }
            "--fail-on-chunk" => {
                scripted = scripted.with_failure_on_chunk(number(args.next(), &arg)? as usize);
            }
            "--crash-on-chunk" => faults.crash_on = Some(number(args.next(), &arg)? as usize),
            "--crash-once-on-chunk" => {
                let index = number(args.next(), &arg)? as usize;
                let marker = args
                    .next()
                    .ok_or("--crash-once-on-chunk needs a marker file")?;
                faults.crash_once = Some((index, PathBuf::from(marker)));
            }
            "--garbage" => garbage = true,
            "--garbage-on-chunk" => faults.garbage_on = Some(number(args.next(), &arg)? as usize),
            "--endless-partials" => faults.endless_partials = true,
            "--model" => faults.model = Some(args.next().ok_or("--model needs a name")?),
            "--tag" => {
                args.next().ok_or("--tag needs a label")?;
            }
            "--nats" => {
                let url = args.next().ok_or("--nats needs a URL")?;
                let target = steno_nats::NatsTarget::new(&url).map_err(|e| e.to_string())?;
                nats = Some(steno_nats::NatsWorker::new(target));
            }
            "--stream" => {
                let name = args.next().ok_or("--stream needs a name")?;
                let worker = nats.take().ok_or("--stream comes after --nats")?;
                nats = Some(worker.with_stream(&name).map_err(|e| e.to_string())?);
            }
            "--ack-wait-secs" => {
                let secs = number(args.next(), &arg)?;
                let worker = nats.take().ok_or("--ack-wait-secs comes after --nats")?;
                nats = Some(worker.with_ack_wait(Duration::from_secs(secs)));
            }
            "--max-deliveries" => {
                let deliveries = u32::try_from(number(args.next(), &arg)?).unwrap_or(u32::MAX);
                let worker = nats.take().ok_or("--max-deliveries comes after --nats")?;
                nats = Some(worker.with_max_deliveries(deliveries));
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if garbage {
        let mut stdout = std::io::stdout();
        let _ = stdout.write_all(b"garbage, not a frame\n");
        let _ = stdout.flush();
        // Stay alive until the parent is done with us, like a misbehaving program would.
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        return Ok(());
    }
    let factory = FaultyFactory {
        inner: scripted,
        faults,
    };
    if let Some(worker) = nats {
        return worker
            .serve(&factory, &steno_core::CancelToken::new())
            .map_err(|e| e.to_string());
    }
    steno_process::serve(&factory, std::io::stdin(), std::io::stdout().lock())
        .map_err(|e| e.to_string())
}
