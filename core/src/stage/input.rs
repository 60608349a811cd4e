//! The input half of a run: one source lane and one chunk lane per source (each source keeps
//! its own ring, conditioner and chunker, so one speaker's silence never cuts another's
//! utterance), and the merge that hands their chunks on in order of their end of speech.
//!
//! A run with one source has one lane of each and no merge: its chunks go on as the chunker
//! cuts them. With several, a final chunk is held until no other source can still cut a chunk
//! whose speech ends before its own ([`Chunker::speech_end_bound`](crate::Chunker::speech_end_bound));
//! the merged chunks are numbered afresh, so the emitter's chunk order is time order across
//! sources. Which chunk goes first depends only on the samples (ties go to the source given
//! first), so files fed as sources give the same transcript on every backend. In real time
//! a chunk is held at most [`MAX_MERGE_WAIT`]: a source in the middle of a long utterance can
//! keep its bound back for many seconds (a split may end its speech early), and text that
//! late would defeat live captions. A chunk let go that way may precede an earlier-ending one,
//! which the report counts (`segments_out_of_order`).
//!
//! Early start: a source's provisional chunk waits for the turn its final chunk would have and
//! is decoded under the number that final chunk will get, so the early result is the one
//! waiting would have given; should a chunk let go early take that number, the final chunk is
//! decoded again.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::{ChunkLane, RunControl, SourceLane, TimedChunk, Wait};
use crate::early::EarlyDecode;
use crate::{Progress, Result};

/// The longest a real-time run holds a source's chunk for another source's sake.
pub(crate) const MAX_MERGE_WAIT: Duration = Duration::from_secs(1);

/// One labelled source's counts, shared by its lanes (which count) and the emitter (which
/// reports them).
#[derive(Debug, Default)]
pub(crate) struct SourceCounters {
    pub(crate) label: String,
    pub(crate) samples_read: AtomicU64,
    pub(crate) dropped_samples: AtomicU64,
}

impl SourceCounters {
    pub(crate) fn new(label: String) -> Self {
        SourceCounters {
            label,
            ..SourceCounters::default()
        }
    }
}

/// Reads the run's sources and feeds their rings, paced like microphones in real-time mode.
///
/// Sources are read in turn on the caller's thread or task: a capture source's read returns as
/// soon as its device has delivered anything, so no source waits for another more than one
/// device buffer.
pub struct SourceStage {
    /// `None` once a source has ended: its ring writer is dropped at once, so its chunker
    /// flushes the last utterance while the other sources go on.
    lanes: Vec<Option<SourceLane>>,
    counters: Vec<Arc<SourceCounters>>,
    progress: Progress,
    /// Samples read by the lanes that have ended.
    ended_samples_read: u64,
    ended_source_drops: u64,
}

impl std::fmt::Debug for SourceStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceStage")
            .field("lanes", &self.lanes)
            .finish_non_exhaustive()
    }
}

impl SourceStage {
    /// The stage over `lanes`, one per source; `counters` (empty, or one per lane) get each
    /// source's samples read.
    pub(crate) fn new(
        lanes: Vec<SourceLane>,
        counters: Vec<Arc<SourceCounters>>,
        progress: Progress,
    ) -> Self {
        SourceStage {
            lanes: lanes.into_iter().map(Some).collect(),
            counters,
            progress,
            ended_samples_read: 0,
            ended_source_drops: 0,
        }
    }

    /// Moves every source's stream forward by at most one block.
    ///
    /// # Errors
    /// A source's error (it ends the whole input), and [`Error::Cancelled`](crate::Error::Cancelled).
    pub fn step(&mut self) -> Result<Wait> {
        let mut moved = false;
        let mut for_ring = false;
        let mut until: Option<Instant> = None;
        for (index, slot) in self.lanes.iter_mut().enumerate() {
            let Some(lane) = slot else { continue };
            let wait = lane.step()?;
            if let Some(counters) = self.counters.get(index) {
                counters
                    .samples_read
                    .store(lane.samples_read(), Ordering::Relaxed);
            }
            match wait {
                Wait::No => moved = true,
                Wait::ForRing => for_ring = true,
                Wait::Until(at) => until = Some(until.map_or(at, |earlier| earlier.min(at))),
                Wait::Done => {
                    self.ended_samples_read += lane.samples_read();
                    self.ended_source_drops += lane.source_dropped_samples();
                    *slot = None;
                }
            }
        }
        self.progress.set(self.samples_read());
        Ok(if moved {
            Wait::No
        } else if for_ring {
            Wait::ForRing
        } else if let Some(at) = until {
            Wait::Until(at)
        } else if self.lanes.iter().all(Option::is_none) {
            Wait::Done
        } else {
            Wait::No
        })
    }

    /// Samples read from the sources so far.
    pub fn samples_read(&self) -> u64 {
        self.ended_samples_read
            + self
                .lanes
                .iter()
                .flatten()
                .map(SourceLane::samples_read)
                .sum::<u64>()
    }

    /// Samples the sources lost before handing them out (see
    /// [`Source::dropped_samples`](crate::Source::dropped_samples)). They are also counted
    /// into the rings' dropped samples as they happen, so [`ChunkStage::dropped_samples`]
    /// already includes them.
    pub fn source_dropped_samples(&self) -> u64 {
        self.ended_source_drops
            + self
                .lanes
                .iter()
                .flatten()
                .map(SourceLane::source_dropped_samples)
                .sum::<u64>()
    }

    /// Steps until the stage must wait, calling `pushed` after every step that may have put
    /// samples in a ring (to wake the chunk stage), and returns what it waits for: never
    /// [`Wait::No`].
    ///
    /// # Errors
    /// As [`step`](Self::step).
    pub fn step_until_wait(&mut self, mut pushed: impl FnMut()) -> Result<Wait> {
        loop {
            match self.step()? {
                Wait::No => pushed(),
                wait => return Ok(wait),
            }
        }
    }

    /// Drives the stage on the calling thread until the streams end or `control` stops the
    /// run, and returns the samples read. After each block pushed (and at the end) `wake` is
    /// unparked: the thread draining the rings. For backends that give the source a thread of
    /// its own (threads, rayon, process); async backends step the stage themselves.
    pub fn run_blocking(mut self, control: &RunControl, wake: Option<&std::thread::Thread>) -> u64 {
        let wake = || {
            if let Some(thread) = wake {
                thread.unpark();
            }
        };
        while let Some(wait) = control.check_input(self.step_until_wait(wake)) {
            match wait {
                Wait::No => {}
                Wait::ForRing => std::thread::park_timeout(Duration::from_millis(1)),
                Wait::Until(at) => {
                    std::thread::sleep(at.saturating_duration_since(Instant::now()));
                }
                Wait::Done => break,
            }
        }
        let samples_read = self.samples_read();
        // Dropping the stage drops the ring writers: the end of the streams.
        drop(self);
        wake();
        samples_read
    }
}

/// Drains the sources' rings into their chunkers and hands the chunks on: as cut with one
/// source, in order of their end of speech with several.
#[derive(Debug)]
pub struct ChunkStage {
    lanes: Vec<ChunkLane>,
    /// With several sources: the chunks cut and not yet handed on.
    merge: Option<Merge>,
    counters: Vec<Arc<SourceCounters>>,
}

/// Several sources' final chunks on their way to one chunk order.
#[derive(Debug)]
struct Merge {
    /// Per source, its final chunks in the order cut, with when each was cut.
    held: Vec<VecDeque<TimedChunk>>,
    /// The number the next chunk handed on gets.
    next_index: usize,
    /// In real time, the longest a chunk is held.
    max_wait: Option<Duration>,
    /// Per source, samples added to its chunks' end of speech for their order (the echo
    /// guard's near source, see [`crate::echo::ECHO_LAG`]).
    lag: Vec<u64>,
    /// Per source, its latest provisional chunk (early start) not yet handed on: it waits for
    /// the turn its final chunk would have, so that it is decoded under the same number.
    provisional: Vec<Option<TimedChunk>>,
    /// Per source, the early decode of the provisional chunk last handed on and the number it
    /// was given: its final chunk takes the early result only under that number.
    predicted: Vec<Option<(Arc<EarlyDecode>, usize)>>,
}

impl ChunkStage {
    /// The stage over `lanes`, one per source, in the order the sources were given;
    /// `counters` (empty, or one per lane) get each source's dropped samples. With several
    /// lanes, `max_wait` bounds how long a chunk is held for time order (real time).
    pub(crate) fn new(
        lanes: Vec<ChunkLane>,
        counters: Vec<Arc<SourceCounters>>,
        max_wait: Option<Duration>,
    ) -> Self {
        let merge = (lanes.len() > 1).then(|| Merge {
            held: lanes.iter().map(|_| VecDeque::new()).collect(),
            next_index: 0,
            max_wait,
            lag: vec![0; lanes.len()],
            provisional: lanes.iter().map(|_| None).collect(),
            predicted: lanes.iter().map(|_| None).collect(),
        });
        ChunkStage {
            lanes,
            merge,
            counters,
        }
    }

    /// Orders the chunks of source `source` as if their speech ended `lag` samples later, so
    /// that other sources' chunks ending within `lag` after one of its own go first.
    #[must_use]
    pub(crate) fn with_lag(mut self, source: usize, lag: u64) -> Self {
        if let Some(merge) = &mut self.merge
            && let Some(slot) = merge.lag.get_mut(source)
        {
            *slot = lag;
        }
        self
    }

    /// Takes what the rings hold; chunks ready to go on are appended to `out`.
    ///
    /// Returns [`Wait::ForRing`] when the rings are empty and [`Wait::Done`] once every stream
    /// has ended and its last utterance was handed on.
    ///
    /// # Errors
    /// [`Error::Cancelled`](crate::Error::Cancelled).
    pub fn step(&mut self, out: &mut Vec<TimedChunk>) -> Result<Wait> {
        let Some(merge) = &mut self.merge else {
            let wait = self.lanes[0].step(out)?;
            self.count_drops();
            return Ok(wait);
        };
        let mut moved = false;
        let mut cut = Vec::new();
        for (source, lane) in self.lanes.iter_mut().enumerate() {
            if lane.is_finished() {
                continue;
            }
            moved |= lane.step(&mut cut)? == Wait::No;
            for mut timed in cut.drain(..) {
                timed.source = source;
                if timed.provisional {
                    // A newer one replaces it: the utterance grew.
                    merge.provisional[source] = Some(timed);
                } else {
                    // The open utterance ended (or was split): its provisional chunk is moot.
                    merge.provisional[source] = None;
                    merge.held[source].push_back(timed);
                }
            }
        }
        merge.hand_on(&self.lanes, out);
        let finished = self.lanes.iter().all(ChunkLane::is_finished)
            && merge.held.iter().all(VecDeque::is_empty);
        self.count_drops();
        Ok(if finished {
            Wait::Done
        } else if moved {
            Wait::No
        } else {
            Wait::ForRing
        })
    }

    /// Samples dropped at the rings so far.
    pub fn dropped_samples(&self) -> u64 {
        self.lanes.iter().map(ChunkLane::dropped_samples).sum()
    }

    /// Copies each lane's dropped samples to its source's counters.
    fn count_drops(&self) {
        for (lane, counters) in self.lanes.iter().zip(&self.counters) {
            counters
                .dropped_samples
                .store(lane.dropped_samples(), Ordering::Relaxed);
        }
    }

    /// Steps until chunks are ready in `ready` or the stage must wait, calling `drained` after
    /// every step that may have made room in a ring (to wake a source waiting for room).
    ///
    /// # Errors
    /// As [`step`](Self::step).
    pub fn step_until_ready(
        &mut self,
        ready: &mut Vec<TimedChunk>,
        mut drained: impl FnMut(),
    ) -> Result<Wait> {
        loop {
            let wait = self.step(ready)?;
            if wait != Wait::ForRing {
                drained();
            }
            if wait != Wait::No || !ready.is_empty() {
                return Ok(wait);
            }
        }
    }

    /// Drives the stage on the calling thread until the streams end, `control` stops the run
    /// or `hand_on` refuses a chunk (returns `false`: downstream is gone), and returns the
    /// samples dropped at the rings. While the rings are empty the thread parks; the source
    /// stage's [`SourceStage::run_blocking`] unparks it.
    pub fn run_blocking(
        mut self,
        control: &RunControl,
        mut hand_on: impl FnMut(TimedChunk) -> bool,
    ) -> u64 {
        let mut ready = Vec::new();
        while let Some(wait) = control.check(self.step_until_ready(&mut ready, || {})) {
            for chunk in ready.drain(..) {
                if !hand_on(chunk) {
                    return self.dropped_samples();
                }
            }
            match wait {
                Wait::Done => break,
                // A backstop only: the source unparks this thread after each push.
                Wait::ForRing => std::thread::park_timeout(Duration::from_millis(5)),
                Wait::No | Wait::Until(_) => {}
            }
        }
        self.dropped_samples()
    }
}

impl Merge {
    /// Hands on, in order of end of speech, every held chunk that no source can still precede
    /// (or, in real time, that has waited long enough), then the provisional chunks whose
    /// final chunks' turn has come.
    fn hand_on(&mut self, lanes: &[ChunkLane], out: &mut Vec<TimedChunk>) {
        self.hand_on_finals(lanes, out);
        for source in 0..self.provisional.len() {
            let Some(key) = self.provisional[source]
                .as_ref()
                .map(|timed| (timed.chunk.speech_end_sample + self.lag[source], source))
            else {
                continue;
            };
            // Its final chunk would be next: nothing held, and no source can still precede it.
            let next = self.held.iter().all(VecDeque::is_empty)
                && (0..self.held.len())
                    .filter(|other| *other != source)
                    .all(|other| key < (self.bound(lanes, other), other));
            if !next {
                continue;
            }
            if let Some(mut timed) = self.provisional[source].take() {
                timed.chunk.index = self.next_index;
                self.predicted[source] = timed
                    .early
                    .as_ref()
                    .map(|early| (Arc::clone(early), self.next_index));
                out.push(timed);
            }
        }
    }

    /// Where source `source`'s next chunk can end at the earliest, in the merge's order.
    fn bound(&self, lanes: &[ChunkLane], source: usize) -> u64 {
        lanes[source]
            .speech_end_bound()
            .saturating_add(self.lag[source])
    }

    /// Hands on the held final chunks that may go, in order.
    fn hand_on_finals(&mut self, lanes: &[ChunkLane], out: &mut Vec<TimedChunk>) {
        loop {
            // The earliest-ending held chunk; ties go to the source given first.
            let Some(first) = (0..self.held.len())
                .filter_map(|source| {
                    let head = self.held[source].front()?;
                    Some((head.chunk.speech_end_sample + self.lag[source], source))
                })
                .min()
            else {
                return;
            };
            // A source with nothing held may still cut a chunk ending at its bound or later.
            let precedable = (0..self.held.len()).any(|source| {
                self.held[source].is_empty() && first > (self.bound(lanes, source), source)
            });
            let waited = self.held[first.1]
                .front()
                .map_or(Duration::ZERO, |head| head.cut_at.elapsed());
            if precedable && self.max_wait.is_none_or(|limit| waited < limit) {
                return;
            }
            let Some(mut timed) = self.held[first.1].pop_front() else {
                return;
            };
            timed.merge_wait = waited;
            timed.chunk.index = self.next_index;
            // The early decode ran under the number its provisional chunk was given: when a
            // chunk let go early took that number, decode again (text may depend on it).
            let predicted = self.predicted[first.1].take();
            if let Some(early) = &timed.early
                && !predicted.is_some_and(|(handed, index)| {
                    Arc::ptr_eq(&handed, early) && index == self.next_index
                })
            {
                timed.early = None;
            }
            self.next_index += 1;
            out.push(timed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ChunkerConfig, RunOptions, VadKind};

    fn tone(seconds: f64) -> Vec<f32> {
        let n = (seconds * 16_000.0) as usize;
        (0..n).map(|i| 0.3 * (i as f32 * 0.05).sin()).collect()
    }

    /// Two lanes: `a` says one short utterance while `b` talks on and on (its bound stays
    /// back at its possible split point). The chunk stage over them, with `max_wait`.
    fn one_short_one_long(max_wait: Option<Duration>) -> (ChunkStage, Vec<crate::RingWriter>) {
        let config = ChunkerConfig::default().with_vad(VadKind::Energy);
        let options = RunOptions::default();
        let (mut writers, mut lanes) = (Vec::new(), Vec::new());
        for _ in 0..2 {
            let (writer, reader) = crate::ring(16_000 * 30);
            lanes.push(ChunkLane::new(reader, &config, &options, Instant::now()).unwrap());
            writers.push(writer);
        }
        // 12 s in: `a` said 1 s of speech at 10 s; `b` has talked since 0 s.
        let a = [vec![0.0; 160_000], tone(1.0), vec![0.0; 16_000]].concat();
        writers[0].push_some(&a);
        writers[1].push_some(&tone(12.0));
        (ChunkStage::new(lanes, Vec::new(), max_wait), writers)
    }

    #[test]
    fn a_capture_device_that_delivers_nothing_does_not_hold_the_other_sources_back() {
        let options = RunOptions::default();
        // A device whose ring never receives audio (its writer lives on: not ended).
        let (_device, stalled_ring) = crate::ring(48_000);
        let stalled = crate::CaptureSource::new("stalled", stalled_ring, 48_000, 1).unwrap();
        let (stalled_writer, _stalled_reader) = crate::ring(16_000);
        let (other_writer, mut other_reader) = crate::ring(16_000 * 4);
        let lanes = vec![
            SourceLane::new(Box::new(stalled), stalled_writer, &options, Instant::now()),
            SourceLane::new(
                Box::new(crate::VecSource::new(vec![0.1; 16_000])),
                other_writer,
                &options,
                Instant::now(),
            ),
        ];
        let mut stage = SourceStage::new(lanes, Vec::new(), Progress::default());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for _ in 0..10 {
                let _ = stage.step();
            }
            let _ = tx.send(stage.samples_read());
        });
        let read = rx.recv_timeout(Duration::from_secs(5));
        assert!(
            matches!(read, Ok(samples) if samples > 0),
            "the other source was not read: {read:?}"
        );
        let mut received = Vec::new();
        other_reader.pop_into(&mut received);
        assert!(!received.is_empty());
    }

    #[test]
    fn a_chunk_waits_for_a_source_that_may_still_end_earlier_and_only_as_long_as_allowed() {
        // Offline: `b` may still split its utterance at a point before `a`'s speech ended, so
        // `a`'s chunk waits, whatever the time.
        let (mut stage, writers) = one_short_one_long(None);
        let mut out = Vec::new();
        stage.step(&mut out).unwrap();
        std::thread::sleep(Duration::from_millis(30));
        stage.step(&mut out).unwrap();
        assert!(out.is_empty(), "held: {out:?}");
        // Once `b` ends (stream over, its utterance flushed), both go, in time order.
        drop(writers);
        while stage.step(&mut out).unwrap() != Wait::Done {}
        let order: Vec<(usize, usize)> = out.iter().map(|t| (t.source, t.chunk.index)).collect();
        assert_eq!(order, [(0, 0), (1, 1)], "{out:?}");
        // In real time the wait is bounded: `a`'s chunk goes once it has waited the limit.
        let limit = Duration::from_millis(20);
        let (mut stage, _writers) = one_short_one_long(Some(limit));
        let mut out = Vec::new();
        stage.step(&mut out).unwrap();
        assert!(out.is_empty());
        std::thread::sleep(limit + Duration::from_millis(10));
        stage.step(&mut out).unwrap();
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!((out[0].source, out[0].chunk.index), (0, 0));
        assert!(out[0].merge_wait >= limit, "{:?}", out[0].merge_wait);
    }
}
