//! End-to-end: `steno transcribe --backend nats` with real `steno worker --nats` processes, the
//! real model and a real `nats-server` that requires a password: the threads backend's
//! transcript, workers that stop cleanly on SIGTERM, a `tls://` broker with a private CA, and
//! clear errors for a wrong password (never shown), no worker, a chunk too large for the
//! broker, an unknown certificate and a bad URL.
#![allow(clippy::unwrap_used, reason = "a test that cannot set up should panic")]

mod common;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::*;
use steno_nats::LocalServer;

const USER: &str = "steno";
const PASSWORD: &str = "pw-3f9a1c7e";

/// The broker of these tests: it takes only `USER` with `PASSWORD`.
fn server() -> &'static LocalServer {
    static SERVER: OnceLock<LocalServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        let auth = format!("authorization {{\n  user: {USER}\n  password: \"{PASSWORD}\"\n}}");
        LocalServer::start_with(&auth).unwrap()
    })
}

/// `steno` logged in to the test broker through the environment.
fn steno_logged_in() -> Command {
    let mut command = steno();
    command
        .env("STENO_NATS_USER", USER)
        .env("STENO_NATS_PASSWORD", PASSWORD);
    command
}

/// A `steno worker --nats` process, killed when the test is done with it.
struct Worker(Child);

impl Worker {
    fn start(stream: &str, model: &Path) -> Self {
        let child = steno_logged_in()
            .args(["worker", "--nats", &server().url(), "--stream", stream])
            .args(["--threads", "1", "--model"])
            .arg(model)
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Worker(child)
    }

    /// Stops it with SIGTERM: its exit status and what it wrote on stderr.
    fn terminate(mut self) -> (std::process::ExitStatus, String) {
        let pid = self.0.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let began = Instant::now();
        let status = loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                break status;
            }
            assert!(
                began.elapsed() < Duration::from_secs(10),
                "worker ignored SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut self.0.stderr.take().unwrap(), &mut stderr).unwrap();
        (status, stderr)
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn failed(output: &Output) -> String {
    assert!(!output.status.success(), "steno succeeded");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

#[test]
fn two_workers_give_the_threads_backends_jsonl() {
    let dir = tempfile::tempdir().unwrap();
    // The workers' copy of the model is installed elsewhere than the run's, as on another
    // machine: a fleet knows a model by its file name and contents, not by its path.
    let installed = dir.path().join("elsewhere");
    std::fs::create_dir(&installed).unwrap();
    let theirs = installed.join(model().file_name().unwrap());
    std::fs::copy(model(), &theirs).unwrap();
    let stream = "E2E_SESSION";
    let workers = [
        Worker::start(stream, &theirs),
        Worker::start(stream, &theirs),
    ];
    let (out, report) = (dir.path().join("out.jsonl"), dir.path().join("run.json"));
    run_ok(
        steno_logged_in()
            .args(["transcribe", "--backend", "nats", "--nats", &server().url()])
            .args([
                "--nats-stream",
                stream,
                "--in-flight",
                "2",
                "--format",
                "jsonl",
            ])
            .arg("-o")
            .arg(&out)
            .arg("--report")
            .arg(&report)
            .arg("--model")
            .arg(model())
            .arg(fixture("session.wav")),
    );
    let segments = parse_jsonl(&std::fs::read_to_string(&out).unwrap());
    assert_eq!(
        content(&segments),
        content(&threads_jsonl(&fixture("session.wav")))
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(report["backend"], "nats");
    let named = report["model"].as_str().unwrap();
    assert!(
        named.starts_with("ggml-tiny.en-q8_0.bin sha256:"),
        "{named}"
    );
    assert_eq!(report["chunks"], segments.len());
    assert_eq!(report["redeliveries"], 0);
    for worker in workers {
        let (status, stderr) = worker.terminate();
        assert!(status.success(), "{status}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "serving {named} on NATS stream {stream} at {}",
                server().url()
            )) && stderr.contains("stopping after the chunk in hand"),
            "{stderr}"
        );
        assert!(!stderr.contains(PASSWORD), "{stderr}");
    }
}

#[test]
fn a_wrong_password_is_refused_without_showing_it() {
    let wrong = "not-the-pw-8c21";
    let url = server().url();
    let refused = |args: &[&str]| {
        let output = steno()
            .env("STENO_NATS_USER", USER)
            .env("STENO_NATS_PASSWORD", wrong)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = failed(&output);
        assert!(
            stderr.contains(&format!("cannot connect to NATS at {url}")),
            "{stderr}"
        );
        assert!(stderr.to_lowercase().contains("authorization"), "{stderr}");
        assert!(!stderr.contains(wrong), "{stderr}");
        assert!(output.stdout.is_empty());
        stderr
    };
    let session = fixture("session.wav");
    let session = session.to_str().unwrap();
    refused(&["transcribe", "--backend", "nats", "--nats", &url, session]);
    // A worker refused so ends with that error, and never says it is serving.
    let stderr = refused(&["worker", "--scripted", "--nats", &url]);
    assert!(!stderr.contains("serving"), "{stderr}");
}

#[test]
fn a_run_without_workers_ends_with_an_error_that_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.txt");
    let output = steno_logged_in()
        .args(["transcribe", "--backend", "nats", "--nats", &server().url()])
        .args([
            "--nats-stream",
            "E2E_NOBODY",
            "--nats-patience-secs",
            "1",
            "-o",
        ])
        .arg(&out)
        .arg(fixture("session.wav"))
        .output()
        .unwrap();
    let stderr = failed(&output);
    assert!(
        stderr.contains("no worker answered for 1 s on the NATS stream E2E_NOBODY")
            && stderr.contains("no worker has served the model"),
        "{stderr}"
    );
    assert!(!out.exists(), "a failed run leaves no output behind");
}

#[test]
fn a_chunk_too_large_for_the_broker_is_an_error_that_says_how_to_fix_it() {
    let small = LocalServer::start_with("max_payload: 65536").unwrap();
    let output = steno()
        .args(["transcribe", "--backend", "nats", "--nats", &small.url()])
        .arg(fixture("session.wav"))
        .output()
        .unwrap();
    let stderr = failed(&output);
    assert!(
        stderr.contains("takes at most 64 KiB") && stderr.contains("max_payload: 4MB"),
        "{stderr}"
    );
}

#[test]
fn bad_nats_options_are_refused_in_one_line() {
    for (args, says) in [
        (
            &["--backend", "nats", "--nats", "http://x:1"][..],
            "the scheme `http` is not NATS's",
        ),
        (
            &[
                "--backend",
                "nats",
                "--nats",
                "nats://x:1",
                "--nats-stream",
                "a.b",
            ],
            "NATS stream name `a.b`",
        ),
        (
            &["--in-flight", "2"],
            "--in-flight is an option of --backend nats",
        ),
    ] {
        let output = steno()
            .env_remove("STENO_NATS_URL")
            .arg("transcribe")
            .args(args)
            .arg(fixture("session.wav"))
            .output()
            .unwrap();
        let stderr = failed(&output);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    }
}

/// A private CA and a certificate for 127.0.0.1 signed by it, made with `openssl` in `dir`:
/// the CA's PEM, the server's certificate and its key.
fn certificates(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let openssl = |args: &[&str]| {
        let output = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl (installed by `cargo xtask deps`)");
        assert!(
            output.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    let quick = ["-newkey", "rsa:2048", "-nodes", "-days", "1"];
    openssl(
        &[
            &["req", "-x509", "-subj", "/CN=steno-test-ca"][..],
            &quick,
            &["-keyout", "ca.key", "-out", "ca.pem"],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req", "-subj", "/CN=127.0.0.1"][..],
            &quick,
            &["-keyout", "server.key", "-out", "server.csr"],
        ]
        .concat(),
    );
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-out",
        "server.pem",
        "-extfile",
        "san.ext",
    ]);
    (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    )
}

#[test]
fn a_tls_broker_is_reached_with_its_ca_and_refused_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificates(dir.path());
    let tls = format!(
        "tls {{\n  cert_file: \"{}\"\n  key_file: \"{}\"\n}}",
        cert.display(),
        key.display()
    );
    let server = LocalServer::start_with(&tls).unwrap();
    let url = format!("tls://127.0.0.1:{}", server.port());
    // The scripted transcriber on both sides: this test is about the connection.
    let mut worker = Worker(
        steno()
            .env("STENO_NATS_CA", &ca)
            .args(["worker", "--scripted", "--nats", &url])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let transcribe = |ca: Option<&Path>| {
        let mut command = steno();
        if let Some(ca) = ca {
            command.env("STENO_NATS_CA", ca);
        }
        command
            .args(["transcribe", "--backend", "nats", "--nats", &url])
            .args(["--simulate-cost-ms", "0", "--nats-patience-secs", "5"])
            .arg(fixture("session.wav"))
            .output()
            .unwrap()
    };
    let output = transcribe(Some(&ca));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let reference = steno()
        .args([
            "transcribe",
            "--backend",
            "threads",
            "--simulate-cost-ms",
            "0",
        ])
        .arg(fixture("session.wav"))
        .output()
        .unwrap();
    assert_eq!(output.stdout, reference.stdout);
    assert!(!output.stdout.is_empty());
    let stderr = failed(&transcribe(None));
    assert!(
        stderr.contains(&format!("cannot connect to NATS at {url}")),
        "{stderr}"
    );
    assert_eq!(
        worker.0.try_wait().unwrap(),
        None,
        "the worker is still serving"
    );
    let _ = worker.0.kill();
}
