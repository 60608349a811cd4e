//! [`RunAhead`]: the tokens that bound how far a parallel backend's transcription runs ahead
//! of what it has written.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use super::RunControl;

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
