//! The NATS backend's fleet for `cargo xtask compare`: a real `nats-server` on a free loopback
//! port and `steno worker --nats` processes (by default `cores / 2` of 2 threads: the same
//! states x threads as every other backend's default; `--fleet N`: N of `cores / N` threads),
//! so `nats` is measured like the rest, its workers' CPU and memory included.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use anyhow::Context;
use steno_nats::LocalServer;

/// The stream the compared runs and the fleet share.
const STREAM: &str = "COMPARE";

/// Threads per worker by default: steno's default threads per state.
const DEFAULT_THREADS: usize = 2;

/// A broker and its workers, stopped when dropped.
pub(crate) struct Fleet {
    server: LocalServer,
    workers: Vec<Child>,
}

impl Fleet {
    /// Starts the broker and `workers` workers of `model` (or of the scripted transcriber,
    /// for a `--simulated` comparison). By default the fleet sizes itself as `steno
    /// transcribe` sizes its states: in real time `cores / 2` workers of 2 threads, offline
    /// one 1-thread worker per core.
    pub(crate) fn start(
        steno: &Path,
        model: &Path,
        simulated_cost_ms: Option<u64>,
        workers: Option<usize>,
        realtime: bool,
    ) -> anyhow::Result<Self> {
        let server =
            LocalServer::start().context("cannot start nats-server (`cargo xtask deps`)")?;
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        let mut fleet = Fleet {
            server,
            workers: Vec::new(),
        };
        let (count, threads) = match workers {
            Some(count) => (count, (cores / count).max(1)),
            None if realtime => ((cores / DEFAULT_THREADS).max(1), DEFAULT_THREADS),
            None => (cores, 1),
        };
        for _ in 0..count {
            let mut command = Command::new(steno);
            command
                .args(["worker", "--nats", &fleet.server.url(), "--stream", STREAM])
                .args(["--threads", &threads.to_string()]);
            match simulated_cost_ms {
                Some(ms) => command.args(["--scripted", "--cost-ms-per-s", &ms.to_string()]),
                None => command.arg("--model").arg(model),
            };
            let worker = command
                .stdin(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("cannot start a steno worker")?;
            fleet.workers.push(worker);
        }
        Ok(fleet)
    }

    /// What `steno transcribe --backend nats` needs to reach the fleet.
    pub(crate) fn transcribe_args(&self) -> Vec<String> {
        let in_flight = self.workers.len().to_string();
        vec![
            "--nats".into(),
            self.server.url(),
            "--nats-stream".into(),
            STREAM.into(),
            "--in-flight".into(),
            in_flight,
        ]
    }

    /// CPU seconds the workers have used so far (user + system).
    pub(crate) fn cpu_seconds(&self) -> f64 {
        self.workers
            .iter()
            .map(|worker| proc_cpu_seconds(worker.id()))
            .sum()
    }

    /// The workers' peak resident memory, added up (each one's model included).
    pub(crate) fn peak_rss_bytes(&self) -> u64 {
        self.workers
            .iter()
            .map(|worker| proc_peak_rss_bytes(worker.id()))
            .sum()
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for worker in &mut self.workers {
            let _ = worker.kill();
            let _ = worker.wait();
        }
    }
}

/// User + system CPU seconds of process `pid`, from `/proc/PID/stat`.
fn proc_cpu_seconds(pid: u32) -> f64 {
    // After the command name: state is field 3, so utime (14) and stime (15) are 11 and 12.
    super::cpu_seconds_in(&format!("/proc/{pid}/stat"), 11)
}

/// Peak resident memory (VmHWM) of process `pid`, from `/proc/PID/status`.
fn proc_peak_rss_bytes(pid: u32) -> u64 {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return 0;
    };
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| {
            value
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kib| kib * 1024)
}
