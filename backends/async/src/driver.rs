//! The pipeline's stages as futures that one run future polls together: every blocking step
//! runs on the runtime's blocking pool, every wait is a channel, an event or the runtime's timer.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use async_channel::{Receiver, Sender};
use event_listener::{Event, EventListener};
use futures_lite::future;
use steno_core::stage::{
    ChunkStage, Emitter, InputCounts, PreparedRun, RunControl, SourceStage, TimedChunk, Transcript,
    Wait, transcribe, transcribers_fitting_cores,
};
use steno_core::{Error, Pipeline, Result, RunReport, Transcriber};

use crate::Runtime;

/// How long a stage waiting on the ring sleeps when nobody wakes it: a backstop only (the
/// other side notifies), which also bounds how late a stage sees a cancellation.
const IDLE_POLL: Duration = Duration::from_millis(5);

/// Stops the run's token when the run future is dropped before it finished, so that a
/// blocking step still in flight sees it and ends soon.
struct StopOnDrop(RunControl);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        // After a finished run this is a no-op: the stop token is the run's own (a child of the
        // caller's), so the caller's token is never touched.
        self.0.fail(Error::Cancelled);
    }
}

/// Runs `work` on the runtime's blocking pool; a panic there, or the runtime dropping the work,
/// becomes the stage's error.
async fn off_executor<R: Runtime, T: Send + 'static>(
    runtime: &R,
    stage: &'static str,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T> {
    let problem = match runtime
        .unblock(move || catch_unwind(AssertUnwindSafe(work)))
        .await
    {
        Some(Ok(value)) => return Ok(value),
        Some(Err(_)) => "it panicked",
        None => "its blocking work was dropped (the runtime is shutting down)",
    };
    Err(Error::Stage {
        stage,
        problem: problem.into(),
    })
}

/// Waits until `listener` (made before the work whose outcome it signals) is notified, at
/// most [`IDLE_POLL`].
async fn notified_or_idle<R: Runtime>(runtime: &R, listener: EventListener) {
    future::or(listener, runtime.sleep_until(Instant::now() + IDLE_POLL)).await;
}

/// Polls every future in `stages` until all of them have finished.
async fn join_all(stages: Vec<Pin<Box<dyn Future<Output = ()> + Send>>>) {
    let mut stages: Vec<_> = stages.into_iter().map(Some).collect();
    future::poll_fn(|cx| {
        for slot in &mut stages {
            if let Some(stage) = slot
                && stage.as_mut().poll(cx).is_ready()
            {
                *slot = None;
            }
        }
        if stages.iter().all(Option::is_none) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
}

/// Runs `pipeline` on `runtime`'s blocking pool and timer; the returned future drives every
/// stage.
pub(crate) async fn run<R: Runtime>(
    runtime: R,
    pipeline: Pipeline,
    max_inferences: Option<usize>,
) -> Result<RunReport> {
    runtime.check_context()?;
    let PreparedRun {
        start,
        control,
        source,
        chunker,
        transcriber,
        emitter,
        options,
    } = pipeline.prepare()?;
    let _stop_on_drop = StopOnDrop(control.clone());

    // Creating a Whisper state allocates its buffers: blocking work too.
    let slots = transcribers_fitting_cores(transcriber.threads_per_transcriber(), max_inferences);
    let factory = Arc::clone(&transcriber);
    let workers = off_executor(&runtime, "transcriber", move || {
        (0..slots)
            .map(|_| factory.create())
            .collect::<Result<Vec<_>>>()
    })
    .await??;

    let (chunk_tx, chunk_rx) = async_channel::bounded::<TimedChunk>(options.queue_capacity.max(1));
    let (text_tx, text_rx) = async_channel::bounded::<Transcript>(options.queue_capacity.max(1));
    // Workers take a token before each chunk and get it back when it is written (see
    // `RunOptions::run_ahead`): transcripts cannot pile up behind a slow chunk.
    let run_ahead = options.run_ahead(slots);
    let (token_tx, token_rx) = async_channel::bounded::<()>(run_ahead);
    for _ in 0..run_ahead {
        let _ = token_tx.try_send(());
    }
    let ring_filled = Arc::new(Event::new());
    let ring_drained = Arc::new(Event::new());

    let mut transcribing: Vec<Pin<Box<dyn Future<Output = ()> + Send>>> = Vec::new();
    for worker in workers {
        transcribing.push(Box::pin(transcriber_loop(
            runtime.clone(),
            worker,
            token_rx.clone(),
            chunk_rx.clone(),
            text_tx.clone(),
            control.clone(),
        )));
    }
    // Only the loops hold the channels' ends now, so each side sees the other one end.
    drop((chunk_rx, text_tx, token_rx));

    let stages = future::zip(
        future::zip(
            source_loop(
                runtime.clone(),
                source,
                control.clone(),
                Arc::clone(&ring_filled),
                Arc::clone(&ring_drained),
            ),
            chunk_loop(
                runtime.clone(),
                chunker,
                control.clone(),
                ring_filled,
                ring_drained,
                chunk_tx,
            ),
        ),
        future::zip(
            join_all(transcribing),
            emit_loop(runtime.clone(), emitter, text_rx, token_tx, control.clone()),
        ),
    );
    let ((samples_read, dropped_samples), ((), emitter)) = stages.await;
    control.outcome()?;
    let Some(emitter) = emitter else {
        return Err(Error::Stage {
            stage: "emitter",
            problem: "the emitter was lost".into(),
        });
    };
    let mut tally = off_executor(&runtime, "emitter", move || emitter.finish()).await??;
    InputCounts {
        samples_read,
        dropped_samples,
    }
    .add_to(&mut tally);
    Ok(start.report(R::NAME, transcriber.name(), options.realtime, &tally))
}

/// Writes transcripts to the sink in chunk order, each write on the blocking pool, and gives
/// run-ahead tokens back as chunks are written. Returns the emitter, unless a write panicked.
async fn emit_loop<R: Runtime>(
    runtime: R,
    emitter: Emitter,
    texts: Receiver<Transcript>,
    tokens: Sender<()>,
    control: RunControl,
) -> Option<Emitter> {
    let mut emitter = Some(emitter);
    while let Ok(transcript) = texts.recv().await {
        let mut current = emitter.take()?;
        let written = off_executor(&runtime, "emitter", move || {
            let result = current.emit(transcript);
            (current, result)
        })
        .await;
        match written {
            Ok((mut back, result)) => {
                for _ in 0..back.newly_written() {
                    let _ = tokens.try_send(());
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
    // Returning drops both channel ends: workers still sending see the text channel closed,
    // and workers waiting for a token (none will come back) see the token channel closed.
    emitter
}

/// Reads and decodes the source on the blocking pool; pacing waits are the runtime's timer.
/// Returns the samples read.
async fn source_loop<R: Runtime>(
    runtime: R,
    mut stage: SourceStage,
    control: RunControl,
    ring_filled: Arc<Event>,
    ring_drained: Arc<Event>,
) -> u64 {
    loop {
        // Listen before stepping, so a drain during the step is not missed.
        let drained = ring_drained.listen();
        let filled = Arc::clone(&ring_filled);
        let stepped = off_executor(&runtime, "source", move || {
            let wait = stage.step_until_wait(|| {
                filled.notify(1);
            });
            (stage, wait)
        })
        .await;
        let wait = match stepped {
            Ok((back, wait)) => {
                stage = back;
                // The source's failure ends the stream; the audio before it is still written.
                control.check_input(wait)
            }
            Err(error) => {
                control.fail(error);
                ring_filled.notify(1);
                return 0;
            }
        };
        match wait {
            Some(Wait::ForRing) => notified_or_idle(&runtime, drained).await,
            Some(Wait::Until(at)) => runtime.sleep_until(at).await,
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
async fn chunk_loop<R: Runtime>(
    runtime: R,
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
        let stepped = off_executor(&runtime, "chunker", move || {
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
            Some(Wait::ForRing) => notified_or_idle(&runtime, filled).await,
            Some(Wait::No | Wait::Until(_)) => {}
            Some(Wait::Done) | None => break,
        }
    }
    stage.dropped_samples()
}

/// One transcription worker: takes a run-ahead token and the next chunk from the shared queue,
/// and runs inference on the blocking pool. The number of workers bounds the concurrent
/// inferences.
async fn transcriber_loop<R: Runtime>(
    runtime: R,
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
        let inferred = off_executor(&runtime, "transcriber", move || {
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
