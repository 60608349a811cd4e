//! The stages a backend schedules, and the logic every backend shares: [`SourceStage`] (source
//! to ring), [`ChunkStage`] (ring to chunks), [`transcribe`] with a [`Transcriber`] per worker,
//! and [`Emitter`] (transcripts to the sink, in chunk order), joined by a [`RunControl`].
//!
//! A backend only decides where and when these run and how data moves between them. Each
//! stage is a plain state machine whose `step` says what to wait for ([`Wait`]), so threads and
//! async tasks drive the same code. [`Pipeline::prepare`](crate::Pipeline::prepare) builds
//! them all ([`PreparedRun`]). An application that only runs pipelines needs none of this.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::chunker::PartialCut;
use crate::early::{EarlyDecode, confirms};
use crate::interim::Overtaken;
use crate::pack::Packer;
use crate::{
    CancelToken, Chunk, Chunker, ChunkerConfig, Confidence, DetectedLanguage, Error, Result,
    RingReader, RingWriter, RunOptions, SAMPLE_RATE, Source, TimedText, Transcriber,
    TranscriberFactory, Transcription, Utterance, Word,
};

mod emitter;
mod input;
mod run_ahead;

pub use crate::pack::{WindowPart, window_parts, window_spans};
pub use crate::pipeline::PipelineParts;
pub use crate::report::{RunStart, RunTally, SourceTally};
pub use crate::transcriber::transcribers_fitting_cores;
pub use emitter::Emitter;
pub use input::{ChunkStage, SourceStage};
pub(crate) use input::{MAX_MERGE_WAIT, SourceCounters};
pub use run_ahead::{RunAhead, run_slot};

/// A pipeline taken apart into the stages a backend schedules, with the run's clock and its
/// control already started: what every backend used to set up by hand before its first step.
///
/// The source and chunk stages see the run's own stop token (see [`RunControl::options`]), so
/// a failure anywhere stops them without touching the caller's token.
pub struct PreparedRun {
    /// The run's clock; [`RunStart::report`] turns the tally into the
    /// report at the end.
    pub start: RunStart,
    /// The first error, and the token every stage watches.
    pub control: RunControl,
    /// Source to ring.
    pub source: SourceStage,
    /// Ring to chunks.
    pub chunker: ChunkStage,
    /// Makes one transcriber per worker.
    pub transcriber: Arc<dyn TranscriberFactory>,
    /// Transcripts to the sink, in chunk order.
    pub emitter: Emitter,
    /// The caller's options (queue sizes, pacing, packing), as given.
    pub options: RunOptions,
}

/// Shared by a run's stages: the first real failure is kept and stops every other stage.
///
/// Stages run with [`RunControl::options`], whose cancel token is a child of the caller's; when
/// a stage fails it calls [`fail`](Self::fail), the other stages see `Cancelled` and wind down,
/// and [`outcome`](Self::outcome) returns the failure that started it.
#[derive(Debug, Clone)]
pub struct RunControl {
    stop: CancelToken,
    first_error: Arc<std::sync::Mutex<Option<Error>>>,
}

impl RunControl {
    /// A control for a run with the caller's `options`.
    pub fn new(options: &RunOptions) -> Self {
        RunControl {
            stop: options.cancel.child(),
            first_error: Arc::default(),
        }
    }

    /// The caller's options with this run's internal stop token in place of its cancel token.
    pub fn options(&self, options: &RunOptions) -> RunOptions {
        RunOptions {
            cancel: self.stop.clone(),
            ..options.clone()
        }
    }

    /// The token every stage of the run watches.
    pub fn token(&self) -> &CancelToken {
        &self.stop
    }

    /// Records a stage's failure and stops the other stages. `Cancelled` is a consequence,
    /// not a cause, and is not recorded. The source stage's own failures go to
    /// [`end_input`](Self::end_input) instead.
    pub fn fail(&self, error: Error) {
        self.record(error);
        self.stop.cancel();
    }

    /// Records the source stage's failure (a truncated file, a device gone) without stopping
    /// the other stages: it ends the stream there. The source stage stops (its loop ends on the
    /// error, which drops the ring writer), the audio read before the error is still chunked,
    /// transcribed and written, and [`outcome`](Self::outcome) then returns the error, so the
    /// sink is not finished and the output is visibly partial. What decides this is the stage
    /// that failed, not the error's variant: an [`Error::Input`] from any other stage stops
    /// the run like any failure.
    pub fn end_input(&self, error: Error) {
        self.record(error);
    }

    /// Keeps the first failure; `Cancelled` is a consequence, not a cause.
    fn record(&self, error: Error) {
        if matches!(error, Error::Cancelled) {
            return;
        }
        let mut slot = self
            .first_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        slot.get_or_insert(error);
    }

    /// [`check`](Self::check) for the source stage: its error ends the stream
    /// ([`end_input`](Self::end_input)) instead of stopping the run.
    pub fn check_input<T>(&self, result: Result<T>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(error) => {
                self.end_input(error);
                None
            }
        }
    }

    /// Records the error of `result`, if any, and passes the value on.
    pub fn check<T>(&self, result: Result<T>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(error) => {
                self.fail(error);
                None
            }
        }
    }

    /// Whether some stage failed (other than the input, whose error only ends the stream) or
    /// the run was cancelled.
    pub fn is_stopped(&self) -> bool {
        self.stop.is_cancelled()
    }

    /// Starts a stage on a thread of its own named `steno-<stage>`; a thread that cannot start
    /// fails the run (recorded here) and gives `None`.
    pub fn spawn_stage<T: Send + 'static>(
        &self,
        stage: &'static str,
        body: impl FnOnce() -> T + Send + 'static,
    ) -> Option<std::thread::JoinHandle<T>> {
        let spawned = std::thread::Builder::new()
            .name(format!("steno-{stage}"))
            .spawn(body);
        match spawned {
            Ok(handle) => Some(handle),
            Err(error) => {
                self.fail(Error::Stage {
                    stage,
                    problem: format!("cannot start a thread: {error}"),
                });
                None
            }
        }
    }

    /// Joins a stage thread; a panic becomes the run's failure and gives `None`.
    pub fn join_stage<T>(
        &self,
        handle: std::thread::JoinHandle<T>,
        stage: &'static str,
    ) -> Option<T> {
        match handle.join() {
            Ok(value) => Some(value),
            Err(_) => {
                self.fail(Error::Stage {
                    stage,
                    problem: "the thread panicked".into(),
                });
                None
            }
        }
    }

    /// `Ok` if nothing failed; otherwise the first failure, or `Cancelled`.
    ///
    /// # Errors
    /// The first recorded failure, or [`Error::Cancelled`] if the run was cancelled.
    pub fn outcome(&self) -> Result<()> {
        let mut slot = self
            .first_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match slot.take() {
            Some(error) => Err(error),
            None => self.stop.check(),
        }
    }
}

/// What a stage needs before it can make progress again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Call `step` again now.
    No,
    /// The ring is full (source) or empty (chunker): wait a little, or until the other side
    /// signals.
    ForRing,
    /// Real-time pacing: nothing to do before this instant.
    Until(Instant),
    /// The stage is finished.
    Done,
}

/// Reads one source and feeds its ring, paced like a microphone in real-time mode: a
/// [`SourceStage`] has one per source.
pub(crate) struct SourceLane {
    source: Box<dyn Source>,
    writer: RingWriter,
    realtime: bool,
    started: Instant,
    cancel: CancelToken,
    pending: Vec<f32>,
    pending_from: usize,
    samples_read: u64,
    /// Source losses already added to the ring's dropped count.
    source_drops_forwarded: u64,
}

impl std::fmt::Debug for SourceLane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceLane")
            .field("source", &self.source.name())
            .field("samples_read", &self.samples_read)
            .finish_non_exhaustive()
    }
}

impl SourceLane {
    /// The lane of `source` in a run that started at `started`.
    pub(crate) fn new(
        source: Box<dyn Source>,
        writer: RingWriter,
        options: &RunOptions,
        started: Instant,
    ) -> Self {
        SourceLane {
            source,
            writer,
            realtime: options.realtime,
            started,
            cancel: options.cancel.clone(),
            pending: Vec::new(),
            pending_from: 0,
            samples_read: 0,
            source_drops_forwarded: 0,
        }
    }

    /// Moves the stream forward by at most one block.
    ///
    /// # Errors
    /// The source's errors, and [`Error::Cancelled`].
    pub(crate) fn step(&mut self) -> Result<Wait> {
        self.cancel.check()?;
        if self.writer.is_reader_gone() {
            // The pipeline stopped downstream; its own error explains why.
            return Ok(Wait::Done);
        }
        if self.pending_from < self.pending.len() {
            if self.realtime {
                // A microphone delivers small buffers; each is "captured" once the time of its
                // last sample has come.
                let piece_end = (self.pending_from + REALTIME_PIECE).min(self.pending.len());
                let block_start = self.samples_read - self.pending.len() as u64;
                let due = self.started + samples_to_duration(block_start + piece_end as u64);
                if Instant::now() < due {
                    return Ok(Wait::Until(due));
                }
                self.writer
                    .push_or_drop(&self.pending[self.pending_from..piece_end]);
                self.pending_from = piece_end;
            } else {
                self.pending_from += self.writer.push_some(&self.pending[self.pending_from..]);
                if self.pending_from < self.pending.len() {
                    return Ok(Wait::ForRing);
                }
            }
            return Ok(Wait::No);
        }
        let next = self.source.next_block();
        self.forward_source_drops();
        match next? {
            Some(block) => {
                self.samples_read += block.len() as u64;
                self.pending = block;
                self.pending_from = 0;
                Ok(Wait::No)
            }
            None => Ok(Wait::Done),
        }
    }

    /// Samples read from the source so far.
    pub(crate) fn samples_read(&self) -> u64 {
        self.samples_read
    }

    /// Samples the source lost before handing them out (see [`Source::dropped_samples`]).
    pub(crate) fn source_dropped_samples(&self) -> u64 {
        self.source.dropped_samples()
    }

    /// Adds the source's new losses to the ring's count, which every backend reports.
    fn forward_source_drops(&mut self) {
        let total = self.source.dropped_samples();
        self.writer
            .count_dropped(total.saturating_sub(self.source_drops_forwarded));
        self.source_drops_forwarded = self.source_drops_forwarded.max(total);
    }
}

/// Real-time input arrives in 20 ms pieces, the buffer size of a typical capture device.
const REALTIME_PIECE: usize = SAMPLE_RATE as usize / 50;

fn samples_to_duration(samples: u64) -> Duration {
    Duration::from_secs_f64(samples as f64 / f64::from(SAMPLE_RATE))
}

/// A chunk and the moment its last sample became available to the pipeline.
#[derive(Debug, Clone)]
pub struct TimedChunk {
    /// The chunk.
    pub chunk: Chunk,
    /// When its last sample was available (in real-time mode: when that audio happened).
    pub available_at: Instant,
    /// When its speech ended ([`Chunk::speech_end_sample`]) was available: the moment a
    /// listener heard the speaker stop.
    pub speech_end_at: Instant,
    /// When the chunker cut it: from here on, time not spent transcribing is the
    /// pipeline's own overhead (queues, hand-offs, scheduling).
    pub cut_at: Instant,
    /// A provisional chunk (see [`RunOptions::early_start`]): decode it early, write nothing.
    pub provisional: bool,
    /// The early decode a provisional chunk and its final chunk share.
    pub early: Option<Arc<EarlyDecode>>,
    /// A partial chunk (see [`RunOptions::interim_step`]): the open utterance so far, decoded
    /// for a partial hypothesis, never for a segment.
    pub partial: Option<PartialPoint>,
    /// A provisional chunk in a real-time run with interim results: its place among the
    /// partials. Its early text, once decoded, is also shown as a partial hypothesis (the
    /// utterance so far, heard up to a pause): no extra decode, and often the first words.
    pub shown_as_partial: Option<PartialPoint>,
    /// A final chunk: how many partial chunks the run handed out before it for its utterances
    /// and every earlier one. Offline, the emitter writes them all before this chunk.
    pub partials_before: u64,
    /// Which of the run's sources it was cut from, from 0 (see
    /// [`PipelineBuilder::source`](crate::PipelineBuilder::source)).
    pub source: usize,
    /// With several sources: how long the chunk was held so that chunks of every source go
    /// on in order of their end of speech.
    pub merge_wait: Duration,
}

/// Where a partial chunk stands among the run's partials.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PartialPoint {
    /// Its position among the run's partial chunks, from 0, in the order they were cut.
    pub seq: u64,
    /// Final chunks handed out before it: offline, it is written once they all are, and
    /// before the next one.
    pub finals_before: usize,
    /// The utterance's first voiced sample.
    pub speech_start_sample: u64,
    /// When that sample was available: the moment the speaker was first heard.
    pub speech_start_at: Instant,
    /// In real time: tells whether newer audio of the utterance has been handed out since, so
    /// decoding this point is no longer worth it. `None` offline, where every partial counts.
    pub overtaken: Option<Overtaken>,
}

impl TimedChunk {
    /// A chunk cut now whose last sample was available at `available_at` and whose end of
    /// speech was available at `speech_end_at`.
    pub fn new(chunk: Chunk, available_at: Instant, speech_end_at: Instant) -> Self {
        TimedChunk {
            chunk,
            available_at,
            speech_end_at,
            cut_at: Instant::now(),
            provisional: false,
            early: None,
            partial: None,
            shown_as_partial: None,
            partials_before: 0,
            source: 0,
            merge_wait: Duration::ZERO,
        }
    }

    /// Whether the chunk's text becomes segments: neither a provisional chunk (its final one
    /// does) nor a partial one (a partial hypothesis).
    pub fn is_final(&self) -> bool {
        !self.provisional && self.partial.is_none()
    }
}

/// Drains one source's ring into its chunker: a [`ChunkStage`] has one per source.
#[derive(Debug)]
pub(crate) struct ChunkLane {
    reader: RingReader,
    chunker: Chunker,
    realtime: bool,
    started: Instant,
    cancel: CancelToken,
    block: Vec<f32>,
    chunks: Vec<Chunk>,
    /// (samples received after a pop, when that pop happened): availability of each sample.
    arrivals: VecDeque<(u64, Instant)>,
    finished: bool,
    early_start: bool,
    /// The provisional chunk handed out last and its decode, until its final chunk is cut.
    provisional: Option<(Utterance, Arc<EarlyDecode>)>,
    /// Packs utterances into windows when [`RunOptions::pack`] is on.
    packer: Option<Packer>,
    /// Whether the chunker cuts partial points ([`RunOptions::interim_step`]).
    interim: bool,
    /// Partial chunks handed out so far (provisional ones shown as partials included).
    partials_handed: u64,
    /// Final chunks handed out so far.
    finals_handed: usize,
    /// (utterance, partials handed out through it) for utterances no final chunk covers yet.
    partial_totals: VecDeque<(usize, u64)>,
    /// Partials handed out for the utterances every final chunk so far covers.
    partials_through: u64,
    /// In real time: chunks of any kind handed out so far, which a partial chunk compares
    /// with its own number to know it was overtaken.
    handed_out: Option<Arc<AtomicU64>>,
}

/// What the chunker cut, in the order it is handed on.
enum Cut {
    Final(Chunk),
    Partial(PartialCut),
}

impl ChunkLane {
    /// The lane of the source behind `reader` in a run that started at `started`.
    ///
    /// # Errors
    /// [`Error::Config`] when the chunker configuration is invalid.
    pub(crate) fn new(
        reader: RingReader,
        config: &ChunkerConfig,
        options: &RunOptions,
        started: Instant,
    ) -> Result<Self> {
        Ok(ChunkLane {
            reader,
            chunker: Chunker::new(config)?.with_interim_step(options.interim_step),
            realtime: options.realtime,
            started,
            cancel: options.cancel.clone(),
            block: Vec::new(),
            chunks: Vec::new(),
            arrivals: VecDeque::new(),
            finished: false,
            early_start: options.early_start && !options.pack,
            provisional: None,
            packer: options.pack.then(Packer::default),
            interim: options.interim_step.is_some(),
            partials_handed: 0,
            finals_handed: 0,
            partial_totals: VecDeque::new(),
            partials_through: 0,
            handed_out: options.realtime.then(|| Arc::new(AtomicU64::new(0))),
        })
    }

    /// Marks partial chunks so that transcribers skip those overtaken by newer audio, as in
    /// real time, for a source that is live without being paced (a capture device).
    pub(crate) fn with_overtaking(mut self) -> Self {
        self.handed_out
            .get_or_insert_with(|| Arc::new(AtomicU64::new(0)));
        self
    }

    /// Takes what the ring holds; completed chunks are appended to `out`.
    ///
    /// Returns [`Wait::ForRing`] when the ring is empty and [`Wait::Done`] once the stream
    /// has ended and the last utterance was flushed.
    ///
    /// # Errors
    /// [`Error::Cancelled`].
    pub(crate) fn step(&mut self, out: &mut Vec<TimedChunk>) -> Result<Wait> {
        self.cancel.check()?;
        if self.finished {
            return Ok(Wait::Done);
        }
        // Check for the end before popping, so no sample pushed before the writer left is
        // missed.
        let writer_gone = self.reader.is_writer_gone();
        self.block.clear();
        let popped = self.reader.pop_into(&mut self.block);
        if popped > 0 {
            self.chunker.push(&self.block, &mut self.chunks);
            if let Some(packer) = &mut self.packer {
                packer.record(&self.block);
            }
            self.arrivals
                .push_back((self.chunker.samples_seen(), Instant::now()));
        } else if writer_gone {
            self.chunker.finish(&mut self.chunks);
            self.finished = true;
        }
        // Partial points of an utterance come after the chunks of earlier utterances and
        // before its own: merged by index, they are in the order the chunker reached them.
        let mut partials = self.chunker.take_partials().into_iter().peekable();
        let mut cuts = Vec::new();
        for chunk in self.chunks.drain(..) {
            while let Some(partial) = partials.next_if(|p| p.chunk.index <= chunk.index) {
                cuts.push(Cut::Partial(partial));
            }
            cuts.push(Cut::Final(chunk));
        }
        cuts.extend(partials.map(Cut::Partial));
        if let Some(packer) = &mut self.packer {
            // Utterances become windows; partial points pass straight on.
            let mut packed = Vec::new();
            for cut in cuts {
                match cut {
                    Cut::Final(utterance) => {
                        let mut windows = Vec::new();
                        packer.push(&utterance, &mut windows);
                        packed.extend(windows.into_iter().map(Cut::Final));
                    }
                    partial @ Cut::Partial(_) => packed.push(partial),
                }
            }
            if self.finished {
                let mut windows = Vec::new();
                packer.finish(&mut windows);
                packed.extend(windows.into_iter().map(Cut::Final));
            }
            packer.forget_before(self.chunker.earliest_next_start());
            cuts = packed;
        }
        for cut in cuts {
            match cut {
                Cut::Final(chunk) => self.hand_out_final(chunk, out),
                Cut::Partial(partial) => self.hand_out_partial(partial, out),
            }
        }
        if self.early_start && !self.finished {
            self.hand_out_provisional(out);
        }
        Ok(match (popped, self.finished) {
            (_, true) => Wait::Done,
            (0, false) => Wait::ForRing,
            _ => Wait::No,
        })
    }

    /// Samples dropped at the ring so far.
    pub(crate) fn dropped_samples(&self) -> u64 {
        self.reader.dropped()
    }

    /// Whether the stream has ended and its last utterance was handed out.
    pub(crate) fn is_finished(&self) -> bool {
        self.finished
    }

    /// A lower bound on the end of speech of every final chunk still to come
    /// ([`Chunker::speech_end_bound`]); `u64::MAX` once the stream has ended.
    pub(crate) fn speech_end_bound(&self) -> u64 {
        if self.is_finished() {
            u64::MAX
        } else {
            self.chunker.speech_end_bound()
        }
    }

    /// When sample `end - 1` was available: in real time, when that audio happened; else
    /// when the chunk stage received it. Final chunks come in order, so each lookup forgets
    /// the arrivals before it; a partial point, which a packed window of earlier utterances
    /// may follow, forgets nothing (`keep`).
    fn available_at(&mut self, end: u64, keep: bool) -> Instant {
        if self.realtime {
            self.started + samples_to_duration(end)
        } else if keep {
            let at = self
                .arrivals
                .partition_point(|&(received, _)| received < end);
            self.arrivals
                .get(at)
                .or(self.arrivals.back())
                .map_or_else(Instant::now, |&(_, at)| at)
        } else {
            arrival_of(&mut self.arrivals, end)
        }
    }

    /// Counts one more chunk handed out; its number.
    fn count_hand_out(&self) -> u64 {
        self.handed_out
            .as_ref()
            .map_or(0, |handed| handed.fetch_add(1, Ordering::SeqCst) + 1)
    }

    /// Hands out a final chunk (an utterance or a packed window).
    fn hand_out_final(&mut self, chunk: Chunk, out: &mut Vec<TimedChunk>) {
        // Speech ends at or before the chunk does: look it up first.
        let speech_end_at = self.available_at(chunk.speech_end_sample, false);
        let available_at = self.available_at(chunk.end_sample(), false);
        tracing::debug!(
            chunk = chunk.index,
            start_s = chunk.start_sample as f64 / f64::from(SAMPLE_RATE),
            end_s = chunk.end_sample() as f64 / f64::from(SAMPLE_RATE),
            utterances = chunk.utterances.len().max(1),
            "utterance cut"
        );
        let last_utterance = chunk.utterances.last().map_or(chunk.index, |u| u.index);
        while let Some(&(utterance, total)) = self.partial_totals.front()
            && utterance <= last_utterance
        {
            self.partials_through = total;
            self.partial_totals.pop_front();
        }
        let mut timed = TimedChunk::new(chunk, available_at, speech_end_at);
        timed.partials_before = self.partials_through;
        // Finals come in order and a provisional chunk is the open utterance's, so the
        // next final either confirms it or replaces it (speech resumed, or a split).
        if let Some((provisional, early)) = self.provisional.take()
            && confirms(&timed.chunk, &provisional)
        {
            timed.early = Some(early);
        }
        self.count_hand_out();
        self.finals_handed += 1;
        out.push(timed);
    }

    /// Hands out the open utterance cut at a partial point.
    fn hand_out_partial(&mut self, cut: PartialCut, out: &mut Vec<TimedChunk>) {
        let speech_start_at = self.available_at(cut.speech_start_sample, true);
        let available_at = self.available_at(cut.chunk.end_sample(), true);
        let seq = self.next_partial_seq(cut.chunk.index);
        let number = self.count_hand_out();
        let mut timed = TimedChunk::new(cut.chunk, available_at, available_at);
        timed.partial = Some(PartialPoint {
            seq,
            finals_before: self.finals_handed,
            speech_start_sample: cut.speech_start_sample,
            speech_start_at,
            overtaken: self
                .handed_out
                .as_ref()
                .map(|handed| Overtaken::new(Arc::clone(handed), number)),
        });
        out.push(timed);
    }

    /// The place of a partial of `utterance` among the run's partials, counted as handed out.
    fn next_partial_seq(&mut self, utterance: usize) -> u64 {
        let seq = self.partials_handed;
        self.partials_handed += 1;
        match self.partial_totals.back_mut() {
            Some((last, total)) if *last == utterance => *total = self.partials_handed,
            _ => self
                .partial_totals
                .push_back((utterance, self.partials_handed)),
        }
        seq
    }

    /// Hands out the open utterance's provisional chunk, once per set of boundaries.
    fn hand_out_provisional(&mut self, out: &mut Vec<TimedChunk>) {
        // Polled on every step of the hangover: compare spans, copy samples only when new.
        let Some(span) = self.chunker.provisional_span() else {
            return;
        };
        if self
            .provisional
            .as_ref()
            .is_some_and(|(handed, _)| *handed == span)
        {
            return;
        }
        let Some(chunk) = self.chunker.provisional() else {
            return;
        };
        // Its times are never reported: the final chunk's are.
        let now = Instant::now();
        let early = EarlyDecode::new();
        self.count_hand_out();
        self.provisional = Some((span, Arc::clone(&early)));
        // In real time with interim results its text is shown as a partial too. Never
        // offline, where every backend must write the same partials.
        let live_partials = self.interim && self.handed_out.is_some();
        let shown_as_partial = match self.chunker.speech_start_sample() {
            Some(speech_start_sample) if live_partials => Some(PartialPoint {
                seq: self.next_partial_seq(chunk.index),
                finals_before: self.finals_handed,
                speech_start_sample,
                speech_start_at: self.available_at(speech_start_sample, true),
                overtaken: None,
            }),
            _ => None,
        };
        let mut timed = TimedChunk::new(chunk, now, now);
        timed.provisional = true;
        timed.early = Some(early);
        timed.shown_as_partial = shown_as_partial;
        out.push(timed);
    }
}

/// When sample `end - 1` arrived; forgets arrivals before it (chunks come in order).
fn arrival_of(arrivals: &mut VecDeque<(u64, Instant)>, end: u64) -> Instant {
    while arrivals.len() > 1 && arrivals[0].0 < end {
        arrivals.pop_front();
    }
    arrivals.front().map_or_else(Instant::now, |&(_, at)| at)
}

/// A chunk's text, on its way to the sink.
#[derive(Debug, Clone)]
pub struct Transcript {
    /// Index of the chunk.
    pub chunk: usize,
    /// First sample of the chunk.
    pub start_sample: u64,
    /// One past the last sample of the chunk.
    pub end_sample: u64,
    /// One past the chunk's last voiced sample.
    pub speech_end_sample: u64,
    /// When the chunk's last sample was available.
    pub available_at: Instant,
    /// When the chunk's end of speech was available.
    pub speech_end_at: Instant,
    /// The text (empty when the chunk held no words).
    pub text: String,
    /// Full-window decodes the transcriber's loop guard needed for it.
    pub full_window_retries: u32,
    /// Transcripts written over again that the loop guard cut after the first copy (see
    /// [`Transcription::restarts_cut`]).
    pub restarts_cut: u32,
    /// Decodes at a raised temperature its decode needed (see
    /// [`Transcription::temperature_fallbacks`]).
    pub temperature_fallbacks: u32,
    /// The transcript of a provisional chunk: counted, never written.
    pub provisional: bool,
    /// A provisional chunk: its early decode ran. A final chunk: it took that early result.
    pub early_decoded: bool,
    /// The transcript of a partial chunk: a partial hypothesis, never a segment.
    pub partial: Option<PartialPoint>,
    /// A provisional chunk's transcript to show as a partial hypothesis
    /// ([`TimedChunk::shown_as_partial`]); its `text` is the early decode's.
    pub shown_as_partial: Option<PartialPoint>,
    /// A partial chunk that was not decoded: overtaken by newer audio in real time, or its
    /// decode failed (the final chunk's own decode reports real errors).
    pub skipped: bool,
    /// A final chunk: the partial chunks handed out before it ([`TimedChunk::partials_before`]).
    pub partials_before: u64,
    /// A packed window's utterances, each written as a segment of its own.
    pub utterances: Vec<Utterance>,
    /// A packed window's text, timed (see [`Transcription::timed`]).
    pub timed: Vec<TimedText>,
    /// The language detected in it (see [`Transcription::language`]).
    pub language: Option<DetectedLanguage>,
    /// How sure the transcriber is of it (see [`Transcription::confidence`]).
    pub confidence: Option<Confidence>,
    /// Its words, timed (see [`Transcription::words`]).
    pub words: Vec<Word>,
    /// How likely each word of `text` is (see [`Transcription::word_probabilities`]).
    pub word_probabilities: Vec<f32>,
    /// When the chunker cut the chunk.
    pub cut_at: Instant,
    /// How long transcribing it took.
    pub transcribe_time: Duration,
    /// The source it was cut from ([`TimedChunk::source`]).
    pub source: usize,
    /// How long it was held for time order among several sources ([`TimedChunk::merge_wait`]).
    pub merge_wait: Duration,
}

impl Transcript {
    /// The transcript of `timed`: `done`, which took `transcribe_time` to produce.
    pub fn new(timed: &TimedChunk, done: Transcription, transcribe_time: Duration) -> Self {
        Transcript {
            chunk: timed.chunk.index,
            start_sample: timed.chunk.start_sample,
            end_sample: timed.chunk.end_sample(),
            speech_end_sample: timed.chunk.speech_end_sample,
            available_at: timed.available_at,
            speech_end_at: timed.speech_end_at,
            text: done.text,
            full_window_retries: done.full_window_retries,
            restarts_cut: done.restarts_cut,
            temperature_fallbacks: done.temperature_fallbacks,
            provisional: false,
            early_decoded: false,
            partial: timed.partial.clone(),
            shown_as_partial: timed.shown_as_partial.clone(),
            skipped: false,
            partials_before: timed.partials_before,
            utterances: timed.chunk.utterances.clone(),
            timed: done.timed,
            language: done.language,
            confidence: done.confidence,
            words: done.words,
            word_probabilities: done.word_probabilities,
            cut_at: timed.cut_at,
            transcribe_time,
            source: timed.source,
            merge_wait: timed.merge_wait,
        }
    }
}

/// Transcribes one chunk: the transcription stage, shared by every backend. A partial chunk
/// goes to [`Transcriber::transcribe_partial`], which may stop once it is overtaken.
///
/// # Errors
/// The transcriber's error.
pub fn transcribe(transcriber: &mut dyn Transcriber, timed: &TimedChunk) -> Result<Transcript> {
    match timed.partial.as_ref().and_then(|p| p.overtaken.clone()) {
        Some(overtaken) => transcribe_with(timed, |chunk| {
            transcriber
                .transcribe_partial(chunk, &overtaken)?
                .ok_or(Error::Cancelled)
        }),
        None => transcribe_with(timed, |chunk| transcriber.transcribe(chunk)),
    }
}

/// Transcribes one chunk with `decode` (a transcriber's call, made however the backend makes
/// it: in this process or in a worker), sharing an early decode: a provisional chunk is
/// decoded and kept for its final chunk, and gives a provisional transcript that the
/// [`Emitter`] only counts; a final chunk whose provisional one was decoded (or is being
/// decoded) takes that result.
///
/// # Errors
/// `decode`'s error; a provisional chunk's error is kept for its final chunk instead.
pub fn transcribe_with(
    timed: &TimedChunk,
    decode: impl FnOnce(&Chunk) -> Result<Transcription>,
) -> Result<Transcript> {
    if timed.partial.is_some() {
        return Ok(transcribe_partial(timed, decode));
    }
    let began = Instant::now();
    let mut transcribe_time = None;
    let (done, early_decoded) = match (&timed.early, timed.provisional) {
        (Some(early), true) => {
            let decoded = early.run_provisional(|| decode(&timed.chunk));
            // Its text is the final chunk's: carried only when it is to be shown as a partial.
            let text = timed
                .shown_as_partial
                .as_ref()
                .and_then(|_| early.text())
                .unwrap_or_default();
            (Transcription::from(text), decoded)
        }
        (Some(early), false) => {
            let (outcome, ready_at) = early.run_final(|| decode(&timed.chunk));
            // The early decode was this chunk's transcription: the part of it after the
            // cut is transcription time, not pipeline overhead (waiting behind it included).
            transcribe_time = ready_at.map(|at| at.saturating_duration_since(timed.cut_at));
            (outcome?, ready_at.is_some())
        }
        (None, _) => (decode(&timed.chunk)?, false),
    };
    let transcribe_time = transcribe_time.unwrap_or_else(|| began.elapsed());
    let chunk = &timed.chunk;
    tracing::debug!(
        chunk = chunk.index,
        audio_s = chunk.seconds(),
        utterances = chunk.utterances.len().max(1),
        provisional = timed.provisional,
        early_decoded,
        full_window_retries = done.full_window_retries,
        restarts_cut = done.restarts_cut,
        decode_ms = transcribe_time.as_secs_f64() * 1000.0,
        "transcribed"
    );
    let mut transcript = Transcript::new(timed, done, transcribe_time);
    transcript.provisional = timed.provisional;
    transcript.early_decoded = early_decoded;
    Ok(transcript)
}

/// A partial chunk's transcript: skipped, without decoding, when it has been overtaken; also
/// skipped when its decode fails, since the final chunk decodes the same audio and reports
/// a real error itself.
fn transcribe_partial(
    timed: &TimedChunk,
    decode: impl FnOnce(&Chunk) -> Result<Transcription>,
) -> Transcript {
    let began = Instant::now();
    let overtaken = timed
        .partial
        .as_ref()
        .and_then(|p| p.overtaken.as_ref())
        .is_some_and(Overtaken::is_overtaken);
    let outcome = if overtaken {
        None
    } else {
        match decode(&timed.chunk) {
            Ok(done) => Some(done),
            Err(Error::Cancelled) => None,
            Err(error) => {
                tracing::warn!(
                    chunk = timed.chunk.index,
                    "a partial decode failed; the final one will tell: {}",
                    error.chain()
                );
                None
            }
        }
    };
    tracing::debug!(
        chunk = timed.chunk.index,
        audio_s = timed.chunk.seconds(),
        skipped = outcome.is_none(),
        decode_ms = began.elapsed().as_secs_f64() * 1000.0,
        "partial"
    );
    let skipped = outcome.is_none();
    let mut transcript = Transcript::new(timed, outcome.unwrap_or_default(), began.elapsed());
    transcript.skipped = skipped;
    transcript
}

/// The source and chunk stages on threads of their own: what every thread-based backend
/// (threads, rayon, process) starts for an input, the chunker handing its chunks on.
#[derive(Debug)]
pub struct InputThreads {
    source: Option<std::thread::JoinHandle<u64>>,
    chunker: Option<std::thread::JoinHandle<u64>>,
}

/// What an input's source and chunk stages counted, for the run's tally.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InputCounts {
    /// Samples the source read.
    pub samples_read: u64,
    /// Samples dropped at the ring (real-time input the pipeline could not keep up with).
    pub dropped_samples: u64,
}

impl InputCounts {
    /// Records the counts in `tally`.
    pub fn add_to(self, tally: &mut RunTally) {
        tally.audio_samples = self.samples_read;
        tally.dropped_samples = self.dropped_samples;
    }
}

impl InputThreads {
    /// Starts the chunk stage on `steno-chunker`, handing each chunk to `hand_on` (which
    /// returns `false` once nobody takes chunks), and the source stage on `steno-source`,
    /// which wakes the chunker as it fills the ring. A thread that cannot start fails the run
    /// ([`RunControl::spawn_stage`]); its stage is dropped with it, so the stages on either
    /// side see the end and stop.
    pub fn start(
        control: &RunControl,
        source: SourceStage,
        chunker: ChunkStage,
        hand_on: impl FnMut(TimedChunk) -> bool + Send + 'static,
    ) -> Self {
        let chunker = control.spawn_stage("chunker", {
            let control = control.clone();
            move || chunker.run_blocking(&control, hand_on)
        });
        let wake = chunker.as_ref().map(|handle| handle.thread().clone());
        let source = control.spawn_stage("source", {
            let control = control.clone();
            move || source.run_blocking(&control, wake.as_ref())
        });
        InputThreads { source, chunker }
    }

    /// Joins both threads; a stage that panicked or never started failed the run and counts
    /// nothing.
    pub fn join(self, control: &RunControl) -> InputCounts {
        let count = |handle: Option<std::thread::JoinHandle<u64>>, stage| {
            handle
                .and_then(|handle| control.join_stage(handle, stage))
                .unwrap_or(0)
        };
        InputCounts {
            samples_read: count(self.source, "source"),
            dropped_samples: count(self.chunker, "chunker"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tone of 0.5 s, a pause of 0.3 s (past the padding, inside the hangover), a tone of
    /// 0.4 s and silence: one utterance, with an early start at its pause and at its end.
    fn a_pause_inside_an_utterance() -> Vec<f32> {
        let tone = |seconds: f64| -> Vec<f32> {
            (0..(seconds * 16_000.0) as usize)
                .map(|i| 0.3 * (i as f32 * 0.05).sin())
                .collect()
        };
        let silence = |seconds: f64| vec![0.0; (seconds * 16_000.0) as usize];
        [tone(0.5), silence(0.3), tone(0.4), silence(0.8)].concat()
    }

    /// What one chunk lane with `options` hands out for `audio`, fed in 20 ms pieces as a
    /// microphone delivers them (energy VAD).
    fn hand_outs(options: &RunOptions, audio: &[f32]) -> Vec<TimedChunk> {
        let (mut writer, reader) = crate::ring(16_000 * 4);
        let config = ChunkerConfig::default().with_vad(crate::VadKind::Energy);
        let mut stage = ChunkLane::new(reader, &config, options, Instant::now()).unwrap();
        let mut out = Vec::new();
        for piece in audio.chunks(320) {
            assert_eq!(writer.push_some(piece), piece.len());
            stage.step(&mut out).unwrap();
        }
        out
    }

    #[test]
    fn early_start_hands_out_provisional_chunks_and_links_the_final_one() {
        let audio = a_pause_inside_an_utterance();
        let options = RunOptions {
            early_start: true,
            ..RunOptions::default()
        };
        let out = hand_outs(&options, &audio);
        let kinds: Vec<(bool, usize, u64)> = out
            .iter()
            .map(|t| (t.provisional, t.chunk.index, t.chunk.end_sample()))
            .collect();
        assert_eq!(kinds.len(), 3, "{kinds:?}");
        let (first, second, last) = (&out[0], &out[1], &out[2]);
        assert!(first.provisional && second.provisional && !last.provisional);
        assert!(
            first.chunk.end_sample() < second.chunk.end_sample(),
            "speech resumed"
        );
        assert_eq!(
            last.chunk, second.chunk,
            "the final chunk is the provisional one"
        );
        assert!(Arc::ptr_eq(
            last.early.as_ref().unwrap(),
            second.early.as_ref().unwrap()
        ));
        // Without early start, only the final chunk.
        let waited = hand_outs(&RunOptions::default(), &audio);
        assert_eq!(waited.len(), 1);
        assert_eq!(waited[0].chunk, last.chunk);
        assert!(waited[0].early.is_none());
    }

    #[test]
    fn in_real_time_with_interim_results_a_provisional_chunk_takes_a_place_among_the_partials() {
        let audio = a_pause_inside_an_utterance();
        let cut = |realtime: bool| {
            let options = RunOptions {
                early_start: true,
                realtime,
                interim_step: Some(Duration::from_millis(300)),
                ..RunOptions::default()
            };
            hand_outs(&options, &audio)
        };
        // (kind, seq among the partials): a partial point 0.3 s in, the early start at the
        // pause, a partial point once speech resumed, the early start at the end, the final.
        let places: Vec<(&str, Option<u64>)> = cut(true)
            .iter()
            .map(|t| match (&t.partial, &t.shown_as_partial, t.provisional) {
                (Some(p), _, _) => ("partial", Some(p.seq)),
                (None, shown, true) => ("provisional", shown.as_ref().map(|p| p.seq)),
                _ => ("final", None),
            })
            .collect();
        assert_eq!(
            places,
            [
                ("partial", Some(0)),
                ("provisional", Some(1)),
                ("partial", Some(2)),
                ("provisional", Some(3)),
                ("final", None)
            ]
        );
        // Offline (paced by nobody) partials must be the same on every backend: no
        // provisional chunk is shown as one.
        assert!(cut(false).iter().all(|t| t.shown_as_partial.is_none()));
    }

    #[test]
    fn the_source_stages_error_ends_the_stream_but_is_still_the_outcome() {
        let control = RunControl::new(&RunOptions::default());
        assert!(
            control
                .check_input::<()>(Err(Error::input("cut.wav", "truncated")))
                .is_none()
        );
        assert!(
            !control.is_stopped(),
            "the other stages finish the audio read"
        );
        control.fail(Error::sink("out", "disk full"));
        assert!(control.is_stopped());
        let err = control.outcome().unwrap_err().to_string();
        assert_eq!(err, "cut.wav: truncated");
    }

    #[test]
    fn an_input_error_from_another_stage_stops_the_run() {
        let control = RunControl::new(&RunOptions::default());
        control.fail(Error::input("model.bin", "unreadable"));
        assert!(
            control.is_stopped(),
            "only the source stage's failure ends just the stream"
        );
        assert_eq!(
            control.outcome().unwrap_err().to_string(),
            "model.bin: unreadable"
        );
    }

    #[test]
    fn arrival_lookup_finds_the_pop_that_delivered_a_sample() {
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_millis(10);
        let mut arrivals = VecDeque::from([(100, t0), (200, t1)]);
        assert_eq!(arrival_of(&mut arrivals, 100), t0);
        assert_eq!(arrival_of(&mut arrivals, 150), t1);
        assert_eq!(arrivals.len(), 1);
    }
}
