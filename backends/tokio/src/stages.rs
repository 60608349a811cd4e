//! The pipeline's stages as tokio tasks: every blocking step runs on the blocking pool, every
//! wait is a tokio timer, channel or `Notify`.

use std::sync::Arc;
use std::time::Duration;

use steno_core::{
    ChunkStage, Emitter, Error, Pipeline, Result, RunControl, RunReport, RunStart, RunTally,
    SourceStage, TimedChunk, Transcriber, Transcript, Wait, ring, transcribe,
};
use tokio::sync::{Mutex, Notify, mpsc};
use tokio::task::JoinSet;

/// How long a stage waiting on the ring sleeps when nobody wakes it: a backstop only (the
/// other side notifies), which also bounds how late a stage sees a cancellation.
const IDLE_POLL: Duration = Duration::from_millis(5);

/// What a stage task hands back when it ends.
enum StageEnd {
    /// The source stage, with the samples it read.
    Source(u64),
    /// The chunk stage, with the samples dropped at the ring.
    Chunker(u64),
    /// A transcription worker.
    Transcriber,
}

/// Stops every stage of the run when the run future is dropped before it finished.
struct StopOnDrop(RunControl);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        // After a finished run this is a no-op: the stop token is the run's own (a child of the
        // caller's), so the caller's token is never touched.
        self.0.fail(Error::Cancelled);
    }
}

/// Runs `work` on tokio's blocking pool; a panic there becomes the stage's error.
async fn off_executor<T: Send + 'static>(
    stage: &'static str,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::Stage {
            stage,
            problem: if e.is_panic() {
                "it panicked".into()
            } else {
                "its blocking task was cancelled (the runtime is shutting down)".into()
            },
        })
}

/// Runs `pipeline` on the tokio runtime this future is polled on.
pub(crate) async fn run_pipeline(
    pipeline: Pipeline,
    max_inferences: Option<usize>,
    backend: &'static str,
) -> Result<RunReport> {
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(Error::Unsupported {
            backend,
            what: "running outside a tokio runtime (call Backend::run to let it build one)".into(),
        });
    }
    let start = RunStart::now();
    let started = start.at;
    let Pipeline {
        source,
        chunker,
        transcriber,
        sink,
        options,
    } = pipeline;
    let control = RunControl::new(&options);
    let _stop_on_drop = StopOnDrop(control.clone());
    let stage_options = control.options(&options);
    let (writer, reader) = ring(options.ring_capacity);
    let chunk_stage = ChunkStage::new(reader, &chunker, &stage_options, started)?;
    let source_stage = SourceStage::new(source, writer, &stage_options, started);

    // Creating a Whisper state allocates its buffers: blocking work too.
    let slots = steno_core::transcribers_fitting_cores(
        transcriber.threads_per_transcriber(),
        max_inferences,
    );
    let factory = Arc::clone(&transcriber);
    let workers = off_executor("transcriber", move || {
        (0..slots)
            .map(|_| factory.create())
            .collect::<Result<Vec<_>>>()
    })
    .await??;

    let (chunk_tx, chunk_rx) = mpsc::channel::<TimedChunk>(options.queue_capacity.max(1));
    let (text_tx, mut text_rx) = mpsc::channel::<Transcript>(options.queue_capacity.max(1));
    let ring_filled = Arc::new(Notify::new());
    let ring_drained = Arc::new(Notify::new());

    // Dropping the set (with the run future) aborts every stage task still running.
    let mut stages = JoinSet::new();
    stages.spawn(source_task(
        source_stage,
        control.clone(),
        Arc::clone(&ring_filled),
        Arc::clone(&ring_drained),
    ));
    stages.spawn(chunk_task(
        chunk_stage,
        control.clone(),
        ring_filled,
        ring_drained,
        chunk_tx,
    ));
    // Workers take a token before each chunk and get it back when it is written (see
    // `RunOptions::run_ahead`): transcripts cannot pile up behind a slow chunk.
    let run_ahead = options.run_ahead(slots);
    let (token_tx, token_rx) = mpsc::channel::<()>(run_ahead);
    for _ in 0..run_ahead {
        let _ = token_tx.try_send(());
    }
    let token_rx = Arc::new(Mutex::new(token_rx));
    let chunk_rx = Arc::new(Mutex::new(chunk_rx));
    for worker in workers {
        stages.spawn(transcriber_task(
            worker,
            Arc::clone(&token_rx),
            Arc::clone(&chunk_rx),
            text_tx.clone(),
            control.clone(),
        ));
    }
    drop((chunk_rx, text_tx));

    // The emitter is the run future itself; sink writes are blocking I/O, so each one runs on
    // the blocking pool, in chunk order.
    let mut emitter = Some(Emitter::new(sink, started));
    while let Some(transcript) = text_rx.recv().await {
        let Some(mut current) = emitter.take() else {
            break;
        };
        let written = off_executor("emitter", move || {
            let result = current.emit(transcript);
            (current, result)
        })
        .await;
        match written {
            Ok((mut back, result)) => {
                for _ in 0..back.newly_written() {
                    let _ = token_tx.try_send(());
                }
                emitter = Some(back);
                if control.check(result).is_none() {
                    break;
                }
            }
            Err(error) => {
                control.fail(error);
                break;
            }
        }
    }
    // Workers still sending see the channel closed and stop; workers waiting for a run-ahead
    // token (the emitter will give back no more) see the token channel closed and stop.
    drop((text_rx, token_tx));

    let mut tally_from_stages = RunTally::default();
    while let Some(joined) = stages.join_next().await {
        match joined {
            Ok(StageEnd::Source(samples)) => tally_from_stages.audio_samples = samples,
            Ok(StageEnd::Chunker(dropped)) => tally_from_stages.dropped_samples = dropped,
            Ok(StageEnd::Transcriber) => {}
            Err(error) => control.fail(Error::Stage {
                stage: "tokio task",
                problem: format!("a stage task ended abnormally: {error}"),
            }),
        }
    }
    control.outcome()?;
    let Some(emitter) = emitter else {
        return Err(Error::Stage {
            stage: "emitter",
            problem: "the emitter was lost".into(),
        });
    };
    let mut tally = off_executor("emitter", move || emitter.finish()).await??;
    tally.audio_samples = tally_from_stages.audio_samples;
    tally.dropped_samples = tally_from_stages.dropped_samples;
    Ok(start.report(backend, transcriber.name(), options.realtime, &tally))
}

/// Reads and decodes the source on the blocking pool; pacing waits are tokio timers.
async fn source_task(
    mut stage: SourceStage,
    control: RunControl,
    ring_filled: Arc<Notify>,
    ring_drained: Arc<Notify>,
) -> StageEnd {
    loop {
        let filled = Arc::clone(&ring_filled);
        let stepped = off_executor("source", move || {
            let wait = stage.step_until_wait(|| filled.notify_one());
            (stage, wait)
        })
        .await;
        let wait = match stepped {
            Ok((back, wait)) => {
                stage = back;
                control.check(wait)
            }
            Err(error) => {
                control.fail(error);
                ring_filled.notify_one();
                return StageEnd::Source(0);
            }
        };
        match wait {
            Some(Wait::ForRing) => {
                // The ring is full: the chunker notifies when it drained some.
                let _ = tokio::time::timeout(IDLE_POLL, ring_drained.notified()).await;
            }
            Some(Wait::Until(at)) => tokio::time::sleep_until(at.into()).await,
            Some(Wait::No) => {}
            Some(Wait::Done) | None => break,
        }
    }
    let samples_read = stage.samples_read();
    // Dropping the stage drops the ring writer: the end of the stream.
    drop(stage);
    ring_filled.notify_one();
    StageEnd::Source(samples_read)
}

/// Runs voice activity detection on the blocking pool and sends finished chunks on.
async fn chunk_task(
    mut stage: ChunkStage,
    control: RunControl,
    ring_filled: Arc<Notify>,
    ring_drained: Arc<Notify>,
    chunks: mpsc::Sender<TimedChunk>,
) -> StageEnd {
    let mut ready = Vec::new();
    loop {
        let drained = Arc::clone(&ring_drained);
        let stepped = off_executor("chunker", move || {
            let wait = stage.step_until_ready(&mut ready, || drained.notify_one());
            (stage, ready, wait)
        })
        .await;
        let wait = match stepped {
            Ok((back, back_ready, wait)) => {
                (stage, ready) = (back, back_ready);
                wait
            }
            Err(error) => {
                control.fail(error);
                return StageEnd::Chunker(0);
            }
        };
        for chunk in ready.drain(..) {
            if chunks.send(chunk).await.is_err() {
                // Transcription stopped; its own error (or the cancellation) explains why.
                return StageEnd::Chunker(stage.dropped_samples());
            }
        }
        match control.check(wait) {
            Some(Wait::ForRing) => {
                let _ = tokio::time::timeout(IDLE_POLL, ring_filled.notified()).await;
            }
            Some(Wait::No | Wait::Until(_)) => {}
            Some(Wait::Done) | None => break,
        }
    }
    StageEnd::Chunker(stage.dropped_samples())
}

/// One transcription worker: takes the next chunk from the shared queue and runs inference on
/// the blocking pool. The number of workers bounds the concurrent inferences.
async fn transcriber_task(
    mut worker: Box<dyn Transcriber>,
    tokens: Arc<Mutex<mpsc::Receiver<()>>>,
    chunks: Arc<Mutex<mpsc::Receiver<TimedChunk>>>,
    texts: mpsc::Sender<Transcript>,
    control: RunControl,
) -> StageEnd {
    loop {
        if tokens.lock().await.recv().await.is_none() {
            break;
        }
        let next = chunks.lock().await.recv().await;
        let Some(chunk) = next else {
            break;
        };
        if control.is_stopped() {
            break;
        }
        let inferred = off_executor("transcriber", move || {
            let text = transcribe(worker.as_mut(), &chunk);
            (worker, text)
        })
        .await;
        let text = match inferred {
            Ok((back, text)) => {
                worker = back;
                text
            }
            Err(error) => {
                control.fail(error);
                return StageEnd::Transcriber;
            }
        };
        let Some(text) = control.check(text) else {
            break;
        };
        if texts.send(text).await.is_err() {
            break;
        }
    }
    // `worker` is dropped here: its Whisper state is released as the stage ends.
    StageEnd::Transcriber
}
