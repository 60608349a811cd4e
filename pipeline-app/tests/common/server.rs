//! `steno serve` for the server's end-to-end tests: started on a free loopback port, its
//! address read from what it prints, its log kept, stopped when dropped.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::{root, steno};

/// A running `steno serve`.
pub(crate) struct Server {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub(crate) address: String,
    log: Arc<Mutex<String>>,
}

impl Server {
    /// `steno serve` with `args` on a free port of 127.0.0.1, once it listens.
    pub(crate) fn start(args: &[&str]) -> Server {
        Self::start_with(
            steno()
                .args(["serve", "--listen", "127.0.0.1:0"])
                .args(args),
        )
    }

    /// Starts `command` (a `steno serve ...` with `--listen 127.0.0.1:0`), once it listens.
    pub(crate) fn start_with(command: &mut Command) -> Server {
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("steno serve starts");
        let stderr = child.stderr.take().expect("stderr is piped");
        let log = Arc::new(Mutex::new(String::new()));
        let (address_tx, address_rx) = std::sync::mpsc::channel();
        let kept = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                // Logged before the address is announced, so that a test that starts looking
                // at the log once the server listens finds the line that said so.
                {
                    let mut log = kept.lock().unwrap_or_else(PoisonError::into_inner);
                    log.push_str(&line);
                    log.push('\n');
                }
                if let Some(rest) = line.split(" on http://").nth(1) {
                    let address = rest.split_whitespace().next().unwrap_or_default();
                    let _ = address_tx.send(address.to_owned());
                }
            }
        });
        let address = match address_rx.recv_timeout(Duration::from_secs(60)) {
            Ok(address) => address,
            Err(_) => {
                let _ = child.kill();
                let status = child.wait();
                panic!(
                    "steno serve did not start ({status:?}): {}",
                    log.lock().unwrap_or_else(PoisonError::into_inner)
                );
            }
        };
        Server {
            child,
            address,
            log,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// What the server has printed so far.
    pub(crate) fn log(&self) -> String {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Sends SIGTERM and waits for the exit, at most `limit`; the exit status, or `None`
    /// when it did not exit in time.
    pub(crate) fn terminate(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + limit;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// The server's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The Python of the venv with the real clients (WhisperLive's, the OpenAI SDK); fails
/// loudly (never skips) when it is missing.
pub(crate) fn client_python() -> PathBuf {
    let python = root().join("target/serve-venv/bin/python");
    assert!(
        python.is_file(),
        "{} is missing: run `cargo xtask deps` (or `cargo xtask test`, which does it) to \
         install the clients the server is tested with",
        python.display()
    );
    python
}
