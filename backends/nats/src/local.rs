//! [`LocalServer`]: a `nats-server` with JetStream on a free loopback port, for tests and
//! benchmarks that need a real broker (steno's own use it; so can an application's).

use std::io::Write as _;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long a server may take to accept connections.
const SERVER_START: Duration = Duration::from_secs(10);

/// A `nats-server` with JetStream, on a loopback port, its store in a directory of its own
/// that is removed when it stops. Its messages may be up to 4 MB (steno's chunks need 2 MiB).
///
/// The server runs under a small shell that stops it and removes its store when the shell's
/// stdin closes: when this value is dropped, and also when the test process ends without
/// dropping it (a server in a `static`), so no server outlives its tests.
#[derive(Debug)]
pub struct LocalServer {
    shell: Child,
    port: u16,
    store: PathBuf,
    config: String,
}

impl LocalServer {
    /// Starts a server on a free port.
    ///
    /// # Errors
    /// When `nats-server` is not installed (Debian's `nats-server` package; steno's `cargo
    /// xtask deps` installs it), or does not accept connections within 10 s.
    pub fn start() -> std::io::Result<Self> {
        Self::start_with("")
    }

    /// Starts a server on a free port with `extra` appended to its configuration file (for
    /// example `max_payload: 65536`, or an `authorization { ... }` block).
    ///
    /// # Errors
    /// As [`start`](Self::start).
    pub fn start_with(extra: &str) -> std::io::Result<Self> {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
            .local_addr()?
            .port();
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let store = std::env::temp_dir().join(format!(
            "steno-nats-{}-{}",
            std::process::id(),
            STARTED.fetch_add(1, Ordering::SeqCst)
        ));
        let config = format!(
            "listen: 127.0.0.1:{port}\nmax_payload: 4MB\n\
             jetstream {{\n  store_dir: \"{}\"\n}}\n{extra}\n",
            store.display()
        );
        let mut server = LocalServer {
            shell: spawn_server(&store, &config)?,
            port,
            store,
            config,
        };
        server.wait_until_ready()?;
        Ok(server)
    }

    /// The server every test of this process shares, started on first use.
    ///
    /// # Panics
    /// When it cannot be started (see [`start`](Self::start)).
    pub fn shared() -> &'static LocalServer {
        static SHARED: OnceLock<LocalServer> = OnceLock::new();
        SHARED.get_or_init(|| {
            LocalServer::start().unwrap_or_else(|error| {
                panic!(
                    "cannot start nats-server ({error}): install it with `cargo xtask deps` \
                     (Debian's nats-server package)"
                )
            })
        })
    }

    /// Its URL: `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server and starts it again on the same port with the same store, as a broker
    /// restart does: JetStream's streams and consumers survive, connections do not.
    ///
    /// # Errors
    /// As [`start`](Self::start).
    pub fn restart(&mut self) -> std::io::Result<()> {
        self.stop(true);
        self.shell = spawn_server(&self.store, &self.config)?;
        self.wait_until_ready()
    }

    /// Stops the server, keeping its store when `keep_store` is true.
    fn stop(&mut self, keep_store: bool) {
        if let Some(mut stdin) = self.shell.stdin.take()
            && keep_store
        {
            let _ = stdin.write_all(b"keep\n");
        }
        let _ = self.shell.wait();
    }

    fn wait_until_ready(&mut self) -> std::io::Result<()> {
        let began = Instant::now();
        loop {
            if TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)).is_ok() {
                return Ok(());
            }
            if let Some(status) = self.shell.try_wait()? {
                return Err(std::io::Error::other(format!(
                    "nats-server exited ({status}) before accepting connections"
                )));
            }
            if began.elapsed() > SERVER_START {
                return Err(std::io::Error::other(
                    "nats-server did not accept connections within 10 s",
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        self.stop(false);
    }
}

/// Runs `nats-server` with `config` under a shell that stops it (and waits for it) once the
/// shell's stdin closes.
fn spawn_server(store: &Path, config: &str) -> std::io::Result<Child> {
    std::fs::create_dir_all(store)?;
    let config_path = store.join("nats.conf");
    std::fs::write(&config_path, config)?;
    // A line `keep` before the end keeps the store (a restart); the end alone removes it.
    let script = "nats-server -c \"$1\" & server=$!; read -r keep; cat > /dev/null; \
                  kill $server; wait $server; [ \"$keep\" = keep ] || rm -rf \"$2\"";
    let shell = Command::new("sh")
        .args(["-c", script, "nats-server"])
        .arg(&config_path)
        .arg(store)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    // Nothing is ever written to the shell's stdin: it only tells the shell when this process
    // is gone.
    Ok(shell)
}
