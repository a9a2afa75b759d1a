//! kestrel as a team service: Kestra's REST API (Kestra's paths and shapes, tenant
//! `main`), executions on a worker pool, authentication, and the secrets API the README
//! describes ("A team server"), all over one store that several nodes may share.
//!
//! [`AppState`] holds what requests share: the [`ServerOptions`], the store (any
//! [`ServerStore`]: `kestrel-store-sqlite`'s `SqliteStore`), the engine and the pool. [`app`]
//! builds the router from one route table (the same table generates `/api/openapi.json`);
//! [`Server`] runs it on a socket (plain, or HTTPS through a [`TlsListener`]) with what runs
//! besides requests: the worker (executions
//! taken from the store's queue, shared with other nodes; off with `--no-worker`), the flows'
//! Schedule triggers (each tick fires once across nodes), the Flow triggers (each end fires
//! each listening trigger once across nodes), the env-file watch, retention, and a
//! graceful stop. [`Worker`] runs the worker alone (`kestrel worker`).
//! Every protected route takes the [`Caller`] that `Basic` (users, argon2) or `Bearer` (API
//! tokens, SHA-256) authenticated (failures throttled per client and user, a valid credential
//! never); every error is an [`AppError`] answered as `{"message"}`, which never quotes a value
//! a request body held.
//!
//! Everything an answer can hold about an execution was masked by the engine before it
//! reached the server; secret values never leave the store through the API.
//!
//! ```no_run
//! use kestrel_server::{AppState, Server, ServerOptions};
//! # async fn serve(store: std::sync::Arc<dyn kestrel_server::ServerStore>) -> Result<(), Box<dyn std::error::Error>> {
//! let state = AppState::new(ServerOptions::default(), store)?;
//! let server = Server::start(state).await?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! server
//!     .serve(listener, kestrel_server::shutdown_signal(), std::time::Duration::from_secs(10))
//!     .await?;
//! # Ok(())
//! # }
//! ```

mod audit_forward;
mod auth;
mod engines;
mod error;
mod executor;
mod extract;
mod files;
mod flow_trigger;
mod flows;
mod log;
mod namespaces;
mod openapi;
mod options;
mod routes;
mod schedule;
mod server;
mod setup;
mod state;
mod tls;
mod ui;
mod uploads;
mod view;

pub use audit_forward::AuditForward;
pub use auth::{
    Caller, NewToken, TOKEN_PREFIX, hash_password, is_password_hash, token_hash, verify_password,
};
/// What [`Server::serve`] listens on: a `TcpListener` or a [`TlsListener`].
pub use axum::serve::Listener;
pub use error::AppError;
pub use openapi::api_reference;
pub use options::{
    AuthOptions, ConfiguredToken, FailureLimit, RetentionOptions, ServerOptions, WorkerOptions,
    parse_duration,
};
pub use routes::app;
pub use server::{Server, Worker, shutdown_signal};
pub use state::{AppState, ServerStore, StartError};
pub use tls::TlsListener;
