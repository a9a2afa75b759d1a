//! The shared store for several nodes: one PostgreSQL database holding what the embedded
//! SQLite file holds for one machine (secrets encrypted by kestrel, their versions, metadata
//! and audit trail; flows, executions, task runs, logs, users and tokens) and the execution
//! queue every worker takes from.
//!
//! [`PgStore`] implements every store trait of `kestrel-store`, and runs the same conformance
//! stories as the embedded store. Values are sealed with AES-256-GCM under data keys from a
//! keyring wrapped by the master key (`kestrel-crypto`) before they reach the database, so
//! neither PostgreSQL nor its backups ever hold a plaintext or the master key. Every node keeps
//! a read cache that a change on any node empties at once: the change NOTIFYs
//! `kestrel_secrets`, which each node LISTENs to (and a generation counter covers the moments
//! a node was not listening). Migrations are the timestamped `.sql` files under `migrations/`,
//! embedded and run at connect under an advisory lock.
//!
//! Selected by `database: postgres://user:password@host:port/db` (configuration,
//! `--database` or `KESTREL_DATABASE`); [`redact_url`] hides the password wherever the URL is
//! printed.

mod audit;
mod auth;
mod cache;
mod db;
mod executions;
mod flows;
mod group;
mod keys;
mod listen;
mod queue;
mod rotate;
mod secret_store;
mod secrets;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod time;
mod tls;
mod token_cache;

use kestrel_crypto::MasterKey;
use kestrel_store::{QueueSignals, StoreError};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::AbortHandle;

/// The TLS connector of every connection kestrel opens to PostgreSQL (the store's, and the
/// Query task's of `kestrel-task-postgres`): the system's and Mozilla's roots, certificates
/// always verified.
pub use tls::connector as tls_connector;

/// How the store runs; [`PgOptions::default`] suits every ordinary use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PgOptions {
    /// Connections in this node's pool (default 10).
    pub pool_size: usize,
    /// The longest a statement may run before PostgreSQL cancels it (default 30 s).
    pub statement_timeout: Duration,
    /// Versions kept per secret (default 10); older ones are removed on `set`.
    pub versions_kept: u32,
    /// Entries kept in the read cache (default 10,000; zero disables the cache).
    pub cache_capacity: usize,
    /// How often a read compares the stored change generation with the one its cache last
    /// saw, and how long an API token found is trusted without reading it again (default
    /// 1 s): the backstop for notifications missed while the listener was reconnecting.
    /// Notifications, not this, empty the caches in ordinary operation.
    pub freshness_interval: Duration,
    /// Versions re-encrypted per transaction by `rotate-key` (default 500).
    pub rotate_batch: usize,
    /// The largest value `set` takes, in bytes (`secret.max-size`, default 64 KiB).
    pub max_value_size: usize,
}

impl Default for PgOptions {
    fn default() -> Self {
        Self {
            pool_size: 10,
            statement_timeout: Duration::from_secs(30),
            versions_kept: kestrel_store::DEFAULT_VERSIONS_KEPT,
            cache_capacity: 10_000,
            freshness_interval: Duration::from_secs(1),
            rotate_batch: 500,
            max_value_size: kestrel_store::DEFAULT_MAX_VALUE_SIZE,
        }
    }
}

/// The PostgreSQL store. Cheap to clone (clones share one pool and one cache).
#[derive(Clone)]
pub struct PgStore {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) pool: deadpool_postgres::Pool,
    pub(crate) keys: keys::Keys,
    /// This node's read cache of latest versions, emptied by `secret_changes`.
    pub(crate) cache: cache::Cache,
    pub(crate) options: PgOptions,
    pub(crate) signals: QueueSignals,
    /// New executions, written in batches.
    pub(crate) creates: group::Batcher<executions::NewExecution>,
    /// Ends written by the workers holding the executions, in batches.
    pub(crate) ends: group::Batcher<executions::ClaimedEnd>,
    /// API tokens recently found, forgotten on every auth change NOTIFYed by any node.
    pub(crate) tokens: token_cache::TokenCache,
    /// Bumped when another node (or this one) NOTIFYs a secret change.
    pub(crate) secret_changes: watch::Sender<u64>,
    /// The URL, password hidden, for messages.
    shown_url: String,
    listener: Mutex<Option<AbortHandle>>,
}

impl Inner {
    fn on_notification(&self, channel: &str, payload: &str) {
        match channel {
            listen::SECRETS => self.secret_changes.send_modify(|n| *n = n.wrapping_add(1)),
            listen::QUEUED => self.signals.queued(),
            listen::AUTH => self.tokens.changed(),
            listen::ENDED => payload.split(',').for_each(|id| self.signals.ended(id)),
            _ => {}
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(listener) = self
            .listener
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            listener.abort();
        }
    }
}

impl fmt::Debug for PgStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgStore")
            .field("url", &self.inner.shown_url)
            .finish_non_exhaustive()
    }
}

/// A warning for the process's log (stderr), never holding a value.
pub(crate) fn log_warning(message: &str) {
    eprintln!("kestrel: warning: {message}");
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/db`, libpq's
    /// keywords such as `sslmode` as query parameters), applies the migrations, and opens or
    /// creates the keyring. A master key that does not open the keyring is
    /// [`StoreError::WrongMasterKey`]. Must be called inside a tokio runtime, which then runs
    /// the pool and the notification listener.
    pub async fn connect(
        url: &str,
        master_key: MasterKey,
        options: PgOptions,
    ) -> Result<Self, StoreError> {
        let shown_url = redact_url(url);
        let config: tokio_postgres::Config = url.parse().map_err(|e: tokio_postgres::Error| {
            StoreError::backend("read the database URL", format!("{shown_url}: {e}"))
        })?;
        let pool = db::pool(config.clone(), &options)?;
        db::migrate(&pool).await?;
        let mut client = pool.get().await.map_err(db::err("connect to PostgreSQL"))?;
        let keys = keys::Keys::init(&mut client, master_key).await?;
        drop(client);
        let cache = cache::Cache::new(options.cache_capacity, options.freshness_interval);
        let tokens = token_cache::TokenCache::new(options.freshness_interval);
        let inner = Arc::new_cyclic(|store| Inner {
            pool,
            keys,
            cache,
            options,
            signals: QueueSignals::default(),
            creates: group::Batcher::spawn(store.clone()),
            ends: group::Batcher::spawn(store.clone()),
            tokens,
            secret_changes: watch::Sender::new(0),
            shown_url,
            listener: Mutex::new(None),
        });
        let listener = listen::spawn(config, Arc::downgrade(&inner));
        *inner
            .listener
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(listener);
        Ok(Self { inner })
    }

    /// The database URL with its password hidden.
    pub fn shown_url(&self) -> &str {
        &self.inner.shown_url
    }

    /// The options the store was opened with.
    pub fn options(&self) -> &PgOptions {
        &self.inner.options
    }
}

/// `url` with its password replaced by `***`, for every message and listing that shows it.
///
/// ```
/// use kestrel_store_postgres::redact_url;
/// assert_eq!(
///     redact_url("postgres://kestrel:s3cret@db:5432/kestrel?sslmode=require"),
///     "postgres://kestrel:***@db:5432/kestrel?sslmode=require"
/// );
/// assert_eq!(redact_url("postgres://db/kestrel"), "postgres://db/kestrel");
/// assert_eq!(
///     redact_url("postgres://db/kestrel?user=k&password=s3cret"),
///     "postgres://db/kestrel?user=k&password=***"
/// );
/// ```
pub fn redact_url(url: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let base = match base.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest
                .split_once('/')
                .map_or((rest, None), |(a, p)| (a, Some(p)));
            let authority = match authority.rsplit_once('@') {
                Some((user_info, host)) => match user_info.split_once(':') {
                    Some((user, _password)) => format!("{user}:***@{host}"),
                    None => authority.to_owned(),
                },
                None => authority.to_owned(),
            };
            match path {
                Some(path) => format!("{scheme}://{authority}/{path}"),
                None => format!("{scheme}://{authority}"),
            }
        }
        None => base.to_owned(),
    };
    match query {
        Some(query) => {
            let pairs: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{base}?{}", pairs.join("&"))
        }
        None => base,
    }
}
