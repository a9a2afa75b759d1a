//! What the server is told at start: the parts of the configuration (what `kestrel config` prints) it uses,
//! already read and checked by the command line.

use kestrel_engine::EngineConfig;
use kestrel_storage::Storage;
use kestrel_store::{SecretAccess, TokenRecord, UserRecord};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How the server runs. [`ServerOptions::default`] is a server on loopback with
/// authentication on and no configured users.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// The tenant of every route (`main`).
    pub tenant: String,
    /// Authentication and the users and tokens of the configuration file.
    pub auth: AuthOptions,
    /// Executions running at once (`worker.threads`).
    pub worker_threads: usize,
    /// Whether this process runs executions, and how it shares the queue with other nodes.
    pub worker: WorkerOptions,
    /// What is purged, and how often the purge runs.
    pub retention: RetentionOptions,
    /// How the engine runs executions (`variables`, `secret.mask-min-length`).
    pub engine: EngineConfig,
    /// The process environment, for `SECRET_*` and `envs` (the command line passes its own).
    pub process_env: Vec<(String, String)>,
    /// The env file, watched and reloaded on change (`--env-file`, `secret.env-file`).
    pub env_file: Option<PathBuf>,
    /// How often the env file is looked at.
    pub env_file_poll: Duration,
    /// Failed sign-ins and wrong webhook keys allowed per client and per user in a window.
    pub failure_limit: FailureLimit,
    /// `server.public-url`: the address users reach the server at (through a proxy);
    /// cookies are `Secure` when it is `https://`.
    pub public_url: Option<String>,
    /// Whether the server serves HTTPS itself (`server.tls`).
    pub tls: bool,
    /// The internal storage of executions' files (`storage`); without one, FILE inputs and
    /// output files are refused, saying so.
    pub storage: Option<Arc<dyn Storage>>,
    /// Where the audit trail is forwarded as JSON lines (`audit.forward`), if anywhere.
    pub audit_forward: Option<crate::AuditForward>,
}

impl ServerOptions {
    /// Whether users reach the server over HTTPS: it serves HTTPS itself, or `public_url`
    /// says so (a proxy in front).
    pub fn public_https(&self) -> bool {
        self.tls
            || self.public_url.as_deref().is_some_and(|url| {
                url.get(..8)
                    .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"))
            })
    }
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            tenant: kestrel_store::DEFAULT_TENANT.into(),
            auth: AuthOptions::default(),
            worker_threads: std::thread::available_parallelism().map_or(2, usize::from),
            worker: WorkerOptions::default(),
            retention: RetentionOptions::default(),
            engine: EngineConfig::default(),
            process_env: Vec::new(),
            env_file: None,
            env_file_poll: Duration::from_secs(1),
            failure_limit: FailureLimit::default(),
            public_url: None,
            tls: false,
            storage: None,
            audit_forward: None,
        }
    }
}

/// `worker`: how this process takes executions from the queue every node shares.
#[derive(Debug, Clone, Copy)]
pub struct WorkerOptions {
    /// Whether this process runs executions (`kestrel server --no-worker`: it does not; its
    /// executions wait in the queue for a worker).
    pub enabled: bool,
    /// How often a worker tells the queue it is alive (`worker.heartbeat`, 5 s).
    pub heartbeat: Duration,
    /// How long after its worker's last heartbeat an execution is taken over by another
    /// (`worker.resume-after`, 30 s).
    pub resume_after: Duration,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        Self {
            enabled: true,
            heartbeat: Duration::from_secs(5),
            resume_after: Duration::from_secs(30),
        }
    }
}

/// `server.auth`.
#[derive(Debug, Clone)]
pub struct AuthOptions {
    /// Off only when the configuration says `enabled: false`: every caller may do anything.
    pub enabled: bool,
    /// Users of the configuration file (their password hashes are argon2 PHC strings).
    pub users: Vec<UserRecord>,
    /// Tokens of the configuration file, each with the hex SHA-256 of its text.
    pub tokens: Vec<ConfiguredToken>,
}

impl Default for AuthOptions {
    fn default() -> Self {
        Self {
            enabled: true,
            users: Vec::new(),
            tokens: Vec::new(),
        }
    }
}

/// A token of `server.auth.tokens`.
#[derive(Clone)]
pub struct ConfiguredToken {
    /// Its name, reach and access.
    pub record: TokenRecord,
    /// The hex SHA-256 of the token's text.
    pub token_hash: String,
}

impl fmt::Debug for ConfiguredToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfiguredToken")
            .field("record", &self.record)
            .finish_non_exhaustive()
    }
}

impl ConfiguredToken {
    /// A configured token named `name` with the hash `token_hash`.
    pub fn new(
        name: &str,
        token_hash: &str,
        namespaces: Vec<String>,
        secrets: SecretAccess,
    ) -> Self {
        Self {
            record: TokenRecord {
                name: name.to_owned(),
                namespaces,
                secrets,
                created_at: chrono::DateTime::UNIX_EPOCH,
                revoked_at: None,
            },
            token_hash: token_hash.to_ascii_lowercase(),
        }
    }
}

/// `retention`.
#[derive(Debug, Clone, Copy)]
pub struct RetentionOptions {
    /// Executions (with logs and outputs) ended longer ago than this are purged.
    pub executions: Duration,
    /// Audit entries older than this are purged.
    pub audit: Duration,
    /// How often the purge runs (the first run comes at start).
    pub every: Duration,
}

impl Default for RetentionOptions {
    fn default() -> Self {
        Self {
            executions: Duration::from_secs(30 * 86_400),
            audit: Duration::from_secs(365 * 86_400),
            every: Duration::from_secs(3600),
        }
    }
}

/// How many failures a client (or a user name) may have in a window before it must wait.
#[derive(Debug, Clone, Copy)]
pub struct FailureLimit {
    /// Failures allowed in a window (10).
    pub max_failures: u32,
    /// The window (one minute).
    pub window: Duration,
}

impl Default for FailureLimit {
    fn default() -> Self {
        Self {
            max_failures: 10,
            window: Duration::from_secs(60),
        }
    }
}

/// Reads a duration as the configuration writes them: a number and a unit among `ms`, `s`,
/// `m`, `h`, `d` (`30d`, `5s`), or an ISO-8601 duration of days, hours, minutes and seconds
/// (`P30D`, `PT5S`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let bad = || {
        format!("'{text}' is not a duration: write a number and a unit (ms, s, m, h, d), e.g. 30d")
    };
    if let Some(iso) = text.strip_prefix('P').or_else(|| text.strip_prefix('p')) {
        return parse_iso(iso).ok_or_else(bad);
    }
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit.trim() {
        "ms" => return Ok(Duration::from_millis(n)),
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    n.checked_mul(seconds)
        .map(Duration::from_secs)
        .ok_or_else(bad)
}

/// `nD`, `TnHnMnS` parts of an ISO-8601 duration (after the `P`).
fn parse_iso(text: &str) -> Option<Duration> {
    let mut seconds = 0u64;
    let mut number = String::new();
    let mut in_time = false;
    for c in text.chars() {
        match c {
            '0'..='9' => number.push(c),
            'T' | 't' => in_time = true,
            unit => {
                let n: u64 = std::mem::take(&mut number).parse().ok()?;
                let scale = match (unit.to_ascii_uppercase(), in_time) {
                    ('D', false) => 86_400,
                    ('H', true) => 3600,
                    ('M', true) => 60,
                    ('S', true) => 1,
                    _ => return None,
                };
                seconds = seconds.checked_add(n.checked_mul(scale)?)?;
            }
        }
    }
    number.is_empty().then_some(Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_secure_only_behind_an_https_public_url() {
        let with = |url: Option<&str>| ServerOptions {
            public_url: url.map(str::to_owned),
            ..ServerOptions::default()
        };
        assert!(with(Some("https://kestrel.example.com/")).public_https());
        assert!(with(Some("HTTPS://kestrel.example.com")).public_https());
        assert!(!with(Some("http://kestrel.example.com")).public_https());
        assert!(!with(Some("https:")).public_https());
        assert!(!with(None).public_https());
    }

    #[test]
    fn durations_read_as_the_configuration_writes_them() {
        assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("P1DT2H"), Ok(Duration::from_secs(93_600)));
        assert_eq!(parse_duration("PT90S"), Ok(Duration::from_secs(90)));
    }

    #[test]
    fn a_bad_duration_says_how_to_write_one() {
        for bad in ["", "d", "30", "30 weeks", "P1H", "-5s"] {
            let error = parse_duration(bad).unwrap_err();
            assert!(error.contains("is not a duration"), "{bad}: {error}");
        }
    }
}
