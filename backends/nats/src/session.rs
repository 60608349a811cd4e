//! A coordinator's session with the broker for one run: chunks published to the work queue,
//! answers matched to the requests that wait for them, duplicates ignored.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use async_nats::jetstream::{self, message::PublishMessage};
use futures_util::StreamExt as _;
use steno_core::{Chunk, Error, Overtaken, Result, Transcription};
use steno_process::protocol::{Message, PROTOCOL_VERSION};
use tokio::sync::oneshot;

use crate::queue;
use crate::target::NatsTarget;
use crate::wire;

/// How often a waiting request looks at the run's state (stopped, or out of patience).
const POLL: Duration = Duration::from_millis(50);
/// How often a waiting partial chunk looks whether it has been overtaken, to stop its worker.
const STOP_POLL: Duration = Duration::from_millis(2);
/// How long to wait before publishing a chunk again when the broker did not take it.
const REPUBLISH_PAUSE: Duration = Duration::from_millis(250);
/// Headers and the frame's own header, over the samples: what a chunk message adds.
const MESSAGE_OVERHEAD: usize = 1024;

/// What a waiting request is told.
enum Answer {
    /// A worker's answer, how many times its chunk had been delivered, and how long the
    /// worker's transcriber took.
    Frame {
        message: Message,
        delivered: i64,
        transcribed: Duration,
    },
    /// A worker answered something that is not a frame.
    Malformed { worker: String, problem: String },
    /// The broker gave up on the chunk after this many deliveries.
    GaveUp { deliveries: i64 },
}

/// What requests share with the task that routes answers to them.
#[derive(Default)]
struct Routes {
    /// The requests waiting for an answer.
    waiting: HashMap<u64, oneshot::Sender<Answer>>,
    /// The request each published chunk (by stream sequence) belongs to.
    sequences: HashMap<u64, u64>,
}

/// One run's session. See the [module docs](self).
pub(crate) struct Session {
    /// The client's own runtime; `None` once the session is closed.
    runtime: Option<tokio::runtime::Runtime>,
    client: async_nats::Client,
    js: jetstream::Context,
    stream: jetstream::stream::Stream,
    target: String,
    stream_name: String,
    model: String,
    subject: String,
    run: String,
    inbox: String,
    patience: Duration,
    routes: Arc<Mutex<Routes>>,
    next_request: AtomicU64,
    /// When a worker last answered (or the run began).
    last_heard: Arc<Mutex<Instant>>,
    redeliveries: AtomicU64,
    ignored_answers: Arc<AtomicU64>,
}

impl Session {
    /// Connects, opens the stream and starts routing answers.
    pub(crate) fn open(
        target: &NatsTarget,
        stream_name: &str,
        model: String,
        patience: Duration,
    ) -> Result<Self> {
        let runtime = NatsTarget::client_runtime("steno-nats")?;
        let client = runtime.block_on(target.connect("steno coordinator"))?;
        // JetStream's context spawns a task: it is made inside the runtime.
        let js = runtime.block_on(async { jetstream::new(client.clone()) });
        let stream = runtime.block_on(queue::stream(&js, stream_name))?;
        let inbox = client.new_inbox();
        // The inbox's last token is unique to this run: it names the run's chunks too.
        let run = inbox.rsplit('.').next().unwrap_or("run").to_owned();
        let routes = Arc::new(Mutex::new(Routes::default()));
        let last_heard = Arc::new(Mutex::new(Instant::now()));
        let ignored_answers = Arc::new(AtomicU64::new(0));
        let (answers, advisories) = runtime.block_on(async {
            let answers = client.subscribe(inbox.clone()).await;
            let advisories = client
                .subscribe(wire::max_deliveries_advisory(stream_name, &model))
                .await;
            (answers, advisories)
        });
        let subscribe = |error: async_nats::SubscribeError| {
            queue::broker(format!("cannot subscribe on NATS at {target}: {error}"))
        };
        let (answers, advisories) = (answers.map_err(subscribe)?, advisories.map_err(subscribe)?);
        runtime.spawn(route(
            answers,
            advisories,
            Arc::clone(&routes),
            Arc::clone(&last_heard),
            Arc::clone(&ignored_answers),
        ));
        Ok(Session {
            subject: wire::chunk_subject(stream_name, &model, &run),
            runtime: Some(runtime),
            client,
            js,
            stream,
            target: target.to_string(),
            stream_name: stream_name.to_owned(),
            model,
            run,
            inbox,
            patience,
            routes,
            next_request: AtomicU64::new(0),
            last_heard,
            redeliveries: AtomicU64::new(0),
            ignored_answers,
        })
    }

    /// Chunks a worker answered after the broker had delivered them more than once.
    pub(crate) fn redeliveries(&self) -> u64 {
        self.redeliveries.load(Ordering::SeqCst)
    }

    fn routes(&self) -> std::sync::MutexGuard<'_, Routes> {
        lock(&self.routes)
    }

    fn runtime(&self) -> &tokio::runtime::Runtime {
        self.runtime
            .as_ref()
            .expect("the runtime is only taken when the session ends")
    }

    /// Transcribes `chunk` on the fleet: its text and the hand-off (the round trip less the
    /// worker's own transcription time), or the error that fails it; `None` when `stopped`
    /// said so first (it is asked every few tens of milliseconds). A partial chunk's worker is
    /// told to stop once `overtaken` says so, and then gives [`Error::Cancelled`].
    pub(crate) fn transcribe(
        &self,
        chunk: &Chunk,
        overtaken: Option<&Overtaken>,
        stopped: &(dyn Fn() -> bool + Sync),
    ) -> Option<Result<(Transcription, Duration)>> {
        let payload = match wire::chunk_payload(chunk, overtaken.is_some()) {
            Ok(payload) => payload,
            Err(error) => return Some(Err(error)),
        };
        let max_payload = self.client.server_info().max_payload;
        if payload.len() + MESSAGE_OVERHEAD > max_payload {
            return Some(Err(Error::Config(format!(
                "chunk {} ({:.1} s of audio) is a {} KiB message, but the NATS server at {} \
                 takes at most {} KiB: set `max_payload: 4MB` in nats-server's configuration \
                 (steno's chunks need up to 2 MiB)",
                chunk.index,
                chunk.seconds(),
                (payload.len() + MESSAGE_OVERHEAD) / 1024,
                self.target,
                max_payload / 1024
            ))));
        }
        let request = self.next_request.fetch_add(1, Ordering::SeqCst);
        let (tell, answer) = oneshot::channel();
        self.routes().waiting.insert(request, tell);
        let outcome = self
            .runtime()
            .block_on(self.round_trip(chunk, request, payload, answer, overtaken, stopped));
        self.routes().waiting.remove(&request);
        outcome
    }

    async fn round_trip(
        &self,
        chunk: &Chunk,
        request: u64,
        payload: Vec<u8>,
        mut answer: oneshot::Receiver<Answer>,
        mut overtaken: Option<&Overtaken>,
        stopped: &(dyn Fn() -> bool + Sync),
    ) -> Option<Result<(Transcription, Duration)>> {
        let index = chunk.index;
        // Until its worker has been told to stop, for a partial chunk.
        let partial = overtaken.is_some();
        let began = Instant::now();
        let sequence = match self
            .publish(index, request, payload.into(), stopped)
            .await?
        {
            Ok(sequence) => sequence,
            Err(error) => return Some(Err(error)),
        };
        let published = Instant::now();
        let answer = loop {
            tokio::select! {
                answer = &mut answer => match answer {
                    Ok(answer) => break answer,
                    // Only when the client is closed for good: never a silently missing chunk.
                    Err(_) => {
                        return Some(Err(queue::broker(format!(
                            "the connection to NATS at {} closed while chunk {index} waited \
                             for its text",
                            self.target
                        ))));
                    }
                },
                () = tokio::time::sleep(if overtaken.is_some() { STOP_POLL } else { POLL }) => {
                    if stopped() {
                        return None;
                    }
                    if overtaken.is_some_and(Overtaken::is_overtaken) {
                        overtaken = None;
                        self.stop(request).await;
                    }
                    let heard = *lock(&self.last_heard);
                    if published.elapsed() > self.patience && heard.elapsed() > self.patience {
                        return Some(Err(self.no_answer(index).await));
                    }
                }
            }
        };
        self.routes().sequences.remove(&sequence);
        Some(match answer {
            Answer::Frame {
                message: Message::Text { transcription, .. },
                delivered,
                transcribed,
            } => {
                if delivered > 1 {
                    self.redeliveries.fetch_add(1, Ordering::SeqCst);
                }
                Ok((transcription, began.elapsed().saturating_sub(transcribed)))
            }
            Answer::Frame {
                message: Message::Failed { problem, .. },
                ..
            } => Err(Error::transcribe(index, problem)),
            Answer::Frame {
                message: Message::Stopped { .. },
                ..
            } if partial => Err(Error::Cancelled),
            Answer::Frame { message, .. } => Err(queue::broker(format!(
                "a worker answered chunk {index} with a {} message",
                message.name()
            ))),
            Answer::Malformed { worker, problem } => Err(queue::broker(format!(
                "worker {worker} broke the worker protocol on chunk {index}: {problem}"
            ))),
            Answer::GaveUp { deliveries } => Err(Error::transcribe(
                index,
                format!(
                    "NATS delivered it to workers {deliveries} times and none of them answered \
                     (each was killed or cut off from the broker first); giving up"
                ),
            )),
        })
    }

    /// Publishes a chunk until the broker has stored it: its stream sequence. A broker that
    /// is away is waited for, for the run's patience.
    async fn publish(
        &self,
        index: usize,
        request: u64,
        payload: bytes::Bytes,
        stopped: &(dyn Fn() -> bool + Sync),
    ) -> Option<Result<u64>> {
        let mut headers = HeaderMap::new();
        headers.insert(wire::PROTOCOL, PROTOCOL_VERSION.to_string().as_str());
        headers.insert(wire::MODEL, self.model.as_str());
        headers.insert(wire::REPLY_TO, self.inbox.as_str());
        headers.insert(wire::REQUEST, request.to_string().as_str());
        headers.insert(wire::RUN, self.run.as_str());
        let first_try = Instant::now();
        loop {
            // The same message id on every try: the broker stores a chunk once however many
            // times it is sent.
            let message = PublishMessage::build()
                .payload(payload.clone())
                .headers(headers.clone())
                .message_id(format!("{}-{request}", self.run));
            let stored = match self.js.send_publish(self.subject.clone(), message).await {
                Ok(ack) => ack.await.map_err(|error| error.to_string()),
                Err(error) => Err(error.to_string()),
            };
            match stored {
                Ok(ack) => {
                    self.routes().sequences.insert(ack.sequence, request);
                    return Some(Ok(ack.sequence));
                }
                Err(error) if first_try.elapsed() > self.patience => {
                    return Some(Err(queue::broker(format!(
                        "cannot send chunk {index} to the NATS stream {} at {}: {error} \
                         (for {} s)",
                        self.stream_name,
                        self.target,
                        self.patience.as_secs()
                    ))));
                }
                Err(error) => {
                    tracing::debug!("NATS did not take chunk {index} ({error}); sending again");
                }
            }
            if stopped() {
                return None;
            }
            tokio::time::sleep(REPUBLISH_PAUSE).await;
        }
    }

    /// Tells the fleet to stop decoding the partial chunk of `request`. A stop that is lost
    /// only costs the rest of that decode.
    async fn stop(&self, request: u64) {
        let mut headers = HeaderMap::new();
        headers.insert(wire::RUN, self.run.as_str());
        headers.insert(wire::REQUEST, request.to_string().as_str());
        let subject = wire::stop_subject(&self.stream_name);
        if let Err(error) = self
            .client
            .publish_with_headers(subject, headers, bytes::Bytes::new())
            .await
        {
            tracing::debug!("cannot tell the fleet to stop a partial chunk: {error}");
        }
    }

    /// The error of a chunk nobody answered within the run's patience, with what the
    /// consumer of its model says about the workers.
    async fn no_answer(&self, index: usize) -> Error {
        let consumer = wire::consumer_name(&self.model);
        let workers = match self.js.get_stream(&self.stream_name).await {
            Ok(stream) => match stream.consumer_info(&consumer).await {
                Ok(info) => format!(
                    "{} workers are waiting for chunks, {} chunks are being transcribed and {} \
                     wait",
                    info.num_waiting, info.num_ack_pending, info.num_pending
                ),
                Err(_) => format!(
                    "no worker has served the model `{}` on this stream: start workers of \
                     that model and options (`steno worker --nats URL --stream {} --model \
                     PATH`)",
                    self.model, self.stream_name
                ),
            },
            Err(error) => format!("the stream cannot be read: {error}"),
        };
        Error::transcribe(
            index,
            format!(
                "no worker answered for {} s on the NATS stream {} at {}: {workers}",
                self.patience.as_secs(),
                self.stream_name,
                self.target
            ),
        )
    }

    /// Removes the run's chunks that no worker has taken yet (a failed or cancelled run).
    pub(crate) fn purge(&self) {
        let purged = self.runtime().block_on(
            self.stream
                .purge()
                .filter(self.subject.clone())
                .into_future(),
        );
        match purged {
            Ok(done) => tracing::debug!("purged {} chunks of a stopped run", done.purged),
            Err(error) => tracing::warn!("cannot remove a stopped run's chunks: {error}"),
        }
    }

    /// Answers that came for no waiting request (duplicates after a redelivery).
    pub(crate) fn ignored_answers(&self) -> u64 {
        self.ignored_answers.load(Ordering::SeqCst)
    }

    /// Ends the session: the client's buffered messages flushed, its tasks stopped.
    pub(crate) fn close(mut self) {
        if let Some(runtime) = self.runtime.take() {
            let client = self.client.clone();
            let _ = runtime.block_on(async {
                tokio::time::timeout(Duration::from_secs(2), client.flush()).await
            });
            runtime.shutdown_timeout(Duration::from_secs(1));
        }
    }
}

impl Drop for Session {
    /// A session dropped without [`close`](Session::close) (by a server, maybe inside its own
    /// async runtime, where blocking is not allowed) stops its tasks without waiting.
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Routes workers' answers and the broker's give-up advisories to the requests waiting for
/// them, until the session ends.
async fn route(
    mut answers: async_nats::Subscriber,
    mut advisories: async_nats::Subscriber,
    routes: Arc<Mutex<Routes>>,
    last_heard: Arc<Mutex<Instant>>,
    ignored: Arc<AtomicU64>,
) {
    loop {
        tokio::select! {
            Some(message) = answers.next() => {
                *lock(&last_heard) = Instant::now();
                let headers = message.headers.as_ref();
                let worker = wire::header(headers, wire::WORKER).unwrap_or("?").to_owned();
                let request = wire::header(headers, wire::REQUEST).and_then(|r| r.parse().ok());
                let waiting = request.and_then(|request| lock(&routes).waiting.remove(&request));
                let Some(tell) = waiting else {
                    // A second answer to a redelivered chunk, or one for a run that ended.
                    ignored.fetch_add(1, Ordering::SeqCst);
                    tracing::debug!("ignoring an answer from {worker}: nothing waits for it");
                    continue;
                };
                let delivered = wire::header(headers, wire::DELIVERED)
                    .and_then(|d| d.parse().ok())
                    .unwrap_or(1);
                let transcribed = wire::header(headers, wire::TRANSCRIBED_US)
                    .and_then(|us| us.parse().ok())
                    .map_or(Duration::ZERO, Duration::from_micros);
                let answer = match wire::decode_payload(&message.payload) {
                    Ok(message) => Answer::Frame { message, delivered, transcribed },
                    Err(error) => Answer::Malformed { worker, problem: error.to_string() },
                };
                let _ = tell.send(answer);
            }
            Some(advisory) = advisories.next() => {
                let Ok(advisory) = serde_json::from_slice::<MaxDeliveries>(&advisory.payload) else {
                    continue;
                };
                let mut routes = lock(&routes);
                let Some(request) = routes.sequences.remove(&advisory.stream_seq) else {
                    continue;
                };
                if let Some(tell) = routes.waiting.remove(&request) {
                    let _ = tell.send(Answer::GaveUp { deliveries: advisory.deliveries });
                }
            }
            else => return,
        }
    }
}

/// The part of JetStream's max-deliveries advisory steno reads.
#[derive(serde::Deserialize)]
struct MaxDeliveries {
    stream_seq: u64,
    deliveries: i64,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
