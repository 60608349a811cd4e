//! The coordinator: [`NatsBackend`] runs the source, chunker and emitter here and has each
//! chunk transcribed by the fleet behind the broker.

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded};
use steno_core::stage::{
    InputThreads, PreparedRun, RunAhead, RunControl, TimedChunk, Transcript, run_slot,
    transcribers_fitting_cores,
};
use steno_core::{Backend, Pipeline, Result, RunReport};

use crate::session::Session;
use crate::target::NatsTarget;
use crate::wire;

const BACKEND_NAME: &str = "nats";

/// How often the emitter and the slots look for a stopped run.
const STOP_POLL: Duration = Duration::from_millis(10);

/// The NATS JetStream backend. See the [crate docs](crate).
#[derive(Debug, Clone)]
pub struct NatsBackend {
    target: NatsTarget,
    stream: String,
    in_flight: Option<usize>,
    patience: Duration,
}

impl NatsBackend {
    /// A backend whose chunks go to the broker at `target`, on the stream
    /// [`DEFAULT_STREAM`](crate::DEFAULT_STREAM). By default it keeps `max(1, cores /
    /// threads)` chunks with the fleet at once and waits 60 s for an answer before it gives
    /// up.
    pub fn new(target: NatsTarget) -> Self {
        NatsBackend {
            target,
            stream: wire::DEFAULT_STREAM.to_owned(),
            in_flight: None,
            patience: Duration::from_secs(60),
        }
    }

    /// Sends chunks on the stream `name`, which the workers must serve too.
    ///
    /// # Errors
    /// [`Error::Config`](steno_core::Error::Config) when `name` cannot name a stream.
    pub fn with_stream(mut self, name: &str) -> Result<Self> {
        wire::check_stream_name(name)?;
        self.stream = name.to_owned();
        Ok(self)
    }

    /// Keeps at most `chunks` chunks (at least one) with the fleet at once: about the number
    /// of workers, so each has one to transcribe. Together with the pipeline's queue it bounds
    /// the transcripts held for reordering, as on every backend.
    #[must_use]
    pub fn with_in_flight(mut self, chunks: usize) -> Self {
        self.in_flight = Some(chunks.max(1));
        self
    }

    /// How long the run waits while no worker answers anything, and how long it keeps trying
    /// to send a chunk while the broker is away, before it ends with an error (at least 1 s).
    #[must_use]
    pub fn with_patience(mut self, patience: Duration) -> Self {
        self.patience = patience.max(Duration::from_secs(1));
        self
    }
}

impl Backend for NatsBackend {
    fn name(&self) -> &'static str {
        BACKEND_NAME
    }

    /// Runs the pipeline with its transcription on the fleet. The pipeline's transcriber
    /// factory is not called: its name is the model the workers must serve, and its threads
    /// size the default number of chunks in flight.
    ///
    /// # Errors
    /// As [`Backend::run`]; also [`Error::Stage`](steno_core::Error::Stage) when the broker cannot be reached, a worker
    /// breaks the protocol or a chunk cannot be sent for the run's patience;
    /// [`Error::Config`](steno_core::Error::Config) when the stream is not a steno work queue or a chunk is larger than
    /// the broker takes; [`Error::Transcribe`](steno_core::Error::Transcribe) when a worker's transcriber fails, the broker
    /// gave up redelivering a chunk, or no worker answered for the run's patience.
    fn run(&self, pipeline: Pipeline) -> Result<RunReport> {
        let PreparedRun {
            start,
            control,
            source,
            chunker,
            transcriber,
            mut emitter,
            options,
        } = pipeline.prepare()?;
        let session = Arc::new(Session::open(
            &self.target,
            &self.stream,
            transcriber.name(),
            self.patience,
        )?);
        let slots = self.in_flight.unwrap_or_else(|| {
            transcribers_fitting_cores(transcriber.threads_per_transcriber(), None)
        });
        let (chunk_tx, chunk_rx) = bounded::<TimedChunk>(options.queue_capacity.max(1));
        let (text_tx, text_rx) = bounded::<Outcome>(options.queue_capacity.max(1));
        let tokens = RunAhead::new(options.run_ahead(slots));
        let first_failed = Arc::new(AtomicUsize::new(usize::MAX));

        let input = InputThreads::start(&control, source, chunker, move |chunk| {
            chunk_tx.send(chunk).is_ok()
        });
        let mut slot_threads = Vec::with_capacity(slots);
        for _ in 0..slots {
            let slot = Slot {
                control: control.clone(),
                session: Arc::clone(&session),
                chunks: chunk_rx.clone(),
                tokens: tokens.clone(),
                texts: text_tx.clone(),
                first_failed: Arc::clone(&first_failed),
            };
            slot_threads.push(control.spawn_stage("nats slot", move || slot.run()));
        }
        drop((chunk_rx, text_tx));

        loop {
            match text_rx.recv_timeout(STOP_POLL) {
                Ok((chunk, outcome)) => {
                    if !control.is_stopped() {
                        // A failed chunk fails the run once the chunks before it are written.
                        control.check(emitter.emit_outcome(chunk, outcome));
                        tokens.give_back(emitter.newly_written());
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }

        let counts = input.join(&control);
        for handle in slot_threads.into_iter().flatten() {
            control.join_stage(handle, "nats slot");
        }
        if control.is_stopped() {
            // Chunks no worker has taken yet would be transcribed for nobody.
            session.purge();
        }
        let redeliveries = session.redeliveries();
        let ignored = session.ignored_answers();
        if ignored > 0 {
            tracing::info!("ignored {ignored} answers to chunks that had been answered already");
        }
        if let Some(session) = Arc::into_inner(session) {
            session.close();
        }
        control.outcome()?;
        let mut tally = emitter.finish()?;
        counts.add_to(&mut tally);
        tally.redeliveries = redeliveries;
        Ok(start.report(self.name(), transcriber.name(), options.realtime, &tally))
    }
}

/// What a slot sends the emitter: a chunk's index and its transcript or failure.
type Outcome = (usize, Result<Transcript>);

/// One chunk in flight at a time: a thread that sends it to the fleet and waits for its text.
struct Slot {
    control: RunControl,
    session: Arc<Session>,
    chunks: Receiver<TimedChunk>,
    tokens: RunAhead,
    texts: Sender<Outcome>,
    /// The earliest chunk that failed: later chunks are not worth transcribing.
    first_failed: Arc<AtomicUsize>,
}

impl Slot {
    fn run(self) {
        // The worker's own decode is transcription time; the rest of the round trip (the
        // hand-off through the broker) is the pipeline's overhead, as the report says.
        run_slot(
            &self.control,
            &self.tokens,
            &self.first_failed,
            || self.chunks.recv().ok(),
            |chunk, overtaken| {
                self.session
                    .transcribe(chunk, overtaken, &|| self.control.is_stopped())
            },
            |index, outcome| self.texts.send((index, outcome)).is_ok(),
        );
    }
}
