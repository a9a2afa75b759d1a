//! The embedded store: one SQLite file (`kestrel.db` in the data directory) holding secrets
//! encrypted at rest, their versions, metadata and audit trail, and the server's tables.
//!
//! [`SqliteStore`] implements [`kestrel_store::SecretStore`]; [`SqliteStore::backend`] gives
//! the [`kestrel_secrets::SecretBackend`] a resolver walks, auditing every read for its actor.
//! Values are sealed with AES-256-GCM under data keys from a keyring wrapped by the master key
//! (`kestrel-crypto`), so neither the file nor its WAL ever holds a plaintext. Reads go through
//! an in-memory cache that another process's change empties within
//! [`StoreOptions::freshness_interval`] (100 ms by default): the file keeps a change generation
//! that every change bumps. The file runs in WAL mode with `synchronous=NORMAL` by default
//! ([`Synchronous::Full`] for power-loss durability); migrations are the timestamped `.sql`
//! files under `migrations/`, embedded and run at open; the first one also creates the
//! server's tables (flows, executions, task runs, logs, users, tokens), documented there, and
//! [`SqliteStore`] implements the server's traits over them too
//! ([`kestrel_store::FlowStore`], [`kestrel_store::ExecutionStore`],
//! [`kestrel_store::Retention`], [`kestrel_store::AuthStore`]).
//!
//! ```
//! use kestrel_crypto::MasterKey;
//! use kestrel_secrets::SecretValue;
//! use kestrel_store::{Actor, SecretId, SecretStore};
//! use kestrel_store_sqlite::{SqliteStore, StoreOptions};
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let store = SqliteStore::open(dir.path(), MasterKey::generate()?, StoreOptions::default())?;
//! let me = Actor::User("ada".into());
//! let id = SecretId::main("company.team", "DB_PASSWORD")?;
//! store.set(&me, &id, &SecretValue::new("hunter2".into()), None).await?;
//! let read = store.read(&me, &id, None).await?.expect("just set");
//! assert_eq!((read.version, read.value.expose_secret()), (1, "hunter2"));
//! # Ok(())
//! # }
//! ```

mod audit;
mod auth;
mod cache;
mod db;
mod executions;
mod flows;
mod keys;
mod migrate;
mod queue;
mod rotate;
mod secrets;
mod store;
mod sync;
mod time;

use async_trait::async_trait;
use kestrel_crypto::MasterKey;
use kestrel_secrets::SecretValue;
use kestrel_store::{
    Actor, AuditAction, AuditEntry, AuditFilter, AuditedBackend, Revealed, RotateReport, SecretId,
    SecretInfo, SecretMeta, SecretStore, StoreError, VersionInfo, validate_namespace,
    validate_tenant,
};
use secrets::Undeleted;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use time::now_ms;

/// The database file's name inside the data directory.
pub const FILE_NAME: &str = "kestrel.db";

/// SQLite's `synchronous` setting for commits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Synchronous {
    /// A commit survives a crash of any process; the last commits may be lost on power loss.
    #[default]
    Normal,
    /// A commit is on disk before it returns (an fsync per commit).
    Full,
}

impl Synchronous {
    fn pragma(self) -> &'static str {
        match self {
            Self::Normal => "NORMAL",
            Self::Full => "FULL",
        }
    }
}

/// How the store runs; [`StoreOptions::default`] suits every ordinary use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreOptions {
    /// Commit durability (default NORMAL).
    pub synchronous: Synchronous,
    /// Versions kept per secret (default 10); older ones are removed on `set`.
    pub versions_kept: u32,
    /// How long a write waits for another process's write (default 5 s).
    pub busy_timeout: Duration,
    /// How often a `get` checks for other processes' changes (default 100 ms; zero: every get).
    pub freshness_interval: Duration,
    /// Entries kept in the read cache (default 10,000; zero disables the cache).
    pub cache_capacity: usize,
    /// Versions re-encrypted per transaction by `rotate-key` (default 500).
    pub rotate_batch: usize,
    /// `None` (default): SQLite checkpoints the WAL itself, in the commit that finds it past
    /// 1,000 pages (writes and an fsync on that caller's path). `Some(every)`: commits never
    /// checkpoint; a background thread does, every `every`, in PASSIVE mode (it blocks neither
    /// readers nor writers): for a server under a steady stream of writes.
    pub background_checkpoint: Option<Duration>,
    /// The largest value `set` takes, in bytes (`secret.max-size`, default 64 KiB): every
    /// writer (the CLI, the API, the UI) goes through `set`, so this one check bounds them all.
    pub max_value_size: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            synchronous: Synchronous::Normal,
            versions_kept: kestrel_store::DEFAULT_VERSIONS_KEPT,
            busy_timeout: Duration::from_secs(5),
            freshness_interval: Duration::from_millis(100),
            cache_capacity: 10_000,
            rotate_batch: 500,
            background_checkpoint: None,
            max_value_size: kestrel_store::DEFAULT_MAX_VALUE_SIZE,
        }
    }
}

/// The embedded store. Cheap to clone (clones share one set of connections and one cache).
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<store::Inner>,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.db.path())
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (or creates) `kestrel.db` in `data_dir`, creating the directory (mode 0700) if
    /// needed. A master key that does not open the file's keyring is
    /// [`StoreError::WrongMasterKey`].
    pub fn open(
        data_dir: &Path,
        master_key: MasterKey,
        options: StoreOptions,
    ) -> Result<Self, StoreError> {
        use std::os::unix::fs::DirBuilderExt as _;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(data_dir)
            .map_err(|e| {
                StoreError::backend(
                    format!("create the data directory {}", data_dir.display()),
                    e,
                )
            })?;
        Self::open_file(&data_dir.join(FILE_NAME), master_key, options)
    }

    /// Opens (or creates, mode 0600) the database file at `path` (`database: sqlite:///path`).
    pub fn open_file(
        path: &Path,
        master_key: MasterKey,
        options: StoreOptions,
    ) -> Result<Self, StoreError> {
        let inner = Arc::new(store::Inner::open(path, master_key, options)?);
        if let Some(every) = inner.options.background_checkpoint {
            db::spawn_checkpoints(path, &inner.options, every, Arc::downgrade(&inner))?;
        }
        Ok(Self { inner })
    }

    /// The database file.
    pub fn path(&self) -> PathBuf {
        self.inner.db.path().to_owned()
    }

    /// The options the store was opened with.
    pub fn options(&self) -> &StoreOptions {
        &self.inner.options
    }

    /// A secret backend over this store that records every value it returns as read by the
    /// reader that asked; put it in the resolver before the environment.
    pub fn backend(&self) -> AuditedBackend {
        AuditedBackend::new(Arc::new(self.clone()))
    }

    /// Re-encrypts at most `max_batches` batches of a rotation and stops, as an interrupted
    /// `rotate-key` would; `None` when stopped early.
    #[doc(hidden)]
    pub fn rotate_key_partially(
        &self,
        actor: &Actor,
        max_batches: usize,
    ) -> Result<Option<RotateReport>, StoreError> {
        self.inner.rotate(actor, Some(max_batches))
    }
}

#[async_trait]
impl SecretStore for SqliteStore {
    fn name(&self) -> &str {
        "embedded"
    }

    fn versions_kept(&self) -> u32 {
        self.inner.options.versions_kept
    }

    async fn set(
        &self,
        actor: &Actor,
        id: &SecretId,
        value: &SecretValue,
        meta: Option<&SecretMeta>,
    ) -> Result<u64, StoreError> {
        kestrel_store::validate_value_size(
            value.expose_secret().len(),
            self.inner.options.max_value_size,
        )
        .map_err(|too_large| StoreError::backend("store a secret", too_large))?;
        let now = now_ms();
        self.inner.change(id, |tx, ring| {
            let new = secrets::NewVersion {
                actor,
                id,
                value,
                meta,
                kept: self.inner.options.versions_kept,
                now,
            };
            let version = secrets::insert_version(tx, ring, &new)?;
            audit::record(
                tx,
                &ring.chain_key(),
                now,
                actor,
                AuditAction::Set,
                Some(id),
                Some(version),
            )?;
            Ok(version)
        })
    }

    async fn get(
        &self,
        id: &SecretId,
        version: Option<u64>,
    ) -> Result<Option<Revealed>, StoreError> {
        self.inner.get(id, version)
    }

    async fn get_meta(&self, id: &SecretId) -> Result<Option<SecretInfo>, StoreError> {
        self.inner.db.read(|conn| secrets::info(conn, id))
    }

    async fn list(&self, tenant: &str, namespace: &str) -> Result<Vec<SecretInfo>, StoreError> {
        validate_tenant(tenant)?;
        validate_namespace(namespace)?;
        self.inner
            .db
            .read(|conn| secrets::list(conn, tenant, namespace))
    }

    async fn list_namespaces(&self, tenant: &str) -> Result<Vec<String>, StoreError> {
        validate_tenant(tenant)?;
        self.inner.db.read(|conn| secrets::namespaces(conn, tenant))
    }

    async fn versions(&self, id: &SecretId) -> Result<Vec<VersionInfo>, StoreError> {
        self.inner.db.read(|conn| secrets::versions(conn, id))
    }

    async fn delete(&self, actor: &Actor, id: &SecretId) -> Result<u64, StoreError> {
        let now = now_ms();
        self.inner.change(id, |tx, ring| {
            let version = secrets::soft_delete(tx, id, now)?.ok_or_else(|| id.not_found(None))?;
            audit::record(
                tx,
                &ring.chain_key(),
                now,
                actor,
                AuditAction::Delete,
                Some(id),
                Some(version),
            )?;
            Ok(version)
        })
    }

    async fn undelete(
        &self,
        actor: &Actor,
        id: &SecretId,
        version: Option<u64>,
    ) -> Result<u64, StoreError> {
        self.inner.change(id, |tx, ring| {
            let version = match version {
                Some(v) => v,
                None => secrets::latest_version(tx, id)?.ok_or_else(|| id.not_found(None))?,
            };
            match secrets::undelete(tx, id, version)? {
                Undeleted::Absent => Err(id.not_found(Some(version))),
                Undeleted::WasReadable => Ok(version),
                Undeleted::Restored => {
                    let action = AuditAction::Undelete;
                    audit::record(
                        tx,
                        &ring.chain_key(),
                        now_ms(),
                        actor,
                        action,
                        Some(id),
                        Some(version),
                    )?;
                    Ok(version)
                }
            }
        })
    }

    async fn destroy(
        &self,
        actor: &Actor,
        id: &SecretId,
        version: Option<u64>,
    ) -> Result<Vec<u64>, StoreError> {
        let now = now_ms();
        self.inner.change(id, |tx, ring| {
            let destroyed = secrets::destroy(tx, id, version, now)?;
            if destroyed.is_empty() {
                return Err(id.not_found(version));
            }
            audit::record(
                tx,
                &ring.chain_key(),
                now,
                actor,
                AuditAction::Destroy,
                Some(id),
                version,
            )?;
            Ok(destroyed)
        })
    }

    async fn update_meta(
        &self,
        actor: &Actor,
        id: &SecretId,
        meta: &SecretMeta,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        self.inner.db.write(|tx| {
            if !secrets::update_meta(tx, id, meta, now)? {
                return Err(id.not_found(None));
            }
            audit::record(
                tx,
                &self.inner.chain_key(),
                now,
                actor,
                AuditAction::UpdateMeta,
                Some(id),
                None,
            )
        })
    }

    async fn record_read(
        &self,
        actor: &Actor,
        id: &SecretId,
        version: u64,
    ) -> Result<(), StoreError> {
        self.inner.db.write(|tx| {
            audit::record(
                tx,
                &self.inner.chain_key(),
                now_ms(),
                actor,
                AuditAction::Read,
                Some(id),
                Some(version),
            )
        })
    }

    async fn record_refusal(&self, actor: &Actor, id: &SecretId) -> Result<(), StoreError> {
        self.inner.db.write(|tx| {
            let chain = self.inner.chain_key();
            audit::record(
                tx,
                &chain,
                now_ms(),
                actor,
                AuditAction::Refused,
                Some(id),
                None,
            )
        })
    }

    async fn record_change(
        &self,
        actor: &Actor,
        id: &SecretId,
        action: AuditAction,
        version: Option<u64>,
    ) -> Result<(), StoreError> {
        self.inner.db.write(|tx| {
            audit::record(
                tx,
                &self.inner.chain_key(),
                now_ms(),
                actor,
                action,
                Some(id),
                version,
            )?;
            crate::secrets::bump_generation(tx).map(drop)
        })
    }

    async fn generation(&self) -> Result<i64, StoreError> {
        self.inner.db.generation()
    }

    async fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
        validate_tenant(&filter.tenant)?;
        if let Some(ns) = &filter.namespace {
            validate_namespace(ns)?;
        }
        self.inner.db.read(|conn| audit::query(conn, filter))
    }

    async fn audit_after(&self, after: i64, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        self.inner.db.read(|conn| audit::after(conn, after, limit))
    }

    async fn verify_audit(&self) -> Result<kestrel_store::chain::ChainReport, StoreError> {
        let (rows, anchor) = self.inner.db.read(audit::chained)?;
        let chain = self.inner.chain_key();
        Ok(kestrel_store::chain::verify(&chain, anchor.as_ref(), rows))
    }

    async fn rotate_key(&self, actor: &Actor) -> Result<RotateReport, StoreError> {
        self.inner
            .rotate(actor, None)?
            .ok_or_else(|| StoreError::backend("rotate the data key", "the rotation stopped early"))
    }

    async fn rekey(&self, actor: &Actor, new_master: &MasterKey) -> Result<(), StoreError> {
        self.inner.rekey(actor, new_master)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kestrel_crypto::MasterKey;
    use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Counts the statements prepared on a reader connection that read a value's column.
    fn count_value_reads(store: &SqliteStore) -> Arc<AtomicUsize> {
        let reads = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&reads);
        store.inner.db.only_reader(|conn| {
            conn.authorizer(Some(move |context: AuthContext<'_>| {
                if let AuthAction::Read {
                    table_name: "secret_versions",
                    column_name: "sealed",
                } = context.action
                {
                    counter.fetch_add(1, Ordering::SeqCst);
                }
                Authorization::Allow
            }))
            .unwrap();
        });
        reads
    }

    /// A store in a new directory (kept as long as the store is used).
    fn store_with(options: StoreOptions) -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let key = MasterKey::generate().unwrap();
        let store = SqliteStore::open(dir.path(), key, options).unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn issue_9_6_health_and_listings_read_no_secret_value() {
        let (_dir, store) = store_with(StoreOptions::default());
        let me = Actor::User("ada".into());
        let id = SecretId::main("company.team", "BIG").unwrap();
        let value = SecretValue::new("v".repeat(60 * 1024));
        store.set(&me, &id, &value, None).await.unwrap();
        let reads = count_value_reads(&store);
        // What `/health` and every listing call.
        assert_eq!(
            store.list_namespaces("main").await.unwrap(),
            ["company.team"]
        );
        assert_eq!(store.list("main", "company.team").await.unwrap().len(), 1);
        assert!(store.get_meta(&id).await.unwrap().is_some());
        assert_eq!(reads.load(Ordering::SeqCst), 0, "metadata read a value");
        // The count sees a read of a value: it would have seen one above.
        assert!(store.get(&id, Some(1)).await.unwrap().is_some());
        assert!(reads.load(Ordering::SeqCst) > 0);
    }

    #[tokio::test]
    async fn issue_9_6_a_value_over_max_size_is_refused() {
        let (_dir, store) = store_with(StoreOptions {
            max_value_size: 8,
            ..StoreOptions::default()
        });
        let me = Actor::User("ada".into());
        let id = SecretId::main("company.team", "K").unwrap();
        store
            .set(&me, &id, &SecretValue::new("8 bytes!".into()), None)
            .await
            .unwrap();
        let refused = store
            .set(&me, &id, &SecretValue::new("nine byte".into()), None)
            .await
            .unwrap_err();
        assert_eq!(
            kestrel_store::value_too_large(&refused),
            Some(&kestrel_store::ValueTooLarge { max: 8 })
        );
        assert!(!refused.to_string().contains("nine byte"));
        assert_eq!(
            store.versions(&id).await.unwrap().len(),
            1,
            "nothing stored"
        );
    }
}
