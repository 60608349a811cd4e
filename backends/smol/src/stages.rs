//! The pipeline's stages as smol tasks on a per-run executor: every blocking step runs on the
//! `blocking` thread pool, every wait is a smol timer, channel or event.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

use event_listener::Event;
use smol::channel::{self, Receiver, Sender};
use smol::{Executor, Timer};
use steno_core::{
    ChunkStage, Emitter, Error, Pipeline, Result, RunControl, RunReport, RunStart, SourceStage,
    TimedChunk, Transcriber, Transcript, Wait, ring, transcribe,
};

/// How long a stage waiting on the ring sleeps when nobody wakes it: a backstop only (the
/// other side notifies), which also bounds how late a stage sees a cancellation.
const IDLE_POLL: Duration = Duration::from_millis(5);

/// Stops every stage of the run when the run future is dropped before it finished.
struct StopOnDrop(RunControl);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        // After a finished run this is a no-op: the stop token is the run's own (a child of the
        // caller's), so the caller's token is never touched.
        self.0.fail(Error::Cancelled);
    }
}

/// Runs `work` on the `blocking` thread pool; a panic there becomes the stage's error.
async fn off_executor<T: Send + 'static>(
    stage: &'static str,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T> {
    smol::unblock(move || catch_unwind(AssertUnwindSafe(work)))
        .await
        .map_err(|_| Error::Stage {
            stage,
            problem: "it panicked".into(),
        })
}

/// Waits until `listener` (made before the work whose outcome it signals) is notified, at
/// most [`IDLE_POLL`].
async fn notified_or_idle(listener: event_listener::EventListener) {
    smol::future::or(listener, async {
        Timer::after(IDLE_POLL).await;
    })
    .await;
}

/// Runs `pipeline` as tasks of a per-run executor that this future drives, so it runs on
/// whichever executor polls it and dropping it cancels every stage task.
pub(crate) async fn run_pipeline(
    pipeline: Pipeline,
    max_inferences: Option<usize>,
    backend: &'static str,
) -> Result<RunReport> {
    let executor = Executor::new();
    executor
        .run(run_stages(&executor, pipeline, max_inferences, backend))
        .await
}

async fn run_stages(
    executor: &Executor<'_>,
    pipeline: Pipeline,
    max_inferences: Option<usize>,
    backend: &'static str,
) -> Result<RunReport> {
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

    let (chunk_tx, chunk_rx) = channel::bounded::<TimedChunk>(options.queue_capacity.max(1));
    let (text_tx, text_rx) = channel::bounded::<Transcript>(options.queue_capacity.max(1));
    // Workers take a token before each chunk and get it back when it is written (see
    // `RunOptions::run_ahead`): transcripts cannot pile up behind a slow chunk.
    let run_ahead = options.run_ahead(slots);
    let (token_tx, token_rx) = channel::bounded::<()>(run_ahead);
    for _ in 0..run_ahead {
        let _ = token_tx.try_send(());
    }
    let ring_filled = Arc::new(Event::new());
    let ring_drained = Arc::new(Event::new());

    // Tasks are cancelled when their handles (or the executor) are dropped with the run.
    let source_task = executor.spawn(source_task(
        source_stage,
        control.clone(),
        Arc::clone(&ring_filled),
        Arc::clone(&ring_drained),
    ));
    let chunk_task = executor.spawn(chunk_task(
        chunk_stage,
        control.clone(),
        ring_filled,
        ring_drained,
        chunk_tx,
    ));
    let transcriber_tasks: Vec<_> = workers
        .into_iter()
        .map(|worker| {
            executor.spawn(transcriber_task(
                worker,
                token_rx.clone(),
                chunk_rx.clone(),
                text_tx.clone(),
                control.clone(),
            ))
        })
        .collect();
    drop((chunk_rx, text_tx));

    // The emitter is the run future itself; sink writes are blocking I/O, so each one runs on
    // the blocking pool, in chunk order.
    let mut emitter = Some(Emitter::new(sink, started));
    while let Ok(transcript) = text_rx.recv().await {
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

    let samples_read = source_task.await;
    let dropped_samples = chunk_task.await;
    for task in transcriber_tasks {
        task.await;
    }
    control.outcome()?;
    let Some(emitter) = emitter else {
        return Err(Error::Stage {
            stage: "emitter",
            problem: "the emitter was lost".into(),
        });
    };
    let mut tally = off_executor("emitter", move || emitter.finish()).await??;
    tally.audio_samples = samples_read;
    tally.dropped_samples = dropped_samples;
    Ok(start.report(backend, transcriber.name(), options.realtime, &tally))
}

/// Reads and decodes the source on the blocking pool; pacing waits are smol timers. Returns
/// the samples read.
async fn source_task(
    mut stage: SourceStage,
    control: RunControl,
    ring_filled: Arc<Event>,
    ring_drained: Arc<Event>,
) -> u64 {
    loop {
        // Listen before stepping, so a drain during the step is not missed.
        let drained = ring_drained.listen();
        let filled = Arc::clone(&ring_filled);
        let stepped = off_executor("source", move || {
            let wait = stage.step_until_wait(|| {
                filled.notify(1);
            });
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
                ring_filled.notify(1);
                return 0;
            }
        };
        match wait {
            Some(Wait::ForRing) => notified_or_idle(drained).await,
            Some(Wait::Until(at)) => {
                Timer::at(at).await;
            }
            Some(Wait::No) => {}
            Some(Wait::Done) | None => break,
        }
    }
    let samples_read = stage.samples_read();
    // Dropping the stage drops the ring writer: the end of the stream.
    drop(stage);
    ring_filled.notify(1);
    samples_read
}

/// Runs voice activity detection on the blocking pool and sends finished chunks on. Returns
/// the samples dropped at the ring.
async fn chunk_task(
    mut stage: ChunkStage,
    control: RunControl,
    ring_filled: Arc<Event>,
    ring_drained: Arc<Event>,
    chunks: Sender<TimedChunk>,
) -> u64 {
    let mut ready = Vec::new();
    loop {
        // Listen before stepping, so samples pushed during the step are not missed.
        let filled = ring_filled.listen();
        let drained = Arc::clone(&ring_drained);
        let stepped = off_executor("chunker", move || {
            let wait = stage.step_until_ready(&mut ready, || {
                drained.notify(1);
            });
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
                return 0;
            }
        };
        for chunk in ready.drain(..) {
            if chunks.send(chunk).await.is_err() {
                // Transcription stopped; its own error (or the cancellation) explains why.
                return stage.dropped_samples();
            }
        }
        match control.check(wait) {
            Some(Wait::ForRing) => notified_or_idle(filled).await,
            Some(Wait::No | Wait::Until(_)) => {}
            Some(Wait::Done) | None => break,
        }
    }
    stage.dropped_samples()
}

/// One transcription worker: takes the next chunk from the shared queue and runs inference on
/// the blocking pool. The number of workers bounds the concurrent inferences.
async fn transcriber_task(
    mut worker: Box<dyn Transcriber>,
    tokens: Receiver<()>,
    chunks: Receiver<TimedChunk>,
    texts: Sender<Transcript>,
    control: RunControl,
) {
    while tokens.recv().await.is_ok() {
        let Ok(chunk) = chunks.recv().await else {
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
                return;
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
}
