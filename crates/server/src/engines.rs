//! The engine the server runs executions with, and the secret backends it reads through: the
//! store first (each read audited under the reader that asked), then the environment
//! (`SECRET_*` variables and the env file). Who may read what is the engine's resolver's
//! business alone (`allowed-namespaces` in its configuration).
//!
//! The env file is watched: on change it is loaded again with [`EnvBackend::reload`] and the
//! engine rebuilt around it; executions started before keep the engine they started with. A
//! reload that fails keeps the whole previous set and logs why (names, never values).

use kestrel_engine::{Engine, EngineConfig, Sources, load_environment};
use kestrel_expr::Context;
use kestrel_secrets::{DotenvError, EnvBackend, MaskRegistry, Reader};
use kestrel_storage::Storage;
use kestrel_store::{AuditedBackend, SecretStore};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::SystemTime;
use zeroize::Zeroizing;

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
    storage: Option<Arc<dyn Storage>>,
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
        storage: Option<Arc<dyn Storage>>,
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
            storage,
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

    /// Renders `template` for `reader` (a trigger) from `namespace`, outside any execution,
    /// in clear (to check a webhook's key): the store, then the environment, under the policy.
    pub(crate) fn render_clear(
        &self,
        template: &str,
        namespace: &str,
        vars: Value,
        reader: Reader,
    ) -> Result<Zeroizing<String>, String> {
        let engine = self.engine();
        let registry = Arc::new(MaskRegistry::new(self.parts.config.mask_min_length));
        let scope = engine.scope(reader, namespace, &registry);
        engine
            .expressions()
            .render(template, &Context::new(vars, Some(Arc::new(scope))))
            .map(Zeroizing::new)
            .map_err(|error| registry.mask(&error.to_string()).into_owned())
    }
}

impl Parts {
    /// Loads the environment (over the previous backend on a reload) and builds an engine
    /// over the store and it.
    fn load(
        &self,
        text: Option<&str>,
        previous: Option<&EnvBackend>,
    ) -> Result<Loaded, DotenvError> {
        let process = self.process.iter().cloned();
        let load = load_environment(&self.config, process, text, previous)?;
        for warning in &load.warnings {
            crate::log::warn(warning);
        }
        let env = Arc::new(load.backend);
        let sources = Sources {
            namespaced: Some(Arc::new(AuditedBackend::new(Arc::clone(&self.store)))),
            env: Arc::clone(&env),
            envs: load.envs,
        };
        let mut engine = Engine::with_sources(self.config.clone(), sources);
        if let Some(storage) = &self.storage {
            engine = engine.with_storage(Arc::clone(storage));
        }
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
