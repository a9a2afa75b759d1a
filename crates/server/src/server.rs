//! The running server: what runs besides requests (the worker, Schedule triggers, the
//! env-file watch, retention), serving on a socket, and the graceful stop; and a worker alone
//! (`kestrel worker`), which runs executions from the queue and nothing else.

use crate::executor;
use crate::routes::app;
use crate::state::{AppState, StartError};
use chrono::Utc;
use kestrel_storage::ExecutionFiles;
use kestrel_store::PurgedExecution;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// A started server: its state and its background tasks.
pub struct Server {
    state: AppState,
    background: Vec<JoinHandle<()>>,
}

impl Server {
    /// Starts the Schedule triggers, the env-file watch, the retention purge, the audit
    /// trail's forwarding when `audit.forward` asks for it and, unless
    /// `worker.enabled` is off, the worker: queued executions (and those of a worker that
    /// stopped heartbeating, after `worker.resume-after`) run here.
    pub async fn start(state: AppState) -> Result<Self, StartError> {
        let mut background = vec![
            tokio::spawn(purge_forever(state.clone())),
            tokio::spawn(crate::schedule::run(state.clone())),
        ];
        background.extend(watch_env_file(&state));
        if let Some(target) = state.options().audit_forward.clone() {
            // Where to start is settled before `start` returns: no row written afterwards is
            // missed.
            let last = crate::audit_forward::start_after(&state, &target)
                .await
                .map_err(|error| StartError(format!("audit.forward: {error}")))?;
            let forwarding = crate::audit_forward::forward_forever(state.clone(), target, last);
            background.push(tokio::spawn(forwarding));
        }
        executor::start_worker(&state);
        Ok(Self { state, background })
    }

    /// The server's state.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// What an operator should hear at start, the server reached at `url`: how to create the
    /// first user or token when authentication is on and nobody can sign in yet, the first
    /// admin's one-time setup code among the ways.
    pub async fn first_start_notice(&self, url: &str) -> Option<String> {
        if !crate::setup::nobody_can_sign_in(&self.state).await {
            return None;
        }
        let setup = match self.state.0.first_admin.code() {
            Ok(code) => format!(" or open {url}/ui/setup and enter the one-time code {code}"),
            Err(cause) => {
                crate::log::error(&format!("the first admin's setup code: {cause}"));
                String::new()
            }
        };
        Some(format!(
            "no user and no API token exist yet, so every API call answers 401: create the \
             first admin with `kestrel users add NAME` (the password on stdin){setup}, or a \
             token with `kestrel tokens create NAME` (the first one gets --secrets write)"
        ))
    }

    /// Serves on `listener` (a `TcpListener`, or a [`crate::TlsListener`]) until `shutdown`
    /// completes; then stops taking requests, gives
    /// running executions `grace` to end (then kills them), and returns once all is stored.
    pub async fn serve<L>(
        self,
        listener: L,
        shutdown: impl Future<Output = ()> + Send + 'static,
        grace: Duration,
    ) -> std::io::Result<()>
    where
        L: axum::serve::Listener<Addr = SocketAddr>,
    {
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let state = self.state.clone();
        let stopper = tokio::spawn(async move {
            if stop_rx.await.is_ok() {
                executor::stop(&state, grace).await;
            }
        });
        let signal = async move {
            shutdown.await;
            crate::log::info("stopping");
            let _ = stop_tx.send(());
        };
        let service = app(self.state.clone()).into_make_service_with_connect_info::<SocketAddr>();
        // Through `tap_io`, whose connections axum knows the address of for any listener.
        let listener = axum::serve::ListenerExt::tap_io(listener, |_| {});
        let served = axum::serve(listener, service)
            .with_graceful_shutdown(signal)
            .await;
        let _ = stopper.await;
        for task in &self.background {
            task.abort();
        }
        served
    }
}

/// A worker alone: runs executions from the queue every node shares, and nothing else (no
/// API, no Schedule triggers, no retention).
pub struct Worker {
    state: AppState,
    background: Vec<JoinHandle<()>>,
}

impl Worker {
    /// Starts the worker and the env-file watch; refused when `worker.enabled` is off.
    pub fn start(state: AppState) -> Result<Self, StartError> {
        if !state.options().worker.enabled {
            return Err(StartError(
                "a worker with its worker turned off would run nothing".into(),
            ));
        }
        let background = watch_env_file(&state).into_iter().collect();
        executor::start_worker(&state);
        Ok(Self { state, background })
    }

    /// The worker's state.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Runs until `shutdown` completes; then takes no more executions, gives running ones
    /// `grace` to end (then kills them), and returns once all is stored. Queued executions
    /// stay in the queue.
    pub async fn run(self, shutdown: impl Future<Output = ()>, grace: Duration) {
        shutdown.await;
        crate::log::info("stopping");
        executor::stop(&self.state, grace).await;
        for task in &self.background {
            task.abort();
        }
    }
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        // Without a handler there is nothing to wait for but the other signal.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}

impl AppState {
    /// Purges what aged past `retention`: executions ended before `now - executions` (with
    /// their task runs, logs and files) and audit entries before `now - audit`. Returns how
    /// many of each.
    pub async fn purge_expired(&self) -> Result<(u64, u64), kestrel_store::StoreError> {
        let retention = self.options().retention;
        let before = |age: Duration| {
            Utc::now() - chrono::Duration::from_std(age).unwrap_or(chrono::Duration::MAX)
        };
        let executions = self
            .store()
            .purge_executions(before(retention.executions))
            .await?;
        self.purge_files(&executions).await;
        let audit = self.store().purge_audit(before(retention.audit)).await?;
        Ok((u64::try_from(executions.len()).unwrap_or(u64::MAX), audit))
    }

    /// Removes the files of purged executions; a failure is logged and the next purge does
    /// not retry it (the records that named the files are gone).
    async fn purge_files(&self, executions: &[PurgedExecution]) {
        let Some(storage) = self.options().storage.clone() else {
            return;
        };
        let executions = executions.to_vec();
        let removing = tokio::task::spawn_blocking(move || {
            let mut failures = Vec::new();
            for gone in executions {
                let removed = ExecutionFiles::new(
                    Arc::clone(&storage),
                    &gone.namespace,
                    &gone.flow_id,
                    &gone.id,
                )
                .and_then(|files| files.storage().delete_all(files.execution_prefix()));
                if let Err(error) = removed {
                    failures.push(format!("execution {}: {error}", gone.id));
                }
            }
            failures
        });
        for failure in removing.await.unwrap_or_default() {
            crate::log::error(&format!("retention: cannot remove the files of {failure}"));
        }
    }
}

impl AppState {
    /// Loads the env file again if it changed since it was last loaded (the watch does this
    /// every `env_file_poll`); a file that cannot be read or parsed keeps the previous set.
    /// Whether a new set is in use.
    pub fn reload_env_file(&self) -> bool {
        self.0.engines.reload_if_changed()
    }
}

async fn purge_forever(state: AppState) {
    let mut every = tokio::time::interval(state.options().retention.every);
    loop {
        every.tick().await;
        match state.purge_expired().await {
            Ok((0, 0)) => {}
            Ok((executions, audit)) => crate::log::info(&format!(
                "retention: {executions} execution(s) and {audit} audit entr(y/ies) purged"
            )),
            Err(error) => crate::log::error(&format!("retention: {error}")),
        }
    }
}

/// The env-file watch, when there is an env file.
fn watch_env_file(state: &AppState) -> Option<JoinHandle<()>> {
    state.options().env_file.as_ref()?;
    Some(tokio::spawn(watch_env_file_forever(state.clone())))
}

async fn watch_env_file_forever(state: AppState) {
    let mut every = tokio::time::interval(state.options().env_file_poll);
    loop {
        every.tick().await;
        let watched = state.clone();
        // Reading the file and building the engine block: off the request threads.
        let _ = tokio::task::spawn_blocking(move || watched.reload_env_file()).await;
    }
}
