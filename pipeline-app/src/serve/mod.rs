//! `steno serve`: transcription over the network, on tokio and axum, for the clients people
//! already use.
//!
//! Every stream (a WhisperLive client, a `/v1/stream` socket, an upload) is a steno pipeline
//! on the tokio backend whose transcriber is the server's one [`TranscriberPool`]: at most
//! `cores / threads` Whisper states for all streams together, finals before partials, so
//! streams share the cores without oversubscribing them and a silent stream costs no state.
//! Admission (`--max-streams`), limits on time and size, and the token are checked here
//! before any work starts; each protocol lives in its own module.

mod auth;
mod feed;
mod openai;
mod page;
mod session;
mod stream;
mod whisperlive;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use steno_core::{
    CancelToken, ChunkerConfig, DecodingOptions, Pipeline, RunOptions, RunReport, Sink, Source,
    TranscriberFactory, TranscriberPool,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use crate::cli::ServeArgs;
use crate::model;
use crate::transcribe::{decoding_chunker, decoding_model, step_of};

/// The largest WebSocket message a client may send: 1 MiB is 16 s of float32 audio at
/// 16 kHz, far more than any client sends at once (WhisperLive sends 4096 samples).
const MAX_MESSAGE_BYTES: usize = 1 << 20;

/// The kernel's send buffer of each connection (Linux doubles it): what a client that stops
/// reading can hold of the server's memory beyond its bounded queue. Text needs little, and a
/// full buffer is how a stalled client is noticed (`--send-timeout-secs`).
const SEND_BUFFER_BYTES: usize = 32 << 10;

/// After SIGINT/SIGTERM, how long open streams get to finish their final text.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

pub(crate) fn run(args: &ServeArgs) -> anyhow::Result<()> {
    if args.token.as_deref() == Some("") {
        anyhow::bail!("--token (or STENO_TOKEN) is empty: give a secret, or leave it unset");
    }
    let stream_chunker = decoding_chunker(&args.decoding, true)?;
    let upload_chunker = decoding_chunker(&args.decoding, false)?;
    let model_path = model::resolve(args.decoding.model.as_deref())?;
    let threads = args
        .decoding
        .threads
        .map_or(steno_core::DEFAULT_THREADS_PER_STATE, usize::from);
    let (model, states, capacity) = transcribers(args, threads, &model_path)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("steno-serve")
        .build()
        .context("cannot start the server's runtime")?;
    let (stop, stopped) = watch::channel(false);
    let server = Arc::new(Server {
        pool: TranscriberPool::new(model, states),
        model_id: model_id(&model_path),
        stream_chunker,
        upload_chunker,
        interim_step: step_of(&args.decoding),
        options: args.decoding.whisper.options(),
        early_start: !args.decoding.no_early_start,
        limits: Limits {
            max_streams: u32::from(args.max_streams),
            max_stream: Duration::from_secs(args.max_stream_secs),
            idle: Duration::from_secs(args.idle_secs),
            send_timeout: Duration::from_secs(args.send_timeout_secs),
            max_upload_bytes: usize::try_from(args.max_upload_mib << 20).unwrap_or(usize::MAX),
        },
        admission: Arc::new(Semaphore::new(usize::from(args.max_streams))),
        token: args.token.clone(),
        streams: Mutex::new(BTreeMap::new()),
        next_stream: AtomicU64::new(0),
        stopped,
    });
    runtime.block_on(serve(server, args.listen, stop, &capacity))
}

/// What the pool lends, how many at once, and that said in words: Whisper states of the model
/// loaded here, or with `--nats` the fleet's workers, `--in-flight` chunks at a time.
fn transcribers(
    args: &ServeArgs,
    threads: usize,
    model_path: &std::path::Path,
) -> anyhow::Result<(Arc<dyn TranscriberFactory>, usize, String)> {
    let states = steno_core::stage::transcribers_fitting_cores(threads, None);
    let Some(url) = &args.nats.nats else {
        if args.nats.in_flight.is_some() {
            anyhow::bail!("--in-flight is an option of --nats (chunks with the fleet at once)");
        }
        let model = decoding_model(&args.decoding, threads, model_path)?;
        let capacity = format!("{states} Whisper state(s) x {threads} thread(s)");
        return Ok((Arc::new(model), states, capacity));
    };
    // The workers load the model; the name says which model and options they must serve.
    let name = model::fleet_name(model_path, &args.decoding.whisper.options())?;
    let target = steno_nats::NatsTarget::from_env(url)?;
    let fleet = steno_nats::NatsModel::connect_with_patience(
        &target,
        &args.nats.nats_stream,
        name,
        Duration::from_secs(args.nats.nats_patience_secs),
    )?;
    let in_flight = args.nats.in_flight.map_or(states, usize::from);
    let capacity = format!(
        "{in_flight} chunk(s) at once with the NATS fleet at {target}, stream {}",
        args.nats.nats_stream
    );
    Ok((Arc::new(fleet), in_flight, capacity))
}

/// Listens, serves until a signal, then lets open streams finish.
async fn serve(
    server: Arc<Server>,
    listen: SocketAddr,
    stop: watch::Sender<bool>,
    capacity: &str,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("--listen {listen}: cannot listen"))?;
    let address = listener.local_addr().unwrap_or(listen);
    eprintln!(
        "steno: serving {} on http://{address} ({capacity}, up to {} streams{}); Ctrl-C to \
         stop",
        server.model_id,
        server.limits.max_streams,
        if server.token.is_some() {
            ", token required"
        } else {
            ""
        },
    );
    if !address.ip().is_loopback() && server.token.is_none() {
        eprintln!(
            "steno: warning: {address} is reachable from other machines and no --token is set: \
             anyone who can reach it can use it"
        );
    }
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = rustix::net::sockopt::set_socket_send_buffer_size(&*tcp, SEND_BUFFER_BYTES)
        {
            tracing::debug!("cannot bound a connection's send buffer: {e}");
        }
    });
    let app = router(server.clone());
    let signal = async move {
        shutdown_signal().await;
        eprintln!("steno: stopping: open streams get their final text");
        let _ = stop.send(true);
    };
    // Handlers see the client's address, so that the log says who each line is about.
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(signal)
    .await
    .context("the server stopped")?;
    // Upgraded connections are no longer axum's: wait for their streams to end.
    let all = server.limits.max_streams;
    match tokio::time::timeout(SHUTDOWN_GRACE, server.admission.acquire_many(all)).await {
        Ok(_) => Ok(()),
        Err(_) => anyhow::bail!(
            "streams were still open {} s after the stop signal; they were cut off",
            SHUTDOWN_GRACE.as_secs()
        ),
    }
}

/// The routes: WhisperLive and the captions page share `/` (a WebSocket upgrade or a page).
fn router(server: Arc<Server>) -> Router {
    let max_upload = server.limits.max_upload_bytes;
    Router::new()
        .route("/", get(whisperlive::root))
        .route("/captions.js", get(page::script))
        .route("/worklet.js", get(page::worklet))
        .route("/v1/stream", get(stream::upgrade))
        .route(
            "/v1/audio/transcriptions",
            post(openai::transcriptions).layer(DefaultBodyLimit::max(max_upload)),
        )
        .route("/v1/models", get(openai::models))
        .route("/health", get(health))
        .with_state(server)
}

/// `GET /health`: for load balancers, container health checks and monitoring. Open without
/// the token (a probe rarely carries one), so it says no more than that the server is up, its
/// model, and how many of its places are taken.
async fn health(axum::extract::State(server): axum::extract::State<Arc<Server>>) -> Response {
    axum::Json(serde_json::json!({
        "status": "ok",
        "model": server.model_id,
        "streams": {
            "open": server.lock_streams().len(),
            "max": server.limits.max_streams,
        },
    }))
    .into_response()
}

/// SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {}
        () = terminate => {}
    }
}

/// The model's name for clients: its file name without `ggml-` and the extension
/// (`tiny.en-q8_0`).
fn model_id(path: &std::path::Path) -> String {
    let stem = path
        .file_stem()
        .map_or_else(|| "whisper".into(), |s| s.to_string_lossy().into_owned());
    stem.strip_prefix("ggml-").unwrap_or(&stem).to_owned()
}

/// What every connection shares.
pub(crate) struct Server {
    pool: TranscriberPool,
    model_id: String,
    /// How streams (audio as it happens) are cut.
    stream_chunker: ChunkerConfig,
    /// How uploads (whole files) are cut.
    upload_chunker: ChunkerConfig,
    interim_step: Duration,
    early_start: bool,
    /// The decoding options of every request (`--prompt`, `--language`, `--translate`, ...):
    /// the pool's Whisper states are built with them, so a client cannot choose its own.
    options: DecodingOptions,
    limits: Limits,
    admission: Arc<Semaphore>,
    token: Option<String>,
    /// When each admitted stream started, for WhisperLive's estimate of the wait.
    streams: Mutex<BTreeMap<u64, Instant>>,
    next_stream: AtomicU64,
    /// Turns `true` on SIGINT/SIGTERM.
    stopped: watch::Receiver<bool>,
}

/// The server's limits on what a client may take.
struct Limits {
    max_streams: u32,
    max_stream: Duration,
    idle: Duration,
    /// How long a send to a client may take before it is judged unable to keep up.
    send_timeout: Duration,
    max_upload_bytes: usize,
}

/// An admitted stream's place: given back (and its start forgotten) when dropped.
pub(crate) struct Admission {
    server: Arc<Server>,
    id: u64,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.server.lock_streams().remove(&self.id);
    }
}

impl Server {
    /// A place for one more stream, if one is free.
    fn admit(self: &Arc<Self>) -> Option<Admission> {
        let permit = self.admission.clone().try_acquire_owned().ok()?;
        let id = self.next_stream.fetch_add(1, Ordering::Relaxed);
        self.lock_streams().insert(id, Instant::now());
        Some(Admission {
            server: self.clone(),
            id,
            _permit: permit,
        })
    }

    /// Why a request for word times (its field `asked`) is refused, if it is: words are timed
    /// (by DTW) only on a server that loaded its model for it.
    fn untimed_words(&self, asked: &str) -> Option<String> {
        (!self.options.word_timestamps).then(|| {
            format!(
                "{asked}: this server does not time words; start it with `steno serve \
                 --word-timestamps`"
            )
        })
    }

    /// Why a request's own prompt is refused: the pool's Whisper states decode with one.
    fn other_prompt(&self) -> String {
        let served = match &self.options.prompt {
            Some(prompt) => format!("`{prompt}`"),
            None => "none".to_owned(),
        };
        format!(
            "prompt: this server decodes every request with one prompt ({served}, set by \
             `steno serve --prompt`); send that one or none"
        )
    }

    /// Why a client's `language` cannot be served, if it cannot: the server decodes every
    /// request in its own (`--language`), so only that one (or none) is accepted, and any when
    /// it detects the language.
    fn other_language(&self, asked: &str) -> Option<String> {
        let accepted =
            asked.is_empty() || asked == self.options.language || self.options.detects_language();
        (!accepted).then(|| {
            format!(
                "language `{asked}`: this server decodes every request in `{}` (set by `steno \
                 serve --language`, which also takes `auto`); send that one or none",
                self.options.language
            )
        })
    }

    /// The task every request gets: `translate` with `--translate`, else `transcribe`.
    fn task(&self) -> &'static str {
        if self.options.translate {
            "translate"
        } else {
            "transcribe"
        }
    }

    /// HTTP 503 with `Retry-After` (the wait estimate): every place is taken.
    fn busy(&self) -> Response {
        let retry_after = self.wait_estimate().as_secs().clamp(1, 3_600);
        (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, retry_after.to_string())],
            openai::error_body(
                &format!(
                    "the server is transcribing {} streams, its most: retry later",
                    self.limits.max_streams
                ),
                "server_busy",
            ),
        )
            .into_response()
    }

    /// How long until a place frees at the latest: the oldest stream's remaining time (as
    /// WhisperLive estimates it).
    fn wait_estimate(&self) -> Duration {
        let oldest = self.lock_streams().values().min().copied();
        oldest.map_or(Duration::ZERO, |started| {
            self.limits.max_stream.saturating_sub(started.elapsed())
        })
    }

    fn lock_streams(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Instant>> {
        self.streams.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts a pipeline on `source` writing to `sink`, on the tokio backend over the shared
    /// pool: `live` for audio as it happens (finals first, early start; partials when
    /// `interim`), or a whole file (packed windows).
    fn start(
        &self,
        source: Box<dyn Source>,
        sink: Box<dyn Sink>,
        live: bool,
        interim: bool,
    ) -> anyhow::Result<Running> {
        let mut options = RunOptions::default();
        let cancel = CancelToken::new();
        options.cancel = cancel.clone();
        options.early_start = live && self.early_start;
        options.pack = !live;
        options.interim_step = interim.then_some(self.interim_step);
        let chunker = if live {
            &self.stream_chunker
        } else {
            &self.upload_chunker
        };
        let pipeline = Pipeline::builder(source, Arc::new(self.pool.clone()), sink)
            .chunker(chunker.clone())
            .options(options)
            .build()?;
        let run = tokio::spawn(steno_tokio::run(pipeline));
        Ok(Running { run, cancel })
    }
}

/// A pipeline running for one client.
pub(crate) struct Running {
    run: tokio::task::JoinHandle<steno_core::Result<RunReport>>,
    cancel: CancelToken,
}

impl Running {
    /// Waits for the run's report.
    async fn finish(mut self) -> anyhow::Result<RunReport> {
        match (&mut self.run).await {
            Ok(report) => Ok(report?),
            Err(_) => anyhow::bail!("the stream's pipeline stopped unexpectedly"),
        }
    }
}

impl Drop for Running {
    /// A client that goes away stops its pipeline: nobody is left to read its text.
    fn drop(&mut self) {
        if !self.run.is_finished() {
            self.cancel.cancel();
        }
    }
}
