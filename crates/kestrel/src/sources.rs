//! The one place the command line composes where secrets come from, for every command that
//! reads or writes them (`run`, `render`, `server`, `secrets ...`), and the runtime every
//! store call of the process runs on ([`wait`]):
//!
//! - the store: the embedded one alone, or, when the configuration names another backend
//!   (`secret.type`, `namespaces.<ns>.secret`) or a read-only mode, a [`Routed`] store that
//!   sends each namespace to its backend, each external one behind its cache and joined to the
//!   embedded store, which keeps the audit trail of every backend;
//! - the environment: `SECRET_*` variables and the env file, loaded once;
//! - the engine over both, through [`Engine::with_sources`], which the server builds too.

use crate::config::{NamespaceSecret, SecretType};
use crate::error::CliError;
use crate::output::warn;
use crate::settings::Settings;
use crate::store::{LazyBackend, LazyStore, Store, StoreAccess, store_error};
use kestrel_engine::{Engine, Sources, load_environment};
use kestrel_secrets::{EnvLoad, SecretBackend};
use kestrel_store::{AuditedBackend, Route, Routed, SecretStore};
use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use tokio::runtime::Runtime;
use zeroize::Zeroizing;

/// The runtime of this process's store calls, started at the first and kept until the process
/// ends: a store's own tasks (PostgreSQL's connections and its LISTEN) run on its one worker
/// thread between calls, whichever runtime or thread makes the calls.
fn runtime() -> Result<&'static Runtime, CliError> {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    static STARTING: Mutex<()> = Mutex::new(());
    if let Some(runtime) = RUNTIME.get() {
        return Ok(runtime);
    }
    // One thread starts it: a second runtime would have to be dropped, which panics where the
    // caller may be (a runtime's task).
    let _starting = STARTING.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(runtime) = RUNTIME.get() {
        return Ok(runtime);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("kestrel-store")
        .enable_all()
        .build()
        .map_err(|error| CliError::failed("cannot start the runtime").caused_by(error))?;
    Ok(RUNTIME.get_or_init(|| runtime))
}

/// Runs `future` to its end on the store calls' runtime: the command line's way to call the
/// store and the backends, which are async. Not from inside a runtime: there, [`offload`].
pub(crate) fn wait<T>(future: impl Future<Output = T>) -> Result<T, CliError> {
    Ok(runtime()?.block_on(future))
}

/// Runs `future` on the store calls' runtime and waits for it from any thread or runtime (a
/// render thread, the engine's runtime).
pub(crate) async fn offload<T: Send + 'static>(
    future: impl Future<Output = T> + Send + 'static,
) -> Result<T, CliError> {
    match runtime()?.spawn(future).await {
        Ok(output) => Ok(output),
        // The task never panics by itself; a panic there is a bug to surface, not hide.
        Err(join) => std::panic::resume_unwind(join.into_panic()),
    }
}

/// Whether the configuration routes any namespace away from the embedded store, or makes any
/// backend read-only: then every command goes through a [`Routed`] store.
pub(crate) fn is_routed(settings: &Settings) -> bool {
    let secret = &settings.config.secret;
    let own = |ns: &NamespaceSecret| ns.kind.is_some() || ns.read_only.is_some();
    !matches!(secret.kind.0, SecretType::Embedded)
        || secret.read_only.0
        || settings
            .config
            .namespaces
            .values()
            .any(|ns| ns.secret.as_ref().is_some_and(own))
}

/// The store every secret goes through, over the opened store of the settings `home`.
pub(crate) fn secret_store(
    settings: &Settings,
    home: Store,
) -> Result<Arc<dyn SecretStore>, CliError> {
    let home: Arc<dyn SecretStore> = home;
    if !is_routed(settings) {
        return Ok(home);
    }
    let backends = crate::backends::Backends::new(settings, Arc::clone(&home));
    let secret = &settings.config.secret;
    let default = Route {
        store: backends.store(secret.kind.0, None)?,
        read_only: secret.read_only.0,
    };
    let mut namespaces = Vec::new();
    for (namespace, config) in &settings.config.namespaces {
        let Some(own) = &config.secret else { continue };
        if own.kind.is_none() && own.read_only.is_none() {
            continue;
        }
        let kind = own.kind.as_ref().map_or(secret.kind.0, |kind| kind.0);
        let route = Route {
            store: backends.store(kind, Some(own))?,
            read_only: own.read_only.as_ref().map_or(secret.read_only.0, |r| r.0),
        };
        namespaces.push((namespace.clone(), route));
    }
    Ok(Arc::new(Routed::new(home, default, namespaces)))
}

/// The store of `access` as `secrets` commands use it: opened (created if `create`), routed
/// as configured. `None` when it does not exist and is not to be created (a store never
/// written holds nothing) and no other backend is configured.
pub(crate) fn open_secrets(
    settings: &Settings,
    access: &StoreAccess,
    create: bool,
) -> Result<Option<Arc<dyn SecretStore>>, CliError> {
    let home = if create || is_routed(settings) {
        Some(access.open()?)
    } else {
        access.open_existing()?
    };
    home.map(|home| secret_store(settings, home)).transpose()
}

/// What a server (or a worker) runs on: the store of the settings, created the first time,
/// and the store its secrets go through, routed as configured.
pub(crate) struct ServerStores {
    pub(crate) store: Store,
    pub(crate) secrets: Arc<dyn SecretStore>,
}

/// The stores of a server or a worker, from `settings`.
pub(crate) fn server_stores(settings: &Settings) -> Result<ServerStores, CliError> {
    let store = StoreAccess::new(settings)?.open_for_server()?;
    let secrets = secret_store(settings, Arc::clone(&store))?;
    Ok(ServerStores { store, secrets })
}

/// The store as `run` and `render` read it: the embedded one opened at the first lookup only
/// (a flow that reads no stored secret creates no file), the routed store when configured.
fn namespaced(settings: &Settings) -> Result<Arc<dyn SecretBackend>, CliError> {
    let access = StoreAccess::new(settings)?;
    if !is_routed(settings) {
        return Ok(Arc::new(LazyBackend(Arc::new(LazyStore::new(access)))));
    }
    let store = secret_store(settings, access.open()?)?;
    Ok(Arc::new(AuditedBackend::new(store)))
}

/// The environment's secrets and `envs`: the process environment read at start and the env
/// file (`--env-file`, else `secret.env-file`), the load's warnings on stderr.
pub(crate) fn load_env(settings: &Settings, env_file: Option<&Path>) -> Result<EnvLoad, CliError> {
    let file = settings.env_file(env_file);
    let text = file
        .map(crate::commands::read_text)
        .transpose()?
        .map(Zeroizing::new);
    let config = settings.engine_config()?;
    let process = settings.env.for_engine(&config.env.redacted);
    let load = load_environment(&config, process, text.as_deref().map(String::as_str), None)
        .map_err(|error| {
            let file = file.map_or_else(String::new, |file| file.display().to_string());
            CliError::usage(format!("{file}:{}: {}", error.line, error.message))
        })?;
    for warning in &load.warnings {
        warn(warning);
    }
    Ok(load)
}

/// The engine of `run` and `render`: the store, then the environment ([`load_env`]).
pub(crate) fn load_engine(
    settings: &Settings,
    env_file: Option<&Path>,
) -> Result<Engine, CliError> {
    let load = load_env(settings, env_file)?;
    let sources = Sources {
        namespaced: Some(namespaced(settings)?),
        env: Arc::new(load.backend),
        envs: load.envs,
    };
    Ok(Engine::with_sources(settings.engine_config()?, sources).with_storage(settings.storage()))
}

/// A store failure of an `async` call, as the command line reports it.
pub(crate) fn call<T>(
    future: impl Future<Output = Result<T, kestrel_store::StoreError>>,
) -> Result<T, CliError> {
    wait(future)?.map_err(store_error)
}
