//! The worker side: [`NatsWorker`] takes chunks of its model from the work queue, transcribes
//! them and answers each coordinator.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_nats::jetstream::{self, AckKind};
use async_nats::{HeaderMap, HeaderValue};
use futures_util::StreamExt as _;
use steno_core::{CancelToken, Overtaken, Result, Transcriber, TranscriberFactory};
use steno_process::protocol::{Message, PROTOCOL_VERSION};

use crate::queue::{self, Delivery};
use crate::target::NatsTarget;
use crate::wire;

/// How long one pull request waits for a chunk: also how soon a stop request is noticed.
const PULL_WAIT: Duration = Duration::from_secs(1);
/// How long to wait before trying again when the broker cannot be reached.
const RETRY_PAUSE: Duration = Duration::from_secs(1);
/// How long an answer may take to reach the broker before the chunk is left to be
/// redelivered.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// How many stop messages a worker remembers: one may come before the worker has taken its
/// chunk from the queue.
const STOPS_REMEMBERED: usize = 256;

/// A worker of a steno fleet: serves one model's chunks from a NATS JetStream work queue.
/// Start as many as you like, on any machine that has the model; they join and leave freely.
///
/// The worker pulls one chunk at a time, so a chunk never waits behind another on a busy
/// worker. A partial chunk of interim results is decoded until its coordinator sends a stop
/// for it (newer audio has overtaken it), then answered as stopped. While it transcribes it
/// tells the broker it is still working every third of the ack wait; a worker that dies or
/// loses the broker stops doing so, and the broker delivers the chunk to another worker once
/// the ack wait has passed. Its answer goes straight to the coordinator that sent the chunk;
/// only when the broker has it is the chunk acknowledged.
///
/// The workers of a model share one durable consumer, created by the first of them with this
/// worker's [ack wait](Self::with_ack_wait) and [delivery limit](Self::with_max_deliveries);
/// later workers use the settings it already has (logged when they differ).
///
/// A chunk whose headers name another model or protocol version, or whose payload is not a
/// chunk, is refused: the coordinator gets an error naming the reason, and the broker does not
/// deliver it again.
///
/// ```no_run
/// use steno_core::{CancelToken, WhisperModel};
/// use steno_nats::{NatsTarget, NatsWorker};
///
/// let model = WhisperModel::load("models/ggml-tiny.en-q8_0.bin", 2)?;
/// let worker = NatsWorker::new(NatsTarget::from_env("nats://127.0.0.1:4222")?);
/// // Serves until the token is cancelled (from a signal handler, say).
/// worker.serve(&model, &CancelToken::new())?;
/// # Ok::<(), steno_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct NatsWorker {
    target: NatsTarget,
    stream: String,
    delivery: Delivery,
}

impl NatsWorker {
    /// A worker of the broker at `target`, on the stream [`DEFAULT_STREAM`](crate::DEFAULT_STREAM),
    /// with an ack wait of 10 s and at most 3 deliveries per chunk.
    pub fn new(target: NatsTarget) -> Self {
        NatsWorker {
            target,
            stream: wire::DEFAULT_STREAM.to_owned(),
            delivery: Delivery {
                ack_wait: Duration::from_secs(10),
                max_deliver: 3,
            },
        }
    }

    /// Takes chunks from the stream `name` (1 to 32 letters, digits, `-` or `_`).
    ///
    /// # Errors
    /// [`Error::Config`](steno_core::Error::Config) when `name` cannot name a stream.
    pub fn with_stream(mut self, name: &str) -> Result<Self> {
        wire::check_stream_name(name)?;
        self.stream = name.to_owned();
        Ok(self)
    }

    /// How long a chunk's worker may stay silent before the broker gives the chunk to another
    /// (at least 1 s): how fast a dead worker's chunk is delivered again.
    #[must_use]
    pub fn with_ack_wait(mut self, ack_wait: Duration) -> Self {
        self.delivery.ack_wait = ack_wait.max(Duration::from_secs(1));
        self
    }

    /// How many times a chunk is delivered before the broker gives up on it (at least 1).
    #[must_use]
    pub fn with_max_deliveries(mut self, deliveries: u32) -> Self {
        self.delivery.max_deliver = i64::from(deliveries.max(1));
        self
    }

    /// Serves chunks with one transcriber from `factory` until `stop` is cancelled (the chunk
    /// in hand is finished first). The broker going away is waited out: the worker carries on
    /// when it is back.
    ///
    /// # Errors
    /// [`Error::Stage`](steno_core::Error::Stage) when the broker cannot be reached at the
    /// start or has no JetStream; [`Error::Config`](steno_core::Error::Config) when the stream
    /// exists but is not a steno work queue; [`Error::Model`](steno_core::Error::Model) when
    /// the transcriber cannot be created.
    pub fn serve(&self, factory: &dyn TranscriberFactory, stop: &CancelToken) -> Result<()> {
        self.serve_when_ready(factory, stop, || {})
    }

    /// [`serve`](Self::serve), calling `ready` once the worker can take chunks: connected,
    /// its consumer and stop subscription made and its transcriber created. What a launcher
    /// announces the worker with, so that it never says "serving" about a worker that then
    /// fails to reach the broker.
    ///
    /// # Errors
    /// As [`serve`](Self::serve); `ready` is not called then.
    pub fn serve_when_ready(
        &self,
        factory: &dyn TranscriberFactory,
        stop: &CancelToken,
        ready: impl FnOnce(),
    ) -> Result<()> {
        let runtime = NatsTarget::client_runtime("steno-nats-worker")?;
        let identity = worker_identity();
        let client = runtime.block_on(self.target.connect(&format!("steno worker {identity}")))?;
        // JetStream's context spawns a task: it is made inside the runtime.
        let js = runtime.block_on(async { jetstream::new(client.clone()) });
        let model = factory.name();
        let (mut consumer, delivery) = runtime.block_on(self.consumer(&js, &model))?;
        let stops = Arc::new(Mutex::new(Stops::default()));
        let heard = runtime
            .block_on(client.subscribe(wire::stop_subject(&self.stream)))
            .map_err(|error| {
                queue::broker(format!(
                    "cannot subscribe on NATS at {}: {error}",
                    self.target
                ))
            })?;
        runtime.spawn(hear_stops(heard, Arc::clone(&stops)));
        let mut transcriber = factory.create()?;
        tracing::info!(
            "serving {model} on NATS stream {} at {}",
            self.stream,
            self.target
        );
        ready();
        let mut serving = Serving {
            client: &client,
            ack_wait: delivery.ack_wait,
            model: &model,
            identity: &identity,
            stops: &stops,
        };
        while !stop.is_cancelled() {
            let next = runtime.block_on(async {
                let mut batch = consumer
                    .fetch()
                    .max_messages(1)
                    .expires(PULL_WAIT)
                    .messages()
                    .await?;
                batch.next().await.transpose()
            });
            match next {
                Ok(Some(message)) => {
                    serving.handle(&runtime, transcriber.as_mut(), Arc::new(message));
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!("cannot take chunks from NATS ({error}); trying again");
                    std::thread::sleep(RETRY_PAUSE);
                    // The stream or consumer may have been deleted (or the broker lost them).
                    if let Ok((again, delivery)) = runtime.block_on(self.consumer(&js, &model)) {
                        consumer = again;
                        serving.ack_wait = delivery.ack_wait;
                    }
                }
            }
        }
        tracing::info!("stopped serving {model}");
        Ok(())
    }

    async fn consumer(
        &self,
        js: &jetstream::Context,
        model: &str,
    ) -> Result<(jetstream::consumer::PullConsumer, Delivery)> {
        let stream = queue::stream(js, &self.stream).await?;
        let (consumer, actual) =
            queue::consumer(&stream, &self.stream, model, self.delivery).await?;
        if actual.ack_wait != self.delivery.ack_wait
            || actual.max_deliver != self.delivery.max_deliver
        {
            tracing::info!(
                "the workers of {model} already share a consumer: using its ack wait of {:?} \
                 and {} deliveries at most",
                actual.ack_wait,
                actual.max_deliver
            );
        }
        Ok((consumer, actual))
    }
}

/// What answering a chunk needs.
struct Serving<'a> {
    client: &'a async_nats::Client,
    /// The consumer's ack wait: progress is reported every third of it.
    ack_wait: Duration,
    model: &'a str,
    identity: &'a str,
    /// The partial chunk being decoded and the stops heard, shared with `hear_stops`.
    stops: &'a Mutex<Stops>,
}

impl Serving<'_> {
    /// Transcribes one chunk message and answers it; acknowledges it once the answer is with
    /// the broker.
    fn handle(
        &self,
        runtime: &tokio::runtime::Runtime,
        transcriber: &mut dyn Transcriber,
        message: Arc<jetstream::Message>,
    ) {
        let headers = message.headers.as_ref();
        let Some(reply_to) = wire::header(headers, wire::REPLY_TO).map(str::to_owned) else {
            tracing::warn!("a chunk without a reply address: dropped");
            let _ = runtime.block_on(message.ack_with(AckKind::Term));
            return;
        };
        let request = wire::header(headers, wire::REQUEST)
            .unwrap_or("")
            .to_owned();
        let delivered = message.info().map_or(1, |info| info.delivered);
        let refusal = refusal(headers, self.model);
        let mut transcribed = Duration::ZERO;
        let run = wire::header(headers, wire::RUN).unwrap_or("").to_owned();
        // The chunk, and for a partial one what tells its decode that a stop came.
        let work = match (refusal, wire::decode_payload(&message.payload)) {
            (Some(problem), _) => Err(problem),
            (None, Ok(Message::Transcribe(chunk))) => Ok((chunk, None)),
            (None, Ok(Message::TranscribePartial(chunk))) => {
                let overtaken = lock(self.stops).start((run, request.clone()));
                Ok((chunk, Some(overtaken)))
            }
            (None, Ok(_)) => Err("the message is not a chunk".to_owned()),
            (None, Err(error)) => Err(format!("the chunk is malformed: {error}")),
        };
        let answer = work.map(|(chunk, overtaken)| {
            let partial = overtaken.is_some();
            tracing::debug!(chunk = chunk.index, delivered, partial, "transcribing");
            let progress = runtime.spawn(keep_alive(Arc::clone(&message), self.ack_wait / 3));
            let began = std::time::Instant::now();
            let answer = match &overtaken {
                Some(overtaken) => steno_process::answer_partial(transcriber, &chunk, overtaken),
                None => steno_process::answer(transcriber, &chunk),
            };
            transcribed = began.elapsed();
            progress.abort();
            if partial {
                lock(self.stops).current = None;
            }
            answer
        });
        let (answer, settle) = match answer {
            Ok(answer) => (answer, AckKind::Ack),
            Err(problem) => {
                tracing::warn!("refusing a chunk: {problem}");
                let answer = Message::Failed {
                    chunk: 0,
                    problem: format!("worker {} refused it: {problem}", self.identity),
                };
                (answer, AckKind::Term)
            }
        };
        let mut reply = HeaderMap::new();
        reply.insert(wire::REQUEST, request.as_str());
        reply.insert(wire::DELIVERED, HeaderValue::from(delivered));
        reply.insert(wire::WORKER, self.identity);
        let micros = u64::try_from(transcribed.as_micros()).unwrap_or(u64::MAX);
        reply.insert(wire::TRANSCRIBED_US, HeaderValue::from(micros));
        let sent = runtime.block_on(async {
            let payload = wire::answer_payload(&answer).map_err(|e| e.to_string())?;
            tokio::time::timeout(ANSWER_TIMEOUT, async {
                self.client
                    .publish_with_headers(reply_to, reply, payload.into())
                    .await
                    .map_err(|e| e.to_string())?;
                self.client.flush().await.map_err(|e| e.to_string())
            })
            .await
            .map_err(|_| "timed out".to_owned())?
        });
        match sent {
            Ok(()) => {
                if let Err(error) = runtime.block_on(message.double_ack_with(settle)) {
                    // The answer went out: a redelivered copy will be answered again, and the
                    // coordinator ignores the second answer.
                    tracing::warn!("cannot acknowledge a chunk ({error})");
                }
            }
            Err(error) => {
                // Not acknowledged: the broker delivers the chunk again after its ack wait.
                tracing::warn!("cannot answer a chunk ({error}); it will be delivered again");
            }
        }
    }
}

/// Why a chunk with these headers must be refused by a worker serving `model`, if it must.
fn refusal(headers: Option<&HeaderMap>, model: &str) -> Option<String> {
    let version = wire::header(headers, wire::PROTOCOL).unwrap_or("none");
    if version != PROTOCOL_VERSION.to_string() {
        return Some(format!(
            "it is in worker protocol version {version}, this worker speaks {PROTOCOL_VERSION}"
        ));
    }
    let sent_for = wire::header(headers, wire::MODEL).unwrap_or("none");
    if sent_for != model {
        return Some(format!(
            "it needs the model {sent_for}, this worker serves {model}"
        ));
    }
    None
}

/// A stop message's or a chunk's run and request.
type RequestKey = (String, String);

/// What a worker knows of stop messages: the partial chunk it decodes, with the counter its
/// [`Overtaken`] watches, and the requests stopped lately.
#[derive(Default)]
struct Stops {
    current: Option<(RequestKey, Arc<AtomicU64>)>,
    heard: VecDeque<RequestKey>,
}

impl Stops {
    /// The partial chunk of `key` is about to be decoded: what tells it to stop (at once if
    /// its stop came first).
    fn start(&mut self, key: RequestKey) -> Overtaken {
        let stop = Arc::new(AtomicU64::new(u64::from(self.heard.contains(&key))));
        self.current = Some((key, Arc::clone(&stop)));
        Overtaken::new(stop, 0)
    }

    /// A stop message for `key` came.
    fn stop(&mut self, key: RequestKey) {
        if let Some((current, stop)) = &self.current
            && *current == key
        {
            stop.store(1, Ordering::SeqCst);
        }
        if self.heard.len() == STOPS_REMEMBERED {
            self.heard.pop_front();
        }
        self.heard.push_back(key);
    }
}

/// Hears the stream's stop messages until the worker ends.
async fn hear_stops(mut heard: async_nats::Subscriber, stops: Arc<Mutex<Stops>>) {
    while let Some(message) = heard.next().await {
        let headers = message.headers.as_ref();
        let (Some(run), Some(request)) = (
            wire::header(headers, wire::RUN),
            wire::header(headers, wire::REQUEST),
        ) else {
            continue;
        };
        lock(&stops).stop((run.to_owned(), request.to_owned()));
    }
}

fn lock(stops: &Mutex<Stops>) -> std::sync::MutexGuard<'_, Stops> {
    stops.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Tells the broker `every` (a third of the ack wait) that the chunk is still being worked on.
async fn keep_alive(message: Arc<jetstream::Message>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        if let Err(error) = message.ack_with(AckKind::Progress).await {
            tracing::debug!("cannot tell the broker a chunk is in progress: {error}");
        }
    }
}

/// This worker's name in answers and in the broker's client list: host and process id.
fn worker_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .unwrap_or_else(|_| "localhost".to_owned());
    format!("{host}:{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(version: &str, model: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(wire::PROTOCOL, version);
        headers.insert(wire::MODEL, model);
        headers
    }

    #[test]
    fn chunks_for_another_model_or_version_are_refused() {
        let ours = PROTOCOL_VERSION.to_string();
        assert_eq!(refusal(Some(&headers(&ours, "tiny.bin")), "tiny.bin"), None);
        let other_model = refusal(Some(&headers(&ours, "base.bin")), "tiny.bin").unwrap();
        assert!(
            other_model.contains("needs the model base.bin") && other_model.contains("tiny.bin"),
            "{other_model}"
        );
        let old = refusal(Some(&headers("2", "tiny.bin")), "tiny.bin").unwrap();
        assert!(old.contains("protocol version 2"), "{old}");
        assert!(refusal(None, "tiny.bin").unwrap().contains("version none"));
    }
}
