//! `kestrel server [--bind ADDRESS] [--env-file FILE] [--no-worker]`: the REST API (Kestra's)
//! and the executions of a team, over the store, until Ctrl-C or SIGTERM; and what
//! `kestrel worker` shares with it: the options, the store, the master key, the secrets'
//! backends, the env file and the task sandbox.

use crate::config::{Access, AuthConfig, Config};
use crate::error::CliError;
use crate::output::{note, warn};
use crate::settings::Settings;
use clap::Args;
use kestrel_server::{
    AppState, AuditForward, AuthOptions, ConfiguredToken, RetentionOptions, Server, ServerOptions,
    TlsListener, WorkerOptions, is_password_hash, parse_duration, shutdown_signal,
};
use kestrel_store::{SecretAccess, UserRecord};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long running executions may go on after a stop is asked, before they are killed.
pub(crate) const GRACE: Duration = Duration::from_secs(10);

#[derive(Debug, Args)]
pub(crate) struct ServerArgs {
    /// The address to listen on (default: server.bind, 127.0.0.1:8080; port 0: any free one).
    #[arg(long, value_name = "ADDRESS")]
    bind: Option<String>,
    /// A dotenv file of SECRET_* values, reloaded on change (overrides secret.env-file).
    #[arg(long, value_name = "FILE")]
    env_file: Option<PathBuf>,
    /// Serves the API and the UI only: executions wait in the database's queue for a
    /// `kestrel worker` (or a server without this flag) sharing it.
    #[arg(long)]
    no_worker: bool,
}

pub(crate) fn run(args: &ServerArgs, settings: &Settings) -> Result<u8, CliError> {
    let mut options = options(settings, args.env_file.as_deref())?;
    options.worker.enabled = !args.no_worker;
    let tls = tls_files(settings)?;
    options.tls = tls.is_some();
    let bind = args
        .bind
        .clone()
        .unwrap_or_else(|| settings.config.server.bind.0.clone());
    with_state(
        settings,
        args.env_file.as_deref(),
        options,
        |state| async move {
            let server = Server::start(state)
                .await
                .map_err(|e| CliError::failed(e.to_string()))?;
            let listener = tokio::net::TcpListener::bind(&bind)
                .await
                .map_err(|e| CliError::usage(format!("cannot listen on {bind}")).caused_by(e))?;
            let address = listener.local_addr().map_err(|e| {
                CliError::failed("cannot read the address listened on").caused_by(e)
            })?;
            match tls {
                Some((cert, key)) => {
                    let listener =
                        TlsListener::new(listener, &cert, &key).map_err(CliError::usage)?;
                    serve(server, listener, &format!("https://{address}")).await
                }
                None => serve(server, listener, &format!("http://{address}")).await,
            }
        },
    )
}

/// Serves on `listener` (reached at `url`) until Ctrl-C or SIGTERM.
async fn serve<L>(server: Server, listener: L, url: &str) -> Result<u8, CliError>
where
    L: kestrel_server::Listener<Addr = std::net::SocketAddr>,
{
    note(&format!("kestrel server listening on {url}"));
    if let Some(notice) = server.first_start_notice(url).await {
        warn(&notice);
    }
    server
        .serve(listener, shutdown_signal(), GRACE)
        .await
        .map_err(|e| CliError::failed("the server stopped on an error").caused_by(e))?;
    note("kestrel server stopped");
    Ok(0)
}

/// `server.tls`: the certificate chain and key files, when the server serves HTTPS; exit 2
/// when only one of them is given.
fn tls_files(settings: &Settings) -> Result<Option<(PathBuf, PathBuf)>, CliError> {
    let tls = &settings.config.server.tls;
    match (&tls.cert_file, &tls.key_file) {
        (Some(cert), Some(key)) => Ok(Some((cert.0.clone(), key.0.clone()))),
        (None, None) => Ok(None),
        _ => Err(CliError::usage(
            "server.tls needs both cert-file (the certificate chain, PEM) and key-file (its \
             private key, PEM)",
        )),
    }
}

/// Runs `body` on the state of a server or a worker with `options`: the task sandbox
/// installed (hiding `env_file` too), the store opened with its master key, the secrets'
/// backends composed, on a runtime shut down when `body` returns.
pub(crate) fn with_state<F, Fut>(
    settings: &Settings,
    env_file: Option<&Path>,
    options: ServerOptions,
    body: F,
) -> Result<u8, CliError>
where
    F: FnOnce(AppState) -> Fut,
    Fut: Future<Output = Result<u8, CliError>>,
{
    // Only a process that runs executions starts tasks: only it says what they run without.
    let sandbox = crate::sandbox::install(settings, env_file, options.worker.enabled)?;
    let stores = crate::sources::server_stores(settings)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::failed("cannot start the runtime").caused_by(e))?;
    let code = runtime.block_on(async {
        let state = AppState::with_secrets(options, stores.store, stores.secrets)
            .map_err(|e| CliError::usage(e.to_string()))?;
        body(state).await
    });
    // The runtime goes first, with whatever task was still running.
    super::shut_down(runtime);
    sandbox.close();
    code
}

/// The options of a server or a worker from the configuration file, the env file flag and the
/// environment.
pub(crate) fn options(
    settings: &Settings,
    env_file: Option<&Path>,
) -> Result<ServerOptions, CliError> {
    let config = &settings.config;
    let defaults = ServerOptions::default();
    Ok(ServerOptions {
        auth: auth(config)?,
        worker_threads: config
            .worker
            .threads
            .as_ref()
            .map_or(defaults.worker_threads, |t| t.0.max(1)),
        retention: RetentionOptions {
            executions: duration("retention.executions", &config.retention.executions.0)?,
            audit: duration("retention.audit", &config.retention.audit.0)?,
            ..RetentionOptions::default()
        },
        process_env: settings
            .env
            .for_engine(&config.variables.redacted_env_vars.0),
        engine: settings.engine_config()?,
        worker: worker(config)?,
        env_file: settings.env_file(env_file).map(PathBuf::from),
        public_url: config.server.public_url.as_ref().map(|url| url.0.clone()),
        storage: Some(settings.storage()),
        audit_forward: audit_forward(config)?,
        ..defaults
    })
}

/// `audit.forward`, checked.
fn audit_forward(config: &Config) -> Result<Option<AuditForward>, CliError> {
    config
        .audit
        .forward
        .as_ref()
        .map(|target| AuditForward::parse(&target.0).map_err(CliError::usage))
        .transpose()
}

/// The duration at `key`. Like every configuration error, this one names the key and never
/// echoes the value.
fn duration(key: &str, text: &str) -> Result<Duration, CliError> {
    parse_duration(text).map_err(|_| {
        CliError::usage(format!(
            "{key}: not a duration: write a number and a unit (ms, s, m, h, d), e.g. 30d"
        ))
    })
}

/// `worker`: its heartbeat, a positive duration, and the delay before a takeover, longer than
/// the heartbeat (or a live worker would lose its executions).
fn worker(config: &Config) -> Result<WorkerOptions, CliError> {
    let heartbeat = duration("worker.heartbeat", &config.worker.heartbeat.0)?;
    let resume_after = duration("worker.resume-after", &config.worker.resume_after.0)?;
    if heartbeat.is_zero() {
        return Err(CliError::usage(
            "worker.heartbeat: must be longer than zero",
        ));
    }
    if resume_after <= heartbeat {
        return Err(CliError::usage(
            "worker.resume-after: must be longer than worker.heartbeat",
        ));
    }
    Ok(WorkerOptions {
        enabled: true,
        heartbeat,
        resume_after,
    })
}

/// `server.auth`: the first configured user (or token, without users) writes secrets unless
/// told otherwise, the others have no secret access, as with `kestrel users add`. A hash kestrel
/// cannot read would match nothing, so it is refused at start rather than at every sign-in.
fn auth(config: &Config) -> Result<AuthOptions, CliError> {
    let auth = &config.server.auth;
    check_hashes(auth)?;
    let access = |given: Option<Access>, first: bool| match (given, first) {
        (Some(Access::Read), _) => SecretAccess::Read,
        (Some(Access::Write), _) | (None, true) => SecretAccess::Write,
        (Some(Access::None), _) | (None, false) => SecretAccess::None,
    };
    let users = auth
        .users
        .iter()
        .enumerate()
        .map(|(i, u)| UserRecord {
            name: u.username.0.clone(),
            password_hash: u.password_hash.expose_secret().to_owned(),
            namespaces: u.namespaces.0.clone(),
            secrets: access(u.secrets.as_ref().map(|s| s.0), i == 0),
            created_at: chrono::DateTime::UNIX_EPOCH,
        })
        .collect();
    let tokens = auth
        .tokens
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let first = i == 0 && auth.users.is_empty();
            ConfiguredToken::new(
                &t.name.0,
                t.token_hash.expose_secret(),
                t.namespaces.0.clone(),
                access(t.secrets.as_ref().map(|s| s.0), first),
            )
        })
        .collect();
    Ok(AuthOptions {
        enabled: auth.enabled.0,
        users,
        tokens,
    })
}

/// Names the first user whose `password-hash` is not an argon2 PHC string, or token whose
/// `token-hash` is not a hex SHA-256, without echoing either.
fn check_hashes(auth: &AuthConfig) -> Result<(), CliError> {
    if let Some(user) = auth
        .users
        .iter()
        .find(|u| !is_password_hash(u.password_hash.expose_secret()))
    {
        return Err(CliError::usage(format!(
            "server.auth.users: the password-hash of user '{}' is not an argon2 hash in PHC form \
             ($argon2id$v=19$...), so no password would match it",
            user.username.0
        )));
    }
    let is_sha256_hex = |hash: &str| {
        hash.len() == 64 && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    if let Some(token) = auth
        .tokens
        .iter()
        .find(|t| !is_sha256_hex(t.token_hash.expose_secret()))
    {
        return Err(CliError::usage(format!(
            "server.auth.tokens: the token-hash of token '{}' is not a hex SHA-256 \
             (64 characters 0-9a-f, as `printf %s \"$TOKEN\" | sha256sum` prints), \
             so no token would match it",
            token.name.0
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kestrel_server::hash_password;

    fn worker_of(yaml: &str) -> Result<WorkerOptions, String> {
        worker(&Config::parse(yaml).unwrap()).map_err(|error| error.report())
    }

    #[test]
    fn the_worker_keys_default_to_5s_and_30s_and_are_read() {
        let defaults = worker_of("").unwrap();
        assert_eq!(
            (defaults.heartbeat, defaults.resume_after),
            (Duration::from_secs(5), Duration::from_secs(30))
        );
        let set = worker_of("worker:\n  heartbeat: 1s\n  resume-after: 3s\n").unwrap();
        assert_eq!(
            (set.heartbeat, set.resume_after),
            (Duration::from_secs(1), Duration::from_secs(3))
        );
    }

    fn auth_of(yaml: &str) -> Result<AuthOptions, String> {
        auth(&Config::parse(yaml).unwrap()).map_err(|error| error.report())
    }

    #[test]
    fn a_hash_no_password_or_token_could_match_is_refused_by_name_not_value() {
        let argon2 = hash_password("a-long-password").unwrap();
        let sha256 = "a".repeat(64);
        let good = format!(
            "server:\n  auth:\n    users:\n      - username: alice\n        password-hash: '{argon2}'\n    tokens:\n      - name: ci\n        token-hash: '{sha256}'\n"
        );
        assert!(auth_of(&good).is_ok());

        let bad_user = good.replace(&argon2, "plain-text-pw");
        let error = auth_of(&bad_user).unwrap_err();
        assert!(error.contains("password-hash of user 'alice'"), "{error}");
        assert!(!error.contains("plain-text-pw"), "{error}");

        for bad in [
            "A".repeat(64),
            "a".repeat(63),
            "not-hex-token-hash".to_owned(),
        ] {
            let error = auth_of(&good.replace(&sha256, &bad)).unwrap_err();
            assert!(error.contains("token-hash of token 'ci'"), "{error}");
            assert!(!error.contains(&bad), "{error}");
        }
    }

    #[test]
    fn a_takeover_sooner_than_a_heartbeat_is_refused() {
        let error = worker_of("worker:\n  heartbeat: 5s\n  resume-after: 5s\n").unwrap_err();
        assert!(error.contains("worker.resume-after"), "{error}");
        let error = worker_of("worker:\n  heartbeat: 0s\n").unwrap_err();
        assert!(error.contains("worker.heartbeat"), "{error}");
        let error = worker_of("worker:\n  resume-after: soon\n").unwrap_err();
        assert!(
            error.contains("worker.resume-after: not a duration"),
            "{error}"
        );
    }
}
