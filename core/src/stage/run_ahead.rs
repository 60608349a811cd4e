//! [`RunAhead`]: the tokens that bound how far a parallel backend's transcription runs ahead
//! of what it has written, and [`run_slot`], the loop of a slot that takes them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use super::{RunControl, TimedChunk, Transcript, transcribe_with};
use crate::{Chunk, Error, Overtaken, Result, Transcription};

/// How often a slot waiting for a token looks for a stopped run.
const STOP_POLL: Duration = Duration::from_millis(10);

/// The run-ahead tokens of a backend's transcription slots (see
/// [`RunOptions::run_ahead`](crate::RunOptions::run_ahead)): a slot takes one before it
/// starts a chunk, and the emitter gives one back for each chunk it writes
/// ([`Emitter::newly_written`](super::Emitter::newly_written)), so transcripts held for
/// reordering behind a slow chunk stay bounded.
///
/// A slot should take its token before it takes the chunk: tokens then go to chunks in their
/// order, and the earliest chunk not yet written always has one.
///
/// ```
/// use steno_core::stage::RunAhead;
/// let tokens = RunAhead::new(2);
/// let slot = tokens.clone();
/// # let control = steno_core::Pipeline::builder(
/// #     steno_core::VecSource::new(vec![]),
/// #     std::sync::Arc::new(steno_core::ScriptedTranscriber::new()),
/// #     steno_core::CollectingSink::new(),
/// # ).build()?.prepare()?.control;
/// assert!(slot.take(&control));
/// assert!(slot.take(&control));
/// tokens.give_back(1); // one chunk written
/// assert!(slot.take(&control));
/// # Ok::<(), steno_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct RunAhead {
    shared: Arc<(Mutex<usize>, Condvar)>,
}

impl RunAhead {
    /// `tokens` tokens, all available.
    pub fn new(tokens: usize) -> Self {
        RunAhead {
            shared: Arc::new((Mutex::new(tokens), Condvar::new())),
        }
    }

    /// Waits for a token; `false` when the run stopped first.
    pub fn take(&self, control: &RunControl) -> bool {
        let (count, changed) = &*self.shared;
        let mut available = count.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if control.is_stopped() {
                return false;
            }
            if *available > 0 {
                *available -= 1;
                return true;
            }
            available = changed
                .wait_timeout(available, STOP_POLL)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Gives back one token per chunk written.
    pub fn give_back(&self, chunks: usize) {
        if chunks == 0 {
            return;
        }
        let (count, changed) = &*self.shared;
        *count.lock().unwrap_or_else(PoisonError::into_inner) += chunks;
        changed.notify_all();
    }
}

/// The loop of one transcription slot of a backend that transcribes elsewhere (worker
/// processes, a broker's fleet), run on a thread of its own until the chunks end or the run
/// stops. For each chunk: a [`RunAhead`] token first (so tokens go to chunks in their order
/// and the earliest chunk not yet written always has one), then the chunk from `next`, then
/// [`transcribe_with`] around `decode`, then the outcome to
/// `deliver`.
///
/// - `decode` is given the chunk and, for a partial chunk in real time, what tells whether
///   newer audio has overtaken it: a backend that can stop its decode midway answers
///   [`Error::Cancelled`] then, and the partial counts as skipped.
/// - `decode` answers `None` when the run stopped while it waited; the slot then ends without
///   delivering. Otherwise it gives the text and the part of its time that was not
///   transcription (a hand-off the backend can measure, such as a broker's round trip less
///   the worker's own decode), which the transcript's `transcribe_time` leaves out, so the
///   report counts it as the pipeline's overhead.
/// - `first_failed`, shared by the slots of a run, is the earliest chunk that failed: later
///   chunks are skipped, since the run fails there once the chunks before it are written.
/// - `deliver` returns `false` when nobody listens any more, which ends the slot.
pub fn run_slot(
    control: &RunControl,
    tokens: &RunAhead,
    first_failed: &AtomicUsize,
    mut next: impl FnMut() -> Option<TimedChunk>,
    mut decode: impl FnMut(&Chunk, Option<&Overtaken>) -> Option<Result<(Transcription, Duration)>>,
    mut deliver: impl FnMut(usize, Result<Transcript>) -> bool,
) {
    while tokens.take(control) {
        let Some(timed) = next() else {
            return;
        };
        if control.is_stopped() {
            return;
        }
        let index = timed.chunk.index;
        if index > first_failed.load(Ordering::SeqCst) {
            continue;
        }
        let mut stopped = false;
        let mut handoff = Duration::ZERO;
        let overtaken = timed.partial.as_ref().and_then(|p| p.overtaken.as_ref());
        let mut outcome = transcribe_with(&timed, |chunk| match decode(chunk, overtaken) {
            Some(Ok((text, not_transcription))) => {
                handoff = not_transcription;
                Ok(text)
            }
            Some(Err(error)) => Err(error),
            None => {
                stopped = true;
                Err(Error::Cancelled)
            }
        });
        if stopped {
            return;
        }
        match &mut outcome {
            Ok(transcript) => {
                transcript.transcribe_time = transcript.transcribe_time.saturating_sub(handoff);
            }
            Err(_) => {
                first_failed.fetch_min(index, Ordering::SeqCst);
            }
        }
        if !deliver(index, outcome) {
            return;
        }
    }
}
