//! `kestrel server [--bind ADDRESS] [--env-file FILE]`: the REST API (Kestra's) and the
//! executions of a team, over the embedded store, until Ctrl-C or SIGTERM.

use crate::config::{Access, Config};
use crate::error::CliError;
use crate::output::{note, warn};
use crate::settings::Settings;
use clap::Args;
use kestrel_server::{
    AppState, AuthOptions, ConfiguredToken, RetentionOptions, Server, ServerOptions,
    parse_duration, shutdown_signal,
};
use kestrel_store::{SecretAccess, UserRecord};
use std::path::PathBuf;
use std::time::Duration;

/// How long running executions may go on after a stop is asked, before they are killed.
const GRACE: Duration = Duration::from_secs(10);

#[derive(Debug, Args)]
pub(crate) struct ServerArgs {
    /// The address to listen on (default: server.bind, 127.0.0.1:8080; port 0: any free one).
    #[arg(long, value_name = "ADDRESS")]
    bind: Option<String>,
    /// A dotenv file of SECRET_* values, reloaded on change (overrides secret.env-file).
    #[arg(long, value_name = "FILE")]
    env_file: Option<PathBuf>,
}

pub(crate) fn run(args: &ServerArgs, settings: &Settings) -> Result<u8, CliError> {
    let options = options(args, settings)?;
    let sandbox = crate::sandbox::install(settings, args.env_file.as_deref(), true)?;
    let bind = args
        .bind
        .clone()
        .unwrap_or_else(|| settings.config.server.bind.0.clone());
    let stores = crate::sources::server_stores(settings)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::failed("cannot start the runtime").caused_by(e))?;
    let code = runtime.block_on(async {
        let state = AppState::with_secrets(options, stores.store, stores.secrets)
            .map_err(|e| CliError::usage(e.to_string()))?;
        let server = Server::start(state)
            .await
            .map_err(|e| CliError::failed(e.to_string()))?;
        let listener = tokio::net::TcpListener::bind(&bind)
            .await
            .map_err(|e| CliError::usage(format!("cannot listen on {bind}")).caused_by(e))?;
        let address = listener
            .local_addr()
            .map_err(|e| CliError::failed("cannot read the address listened on").caused_by(e))?;
        note(&format!("kestrel server listening on http://{address}"));
        if let Some(notice) = server.first_start_notice().await {
            warn(&notice);
        }
        server
            .serve(listener, shutdown_signal(), GRACE)
            .await
            .map_err(|e| CliError::failed("the server stopped on an error").caused_by(e))?;
        note("kestrel server stopped");
        Ok(0)
    });
    // The runtime goes first, with whatever task was still running.
    super::shut_down(runtime);
    sandbox.close();
    code
}

/// The server's options from the configuration file, the flags and the environment.
fn options(args: &ServerArgs, settings: &Settings) -> Result<ServerOptions, CliError> {
    let config = &settings.config;
    // Like every configuration error, this one names the key and never echoes the value.
    let duration = |key: &str, text: &str| {
        parse_duration(text).map_err(|_| {
            CliError::usage(format!(
                "{key}: not a duration: write a number and a unit (ms, s, m, h, d), e.g. 30d"
            ))
        })
    };
    let defaults = ServerOptions::default();
    Ok(ServerOptions {
        auth: auth(config),
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
        env_file: settings
            .env_file(args.env_file.as_deref())
            .map(PathBuf::from),
        public_url: config.server.public_url.as_ref().map(|url| url.0.clone()),
        ..defaults
    })
}

/// `server.auth`: the first configured user (or token, without users) writes secrets unless
/// told otherwise, the others have no secret access, as with `kestrel users add`.
fn auth(config: &Config) -> AuthOptions {
    let auth = &config.server.auth;
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
    AuthOptions {
        enabled: auth.enabled.0,
        users,
        tokens,
    }
}
