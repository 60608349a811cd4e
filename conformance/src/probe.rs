//! Instrumented stages: a source, transcribers and a sink that record, from outside the
//! backend, what the backend did with them (chunks handed out, segments written, how many
//! transcriptions were in flight, whether every stage object was released).
//!
//! When the transcribers run in worker processes (the process backend, see `ProcessWorkers`),
//! the probe sees them through what they write back: each chunk through its segment and its
//! scripted text, which the worker derives from the chunk it received; a stall through a file
//! the source creates at its end; transcriptions started through a file each start appends to.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use crate::audio::{sample_at, scripted_text};
use crate::workers::{WorkerScript, WorkerStall};
use steno_core::{
    Chunk, ChunkerConfig, Error, Partial, Pipeline, PipelineBuilder, Result, RunOptions,
    ScriptedTranscriber, Segment, Sink, Source, Transcriber, TranscriberFactory, Transcription,
    Update, VecSource,
};

/// A chunk as a transcriber received it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChunkSeen {
    /// Its index.
    pub(crate) index: usize,
    /// Its first sample.
    pub(crate) start_sample: u64,
    /// Its length in samples.
    pub(crate) len: u64,
}

impl ChunkSeen {
    /// One past its last sample.
    pub(crate) fn end_sample(&self) -> u64 {
        self.start_sample + self.len
    }
}

#[derive(Debug, Default)]
struct Log {
    chunks: Vec<ChunkSeen>,
    segments: Vec<Segment>,
    /// Segments and partials, in the order the sink received them.
    updates: Vec<Update>,
    /// When the source ended, and when the sink got its first segment: a transcriber in a
    /// worker process cannot report that its stall timed out, but then a segment was written
    /// before the source ended.
    source_ended_at: Option<Instant>,
    first_segment_at: Option<Instant>,
}

#[derive(Debug)]
struct State {
    log: Mutex<Log>,
    /// Signalled whenever anything is recorded.
    changed: Condvar,
    finished: AtomicBool,
    transcriptions_started: AtomicUsize,
    max_in_flight: AtomicUsize,
    samples_read: AtomicU64,
    /// When set, transcribers wait until the source has ended before working: woken by the
    /// probe in this process, by the file `until` in a worker process (see [`WorkerStall`]).
    stall: Option<WorkerStall>,
    stall_timed_out: AtomicBool,
    /// When set, the sink fails on this write (counted from 0) and on every write after it.
    sink_fails_at: Option<usize>,
}

/// Records what a backend does with the stages it is given.
///
/// Every stage object (source, sink, each transcriber) holds a strong reference to the shared
/// state; the transcriber factory only a weak one. Once a run has returned, a backend that
/// joined everything it spawned has dropped them all, which [`Probe::live_stages`] checks.
#[derive(Debug)]
pub(crate) struct Probe {
    state: Arc<State>,
}

impl Probe {
    /// A probe whose transcribers work at once.
    pub(crate) fn new() -> Self {
        Self::with_stall(None)
    }

    /// A probe whose transcribers stall until the source has ended (at most `limit`): a
    /// transcriber far slower than real time.
    pub(crate) fn stalling(limit: Duration) -> Self {
        Self::with_stall(Some(limit))
    }

    /// A probe whose sink fails (a full disk) on its write of segment `index`, counted from 0,
    /// and on every write after it.
    pub(crate) fn with_sink_failing_at(index: usize) -> Self {
        let mut probe = Self::new();
        if let Some(state) = Arc::get_mut(&mut probe.state) {
            state.sink_fails_at = Some(index);
        }
        probe
    }

    fn with_stall(limit: Option<Duration>) -> Self {
        let stall = limit.map(|limit| {
            let files = unique_temp_path();
            WorkerStall {
                until: files.with_extension("source-ended"),
                limit,
                starts: files.with_extension("starts"),
            }
        });
        Probe {
            state: Arc::new(State {
                log: Mutex::default(),
                changed: Condvar::new(),
                finished: AtomicBool::new(false),
                transcriptions_started: AtomicUsize::new(0),
                max_in_flight: AtomicUsize::new(0),
                samples_read: AtomicU64::new(0),
                stall,
                stall_timed_out: AtomicBool::new(false),
                sink_fails_at: None,
            }),
        }
    }

    /// A pipeline over `source` whose stages are all probed.
    pub(crate) fn pipeline(
        &self,
        source: VecSource,
        transcriber: ScriptedTranscriber,
        chunker: ChunkerConfig,
        options: RunOptions,
    ) -> Pipeline {
        self.builder(Box::new(source), transcriber, chunker, options)
            .build()
            .expect("a conformance case builds a valid pipeline")
    }

    /// A pipeline over several labelled sources (the first one's label first) whose stages
    /// are all probed.
    pub(crate) fn pipeline_of_sources(
        &self,
        sources: Vec<(&str, Box<dyn Source>)>,
        transcriber: ScriptedTranscriber,
        chunker: ChunkerConfig,
        options: RunOptions,
    ) -> Pipeline {
        let mut sources = sources.into_iter();
        let (label, first) = sources.next().expect("at least one source");
        let mut builder = self
            .builder(first, transcriber, chunker, options)
            .label(label);
        for (label, source) in sources {
            builder = builder.source(label, self.probed(source));
        }
        builder
            .build()
            .expect("a conformance case builds a valid pipeline")
    }

    /// A builder over `source` whose stages are all probed.
    fn builder(
        &self,
        source: Box<dyn Source>,
        transcriber: ScriptedTranscriber,
        chunker: ChunkerConfig,
        options: RunOptions,
    ) -> PipelineBuilder {
        Pipeline::builder(
            self.probed(source),
            Arc::new(ProbeFactory {
                inner: transcriber,
                state: Arc::downgrade(&self.state),
            }),
            ProbeSink {
                state: Arc::clone(&self.state),
                writes_attempted: 0,
            },
        )
        .chunker(chunker)
        .options(options)
    }

    /// `source`, its reads recorded.
    fn probed(&self, source: Box<dyn Source>) -> ProbeSource {
        ProbeSource {
            inner: source,
            state: Arc::clone(&self.state),
        }
    }

    fn log(&self) -> MutexGuard<'_, Log> {
        self.state
            .log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The chunks transcribers received, by index.
    ///
    /// When no transcriber ran in this process (the process backend's workers transcribe),
    /// each chunk is the one a segment was written for, and its scripted text, written by the
    /// worker from the chunk it received, must say so.
    ///
    /// # Panics
    /// When a worker's text names another chunk than its segment.
    pub(crate) fn chunks(&self) -> Vec<ChunkSeen> {
        let log = self.log();
        let mut chunks = if self.state.transcriptions_started.load(Ordering::SeqCst) > 0 {
            log.chunks.clone()
        } else {
            log.segments.iter().map(chunk_of).collect()
        };
        chunks.sort_by_key(|chunk| chunk.index);
        chunks
    }

    /// The segments written to the sink, in the order they were written.
    pub(crate) fn segments(&self) -> Vec<Segment> {
        self.log().segments.clone()
    }

    /// What the sink received: segments and partial hypotheses, in order.
    pub(crate) fn updates(&self) -> Vec<Update> {
        self.log().updates.clone()
    }

    /// Whether the sink's `finish` was called (the output was declared complete).
    pub(crate) fn is_finished(&self) -> bool {
        self.state.finished.load(Ordering::SeqCst)
    }

    /// The most transcriptions started but not yet written to the sink at one time.
    pub(crate) fn max_in_flight(&self) -> usize {
        self.state.max_in_flight.load(Ordering::SeqCst)
    }

    /// Samples the source handed out.
    pub(crate) fn samples_read(&self) -> u64 {
        self.state.samples_read.load(Ordering::SeqCst)
    }

    /// Whether a stalled transcriber gave up waiting for the source to end: it said so, or
    /// (when transcribers ran in worker processes) a segment was written before the source
    /// ended.
    pub(crate) fn stall_timed_out(&self) -> bool {
        if self.state.stall_timed_out.load(Ordering::SeqCst) {
            return true;
        }
        let log = self.log();
        match (log.source_ended_at, log.first_segment_at) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some(ended), Some(first)) => first < ended,
        }
    }

    /// Stage objects (source, sink, transcribers) the backend still holds.
    pub(crate) fn live_stages(&self) -> usize {
        Arc::strong_count(&self.state) - 1
    }

    /// Waits until at least `count` segments were written; `false` if `timeout` passed first.
    pub(crate) fn wait_for_segments(&self, count: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut log = self.log();
        while log.segments.len() < count {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            log = self
                .state
                .changed
                .wait_timeout(log, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }

    /// Panics unless the backend dropped every stage object it was given: after a run has
    /// returned, nothing it spawned may still be running with them.
    pub(crate) fn assert_released(&self, context: &str) {
        let live = self.live_stages();
        assert_eq!(
            live, 0,
            "{context}: {live} stage object(s) (source, sink or transcriber) were still held \
             after the run returned: something the backend spawned was not joined"
        );
    }
}

/// The chunk a segment from an out-of-process scripted transcriber was written for.
fn chunk_of(segment: &Segment) -> ChunkSeen {
    let start_sample = sample_at(segment.start);
    let end_sample = sample_at(segment.end);
    assert_eq!(
        segment.text,
        scripted_text(segment.chunk, start_sample, end_sample),
        "the worker's transcript belongs to another chunk than its segment"
    );
    ChunkSeen {
        index: segment.chunk,
        start_sample,
        len: end_sample - start_sample,
    }
}

/// A path, without extension, that no other probe uses: where a stalling probe keeps the
/// files its worker processes stall on and count their starts in.
fn unique_temp_path() -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    std::env::temp_dir().join(format!(
        "steno-conformance-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    ))
}

impl Drop for Probe {
    fn drop(&mut self) {
        if let Some(stall) = &self.state.stall {
            // Either may be absent: the source never ended, or no worker transcribed.
            let _ = std::fs::remove_file(&stall.until);
            let _ = std::fs::remove_file(&stall.starts);
        }
    }
}

impl State {
    fn record(&self, update: impl FnOnce(&mut Log)) {
        update(&mut self.log.lock().unwrap_or_else(PoisonError::into_inner));
        self.changed.notify_all();
    }

    fn wait_for_source_end(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        let mut log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        while log.source_ended_at.is_none() {
            let now = Instant::now();
            if now >= deadline {
                self.stall_timed_out.store(true, Ordering::SeqCst);
                return;
            }
            log = self
                .changed
                .wait_timeout(log, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

struct ProbeSource {
    inner: Box<dyn Source>,
    state: Arc<State>,
}

impl Source for ProbeSource {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn next_block(&mut self) -> Result<Option<Vec<f32>>> {
        let block = self.inner.next_block()?;
        match &block {
            Some(samples) => {
                self.state
                    .samples_read
                    .fetch_add(samples.len() as u64, Ordering::SeqCst);
            }
            None => {
                if let Some(stall) = &self.state.stall {
                    std::fs::write(&stall.until, b"").map_err(|error| {
                        Error::input(&stall.until, format!("cannot create: {error}"))
                    })?;
                }
                self.state.record(|log| {
                    log.source_ended_at.get_or_insert_with(Instant::now);
                });
            }
        }
        Ok(block)
    }

    fn len_hint(&self) -> Option<u64> {
        self.inner.len_hint()
    }
}

struct ProbeFactory {
    inner: ScriptedTranscriber,
    state: Weak<State>,
}

impl TranscriberFactory for ProbeFactory {
    /// The script's [`WorkerScript`] name, so that a worker process can run the same script
    /// (see `ProcessWorkers`).
    fn name(&self) -> String {
        let state = self.state.upgrade();
        let stall = state.as_ref().and_then(|state| state.stall.as_ref());
        WorkerScript::name_for(&self.inner, stall)
            .unwrap_or_else(|| "conformance probe with scripted texts".into())
    }

    fn create(&self) -> Result<Box<dyn Transcriber>> {
        let state = self.state.upgrade().ok_or_else(|| Error::Stage {
            stage: "transcriber",
            problem: "the conformance probe is gone".into(),
        })?;
        Ok(Box::new(ProbeTranscriber {
            inner: self.inner.clone(),
            state,
        }))
    }
}

struct ProbeTranscriber {
    inner: ScriptedTranscriber,
    state: Arc<State>,
}

impl Transcriber for ProbeTranscriber {
    fn transcribe(&mut self, chunk: &Chunk) -> Result<Transcription> {
        self.begin(chunk);
        self.inner.transcribe(chunk)
    }

    /// As the scripted transcriber: stops between steps of its cost once overtaken.
    fn transcribe_partial(
        &mut self,
        chunk: &Chunk,
        overtaken: &steno_core::Overtaken,
    ) -> Result<Option<Transcription>> {
        self.begin(chunk);
        self.inner.transcribe_partial(chunk, overtaken)
    }
}

impl ProbeTranscriber {
    /// Records the chunk's transcription as started, then stalls if the case asks to.
    fn begin(&self, chunk: &Chunk) {
        let state = &self.state;
        let started = state.transcriptions_started.fetch_add(1, Ordering::SeqCst) + 1;
        state.record(|log| {
            log.chunks.push(ChunkSeen {
                index: chunk.index,
                start_sample: chunk.start_sample,
                len: chunk.samples.len() as u64,
            });
            let in_flight = started.saturating_sub(log.segments.len());
            state.max_in_flight.fetch_max(in_flight, Ordering::SeqCst);
        });
        if let Some(stall) = &state.stall {
            state.wait_for_source_end(stall.limit);
        }
    }
}

/// The name the probe's sink gives in its errors.
pub(crate) const PROBE_SINK: &str = "probe sink";

struct ProbeSink {
    state: Arc<State>,
    writes_attempted: usize,
}

impl Sink for ProbeSink {
    fn write(&mut self, segment: &Segment) -> Result<()> {
        let state = &self.state;
        let failing = state
            .sink_fails_at
            .is_some_and(|index| self.writes_attempted >= index);
        self.writes_attempted += 1;
        if failing {
            return Err(Error::sink(
                PROBE_SINK,
                "injected failure: the disk is full",
            ));
        }
        state.record(|log| {
            log.first_segment_at.get_or_insert_with(Instant::now);
            if let Some(stall) = &state.stall
                && state.transcriptions_started.load(Ordering::SeqCst) == 0
            {
                // Transcribers in worker processes count their starts in a file: sampled at
                // each write, the transcriptions in flight are those started and not written.
                let started = std::fs::metadata(&stall.starts).map_or(0, |file| file.len());
                let in_flight = usize::try_from(started)
                    .unwrap_or(usize::MAX)
                    .saturating_sub(log.segments.len());
                state.max_in_flight.fetch_max(in_flight, Ordering::SeqCst);
            }
            log.segments.push(segment.clone());
            log.updates.push(Update::Final(segment.clone()));
        });
        Ok(())
    }

    fn partial(&mut self, partial: &Partial) -> Result<()> {
        self.state
            .record(|log| log.updates.push(Update::Partial(partial.clone())));
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        self.state.finished.store(true, Ordering::SeqCst);
        self.state.record(|_| {});
        Ok(())
    }
}
