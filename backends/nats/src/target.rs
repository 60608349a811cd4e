//! Where the broker is and how to log in to it: [`NatsTarget`].

use std::path::PathBuf;
use std::time::Duration;

use steno_core::{Error, Result};

/// Environment variable: the user name to log in to NATS with (with [`PASSWORD_ENV`]).
pub const USER_ENV: &str = "STENO_NATS_USER";
/// Environment variable: the password that goes with [`USER_ENV`].
pub const PASSWORD_ENV: &str = "STENO_NATS_PASSWORD";
/// Environment variable: a token to log in to NATS with.
pub const TOKEN_ENV: &str = "STENO_NATS_TOKEN";
/// Environment variable: a PEM file of CA certificates to trust for `tls://` URLs, besides the
/// system's.
pub const CA_ENV: &str = "STENO_NATS_CA";

/// How long connecting may take before it fails (a broker that is not there).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A NATS broker to connect to: one or more server URLs (`nats://HOST:PORT`, or `tls://` to
/// require TLS; several separated by commas for a cluster) and credentials.
///
/// Credentials are never shown: [`Display`](std::fmt::Display) and [`Debug`] print the URLs
/// with any user and password replaced by `***`, and say nothing of tokens.
///
/// ```
/// let target = steno_nats::NatsTarget::new("nats://alice:secret@127.0.0.1:4222")?;
/// assert_eq!(target.to_string(), "nats://***@127.0.0.1:4222");
/// assert!(steno_nats::NatsTarget::new("http://127.0.0.1:4222").is_err());
/// # Ok::<(), steno_core::Error>(())
/// ```
#[derive(Clone)]
pub struct NatsTarget {
    servers: String,
    user: Option<(String, String)>,
    token: Option<String>,
    ca: Option<PathBuf>,
}

impl std::fmt::Debug for NatsTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsTarget")
            .field("servers", &self.to_string())
            .field("user", &self.user.as_ref().map(|_| "***"))
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("ca", &self.ca)
            .finish()
    }
}

impl std::fmt::Display for NatsTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown: Vec<String> = self.servers.split(',').map(redact).collect();
        f.write_str(&shown.join(","))
    }
}

/// A server URL with its user information replaced by `***`.
fn redact(url: &str) -> String {
    let url = url.trim();
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let rest = match rest.rsplit_once('@') {
        Some((_, host)) => format!("***@{host}"),
        None => rest.to_owned(),
    };
    if scheme.is_empty() {
        rest
    } else {
        format!("{scheme}://{rest}")
    }
}

impl NatsTarget {
    /// The broker at `servers`: `nats://HOST:PORT` or `tls://HOST:PORT` (`HOST:PORT` alone
    /// means `nats://`), several separated by commas. A URL may carry `user:password@`.
    ///
    /// # Errors
    /// [`Error::Config`] when a URL is empty or has another scheme.
    pub fn new(servers: &str) -> Result<Self> {
        let servers = servers.trim();
        if servers.is_empty() {
            return Err(Error::Config("the NATS URL is empty".into()));
        }
        for url in servers.split(',') {
            let url = url.trim();
            let host = match url.split_once("://") {
                Some(("nats" | "tls", host)) => host,
                Some((scheme, _)) => {
                    return Err(Error::Config(format!(
                        "NATS URL `{}`: the scheme `{scheme}` is not NATS's: use \
                         nats://HOST:PORT, or tls://HOST:PORT for TLS",
                        redact(url)
                    )));
                }
                None => url,
            };
            if host.rsplit('@').next().is_none_or(str::is_empty) {
                return Err(Error::Config(format!(
                    "NATS URL `{}` names no host",
                    redact(url)
                )));
            }
        }
        Ok(NatsTarget {
            servers: servers.to_owned(),
            user: None,
            token: None,
            ca: None,
        })
    }

    /// The broker at `servers`, with the credentials and CA file the environment gives:
    /// [`USER_ENV`] and [`PASSWORD_ENV`], or [`TOKEN_ENV`], and [`CA_ENV`].
    ///
    /// # Errors
    /// As [`new`](Self::new); [`Error::Config`] when only one of user and password is set.
    pub fn from_env(servers: &str) -> Result<Self> {
        let var = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
        let mut target = Self::new(servers)?;
        match (var(USER_ENV), var(PASSWORD_ENV)) {
            (Some(user), Some(password)) => target = target.with_user_and_password(user, password),
            (None, None) => {}
            _ => {
                return Err(Error::Config(format!(
                    "set both ${USER_ENV} and ${PASSWORD_ENV}, or neither"
                )));
            }
        }
        if let Some(token) = var(TOKEN_ENV) {
            target = target.with_token(token);
        }
        if let Some(ca) = var(CA_ENV) {
            target = target.with_root_certificates(ca);
        }
        Ok(target)
    }

    /// Logs in with a user name and password.
    #[must_use]
    pub fn with_user_and_password(mut self, user: String, password: String) -> Self {
        self.user = Some((user, password));
        self
    }

    /// Logs in with a token.
    #[must_use]
    pub fn with_token(mut self, token: String) -> Self {
        self.token = Some(token);
        self
    }

    /// Trusts the CA certificates in the PEM file at `path` for TLS, besides the system's.
    #[must_use]
    pub fn with_root_certificates(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca = Some(path.into());
        self
    }

    /// The runtime a client of this crate runs on, off the caller's threads: one worker
    /// thread is plenty for a connection and its few tasks.
    pub(crate) fn client_runtime(thread_name: &str) -> Result<tokio::runtime::Runtime> {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(thread_name)
            .enable_all()
            .build()
            .map_err(|error| Error::Stage {
                stage: "nats",
                problem: format!("cannot start the NATS client: {error}"),
            })
    }

    /// Connects, as the client `name` (shown in the broker's monitoring). The client
    /// reconnects by itself when the connection drops, for as long as it lives.
    pub(crate) async fn connect(&self, name: &str) -> Result<async_nats::Client> {
        let mut options = async_nats::ConnectOptions::new()
            .name(name)
            .connection_timeout(CONNECT_TIMEOUT)
            .event_callback(|event| async move {
                match event {
                    async_nats::Event::Connected => tracing::info!("connected to NATS"),
                    async_nats::Event::Disconnected => {
                        tracing::warn!("disconnected from NATS, reconnecting");
                    }
                    other => tracing::debug!("NATS: {other}"),
                }
            });
        if let Some((user, password)) = &self.user {
            options = options.user_and_password(user.clone(), password.clone());
        }
        if let Some(token) = &self.token {
            options = options.token(token.clone());
        }
        if let Some(ca) = &self.ca {
            if !ca.is_file() {
                return Err(Error::Config(format!(
                    "{}: no such CA certificate file (named by ${CA_ENV})",
                    ca.display()
                )));
            }
            options = options.add_root_certificates(ca.clone());
        }
        if self
            .servers
            .split(',')
            .any(|url| url.trim().starts_with("tls://"))
        {
            options = options.require_tls(true);
        }
        options
            .connect(self.servers.as_str())
            .await
            .map_err(|error| Error::Stage {
                stage: "nats",
                problem: format!("cannot connect to NATS at {self}: {error}"),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_show() {
        let target = NatsTarget::new("nats://u:p@a:1, tls://b:2")
            .unwrap()
            .with_token("sekrit".into())
            .with_user_and_password("bob".into(), "hunter2".into());
        let shown = format!("{target} {target:?}");
        assert_eq!(target.to_string(), "nats://***@a:1,tls://b:2");
        for secret in ["u:p", "sekrit", "hunter2", "bob"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }

    #[test]
    fn bad_urls_are_refused_by_name() {
        for (bad, says) in [
            ("", "empty"),
            ("http://x:1", "scheme `http`"),
            ("nats://", "names no host"),
            ("nats://u:p@", "names no host"),
        ] {
            let error = NatsTarget::new(bad).unwrap_err().to_string();
            assert!(error.contains(says), "{bad}: {error}");
            assert!(!error.contains("u:p"), "{error}");
        }
        assert!(NatsTarget::new("127.0.0.1:4222").is_ok());
    }
}
