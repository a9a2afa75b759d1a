//! The engine the server runs executions with, and the secret backends it reads through: the
//! store first (each read audited for the execution, with `allowed-namespaces` enforced), then
//! the environment (`SECRET_*` variables and the env file).
//!
//! The env file is watched: on change it is loaded again with [`EnvBackend::reload`] and the
//! engine rebuilt around it; executions started before keep the engine they started with. A
//! reload that fails keeps the whole previous set and logs why (names, never values).

use crate::namespaces::ReadPolicy;
use async_trait::async_trait;
use kestrel_engine::{Engine, EngineConfig, ReaderBackends};
use kestrel_expr::{Context, Expressions};
use kestrel_secrets::{
    BackendError, DotenvError, EnvBackend, MaskRegistry, Resolver, SecretBackend, SecretScope,
    SecretValue,
};
use kestrel_store::{Actor, AuditedBackend, SecretStore};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::SystemTime;
use zeroize::Zeroizing;

tokio::task_local! {
    /// The execution being run on this task, as the server knows it (the engine makes its own
    /// id): whose reads the audit trail records and from which namespace they come.
    pub(crate) static RUNNING: RunningExecution;
}

/// What the secret backends of a running execution need to know about it.
#[derive(Debug, Clone)]
pub(crate) struct RunningExecution {
    pub(crate) id: String,
    pub(crate) namespace: String,
}

/// The file's identity as last loaded: a change of either means "load again".
type Stamp = Option<(SystemTime, u64)>;

/// The engine in use and what rebuilding it takes.
pub(crate) struct Engines {
    parts: Parts,
    file: Option<PathBuf>,
    current: RwLock<Loaded>,
    stamp: Mutex<Stamp>,
}

/// What every engine is built from, besides the env file's text.
struct Parts {
    config: EngineConfig,
    process: Vec<(String, String)>,
    store: Arc<dyn SecretStore>,
    policy: Arc<ReadPolicy>,
}

#[derive(Clone)]
struct Loaded {
    engine: Arc<Engine>,
    env: Arc<EnvBackend>,
}

/// Why the server cannot start with its env file.
#[derive(Debug)]
pub struct EnvFileError(pub String);

impl std::fmt::Display for EnvFileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for EnvFileError {}

impl Engines {
    /// Loads the environment and the env file and builds the engine; the load's warnings go to
    /// the log. Fails on an env file that cannot be read or parsed.
    pub(crate) fn new(
        config: EngineConfig,
        process: Vec<(String, String)>,
        file: Option<PathBuf>,
        store: Arc<dyn SecretStore>,
        policy: ReadPolicy,
    ) -> Result<Self, EnvFileError> {
        let stamp = file.as_deref().and_then(stamp_of);
        let described = |error: &DotenvError| EnvFileError(describe(file.as_deref(), error));
        let text = file
            .as_deref()
            .map(|path| {
                read_file(path)
                    .map_err(|reason| EnvFileError(format!("{}: {reason}", path.display())))
            })
            .transpose()?;
        let parts = Parts {
            config,
            process,
            store,
            policy: Arc::new(policy),
        };
        let loaded = parts
            .load(text.as_deref().map(String::as_str), None)
            .map_err(|error| described(&error))?;
        Ok(Self {
            parts,
            file,
            current: RwLock::new(loaded),
            stamp: Mutex::new(stamp),
        })
    }

    /// The engine new executions run with.
    pub(crate) fn engine(&self) -> Arc<Engine> {
        Arc::clone(&self.read().engine)
    }

    /// The environment's secrets new executions read (`SECRET_*` and the env file's): the
    /// UI lists their names.
    pub(crate) fn env(&self) -> Arc<EnvBackend> {
        self.read().env
    }

    fn read(&self) -> Loaded {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Loads the env file again if it changed since last time; a failure keeps everything as
    /// it was and is logged. Whether a new set is in use.
    pub(crate) fn reload_if_changed(&self) -> bool {
        let Some(path) = self.file.as_deref() else {
            return false;
        };
        let stamp = stamp_of(path);
        {
            let mut last = self.stamp.lock().unwrap_or_else(PoisonError::into_inner);
            if *last == stamp {
                return false;
            }
            *last = stamp;
        }
        let text = match read_file(path) {
            Ok(text) => text,
            Err(reason) => {
                crate::log::warn(&format!(
                    "env file {}: {reason}; the previous secrets are kept",
                    path.display()
                ));
                return false;
            }
        };
        let previous = self.read();
        match self.parts.load(Some(&text), Some(&previous.env)) {
            Ok(loaded) => {
                *self.current.write().unwrap_or_else(PoisonError::into_inner) = loaded;
                crate::log::info(&format!("env file {} reloaded", path.display()));
                true
            }
            Err(error) => {
                crate::log::warn(&format!(
                    "env file {}; the previous secrets are kept",
                    describe(self.file.as_deref(), &error)
                ));
                false
            }
        }
    }

    /// Renders `template` for a flow of `namespace` outside any execution, in clear (to check
    /// a webhook's key): secrets read as `actor`, the environment after the store.
    pub(crate) fn render_clear(
        &self,
        template: &str,
        namespace: &str,
        vars: Value,
        actor: Actor,
    ) -> Result<Zeroizing<String>, String> {
        let loaded = self.read();
        let backends: Vec<Arc<dyn SecretBackend>> = vec![
            Arc::new(AuditedBackend::new(Arc::clone(&self.parts.store), actor)),
            loaded.env,
        ];
        let config = &self.parts.config;
        let registry = Arc::new(MaskRegistry::new(config.mask_min_length));
        let scope = SecretScope::new(
            Arc::new(Resolver::new(backends)),
            &config.tenant,
            namespace,
            Arc::clone(&registry),
        );
        loaded
            .engine
            .expressions()
            .render(template, &Context::new(vars, Some(Arc::new(scope))))
            .map(Zeroizing::new)
            .map_err(|error| registry.mask(&error.to_string()).into_owned())
    }
}

impl Parts {
    /// Loads the environment (with the previous backend on a reload) and builds an engine.
    fn load(
        &self,
        text: Option<&str>,
        previous: Option<&EnvBackend>,
    ) -> Result<Loaded, DotenvError> {
        let expressions = Expressions::new(self.config.globals.clone());
        let render = |template: &str| expressions.render_pure(template).map_err(|e| e.to_string());
        let process = self.process.iter().cloned();
        let load = match previous {
            Some(previous) => previous.reload(process, text, &self.config.env, &render)?,
            None => EnvBackend::load(process, text, &self.config.env, &render)?,
        };
        for warning in &load.warnings {
            crate::log::warn(warning);
        }
        let env = Arc::new(load.backend);
        let readers = Arc::new(ServerReaders {
            store: Arc::clone(&self.store),
            env: Arc::clone(&env),
            policy: Arc::clone(&self.policy),
        });
        let (engine, _same_warnings) = Engine::from_env_with(
            self.config.clone(),
            self.process.iter().cloned(),
            text,
            readers,
        )?;
        Ok(Loaded {
            engine: Arc::new(engine),
            env,
        })
    }
}

/// A syntax error of the env file, with where it is.
fn describe(file: Option<&Path>, error: &DotenvError) -> String {
    let file = file.map_or_else(String::new, |f| f.display().to_string());
    format!("{file}:{}: {}", error.line, error.message)
}

fn stamp_of(path: &Path) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

fn read_file(path: &Path) -> Result<Zeroizing<String>, String> {
    std::fs::read_to_string(path)
        .map(Zeroizing::new)
        .map_err(|e| format!("cannot be read: {e}"))
}

/// The backends of the server's engine: the store, read as the execution (or as the server),
/// then the environment.
struct ServerReaders {
    store: Arc<dyn SecretStore>,
    env: Arc<EnvBackend>,
    policy: Arc<ReadPolicy>,
}

impl ReaderBackends for ServerReaders {
    fn for_operator(&self) -> Vec<Arc<dyn SecretBackend>> {
        let store = AuditedBackend::new(Arc::clone(&self.store), Actor::System("server".into()));
        vec![Arc::new(store), self.env.clone()]
    }

    fn for_execution(&self, execution_id: &str) -> Vec<Arc<dyn SecretBackend>> {
        let running = RUNNING.try_with(Clone::clone).ok();
        let actor_id = running
            .as_ref()
            .map_or_else(|| execution_id.to_owned(), |r| r.id.clone());
        let store = AuditedBackend::new(Arc::clone(&self.store), Actor::Execution(actor_id));
        let guarded = Guarded {
            inner: store,
            reader: running.map(|r| r.namespace),
            policy: Arc::clone(&self.policy),
        };
        vec![Arc::new(guarded), self.env.clone()]
    }
}

/// The store as an execution reads it: a namespace whose `allowed-namespaces` leaves the
/// execution's flow out answers an error, which fails the render.
struct Guarded {
    inner: AuditedBackend,
    reader: Option<String>,
    policy: Arc<ReadPolicy>,
}

#[async_trait]
impl SecretBackend for Guarded {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn is_namespaced(&self) -> bool {
        true
    }

    async fn get(
        &self,
        tenant: &str,
        namespace: &str,
        key: &str,
    ) -> Result<Option<SecretValue>, BackendError> {
        if let Some(reader) = &self.reader
            && !self.policy.may_read(reader, namespace)
        {
            return Err(BackendError(format!(
                "namespace '{namespace}' does not allow flows of namespace '{reader}' to read its \
                 secrets (namespaces.{namespace}.allowed-namespaces)"
            )));
        }
        self.inner.get(tenant, namespace, key).await
    }

    async fn list(&self, tenant: &str, namespace: &str) -> Result<Vec<String>, BackendError> {
        self.inner.list(tenant, namespace).await
    }
}
