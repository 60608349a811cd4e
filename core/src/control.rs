//! Handles a caller keeps on a run from other threads: its [`CancelToken`] and its
//! [`Progress`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::{Error, Result};

/// A cloneable flag that asks a run to stop; the run ends with [`Error::Cancelled`].
///
/// A [`child`](Self::child) token is cancelled with its parent and every ancestor, but cancelling
/// the child leaves them alone: a backend uses one to stop its own stages after a failure.
#[derive(Debug, Clone, Default)]
pub struct CancelToken {
    flag: Arc<AtomicBool>,
    /// The flags of the parent, its parent, and so on: cancelling any of them cancels this.
    ancestors: Vec<Arc<AtomicBool>>,
}

impl CancelToken {
    /// A token that is not cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// A token cancelled when this one or any of its ancestors is, or on its own.
    pub fn child(&self) -> Self {
        let mut ancestors = self.ancestors.clone();
        ancestors.push(Arc::clone(&self.flag));
        CancelToken {
            flag: Arc::new(AtomicBool::new(false)),
            ancestors,
        }
    }

    /// Asks the run to stop.
    pub fn cancel(&self) {
        self.flag.store(true, Ordering::SeqCst);
    }

    /// Whether [`cancel`](Self::cancel) was called on this token or any of its ancestors.
    pub fn is_cancelled(&self) -> bool {
        std::iter::once(&self.flag)
            .chain(&self.ancestors)
            .any(|flag| flag.load(Ordering::SeqCst))
    }

    /// `Err(Error::Cancelled)` once cancelled.
    ///
    /// # Errors
    /// [`Error::Cancelled`] when the token is cancelled.
    pub fn check(&self) -> Result<()> {
        if self.is_cancelled() {
            Err(Error::Cancelled)
        } else {
            Ok(())
        }
    }
}

/// How far a run has got; clone it before the run to watch from another thread.
///
/// Reading runs ahead of transcription (a file is read in moments; its text takes minutes),
/// so show [`samples_transcribed`](Self::samples_transcribed) to a user waiting for text.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    read: Arc<AtomicU64>,
    transcribed: Arc<AtomicU64>,
}

impl Progress {
    /// Samples (16 kHz) read from the source so far (from all of them, with several).
    pub fn samples_read(&self) -> u64 {
        self.read.load(Ordering::Relaxed)
    }

    /// Samples (16 kHz) of audio whose text has been written (or found empty), from the start
    /// of the input: the end of the last chunk the sink has, in order.
    pub fn samples_transcribed(&self) -> u64 {
        self.transcribed.load(Ordering::Relaxed)
    }

    pub(crate) fn set(&self, samples: u64) {
        self.read.store(samples, Ordering::Relaxed);
    }

    pub(crate) fn set_transcribed(&self, samples: u64) {
        self.transcribed.fetch_max(samples, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_cancelled_with_any_ancestor_and_never_cancels_one() {
        let root = CancelToken::new();
        let child = root.child();
        let grandchild = child.child();
        grandchild.cancel();
        assert!(grandchild.is_cancelled());
        assert!(!child.is_cancelled() && !root.is_cancelled());

        let sibling = child.child();
        root.cancel();
        assert!(child.is_cancelled(), "a child is cancelled with its parent");
        assert!(
            sibling.is_cancelled(),
            "a grandchild is cancelled with its grandparent"
        );
        assert!(matches!(sibling.check(), Err(Error::Cancelled)));
    }
}
