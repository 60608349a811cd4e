//! [`NatsModel`]: the fleet as a transcriber factory, for schedulers that lend transcribers
//! chunk by chunk (such as `steno serve`'s pool) instead of running a pipeline on
//! [`NatsBackend`](crate::NatsBackend).

use std::sync::Arc;
use std::time::Duration;

use steno_core::{Chunk, Error, Overtaken, Result, Transcriber, TranscriberFactory, Transcription};

use crate::session::Session;
use crate::target::NatsTarget;
use crate::wire;

/// The model a fleet of [`NatsWorker`](crate::NatsWorker)s serves, as a
/// [`TranscriberFactory`]: each transcriber it creates sends its chunk through the broker and
/// waits for the text. Every transcriber shares one connection; make as many as chunks should
/// be with the fleet at once.
///
/// Chunks are matched to workers as [`NatsBackend`](crate::NatsBackend)'s are, by `name` (the
/// model's path and decoding options, as the workers name them), and failures are the same:
/// a chunk that no worker answers within the patience, or that the broker gave up on, is an
/// [`Error::Transcribe`] of that chunk.
///
/// ```no_run
/// use std::sync::Arc;
/// use steno_core::{TranscriberFactory, TranscriberPool};
/// use steno_nats::{NatsModel, NatsTarget};
///
/// let target = NatsTarget::from_env("nats://broker:4222")?;
/// let fleet = NatsModel::connect(&target, "STENO", "models/ggml-tiny.en-q8_0.bin")?;
/// // Eight chunks with the fleet at once, shared by every pipeline that uses the pool.
/// let pool = TranscriberPool::new(Arc::new(fleet), 8);
/// # Ok::<(), steno_core::Error>(())
/// ```
pub struct NatsModel {
    session: Arc<Session>,
    name: String,
}

impl std::fmt::Debug for NatsModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsModel")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl NatsModel {
    /// Connects to the broker at `target` for the workers of the model `name` on `stream`,
    /// waiting at most 60 s for an answer.
    ///
    /// # Errors
    /// [`Error::Config`] when `stream` cannot name a stream or is not a steno work queue;
    /// [`Error::Stage`] when the broker cannot be reached.
    pub fn connect(target: &NatsTarget, stream: &str, name: impl Into<String>) -> Result<Self> {
        Self::connect_with_patience(target, stream, name, Duration::from_secs(60))
    }

    /// As [`connect`](Self::connect), waiting at most `patience` for an answer (while no
    /// worker answers anything) before a chunk fails.
    ///
    /// # Errors
    /// As [`connect`](Self::connect).
    pub fn connect_with_patience(
        target: &NatsTarget,
        stream: &str,
        name: impl Into<String>,
        patience: Duration,
    ) -> Result<Self> {
        wire::check_stream_name(stream)?;
        let name = name.into();
        let session = Session::open(target, stream, name.clone(), patience)?;
        Ok(NatsModel {
            session: Arc::new(session),
            name,
        })
    }
}

impl TranscriberFactory for NatsModel {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn create(&self) -> Result<Box<dyn Transcriber>> {
        Ok(Box::new(FleetTranscriber {
            session: Arc::clone(&self.session),
        }))
    }
}

/// One chunk at a time through the broker.
struct FleetTranscriber {
    session: Arc<Session>,
}

impl Transcriber for FleetTranscriber {
    fn transcribe(&mut self, chunk: &Chunk) -> Result<Transcription> {
        // Never stopped from here: a chunk waits for its answer or for the patience.
        let outcome = self.session.transcribe(chunk, None, &|| false);
        outcome.map_or(Err(Error::Cancelled), |done| done.map(|(text, _)| text))
    }

    /// The worker that took the partial chunk is told to stop once it is overtaken.
    fn transcribe_partial(
        &mut self,
        chunk: &Chunk,
        overtaken: &Overtaken,
    ) -> Result<Option<Transcription>> {
        match self.session.transcribe(chunk, Some(overtaken), &|| false) {
            Some(Ok((text, _))) => Ok(Some(text)),
            Some(Err(Error::Cancelled)) => Ok(None),
            Some(Err(error)) => Err(error),
            None => Err(Error::Cancelled),
        }
    }
}
