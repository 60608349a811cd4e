//! Early start: decoding an utterance while the hangover is still confirming that it ended.
//!
//! The chunker knows a chunk's samples as soon as the padding after its last speech frame
//! has arrived ([`Chunker::provisional`](crate::Chunker::provisional)); it only waits out the
//! rest of the hangover to be sure the speaker stopped. With
//! [`RunOptions::early_start`](crate::RunOptions::early_start) the chunk stage hands that
//! provisional chunk to the transcribers at once. When the hangover confirms the end, the
//! final chunk (same index, boundaries and samples) takes the early result from the
//! [`EarlyDecode`] both share instead of decoding again; when speech resumes first, the early
//! result is dropped. Either way the output is what waiting would have given.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Instant;

use crate::{Chunk, Result, Transcription, Utterance};

/// The decode of one provisional chunk, shared with the final chunk that confirms it.
///
/// Whichever of the two reaches a transcriber first decodes; the provisional one that comes
/// second finds the work claimed and does nothing, the final one that comes second waits for
/// the result. A final chunk therefore never waits for work that has not started.
#[derive(Debug, Default)]
pub struct EarlyDecode {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Debug, Default)]
enum State {
    /// Nobody has started decoding.
    #[default]
    Idle,
    /// The provisional chunk is being decoded.
    Running,
    /// The provisional chunk's outcome, for the final chunk, and when it was ready.
    Done(Result<Transcription>, Instant),
    /// The final chunk has its text (decoded itself, or taken from `Done`).
    Claimed,
}

impl EarlyDecode {
    /// A decode nobody has started.
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// For the provisional chunk: decodes with `decode` and keeps the outcome for the final
    /// chunk, unless the final chunk got to it first. Whether it decoded.
    pub fn run_provisional(&self, decode: impl FnOnce() -> Result<Transcription>) -> bool {
        {
            let mut state = self.lock();
            if !matches!(*state, State::Idle) {
                return false;
            }
            *state = State::Running;
        }
        // If `decode` panics, the final chunk must not wait for it forever.
        let mut reset = ResetOnUnwind(Some(self));
        let outcome = decode();
        reset.0 = None;
        *self.lock() = State::Done(outcome, Instant::now());
        self.changed.notify_all();
        true
    }

    /// For the final chunk: the provisional chunk's outcome (waiting while it is decoded), or
    /// `decode`'s when the provisional chunk was not started; and, when it was the early
    /// one, when that was ready.
    ///
    /// # Errors
    /// The error of whichever decode ran.
    pub fn run_final(
        &self,
        decode: impl FnOnce() -> Result<Transcription>,
    ) -> (Result<Transcription>, Option<Instant>) {
        let mut state = self.lock();
        loop {
            match std::mem::replace(&mut *state, State::Claimed) {
                State::Done(outcome, ready_at) => return (outcome, Some(ready_at)),
                State::Running => {
                    *state = State::Running;
                    state = self
                        .changed
                        .wait(state)
                        .unwrap_or_else(PoisonError::into_inner);
                }
                State::Idle | State::Claimed => {
                    drop(state);
                    return (decode(), None);
                }
            }
        }
    }

    /// The early decode's text, once it is done and while no final chunk has claimed it:
    /// what the utterance so far sounds like, to show as a partial hypothesis.
    pub fn text(&self) -> Option<String> {
        match &*self.lock() {
            State::Done(Ok(done), _) => Some(done.text.clone()),
            _ => None,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Puts a decode that unwound back to `Idle`, so the final chunk decodes for itself.
struct ResetOnUnwind<'a>(Option<&'a EarlyDecode>);

impl Drop for ResetOnUnwind<'_> {
    fn drop(&mut self) {
        if let Some(early) = self.0 {
            *early.lock() = State::Idle;
            early.changed.notify_all();
        }
    }
}

/// Whether a final chunk is the one a provisional chunk at `span` stood for: same index and
/// boundaries (equal boundaries mean equal samples, so the samples need not be kept).
pub(crate) fn confirms(chunk: &Chunk, span: &Utterance) -> bool {
    (chunk.index, chunk.start_sample, chunk.end_sample())
        == (span.index, span.start_sample, span.end_sample)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    fn text(t: &str) -> Result<Transcription> {
        Ok(t.to_owned().into())
    }

    #[test]
    fn the_final_chunk_takes_the_early_result() {
        let early = EarlyDecode::new();
        assert!(early.run_provisional(|| text("early")));
        let (done, ready_at) = early.run_final(|| panic!("decoded twice"));
        assert_eq!(done.unwrap().text, "early");
        assert!(ready_at.is_some());
    }

    #[test]
    fn the_early_text_is_there_until_the_final_chunk_claims_it() {
        let early = EarlyDecode::new();
        assert_eq!(early.text(), None, "nothing decoded yet");
        early.run_provisional(|| text("so far"));
        assert_eq!(early.text().as_deref(), Some("so far"));
        let _ = early.run_final(|| panic!("decoded twice"));
        assert_eq!(early.text(), None, "the final chunk has it");
    }

    #[test]
    fn a_final_chunk_that_comes_first_decodes_and_the_provisional_one_does_nothing() {
        let early = EarlyDecode::new();
        let (done, ready_at) = early.run_final(|| text("final"));
        assert_eq!((done.unwrap().text.as_str(), ready_at), ("final", None));
        assert!(!early.run_provisional(|| panic!("decoded twice")));
    }

    #[test]
    fn a_final_chunk_waits_for_a_running_early_decode() {
        let early = EarlyDecode::new();
        let decodes = Arc::new(AtomicUsize::new(0));
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let provisional = std::thread::spawn({
            let (early, decodes) = (Arc::clone(&early), Arc::clone(&decodes));
            move || {
                early.run_provisional(|| {
                    decodes.fetch_add(1, Ordering::SeqCst);
                    started_tx.send(()).unwrap();
                    std::thread::sleep(Duration::from_millis(50));
                    text("early")
                });
            }
        });
        started_rx.recv().unwrap();
        let (done, _) = early.run_final(|| {
            decodes.fetch_add(1, Ordering::SeqCst);
            text("final")
        });
        let done = done.unwrap();
        provisional.join().unwrap();
        assert_eq!(
            (done.text.as_str(), decodes.load(Ordering::SeqCst)),
            ("early", 1)
        );
    }

    #[test]
    fn an_early_decode_that_panics_leaves_the_work_to_the_final_chunk() {
        let early = EarlyDecode::new();
        let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            early.run_provisional(|| panic!("inference crashed"));
        }));
        assert!(unwound.is_err());
        assert_eq!(early.run_final(|| text("final")).0.unwrap().text, "final");
    }
}
