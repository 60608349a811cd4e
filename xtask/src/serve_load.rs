//! `cargo xtask serve-load`: `steno serve` under load on loopback, against the server issue's
//! targets. It measures what idle connections cost, then streams a recording in real time
//! from several clients at once while a misbehaving client keeps sending what no client
//! should, and checks that nothing crashed and that every good stream's text is exactly what
//! `steno transcribe` writes for the same cut.
//!
//! Latency is the server's own measure, from each stream's report: end of speech (its last
//! voiced sample handed to the server) to the final text written to the socket.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};

pub(crate) const USAGE: &str = "\
cargo xtask serve-load [--input FILE] [--streams N] [--idle N] [--stagger-ms MS] [--interim]
                       [--threads N] [--json OUT.json]
  --input       the recording each stream sends (default conformance/inputs/session.wav)
  --streams     concurrent real-time streams (default 4)
  --idle        idle connections whose memory is measured (default 100)
  --stagger-ms  delay between the streams' starts (default 0: all speak at once)
  --interim     the streams ask for partial hypotheses too
  --threads     the server's threads per Whisper state (default: steno serve's, 2)
  --json        write the measurements to OUT.json
Builds steno in release. Run it on a quiet machine: ggml's threads spin, and any other
busy process makes the latencies meaningless.";

/// What one run measures.
pub(crate) struct Options {
    input: PathBuf,
    streams: usize,
    idle: usize,
    stagger: Duration,
    interim: bool,
    threads: Option<u16>,
    json: Option<PathBuf>,
}

impl Options {
    pub(crate) fn parse(root: &Path, args: &[String]) -> anyhow::Result<Self> {
        let mut options = Options {
            input: root.join("conformance/inputs/session.wav"),
            streams: 4,
            idle: 100,
            stagger: Duration::ZERO,
            interim: false,
            threads: None,
            json: None,
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let mut value = || {
                args.next()
                    .with_context(|| format!("{arg} needs a value\n{USAGE}"))
            };
            match arg.as_str() {
                "--input" => options.input = PathBuf::from(value()?),
                "--streams" => options.streams = value()?.parse().context("--streams")?,
                "--idle" => options.idle = value()?.parse().context("--idle")?,
                "--stagger-ms" => {
                    options.stagger =
                        Duration::from_millis(value()?.parse().context("--stagger-ms")?);
                }
                "--interim" => options.interim = true,
                "--threads" => options.threads = Some(value()?.parse().context("--threads")?),
                "--json" => options.json = Some(PathBuf::from(value()?)),
                other => bail!("unknown option {other}\n{USAGE}"),
            }
        }
        if options.streams == 0 {
            bail!("--streams must be at least 1");
        }
        Ok(options)
    }
}

pub(crate) fn run(root: &Path, options: &Options) -> anyhow::Result<()> {
    crate::deps::ensure()?;
    let model = crate::model::ensure(root)?;
    crate::run(crate::cargo(root).args(["build", "--release", "--locked", "-p", "steno"]))?;
    let steno = root.join("target/release/steno");
    let samples = steno_core::read_file(&options.input)
        .with_context(|| format!("cannot read {}", options.input.display()))?;
    // Back to the 16-bit samples a 16-bit recording holds (decoders divide by 32768), so the
    // server hears exactly what `steno transcribe` decodes from the file.
    let audio: Vec<u8> = samples
        .iter()
        .flat_map(|&s| ((s * 32_768.0).round().clamp(-32_768.0, 32_767.0) as i16).to_le_bytes())
        .collect();
    let expected = expected_finals(&steno, &model, &options.input)?;
    eprintln!(
        "xtask: {} finals expected from {}",
        expected.len(),
        options.input.display()
    );
    let places = options.streams.max(options.idle) + 1;
    let mut server = ServeProcess::start(&steno, &model, places, options.threads)?;

    // Warm up: the pool's Whisper state is made on first use; idle memory is measured after.
    let warm = stream(
        &server.address,
        &audio[..audio.len().min(64_000)],
        "",
        false,
    )?;
    drop(warm);
    let baseline = server.rss()?;
    let idle_whisperlive = hold_idle(&server, options.idle, "/")?;
    let idle_streams = hold_idle(&server, options.idle, "/v1/stream")?;
    eprintln!(
        "xtask: RSS {:.1} MB; +{:.1} MB with {} idle WhisperLive connections, +{:.1} MB with {} \
         idle /v1/stream streams",
        mb(baseline),
        mb(idle_whisperlive.saturating_sub(baseline)),
        options.idle,
        mb(idle_streams.saturating_sub(baseline)),
        options.idle
    );

    let query = if options.interim { "interim=true" } else { "" };
    let done = AtomicBool::new(false);
    let refused = AtomicUsize::new(0);
    let results: Vec<anyhow::Result<Vec<Value>>> = std::thread::scope(|scope| {
        let misbehaving = scope.spawn(|| misbehave(&server.address, &done, &refused));
        let streams: Vec<_> = (0..options.streams)
            .map(|index| {
                let (address, audio) = (&server.address, &audio);
                let delay = options.stagger * u32::try_from(index).unwrap_or(u32::MAX);
                scope.spawn(move || {
                    std::thread::sleep(delay);
                    stream(address, audio, query, true)
                })
            })
            .collect();
        let results = streams
            .into_iter()
            .map(|s| {
                s.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a client panicked")))
            })
            .collect();
        done.store(true, Ordering::SeqCst);
        let _ = misbehaving.join();
        results
    });
    let alive = server.is_alive();
    let log = server.log();
    let mut rows = Vec::new();
    for (index, result) in results.into_iter().enumerate() {
        let events = result.with_context(|| format!("stream {index}"))?;
        let finals: Vec<String> = events
            .iter()
            .filter(|e| e["type"] == "final")
            .map(|e| e["text"].as_str().unwrap_or_default().to_owned())
            .collect();
        let report = events
            .iter()
            .find(|e| e["type"] == "report")
            .with_context(|| format!("stream {index} got no report"))?;
        if finals != expected {
            eprintln!("xtask: stream {index} wrote {finals:?}\n  steno transcribe: {expected:?}");
        }
        rows.push(json!({
            "stream": index,
            "identical": finals == expected,
            "dropped_samples": report["dropped_samples"],
            "speech_end_latency_ms": report["speech_end_latency_ms"],
            "partials": events.iter().filter(|e| e["type"] == "partial").count(),
        }));
    }
    let malformed = refused.load(Ordering::SeqCst);
    println!("stream  identical  dropped  speech-end latency p50 / p95 / max (ms)  partials");
    for row in &rows {
        let latency = &row["speech_end_latency_ms"];
        println!(
            "{:>6}  {:>9}  {:>7}  {:>12} / {} / {}  {:>8}",
            row["stream"],
            row["identical"],
            row["dropped_samples"],
            latency["p50"],
            latency["p95"],
            latency["max"],
            row["partials"]
        );
    }
    println!(
        "misbehaving requests answered with an error: {malformed}; server alive: {alive}; \
         panics in its log: {}",
        log.matches("panicked").count()
    );
    let summary = json!({
        "input": options.input.display().to_string(),
        "streams": options.streams,
        "stagger_ms": options.stagger.as_millis() as u64,
        "interim": options.interim,
        "threads": options.threads,
        "idle_connections": options.idle,
        "rss_bytes": baseline,
        "idle_whisperlive_extra_bytes": idle_whisperlive.saturating_sub(baseline),
        "idle_streams_extra_bytes": idle_streams.saturating_sub(baseline),
        "misbehaving_requests": malformed,
        "server_alive": alive,
        "rows": rows,
    });
    if let Some(path) = &options.json {
        std::fs::write(path, serde_json::to_string_pretty(&summary)? + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let failed: Vec<_> = summary["rows"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|row| row["identical"] != true)
        .collect();
    if !alive || log.contains("panicked") || !failed.is_empty() {
        bail!("the load test failed: alive {alive}, streams with other text {failed:?}\n{log}");
    }
    Ok(())
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

/// What `steno transcribe` writes for the stream's cut: utterances decoded alone, with the
/// real-time trailing padding.
fn expected_finals(steno: &Path, model: &Path, input: &Path) -> anyhow::Result<Vec<String>> {
    let output = Command::new(steno)
        .args([
            "transcribe",
            "--no-pack",
            "--trailing-padding-ms",
            "100",
            "--format",
            "jsonl",
        ])
        .arg("--model")
        .arg(model)
        .arg(input)
        .output()
        .context("cannot run steno transcribe")?;
    if !output.status.success() {
        bail!(
            "steno transcribe failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| {
            let value: Value = serde_json::from_str(line)?;
            Ok(value["text"].as_str().unwrap_or_default().to_owned())
        })
        .collect()
}

/// `steno serve` on a free loopback port.
struct ServeProcess {
    child: Child,
    address: String,
    log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl ServeProcess {
    fn start(
        steno: &Path,
        model: &Path,
        places: usize,
        threads: Option<u16>,
    ) -> anyhow::Result<Self> {
        let mut command = Command::new(steno);
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--idle-secs", "600"])
            .args(["--max-streams", &places.to_string()]);
        if let Some(threads) = threads {
            command.args(["--threads", &threads.to_string()]);
        }
        let mut child = command
            .arg("--model")
            .arg(model)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .context("cannot start steno serve")?;
        let stderr = child.stderr.take().context("stderr is piped")?;
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let kept = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split(" on http://").nth(1) {
                    let _ = tx.send(
                        rest.split_whitespace()
                            .next()
                            .unwrap_or_default()
                            .to_owned(),
                    );
                }
                if let Ok(mut log) = kept.lock() {
                    log.push_str(&line);
                    log.push('\n');
                }
            }
        });
        let address = rx
            .recv_timeout(Duration::from_secs(60))
            .context("steno serve did not start listening")?;
        Ok(ServeProcess {
            child,
            address,
            log,
        })
    }

    /// The server's resident memory, from /proc.
    fn rss(&self) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let kb: u64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kb| kb.parse().ok())
            .context("no VmRSS")?;
        Ok(kb * 1024)
    }

    fn is_alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn log(&self) -> String {
        self.log.lock().map(|log| log.clone()).unwrap_or_default()
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

type Socket = WebSocket<TcpStream>;

fn connect(address: &str, path: &str) -> anyhow::Result<Socket> {
    let tcp = TcpStream::connect(address).context("cannot connect")?;
    tcp.set_read_timeout(Some(Duration::from_secs(120)))?;
    let (socket, _) = tungstenite::client(format!("ws://{address}{path}"), tcp)
        .map_err(|e| anyhow::anyhow!("{path}: {e}"))?;
    Ok(socket)
}

/// Opens `count` connections to `path` that send nothing, and returns the server's RSS
/// while they are open.
fn hold_idle(server: &ServeProcess, count: usize, path: &str) -> anyhow::Result<u64> {
    let sockets = (0..count)
        .map(|_| connect(&server.address, path))
        .collect::<anyhow::Result<Vec<_>>>()?;
    std::thread::sleep(Duration::from_secs(2));
    let rss = server.rss();
    drop(sockets);
    // Their streams end (the clients left) before the next measurement.
    std::thread::sleep(Duration::from_secs(2));
    rss
}

/// Streams `audio` (s16le, 16 kHz) to `/v1/stream`, at the pace of speech when `paced`, and
/// returns every event.
fn stream(address: &str, audio: &[u8], query: &str, paced: bool) -> anyhow::Result<Vec<Value>> {
    let mut socket = connect(address, &format!("/v1/stream?{query}"))?;
    let started = Instant::now();
    for (index, frame) in audio.chunks(3_200).enumerate() {
        if paced {
            let due = started + Duration::from_millis(100 * index as u64);
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
        }
        socket.send(Message::Binary(frame.to_vec().into()))?;
    }
    socket.send(Message::Text("END_OF_AUDIO".into()))?;
    let mut events = Vec::new();
    loop {
        match socket.read() {
            Ok(Message::Text(text)) => events.push(serde_json::from_str(&text)?),
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(_) => {}
        }
    }
    Ok(events)
}

/// Until `done`, sends the server one bad request after another, counting those answered
/// with an error.
fn misbehave(address: &str, done: &AtomicBool, answered: &AtomicUsize) {
    let nan: Vec<u8> = [0.0f32, f32::NAN]
        .iter()
        .flat_map(|s| s.to_le_bytes())
        .collect();
    let bad: [(&str, Vec<Message>); 4] = [
        ("/", vec![Message::Text("{not json".into())]),
        (
            "/",
            vec![
                Message::Text(r#"{"uid":"bad","language":"en"}"#.into()),
                Message::Binary(nan.into()),
            ],
        ),
        ("/v1/stream", vec![Message::Binary(vec![7u8; 3].into())]),
        (
            "/v1/stream?encoding=f32",
            vec![Message::Text("hello".into())],
        ),
    ];
    let mut round = 0;
    while !done.load(Ordering::SeqCst) {
        let (path, messages) = &bad[round % bad.len()];
        round += 1;
        let Ok(mut socket) = connect(address, path) else {
            continue;
        };
        for message in messages {
            let _ = socket.send(message.clone());
        }
        while let Ok(message) = socket.read() {
            if let Message::Text(text) = message
                && (text.contains("\"ERROR\"") || text.contains("\"error\""))
            {
                answered.fetch_add(1, Ordering::SeqCst);
            }
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}
