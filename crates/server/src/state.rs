//! What every handler shares: the options, the store, the engine, the pool, the flow cache
//! and the authenticator.

use crate::auth::{Authenticator, FailureCounter};
use crate::engines::{Engines, EnvFileError};
use crate::error::AppError;
use crate::executor::Executor;
use crate::flow_trigger::FlowTriggers;
use crate::flows::{FlowCache, LoadedFlow};
use crate::options::ServerOptions;
use crate::schedule::Schedules;
use kestrel_engine::{Clock, SystemClock};
use kestrel_store::{AuthStore, ExecutionQueue, ExecutionStore, FlowStore, Retention, SecretStore};
use std::sync::Arc;

/// Everything the server keeps in its database: secrets, flows, executions, users and tokens.
/// One store serves them all (`kestrel-store-sqlite`'s `SqliteStore` does).
pub trait ServerStore:
    SecretStore + FlowStore + ExecutionStore + ExecutionQueue + AuthStore + Retention
{
}

impl<T> ServerStore for T where
    T: SecretStore + FlowStore + ExecutionStore + ExecutionQueue + AuthStore + Retention
{
}

/// The server's state, cheap to clone: what [`crate::app`] routes requests with.
#[derive(Clone)]
pub struct AppState(pub(crate) Arc<Shared>);

/// The parts of [`AppState`].
pub(crate) struct Shared {
    pub(crate) options: ServerOptions,
    pub(crate) store: Arc<dyn ServerStore>,
    /// Where secrets live: `store`, or the store routing namespaces to their backends.
    pub(crate) secrets: Arc<dyn SecretStore>,
    pub(crate) auth: Authenticator,
    pub(crate) engines: Engines,
    pub(crate) executor: Executor,
    pub(crate) flows: FlowCache,
    /// Wrong webhook keys, per client.
    pub(crate) webhook_failures: FailureCounter,
    /// The Schedule triggers' clock and progress.
    pub(crate) schedule: Schedules,
    /// The flows with Flow triggers, and their multiple conditions' windows.
    pub(crate) flow_triggers: FlowTriggers,
    /// The one-time code of the first admin's setup page.
    pub(crate) first_admin: crate::setup::FirstAdmin,
}

/// Why the server cannot start.
#[derive(Debug)]
pub struct StartError(pub String);

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartError {}

impl From<EnvFileError> for StartError {
    fn from(error: EnvFileError) -> Self {
        Self(error.to_string())
    }
}

impl AppState {
    /// The state of a server over `store`: loads the environment and the env file and builds
    /// the engine. Nothing runs until [`crate::Server::start`] (or, in tests, until a request
    /// submits an execution).
    pub fn new(options: ServerOptions, store: Arc<dyn ServerStore>) -> Result<Self, StartError> {
        Self::with_clock(options, store, Arc::new(SystemClock))
    }

    /// [`AppState::new`] with secrets kept in `secrets` (the store routing each namespace to
    /// its backend, as the command line composes it) rather than in `store`.
    pub fn with_secrets(
        options: ServerOptions,
        store: Arc<dyn ServerStore>,
        secrets: Arc<dyn SecretStore>,
    ) -> Result<Self, StartError> {
        Self::build(options, store, secrets, Arc::new(SystemClock))
    }

    /// [`AppState::new`] with the clock Schedule triggers fire on (a
    /// [`kestrel_engine::ManualClock`] in tests).
    pub fn with_clock(
        options: ServerOptions,
        store: Arc<dyn ServerStore>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StartError> {
        let secrets: Arc<dyn SecretStore> = store.clone();
        Self::build(options, store, secrets, clock)
    }

    fn build(
        options: ServerOptions,
        store: Arc<dyn ServerStore>,
        secrets: Arc<dyn SecretStore>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StartError> {
        let engines = Engines::new(
            options.engine.clone(),
            options.process_env.clone(),
            options.env_file.clone(),
            Arc::clone(&secrets),
            options.storage.clone(),
        )?;
        let auth = Authenticator::new(
            options.auth.clone(),
            Arc::clone(&store),
            options.failure_limit,
        )
        .map_err(StartError)?;
        Ok(Self(Arc::new(Shared {
            executor: Executor::new(options.worker_threads),
            webhook_failures: FailureCounter::new(options.failure_limit),
            flows: FlowCache::default(),
            schedule: Schedules::new(clock),
            flow_triggers: FlowTriggers::default(),
            first_admin: crate::setup::FirstAdmin::default(),
            auth,
            engines,
            store,
            secrets,
            options,
        })))
    }

    /// The options the server runs with.
    pub fn options(&self) -> &ServerOptions {
        &self.0.options
    }

    /// This process's name in the execution queue (`<host>-<pid>-<8 hex>`).
    pub fn worker_id(&self) -> &str {
        self.0.executor.worker_id()
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn ServerStore> {
        &self.0.store
    }

    /// Where secrets live (see [`AppState::with_secrets`]).
    pub fn secrets(&self) -> &Arc<dyn SecretStore> {
        &self.0.secrets
    }

    /// The latest revision of flow `namespace.id` in the server's tenant, parsed (cached).
    pub(crate) async fn latest_flow(
        &self,
        namespace: &str,
        id: &str,
    ) -> Result<Option<Arc<LoadedFlow>>, AppError> {
        self.0
            .flows
            .latest(self.0.store.as_ref(), &self.0.options.tenant, namespace, id)
            .await
    }

    /// The revision of its flow `execution` runs (cached); none when it is gone.
    pub(crate) async fn flow_of(
        &self,
        execution: &kestrel_store::ExecutionRecord,
    ) -> Result<Option<Arc<LoadedFlow>>, AppError> {
        self.0
            .flows
            .revision(
                self.0.store.as_ref(),
                &execution.tenant,
                &execution.namespace,
                &execution.flow_id,
                execution.flow_revision,
            )
            .await
    }

    /// Why the secrets of `namespace` may not be changed here, if they may not: its backend is
    /// configured read-only. The message names the backend and the mode.
    pub(crate) fn secrets_read_only(&self, namespace: &str) -> Option<String> {
        self.0
            .secrets
            .writes_refused(namespace)
            .map(|refusal| refusal.to_string())
    }
}
