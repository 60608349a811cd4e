//! The process backend: the source and chunker on threads of the parent, each chunk sent to an
//! idle worker process, transcripts put back in chunk order, dead workers replaced.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded};
use steno_core::stage::{
    InputThreads, PreparedRun, RunAhead, RunControl, TimedChunk, Transcript, run_slot,
    transcribers_fitting_cores,
};
use steno_core::{
    Backend, Chunk, Error, Overtaken, Pipeline, Result, RunReport, Transcriber, TranscriberFactory,
    Transcription,
};

use crate::worker::{Failure, Killer, Reply, Worker, WorkerCommand};

/// How often the emitter looks for a stopped run while no transcript arrives, to kill the
/// workers still transcribing for it.
const STOP_POLL: Duration = Duration::from_millis(10);

/// Attempts per chunk by default: the first, and two more after a worker died on it.
const DEFAULT_MAX_ATTEMPTS: usize = 3;

const BACKEND_NAME: &str = "process";

/// The worker-process backend. See the [crate docs](crate).
pub struct ProcessBackend {
    command: WorkerCommand,
    workers: Option<usize>,
    max_attempts: usize,
    /// Workers kept between runs, their model loaded.
    idle: Mutex<Vec<Worker>>,
}

impl std::fmt::Debug for ProcessBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessBackend")
            .field("command", &self.command.to_string())
            .field("workers", &self.workers)
            .field("max_attempts", &self.max_attempts)
            .finish_non_exhaustive()
    }
}

impl ProcessBackend {
    /// A backend whose workers run `command` (for example `steno worker --model PATH`).
    ///
    /// By default it runs `max(1, cores / threads)` workers, where `threads` is the pipeline's
    /// [`threads_per_transcriber`](TranscriberFactory::threads_per_transcriber), and tries a
    /// chunk at most 3 times when workers die on it.
    pub fn new(command: WorkerCommand) -> Self {
        ProcessBackend {
            command,
            workers: None,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Runs `workers` worker processes (at least one), whatever the cores.
    #[must_use]
    pub fn with_workers(mut self, workers: usize) -> Self {
        self.workers = Some(workers.max(1));
        self
    }

    /// Gives up on a chunk, ending the run with [`Error::Transcribe`], once `attempts` workers
    /// in a row have died on it (at least one attempt).
    #[must_use]
    pub fn with_max_attempts(mut self, attempts: usize) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The worker command.
    pub fn command(&self) -> &WorkerCommand {
        &self.command
    }

    /// Ends the idle workers kept from earlier runs now, instead of when the backend is
    /// dropped. The next run starts new ones.
    pub fn shutdown(&self) {
        let idle = std::mem::take(&mut *self.idle_workers());
        end_all(idle);
    }

    fn idle_workers(&self) -> std::sync::MutexGuard<'_, Vec<Worker>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn worker_count(&self, threads_per_transcriber: usize) -> usize {
        self.workers
            .unwrap_or_else(|| transcribers_fitting_cores(threads_per_transcriber, None))
    }
}

impl Drop for ProcessBackend {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Ends workers together: every stdin is closed first, so they exit side by side.
fn end_all(mut workers: Vec<Worker>) {
    for worker in &mut workers {
        worker.close_input();
    }
    drop(workers);
}

impl Backend for ProcessBackend {
    fn name(&self) -> &'static str {
        BACKEND_NAME
    }

    /// Runs the pipeline with its transcription in worker processes. The pipeline's
    /// transcriber factory is not called: it names the model the workers must have loaded
    /// (see [`WorkerModel`]), and sizes the pool by its threads.
    ///
    /// # Errors
    /// As [`Backend::run`]; also [`Error::Stage`] when a worker cannot be started, fails its
    /// handshake or breaks the protocol; [`Error::Config`] when a worker's model is not the
    /// pipeline's; [`Error::Transcribe`] when workers died on the same chunk
    /// [`with_max_attempts`](Self::with_max_attempts) times in a row.
    fn run(&self, pipeline: Pipeline) -> Result<RunReport> {
        let PreparedRun {
            start,
            control,
            source,
            chunker,
            transcriber,
            mut emitter,
            options,
        } = pipeline.prepare()?;

        let slots = self.worker_count(transcriber.threads_per_transcriber());
        let mut reused = {
            let mut idle = self.idle_workers();
            let keep = idle.len().saturating_sub(slots);
            idle.split_off(keep)
        };
        let (chunk_tx, chunk_rx) = bounded::<TimedChunk>(options.queue_capacity.max(1));
        let (text_tx, text_rx) = bounded::<Outcome>(options.queue_capacity.max(1));
        let tokens = RunAhead::new(options.run_ahead(slots));
        let shared = Arc::new(Shared {
            control: control.clone(),
            command: self.command.clone(),
            model: transcriber.name(),
            max_attempts: self.max_attempts,
            restarts: AtomicU64::new(0),
            first_failed: AtomicUsize::new(usize::MAX),
            watches: (0..slots).map(|_| Mutex::default()).collect(),
        });

        let input = InputThreads::start(&control, source, chunker, move |chunk| {
            chunk_tx.send(chunk).is_ok()
        });
        let mut slot_threads = Vec::with_capacity(slots);
        for slot in 0..slots {
            let worker = reused.pop();
            let context = SlotContext {
                slot,
                shared: Arc::clone(&shared),
                chunks: chunk_rx.clone(),
                tokens: tokens.clone(),
                texts: text_tx.clone(),
            };
            slot_threads.push(control.spawn_stage("worker slot", move || context.run(worker)));
        }
        drop((chunk_rx, text_tx));

        loop {
            match text_rx.recv_timeout(STOP_POLL) {
                Ok((chunk, outcome)) => {
                    if !control.is_stopped() {
                        // A failed chunk fails the run once the chunks before it are written.
                        control.check(emitter.emit_outcome(chunk, outcome));
                        tokens.give_back(emitter.newly_written());
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if control.is_stopped() {
                // A failed or cancelled run does not wait for inferences in flight.
                shared.kill_busy_workers();
            }
        }

        let counts = input.join(&control);
        let mut workers_peak_rss = 0;
        let mut workers_cpu = 0.0;
        let mut survivors = Vec::new();
        for handle in slot_threads.into_iter().flatten() {
            if let Some(end) = control.join_stage(handle, "worker slot") {
                workers_peak_rss += end.cost.peak_rss_bytes;
                workers_cpu += end.cost.cpu_seconds;
                survivors.extend(end.worker);
            }
        }
        // Workers that are fine wait, their model loaded, for the next run.
        self.idle_workers().extend(survivors);
        control.outcome()?;
        let mut tally = emitter.finish()?;
        counts.add_to(&mut tally);
        tally.worker_restarts = shared.restarts.load(Ordering::SeqCst);
        let mut report = start.report(self.name(), transcriber.name(), options.realtime, &tally);
        report.peak_rss_bytes += workers_peak_rss;
        report.cpu_seconds += workers_cpu;
        Ok(report)
    }
}

/// What a slot sends the emitter: a chunk's index and its transcript or failure.
type Outcome = (usize, Result<Transcript>);

/// What the slots of a run share.
struct Shared {
    control: RunControl,
    command: WorkerCommand,
    /// The model every worker must have loaded: the pipeline's transcriber's name.
    model: String,
    max_attempts: usize,
    restarts: AtomicU64,
    /// The earliest chunk that failed: later chunks are not worth transcribing.
    first_failed: AtomicUsize,
    /// Per slot: its current worker and whether that worker is transcribing.
    watches: Vec<Mutex<Watch>>,
}

#[derive(Default)]
struct Watch {
    killer: Option<Killer>,
    busy: bool,
}

impl Shared {
    fn watch(&self, slot: usize) -> std::sync::MutexGuard<'_, Watch> {
        self.watches[slot]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn kill_busy_workers(&self) {
        for slot in 0..self.watches.len() {
            let watch = self.watch(slot);
            if let (true, Some(killer)) = (watch.busy, &watch.killer) {
                killer.kill();
            }
        }
    }
}

/// Peak memory and CPU time of the worker processes a slot ran during a run.
#[derive(Debug, Default, Clone, Copy)]
struct Cost {
    /// The highest peak of the slot's processes (they ran one after the other).
    peak_rss_bytes: u64,
    /// CPU seconds its processes spent during the run.
    cpu_seconds: f64,
}

/// What a slot hands back: its worker, if it is still fine, and what its workers cost.
struct SlotEnd {
    worker: Option<Worker>,
    cost: Cost,
}

/// One worker slot: a thread of the parent that feeds one worker process at a time.
struct SlotContext {
    slot: usize,
    shared: Arc<Shared>,
    chunks: Receiver<TimedChunk>,
    tokens: RunAhead,
    texts: Sender<Outcome>,
}

/// The worker a slot is running, with its CPU time when the run took it.
struct Current {
    worker: Worker,
    cpu_at_start: f64,
}

impl SlotContext {
    fn control(&self) -> &RunControl {
        &self.shared.control
    }

    fn run(self, reused: Option<Worker>) -> SlotEnd {
        let mut cost = Cost::default();
        let mut current = match reused {
            Some(mut worker) => {
                worker.set_slot(self.slot);
                worker.sample_usage();
                let cpu_at_start = worker.usage().cpu_seconds;
                Some(Current {
                    worker,
                    cpu_at_start,
                })
            }
            None => None,
        };
        if self.ensure_worker(&mut current).is_some() {
            self.serve_chunks(&mut current, &mut cost);
        }
        self.shared.watch(self.slot).killer = None;
        let worker = current.map(|mut current| {
            current.worker.sample_usage();
            account(&mut cost, &current);
            current.worker
        });
        SlotEnd { worker, cost }
    }

    /// Starts a worker if the slot has none, and checks its model; `None` when the run
    /// failed (the failure is recorded).
    fn ensure_worker<'a>(&self, current: &'a mut Option<Current>) -> Option<&'a mut Current> {
        if current.is_none() {
            let worker = self
                .control()
                .check(Worker::start(&self.shared.command, self.slot))?;
            *current = Some(Current {
                worker,
                cpu_at_start: 0.0,
            });
        }
        let running = current.as_mut()?;
        if running.worker.model() != self.shared.model {
            self.control().fail(Error::Config(format!(
                "the worker `{}` serves the model {}, but the pipeline's transcriber is {}",
                self.shared.command,
                running.worker.model(),
                self.shared.model
            )));
            return None;
        }
        self.shared.watch(self.slot).killer = Some(running.worker.killer());
        Some(running)
    }

    fn serve_chunks(&self, current: &mut Option<Current>, cost: &mut Cost) {
        // The round trip to the worker counts as transcription time, so the report's overhead
        // leaves out the pipe hand-off (see BENCHMARKS.md).
        run_slot(
            self.control(),
            &self.tokens,
            &self.shared.first_failed,
            || self.chunks.recv().ok(),
            |chunk, overtaken| {
                self.transcribe(current, cost, chunk, overtaken)
                    .map(|done| done.map(|text| (text, Duration::ZERO)))
            },
            |index, outcome| self.texts.send((index, outcome)).is_ok(),
        );
    }

    /// Transcribes one chunk, replacing workers that die on it: its text, or the error that
    /// fails this chunk (the transcriber's, or too many deaths, or [`Error::Cancelled`] for a
    /// partial chunk whose worker stopped once it was `overtaken`); `None` when the run
    /// failed otherwise or stopped.
    fn transcribe(
        &self,
        current: &mut Option<Current>,
        cost: &mut Cost,
        chunk: &Chunk,
        overtaken: Option<&Overtaken>,
    ) -> Option<Result<Transcription>> {
        let index = chunk.index;
        let mut deaths = 0;
        loop {
            let running = self.ensure_worker(current)?;
            let pid = running.worker.pid();
            {
                let mut watch = self.shared.watch(self.slot);
                watch.busy = true;
                // Checked after marking busy, so a stop in between still kills the worker.
                if self.control().is_stopped() {
                    watch.busy = false;
                    return None;
                }
            }
            tracing::debug!(
                "worker {} (pid {pid}) is transcribing chunk {index}",
                self.slot
            );
            let answer = match overtaken {
                Some(overtaken) => running.worker.transcribe_partial(chunk, overtaken),
                None => running.worker.transcribe(chunk),
            };
            self.shared.watch(self.slot).busy = false;
            running.worker.sample_usage();
            match answer {
                Ok(Reply::Text(done)) => return Some(Ok(done)),
                Ok(Reply::Failed(problem)) => {
                    return Some(Err(Error::transcribe(index, problem)));
                }
                Ok(Reply::Stopped) => return Some(Err(Error::Cancelled)),
                Err(Failure::Protocol(problem)) => {
                    let mut broken = current.take()?;
                    let how = broken.worker.kill_and_wait();
                    account(cost, &broken);
                    self.control().fail(Error::Stage {
                        stage: "process worker",
                        problem: format!(
                            "worker `{}` (pid {pid}) broke the worker protocol on chunk \
                             {index}: {problem} (then: {how})",
                            self.shared.command
                        ),
                    });
                    return None;
                }
                Err(Failure::Died) => {
                    let mut dead = current.take()?;
                    let how = dead.worker.kill_and_wait();
                    account(cost, &dead);
                    self.shared.watch(self.slot).killer = None;
                    if self.control().is_stopped() {
                        // Killed because the run stopped: not a death to recover from.
                        return None;
                    }
                    deaths += 1;
                    if deaths >= self.shared.max_attempts {
                        return Some(Err(Error::transcribe(
                            index,
                            format!(
                                "its worker process died {deaths} times in a row, giving up \
                                 (last: pid {pid}, {how})"
                            ),
                        )));
                    }
                    self.shared.restarts.fetch_add(1, Ordering::SeqCst);
                    tracing::warn!(
                        "worker {} (pid {pid}) died while transcribing chunk {index} ({how}); \
                         starting a new worker and sending the chunk again (attempt {} of {})",
                        self.slot,
                        deaths + 1,
                        self.shared.max_attempts
                    );
                }
            }
        }
    }
}

fn account(cost: &mut Cost, current: &Current) {
    let usage = current.worker.usage();
    cost.peak_rss_bytes = cost.peak_rss_bytes.max(usage.peak_rss_bytes);
    cost.cpu_seconds += (usage.cpu_seconds - current.cpu_at_start).max(0.0);
}

/// Names the model that [`ProcessBackend`]'s workers load, in the [`Pipeline`] it runs,
/// without loading it in this process (the parent then holds no model at all).
///
/// The backend checks that every worker announces this name in its handshake, and sizes its
/// pool by these threads. Transcribing with it in this process is an error.
///
/// ```
/// use steno_core::TranscriberFactory;
/// let model = steno_process::WorkerModel::new("models/ggml-tiny.en-q8_0.bin", 2);
/// assert_eq!(model.name(), "models/ggml-tiny.en-q8_0.bin");
/// assert!(model.create().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerModel {
    name: String,
    threads: usize,
}

impl WorkerModel {
    /// The model the workers announce as `name` (a Whisper model's path, as given to
    /// `steno worker --model`), each using `threads_per_worker` threads.
    pub fn new(name: impl Into<String>, threads_per_worker: usize) -> Self {
        WorkerModel {
            name: name.into(),
            threads: threads_per_worker.max(1),
        }
    }
}

impl TranscriberFactory for WorkerModel {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn threads_per_transcriber(&self) -> usize {
        self.threads
    }

    /// # Errors
    /// Always [`Error::Model`]: this model is loaded by worker processes only.
    fn create(&self) -> Result<Box<dyn Transcriber>> {
        Err(Error::model(
            &self.name,
            "is loaded by the process backend's workers, not in this process: run this \
             pipeline with steno_process::ProcessBackend",
        ))
    }
}
