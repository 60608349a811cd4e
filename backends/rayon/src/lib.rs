//! # steno-rayon
//!
//! Runs steno [`Pipeline`]s with their independent chunks transcribed in parallel on a rayon
//! pool, each pool thread with its own Whisper state on one shared model. Use it to get through
//! a backlog: one long recording, or many files at once ([`RayonBackend::run_all`]), with every
//! core busy and the output exactly the sequential one, in chunk order and input order. The
//! `steno` command line uses it for `--backend rayon` (`--pool N`).
//!
//! ```
//! use std::sync::Arc;
//! use steno_core::{Backend, ChunkerConfig, CollectingSink, Pipeline, ScriptedTranscriber,
//!     VadKind, VecSource};
//! use steno_rayon::RayonBackend;
//!
//! // Two recordings, each with bursts of "speech" (a loud tone) separated by silence.
//! let tone: Vec<f32> = (0..16_000).map(|i| 0.3 * (i as f32 * 0.05).sin()).collect();
//! let first = [vec![0.0; 8_000], tone.clone(), vec![0.0; 16_000], tone.clone()].concat();
//! let second = [vec![0.0; 8_000], tone].concat();
//!
//! let model = Arc::new(ScriptedTranscriber::new()); // or steno_core::WhisperModel::load(...)?
//! let sinks = [CollectingSink::new(), CollectingSink::new()];
//! let pipelines = [first, second].into_iter().zip(&sinks).map(|(audio, sink)| {
//!     Pipeline::builder(VecSource::new(audio), model.clone(), sink.clone())
//!         .chunker(ChunkerConfig::default().with_vad(VadKind::Energy))
//!         .build()
//! });
//!
//! // Chunks of both inputs share the pool; each input's segments stay in order.
//! let pipelines = pipelines.collect::<Result<Vec<_>, _>>()?;
//! let reports = RayonBackend::new().with_pool_size(2).run_all(pipelines);
//! assert_eq!(reports.len(), 2);
//! assert_eq!(reports[0].as_ref().map(|r| r.chunks).ok(), Some(2));
//! assert_eq!(sinks[0].segments()[1].text, "chunk 1 at 2.29-3.50");
//! assert_eq!(sinks[1].segments()[0].text, "chunk 0 at 0.29-1.50");
//! # Ok::<(), steno_core::Error>(())
//! ```
//!
//! ## What runs where
//!
//! Each input's source (decoding, real-time pacing) and chunker (voice activity detection)
//! run on two std threads of their own, as in the threads backend. Transcription runs on the
//! rayon pool: every chunk is one task, which borrows a free Whisper state (created on first
//! need, at most one per pool thread and model) and gives it back. The calling thread
//! dispatches chunks, earliest input first, and writes transcripts to each input's sink in
//! chunk order ([`Emitter`]), so a chunk that finishes early waits for the ones before it.
//! At most `pool + queue_capacity` chunks are in flight at once, and per input at most that
//! many past the last one written, so memory stays bounded however uneven the chunks are.
//! With several inputs, a few are open at a time (pool size + 1): an input starts when an
//! earlier one has finished.
//!
//! ## Sizing
//!
//! The pool has `max(1, cores / threads)` threads by default, where `threads` is the model's
//! [`threads_per_transcriber`](TranscriberFactory::threads_per_transcriber), so pool x threads
//! stays within the cores (one state x 2 threads on 2 cores). [`RayonBackend::with_pool_size`]
//! sets it; the model's threads are set where it is loaded.
//!
//! ## Failures and cancellation
//!
//! An input's failure ends that input only: a transcriber error on chunk k is returned once
//! the chunks before k are written (the same output as a sequential run), and the other inputs
//! go on. Cancelling an input's [`CancelToken`](steno_core::CancelToken) ends it once its
//! inferences in flight finish (Whisper cannot be interrupted). `cpu_seconds` and
//! `peak_rss_bytes` in the reports are the whole process's, shared by the inputs that ran
//! side by side.

use std::collections::BTreeSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crossbeam_channel::{Receiver, Select, Sender, TryRecvError, bounded, unbounded};
use steno_core::stage::{
    Emitter, InputThreads, PreparedRun, RunControl, RunStart, TimedChunk, Transcript, transcribe,
};
use steno_core::{Backend, Error, Pipeline, Result, RunReport, Transcriber, TranscriberFactory};

/// How often the dispatcher looks for cancelled inputs while nothing else happens.
const STOP_POLL: Duration = Duration::from_millis(10);

const BACKEND_NAME: &str = "rayon";

/// The rayon backend. See the [crate docs](crate).
#[derive(Debug, Clone, Default)]
pub struct RayonBackend {
    pool_size: Option<usize>,
}

impl RayonBackend {
    /// The backend with default settings: as many pool threads as the cores allow.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `threads` pool threads, hence at most that many Whisper states per model (at
    /// least one), whatever the cores.
    #[must_use]
    pub fn with_pool_size(mut self, threads: usize) -> Self {
        self.pool_size = Some(threads.max(1));
        self
    }

    /// The pool size for pipelines whose transcribers use `threads_per_transcriber` threads.
    pub fn pool_size(&self, threads_per_transcriber: usize) -> usize {
        self.pool_size.unwrap_or_else(|| {
            steno_core::stage::transcribers_fitting_cores(threads_per_transcriber, None)
        })
    }

    /// Runs several pipelines (independent inputs) at once, their chunks sharing the pool, and
    /// returns their outcomes in input order.
    ///
    /// Pipelines holding the same model (the same `Arc`) share its Whisper states.
    ///
    /// # Errors
    /// Each outcome is that pipeline's own, as [`Backend::run`] describes it; one input's
    /// failure does not stop the others.
    pub fn run_all(&self, pipelines: Vec<Pipeline>) -> Vec<Result<RunReport>> {
        let mut reports = Vec::with_capacity(pipelines.len());
        self.run_all_with(pipelines, |_, report| reports.push(report));
        reports
    }

    /// As [`run_all`](Self::run_all), but hands each outcome to `on_finished` (with the
    /// pipeline's index) as soon as it and every earlier pipeline have finished: in input
    /// order, while later inputs are still being transcribed. A caller can so publish each
    /// output as early as order allows.
    ///
    /// # Errors
    /// As [`run_all`](Self::run_all).
    pub fn run_all_with(
        &self,
        pipelines: Vec<Pipeline>,
        mut on_finished: impl FnMut(usize, Result<RunReport>),
    ) {
        if pipelines.is_empty() {
            return;
        }
        let threads = pipelines
            .iter()
            .map(|p| p.transcriber().threads_per_transcriber())
            .max()
            .unwrap_or(1);
        let pool_size = self.pool_size(threads);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(pool_size)
            .thread_name(|i| format!("steno-rayon-{i}"))
            .build();
        let pool = match pool {
            Ok(pool) => pool,
            Err(error) => {
                for index in 0..pipelines.len() {
                    on_finished(
                        index,
                        Err(Error::Stage {
                            stage: "rayon pool",
                            problem: format!("cannot start the pool: {error}"),
                        }),
                    );
                }
                return;
            }
        };
        let states = States::for_pipelines(&pipelines);
        let mut dispatcher = Dispatcher::new(pipelines, pool_size);
        pool.in_place_scope(|scope| dispatcher.run(scope, &states, &mut on_finished));
        // Every task has ended (the scope waited for them); the states go with the run.
        drop(states);
    }
}

impl Backend for RayonBackend {
    fn name(&self) -> &'static str {
        BACKEND_NAME
    }

    fn run(&self, pipeline: Pipeline) -> Result<RunReport> {
        self.run_all(vec![pipeline])
            .pop()
            .unwrap_or(Err(Error::Stage {
                stage: "rayon dispatcher",
                problem: "the run produced no outcome".into(),
            }))
    }
}

/// Free Whisper states, one pool per distinct model; tasks borrow one and give it back.
struct States {
    models: Vec<Arc<dyn TranscriberFactory>>,
    free: Vec<Mutex<Vec<Box<dyn Transcriber>>>>,
}

impl States {
    fn for_pipelines(pipelines: &[Pipeline]) -> Self {
        let mut models: Vec<Arc<dyn TranscriberFactory>> = Vec::new();
        for pipeline in pipelines {
            if !models
                .iter()
                .any(|m| Arc::ptr_eq(m, pipeline.transcriber()))
            {
                models.push(Arc::clone(pipeline.transcriber()));
            }
        }
        let free = models.iter().map(|_| Mutex::default()).collect();
        States { models, free }
    }

    fn model_of(&self, factory: &Arc<dyn TranscriberFactory>) -> usize {
        self.models
            .iter()
            .position(|m| Arc::ptr_eq(m, factory))
            .unwrap_or(0)
    }

    fn free(&self, model: usize) -> std::sync::MutexGuard<'_, Vec<Box<dyn Transcriber>>> {
        self.free[model]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// A free state of `model`, or a new one: at most one per task running at once.
    fn take(&self, model: usize) -> Result<Box<dyn Transcriber>> {
        let free = self.free(model).pop();
        match free {
            Some(state) => Ok(state),
            None => self.models[model].create(),
        }
    }

    fn give_back(&self, model: usize, state: Box<dyn Transcriber>) {
        self.free(model).push(state);
    }

    /// Transcribes `timed` with a state of `model`; a panic becomes an error.
    fn transcribe(&self, model: usize, timed: &TimedChunk) -> Result<Transcript> {
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let mut state = self.take(model)?;
            let transcript = transcribe(state.as_mut(), timed);
            self.give_back(model, state);
            transcript
        }));
        outcome.unwrap_or_else(|_| {
            Err(Error::Stage {
                stage: "transcriber",
                problem: format!("it panicked on chunk {}", timed.chunk.index),
            })
        })
    }
}

/// A task's result: the input, the chunk, and its transcript or failure.
type Outcome = (usize, usize, Result<Transcript>);

/// One input between its start and its report.
struct Active {
    index: usize,
    start: RunStart,
    control: RunControl,
    realtime: bool,
    model: usize,
    model_name: String,
    /// `None` once the chunker has finished, or the input stopped.
    chunks: Option<Receiver<TimedChunk>>,
    input: InputThreads,
    emitter: Emitter,
    /// Chunks handed to the pool whose outcome has not come back.
    in_flight: usize,
    /// Chunks taken from the chunker so far.
    dispatched: usize,
    /// Outcomes received: every chunk below `received_below` and those in `received_after`.
    received_below: usize,
    received_after: BTreeSet<usize>,
    /// The earliest chunk that failed: later ones are not worth transcribing.
    first_failed: Option<usize>,
}

impl Active {
    /// Starts input `index`: its source and chunker threads begin to run.
    fn start(index: usize, pipeline: Pipeline, model: usize) -> Result<Active> {
        let PreparedRun {
            start,
            control,
            source,
            chunker,
            transcriber,
            emitter,
            options,
        } = pipeline.prepare()?;
        let (chunk_tx, chunk_rx) = bounded::<TimedChunk>(options.queue_capacity.max(1));
        let input = InputThreads::start(&control, source, chunker, move |chunk| {
            chunk_tx.send(chunk).is_ok()
        });
        Ok(Active {
            index,
            start,
            control,
            realtime: options.realtime,
            model,
            model_name: transcriber.name(),
            chunks: Some(chunk_rx),
            input,
            emitter,
            in_flight: 0,
            dispatched: 0,
            received_below: 0,
            received_after: BTreeSet::new(),
            first_failed: None,
        })
    }

    /// Whether this input may hand another chunk to the pool: its chunks past the last one
    /// received stay within `window`.
    fn may_dispatch(&self, window: usize) -> bool {
        self.chunks.is_some()
            && !self.control.is_stopped()
            && self.dispatched < self.received_below + window
    }

    fn received(&mut self, chunk: usize) {
        self.in_flight -= 1;
        self.received_after.insert(chunk);
        while self.received_after.remove(&self.received_below) {
            self.received_below += 1;
        }
    }

    fn is_finished(&self) -> bool {
        self.in_flight == 0 && (self.chunks.is_none() || self.control.is_stopped())
    }

    /// Joins the input's threads and completes its output.
    fn finish(mut self) -> Result<RunReport> {
        // A stopped input's chunker may wait to hand on a chunk: dropping the receiver frees it.
        self.chunks = None;
        let counts = self.input.join(&self.control);
        self.control.outcome()?;
        let mut tally = self.emitter.finish()?;
        counts.add_to(&mut tally);
        Ok(self
            .start
            .report(BACKEND_NAME, self.model_name, self.realtime, &tally))
    }
}

/// Runs on the calling thread: starts inputs, hands their chunks to the pool, earliest input
/// first, and writes the outcomes to their sinks in order.
struct Dispatcher {
    waiting: std::vec::IntoIter<Pipeline>,
    next_input: usize,
    active: Vec<Active>,
    /// Inputs open at once.
    max_active: usize,
    /// Chunks in flight at once, and per input past the last one received.
    window: usize,
    in_flight: usize,
    finished: Vec<Option<Result<RunReport>>>,
    next_to_report: usize,
    outcomes: (Sender<Outcome>, Receiver<Outcome>),
}

impl Dispatcher {
    fn new(pipelines: Vec<Pipeline>, pool_size: usize) -> Self {
        let queue = pipelines
            .iter()
            .map(|p| p.options().queue_capacity)
            .max()
            .unwrap_or(1)
            .max(1);
        let count = pipelines.len();
        Dispatcher {
            waiting: pipelines.into_iter(),
            next_input: 0,
            active: Vec::new(),
            max_active: pool_size + 1,
            window: pool_size + queue,
            in_flight: 0,
            finished: (0..count).map(|_| None).collect(),
            next_to_report: 0,
            outcomes: unbounded(),
        }
    }

    fn run<'scope>(
        &mut self,
        scope: &rayon::Scope<'scope>,
        states: &'scope States,
        on_finished: &mut impl FnMut(usize, Result<RunReport>),
    ) {
        loop {
            self.open_inputs(states);
            self.report_in_order(on_finished);
            if self.active.is_empty() {
                return;
            }
            self.dispatch(scope, states);
            self.wait_for_news();
            self.collect_outcomes();
            self.close_finished_inputs();
        }
    }

    fn open_inputs(&mut self, states: &States) {
        while self.active.len() < self.max_active {
            let Some(pipeline) = self.waiting.next() else {
                return;
            };
            let index = self.next_input;
            self.next_input += 1;
            let model = states.model_of(pipeline.transcriber());
            match Active::start(index, pipeline, model) {
                Ok(active) => self.active.push(active),
                Err(error) => self.finished[index] = Some(Err(error)),
            }
        }
    }

    fn report_in_order(&mut self, on_finished: &mut impl FnMut(usize, Result<RunReport>)) {
        while let Some(slot) = self.finished.get_mut(self.next_to_report) {
            let Some(outcome) = slot.take() else {
                return;
            };
            on_finished(self.next_to_report, outcome);
            self.next_to_report += 1;
        }
    }

    /// Hands chunks to the pool while there is room, earliest input first.
    fn dispatch<'scope>(&mut self, scope: &rayon::Scope<'scope>, states: &'scope States) {
        for active in &mut self.active {
            while self.in_flight < self.window && active.may_dispatch(self.window) {
                let Some(chunks) = &active.chunks else {
                    break;
                };
                let timed = match chunks.try_recv() {
                    Ok(timed) => timed,
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        active.chunks = None;
                        break;
                    }
                };
                let chunk = timed.chunk.index;
                // A provisional or partial chunk shares its index with the final one that
                // follows: only finals count against the input's window.
                if timed.is_final() {
                    active.dispatched += 1;
                } else if active.first_failed.is_some() {
                    continue;
                }
                if active.first_failed.is_some_and(|failed| chunk > failed) {
                    // The input fails at an earlier chunk; count this one as done.
                    active.in_flight += 1;
                    active.received(chunk);
                    continue;
                }
                active.in_flight += 1;
                self.in_flight += 1;
                let (input, model) = (active.index, active.model);
                let outcomes = self.outcomes.0.clone();
                scope.spawn(move |_| {
                    let outcome = states.transcribe(model, &timed);
                    // The dispatcher outlives every task: the scope waits for them.
                    let _ = outcomes.send((input, chunk, outcome));
                });
            }
        }
    }

    /// Sleeps until an outcome arrives, an input that may take a chunk has one (or ends), or
    /// the stop poll comes round.
    fn wait_for_news(&self) {
        let mut select = Select::new();
        select.recv(&self.outcomes.1);
        if self.in_flight < self.window {
            for active in &self.active {
                if let Some(chunks) = &active.chunks
                    && active.may_dispatch(self.window)
                {
                    select.recv(chunks);
                }
            }
        }
        let _ = select.ready_timeout(STOP_POLL);
    }

    fn collect_outcomes(&mut self) {
        while let Ok((input, chunk, outcome)) = self.outcomes.1.try_recv() {
            self.in_flight -= 1;
            let Some(active) = self.active.iter_mut().find(|a| a.index == input) else {
                continue;
            };
            if matches!(&outcome, Ok(transcript) if transcript.provisional || transcript.partial.is_some())
            {
                active.in_flight -= 1;
            } else {
                active.received(chunk);
            }
            if outcome.is_err() {
                active.first_failed = Some(active.first_failed.map_or(chunk, |f| f.min(chunk)));
            }
            if !active.control.is_stopped() {
                // A failed chunk fails the input once the chunks before it are written.
                active
                    .control
                    .check(active.emitter.emit_outcome(chunk, outcome));
            }
        }
    }

    fn close_finished_inputs(&mut self) {
        let mut index = 0;
        while index < self.active.len() {
            if self.active[index].control.is_stopped() {
                // Nothing more is dispatched; freeing the chunker lets it stop.
                self.active[index].chunks = None;
            }
            if self.active[index].is_finished() {
                let active = self.active.remove(index);
                let input = active.index;
                self.finished[input] = Some(active.finish());
            } else {
                index += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;
    use steno_core::{
        ChunkerConfig, CollectingSink, CountingTranscriber, ScriptedTranscriber, Segment, Sink,
        VadKind, VecSource,
    };

    fn speech(seconds: f32) -> Vec<f32> {
        (0..(seconds * 16_000.0) as usize)
            .map(|i| 0.3 * (i as f32 * 0.05).sin())
            .collect()
    }

    /// `utterances` bursts of speech; the i-th lasts `lengths(i)` seconds.
    fn session(utterances: usize, lengths: impl Fn(usize) -> f32) -> Vec<f32> {
        let mut audio = vec![0.0; 8_000];
        for i in 0..utterances {
            audio.extend(speech(lengths(i)));
            audio.extend(vec![0.0; 12_000]);
        }
        audio
    }

    fn pipeline(
        audio: Vec<f32>,
        transcriber: Arc<dyn TranscriberFactory>,
        sink: impl Sink + 'static,
    ) -> Pipeline {
        Pipeline::builder(VecSource::new(audio), transcriber, sink)
            .chunker(ChunkerConfig::default().with_vad(VadKind::Energy))
            .build()
            .unwrap()
    }

    fn texts(segments: &[Segment]) -> Vec<String> {
        segments.iter().map(|s| s.text.clone()).collect()
    }

    #[test]
    fn uneven_chunks_come_out_in_order_with_the_sequential_text() {
        // Long and short utterances alternate, so later chunks often finish first.
        let lengths = |i: usize| if i.is_multiple_of(3) { 2.0 } else { 0.4 };
        let scripted =
            ScriptedTranscriber::new().with_cost_per_audio_second(Duration::from_millis(40));
        let sequential = CollectingSink::new();
        RayonBackend::new()
            .with_pool_size(1)
            .run(pipeline(
                session(12, lengths),
                Arc::new(scripted.clone()),
                sequential.clone(),
            ))
            .unwrap();
        let counting = Arc::new(CountingTranscriber::new(scripted));
        let sink = CollectingSink::new();
        let report = RayonBackend::new()
            .with_pool_size(3)
            .run(pipeline(
                session(12, lengths),
                counting.clone(),
                sink.clone(),
            ))
            .unwrap();
        assert_eq!(texts(&sink.segments()), texts(&sequential.segments()));
        let chunks: Vec<usize> = sink.segments().iter().map(|s| s.chunk).collect();
        assert_eq!(chunks, (0..12).collect::<Vec<_>>());
        assert!(sink.is_finished());
        assert_eq!((report.backend.as_str(), report.chunks), ("rayon", 12));
        assert_eq!(report.worker_restarts, 0);
        assert!(counting.created() <= 3, "one state per pool thread");
        assert!(
            counting.most_at_once() >= 2,
            "chunks were transcribed in parallel"
        );
    }

    #[test]
    fn several_inputs_share_the_pool_and_keep_their_order() {
        let counting = Arc::new(CountingTranscriber::new(
            ScriptedTranscriber::new().with_cost_per_audio_second(Duration::from_millis(30)),
        ));
        let sinks: Vec<CollectingSink> = (0..5).map(|_| CollectingSink::new()).collect();
        let pipelines = sinks
            .iter()
            .enumerate()
            .map(|(i, sink)| {
                let factory: Arc<dyn TranscriberFactory> = counting.clone();
                pipeline(session(i + 1, |_| 0.5), factory, sink.clone())
            })
            .collect();
        let mut order = Vec::new();
        RayonBackend::new()
            .with_pool_size(2)
            .run_all_with(pipelines, |index, report| {
                assert_eq!(report.unwrap().chunks, index + 1);
                order.push(index);
            });
        assert_eq!(
            order,
            [0, 1, 2, 3, 4],
            "outcomes are handed over in input order"
        );
        for (i, sink) in sinks.iter().enumerate() {
            let chunks: Vec<usize> = sink.segments().iter().map(|s| s.chunk).collect();
            assert_eq!(chunks, (0..=i).collect::<Vec<_>>(), "input {i}");
            assert!(sink.is_finished());
        }
        assert!(counting.created() <= 2, "states are shared by inputs");
    }

    #[test]
    fn a_transcriber_error_delivers_the_earlier_chunks_then_ends_that_input_only() {
        let failing = ScriptedTranscriber::new()
            .with_cost_per_audio_second(Duration::from_millis(20))
            .with_failure_on_chunk(3);
        let (bad, good) = (CollectingSink::new(), CollectingSink::new());
        let reports = RayonBackend::new().with_pool_size(3).run_all(vec![
            pipeline(
                session(8, |i| if i == 2 { 3.0 } else { 0.4 }),
                Arc::new(failing),
                bad.clone(),
            ),
            pipeline(
                session(3, |_| 0.4),
                Arc::new(ScriptedTranscriber::new()),
                good.clone(),
            ),
        ]);
        let err = reports[0].as_ref().unwrap_err();
        assert_eq!(
            err.to_string(),
            "transcriber failed on chunk 3: scripted failure"
        );
        let delivered: Vec<usize> = bad.segments().iter().map(|s| s.chunk).collect();
        assert_eq!(delivered, [0, 1, 2], "the slow chunk 2 is still written");
        assert!(!bad.is_finished());
        assert_eq!(reports[1].as_ref().unwrap().chunks, 3);
        assert!(good.is_finished());
    }

    #[test]
    fn the_default_pool_fits_the_cores() {
        let cores = thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        assert_eq!(RayonBackend::new().pool_size(2), (cores / 2).max(1));
        assert_eq!(RayonBackend::new().pool_size(1), cores);
        assert_eq!(RayonBackend::new().with_pool_size(0).pool_size(2), 1);
        assert!(RayonBackend::new().run_all(Vec::new()).is_empty());
    }
}
