//! A bounded pool of transcribers that many pipelines share (a server's streams), with finals
//! served before partial hypotheses.
//!
//! Each pipeline normally owns its transcribers: one Whisper state (tens of megabytes, two
//! spinning threads) per worker. A server with many streams cannot give every stream its own
//! state without oversubscribing the cores and multiplying memory, so its pipelines get a
//! [`TranscriberPool`] as their [`TranscriberFactory`] instead: the transcribers it makes hold
//! nothing, and borrow one of at most `size` real transcribers for each chunk. A stream that is
//! silent costs no state at all.
//!
//! Whoever waits for a final chunk goes before whoever waits for a partial one, across every
//! stream: interim results never delay another stream's final text. Finals are served in the
//! order they asked, so that when several streams end an utterance at once none of them is
//! passed over again and again. A partial that is overtaken while it waits for a transcriber
//! gives up without decoding, and one being decoded stops as soon as a final waits (through
//! [`Overtaken`], as when newer audio of its own utterance overtakes it).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::{Chunk, Overtaken, Result, Transcriber, TranscriberFactory, Transcription};

/// How often a waiting partial looks whether it has been overtaken.
const OVERTAKEN_POLL: Duration = Duration::from_millis(20);

/// At most `size` transcribers made by one factory, lent chunk by chunk to every pipeline that
/// uses the pool as its factory. Clones share the pool.
///
/// ```
/// use std::sync::Arc;
/// use steno_core::{Chunk, ScriptedTranscriber, TranscriberFactory, TranscriberPool};
/// let pool = TranscriberPool::new(Arc::new(ScriptedTranscriber::new()), 1);
/// // Two pipelines' transcribers, one real transcriber between them.
/// let mut a = pool.create().unwrap();
/// let mut b = pool.create().unwrap();
/// let chunk = Chunk::new(0, 0, vec![0.0; 1_600]);
/// assert_eq!(a.transcribe(&chunk).unwrap().text, b.transcribe(&chunk).unwrap().text);
/// assert_eq!(pool.created(), 1);
/// ```
#[derive(Clone)]
pub struct TranscriberPool {
    shared: Arc<Shared>,
}

struct Shared {
    factory: Arc<dyn TranscriberFactory>,
    size: usize,
    state: Mutex<PoolState>,
    returned: Condvar,
    /// How many finals wait for a transcriber, for the partials being decoded to see without
    /// the lock: they stop while it is above zero.
    finals_waiting: Arc<AtomicUsize>,
}

#[derive(Default)]
struct PoolState {
    idle: Vec<Box<dyn Transcriber>>,
    /// Transcribers made so far (idle or lent), at most `size`.
    created: usize,
    /// The tickets of final chunks waiting for a transcriber, in the order they asked: the
    /// first is served first, and partials wait while there are any.
    finals_waiting: VecDeque<u64>,
    /// The ticket the next final chunk to ask gets.
    next_ticket: u64,
}

impl std::fmt::Debug for TranscriberPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TranscriberPool")
            .field("factory", &self.shared.factory.name())
            .field("size", &self.shared.size)
            .field("created", &self.created())
            .finish_non_exhaustive()
    }
}

impl TranscriberPool {
    /// A pool of at most `size` (at least 1) transcribers from `factory`, made when first
    /// needed.
    pub fn new(factory: Arc<dyn TranscriberFactory>, size: usize) -> Self {
        TranscriberPool {
            shared: Arc::new(Shared {
                factory,
                size: size.max(1),
                state: Mutex::new(PoolState::default()),
                returned: Condvar::new(),
                finals_waiting: Arc::new(AtomicUsize::new(0)),
            }),
        }
    }

    /// The most transcribers the pool will make.
    pub fn size(&self) -> usize {
        self.shared.size
    }

    /// How many transcribers the pool has made so far.
    pub fn created(&self) -> usize {
        self.shared.lock().created
    }

    /// How many transcribers are lent out right now.
    pub fn busy(&self) -> usize {
        let state = self.shared.lock();
        state.created - state.idle.len()
    }

    /// A transcriber for a final chunk: waits for one to be free (before any partial does,
    /// after the finals that asked earlier), making a new one while the pool is below its size.
    fn lend_for_final(&self) -> Result<Lent> {
        let mut state = self.shared.lock();
        let ticket = state.next_ticket;
        state.next_ticket += 1;
        state.finals_waiting.push_back(ticket);
        let taken = loop {
            if state.finals_waiting.front() == Some(&ticket)
                && let Some(taken) = self.shared.take_or_make(&mut state)
            {
                break taken;
            }
            // Only a final that has to wait stops the partials being decoded.
            self.shared
                .finals_waiting
                .store(state.finals_waiting.len(), Ordering::SeqCst);
            state = self
                .shared
                .returned
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        };
        state.finals_waiting.pop_front();
        self.shared
            .finals_waiting
            .store(state.finals_waiting.len(), Ordering::SeqCst);
        drop(state);
        // The next final in line, or a partial, may now be the one who can go.
        self.shared.returned.notify_all();
        self.lent(taken)
    }

    /// A transcriber for a partial chunk, once no final is waiting; `None` when the partial is
    /// overtaken first.
    fn lend_for_partial(&self, overtaken: &Overtaken) -> Result<Option<Lent>> {
        let mut state = self.shared.lock();
        loop {
            if overtaken.is_overtaken() {
                return Ok(None);
            }
            if state.finals_waiting.is_empty()
                && let Some(taken) = self.shared.take_or_make(&mut state)
            {
                drop(state);
                return self.lent(taken).map(Some);
            }
            state = self
                .shared
                .returned
                .wait_timeout(state, OVERTAKEN_POLL)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Wraps what `take_or_make` gave: an idle transcriber, or a new one made outside the lock.
    fn lent(&self, taken: Taken) -> Result<Lent> {
        let transcriber = match taken {
            Taken::Idle(transcriber) => transcriber,
            Taken::Make => match self.shared.factory.create() {
                Ok(transcriber) => transcriber,
                Err(error) => {
                    self.shared.lock().created -= 1;
                    self.shared.returned.notify_all();
                    return Err(error);
                }
            },
        };
        Ok(Lent {
            pool: self.shared.clone(),
            transcriber: Some(transcriber),
        })
    }
}

enum Taken {
    Idle(Box<dyn Transcriber>),
    /// The pool counted one more transcriber; the caller makes it.
    Make,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn take_or_make(&self, state: &mut PoolState) -> Option<Taken> {
        if let Some(transcriber) = state.idle.pop() {
            return Some(Taken::Idle(transcriber));
        }
        (state.created < self.size).then(|| {
            state.created += 1;
            Taken::Make
        })
    }
}

/// A transcriber lent by the pool, given back when dropped (also when its decode panicked).
struct Lent {
    pool: Arc<Shared>,
    transcriber: Option<Box<dyn Transcriber>>,
}

impl Lent {
    fn get(&mut self) -> &mut dyn Transcriber {
        self.transcriber
            .as_deref_mut()
            .expect("a lent transcriber is there until it is dropped")
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        if let Some(transcriber) = self.transcriber.take() {
            self.pool.lock().idle.push(transcriber);
            self.pool.returned.notify_all();
        }
    }
}

impl TranscriberFactory for TranscriberPool {
    fn name(&self) -> String {
        self.shared.factory.name()
    }

    fn threads_per_transcriber(&self) -> usize {
        self.shared.factory.threads_per_transcriber()
    }

    /// A transcriber that holds nothing until it has a chunk: making one is free.
    fn create(&self) -> Result<Box<dyn Transcriber>> {
        Ok(Box::new(PooledTranscriber { pool: self.clone() }))
    }
}

/// What [`TranscriberPool::create`] makes: borrows a real transcriber for each chunk.
struct PooledTranscriber {
    pool: TranscriberPool,
}

impl Transcriber for PooledTranscriber {
    fn transcribe(&mut self, chunk: &Chunk) -> Result<Transcription> {
        self.pool.lend_for_final()?.get().transcribe(chunk)
    }

    fn transcribe_partial(
        &mut self,
        chunk: &Chunk,
        overtaken: &Overtaken,
    ) -> Result<Option<Transcription>> {
        match self.pool.lend_for_partial(overtaken)? {
            Some(mut lent) => {
                let gives_way =
                    overtaken.or_while_finals_wait(self.pool.shared.finals_waiting.clone());
                lent.get().transcribe_partial(chunk, &gives_way)
            }
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;
    use crate::ScriptedTranscriber;

    fn slow_pool(size: usize) -> TranscriberPool {
        let script =
            ScriptedTranscriber::new().with_cost_per_audio_second(Duration::from_millis(500));
        TranscriberPool::new(Arc::new(script), size)
    }

    /// 0.1 s of audio: 50 ms of scripted work.
    fn chunk() -> Chunk {
        Chunk::new(0, 0, vec![0.0; 1_600])
    }

    /// Keeps one of `pool`'s transcribers busy with `work` on a thread of `scope`, and returns
    /// once it is lent.
    fn keep_busy<'scope>(
        scope: &'scope std::thread::Scope<'scope, '_>,
        pool: &TranscriberPool,
        work: Chunk,
    ) {
        let mut busy = pool.create().unwrap();
        scope.spawn(move || busy.transcribe(&work).unwrap());
        while pool.busy() == 0 {
            std::thread::yield_now();
        }
    }

    /// Returns once more than `finals` final chunks wait in `pool`.
    fn wait_for_finals_waiting(pool: &TranscriberPool, finals: usize) {
        while pool.shared.lock().finals_waiting.len() <= finals {
            std::thread::yield_now();
        }
    }

    #[test]
    fn never_more_transcribers_than_its_size_however_many_pipelines() {
        let pool = slow_pool(2);
        std::thread::scope(|scope| {
            for _ in 0..6 {
                let mut transcriber = pool.create().unwrap();
                scope.spawn(move || transcriber.transcribe(&chunk()).unwrap());
            }
        });
        assert_eq!(pool.created(), 2);
        assert_eq!(pool.busy(), 0);
    }

    #[test]
    fn a_partial_waits_while_a_final_waits() {
        let pool = slow_pool(1);
        let handed_out = Arc::new(AtomicU64::new(0));
        let overtaken = Overtaken::new(handed_out.clone(), 0);
        let order = Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            // The pool's only transcriber is busy; a final and then a partial queue for it.
            keep_busy(scope, &pool, chunk());
            let mut final_one = pool.create().unwrap();
            let mut partial = pool.create().unwrap();
            let order = &order;
            let pool = &pool;
            scope.spawn(move || {
                final_one.transcribe(&chunk()).unwrap();
                order.lock().unwrap().push("final");
            });
            wait_for_finals_waiting(pool, 0);
            scope.spawn(move || {
                partial.transcribe_partial(&chunk(), &overtaken).unwrap();
                order.lock().unwrap().push("partial");
            });
        });
        assert_eq!(*order.lock().unwrap(), ["final", "partial"]);
    }

    #[test]
    fn finals_are_served_in_the_order_they_asked() {
        let pool = slow_pool(1);
        let order = Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            // The pool's only transcriber is busy; six finals queue for it, one after another.
            keep_busy(scope, &pool, chunk());
            for stream in 0..6 {
                let mut transcriber = pool.create().unwrap();
                let order = &order;
                scope.spawn(move || {
                    transcriber.transcribe(&chunk()).unwrap();
                    order.lock().unwrap().push(stream);
                });
                wait_for_finals_waiting(&pool, stream);
            }
        });
        assert_eq!(*order.lock().unwrap(), [0, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn a_partial_being_decoded_stops_when_a_final_waits() {
        let pool = slow_pool(1);
        let overtaken = Overtaken::new(Arc::new(AtomicU64::new(0)), 0);
        std::thread::scope(|scope| {
            // 10 s of audio: 5 s of scripted work, unless it stops.
            let partial = scope.spawn(|| {
                let mut partial = pool.create().unwrap();
                let long = Chunk::new(0, 0, vec![0.0; 160_000]);
                partial.transcribe_partial(&long, &overtaken).unwrap()
            });
            while pool.busy() == 0 {
                std::thread::yield_now();
            }
            let mut other_stream = pool.create().unwrap();
            other_stream.transcribe(&chunk()).unwrap();
            assert_eq!(partial.join().unwrap(), None, "the partial gave way");
        });
        assert_eq!(pool.shared.finals_waiting.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn an_overtaken_partial_gives_up_without_a_transcriber() {
        let pool = slow_pool(1);
        let handed_out = Arc::new(AtomicU64::new(0));
        let overtaken = Overtaken::new(handed_out.clone(), 0);
        std::thread::scope(|scope| {
            keep_busy(scope, &pool, Chunk::new(0, 0, vec![0.0; 16_000]));
            let waiting = scope.spawn(|| {
                let mut partial = pool.create().unwrap();
                partial.transcribe_partial(&chunk(), &overtaken).unwrap()
            });
            handed_out.fetch_add(1, Ordering::SeqCst);
            assert_eq!(waiting.join().unwrap(), None);
            // It gave up while the only transcriber was still busy (for 500 ms).
            assert_eq!(pool.busy(), 1);
        });
    }

    #[test]
    fn a_failed_creation_frees_its_place() {
        struct Failing;
        impl TranscriberFactory for Failing {
            fn name(&self) -> String {
                "failing".into()
            }
            fn create(&self) -> Result<Box<dyn Transcriber>> {
                Err(crate::Error::model("failing", "out of memory"))
            }
        }
        let pool = TranscriberPool::new(Arc::new(Failing), 1);
        let mut transcriber = pool.create().unwrap();
        assert!(transcriber.transcribe(&chunk()).is_err());
        assert!(transcriber.transcribe(&chunk()).is_err());
        assert_eq!(pool.created(), 0);
    }
}
