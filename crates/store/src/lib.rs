//! The store contract: secrets per tenant and namespace, with versions, metadata, an audit
//! trail and key rotation, implemented once per database.
//!
//! This crate owns the [`SecretStore`] trait and the types it speaks in ([`SecretId`],
//! [`Actor`], [`SecretMeta`], [`VersionInfo`], [`AuditEntry`]), the name rules
//! ([`validate_key`]), the size rule every store enforces on `set` ([`validate_value_size`],
//! `secret.max-size`), and [`AuditedBackend`], which puts any store behind
//! [`kestrel_secrets::SecretBackend`] with every read audited. Each database gets its own crate
//! (`kestrel-store-sqlite` now, PostgreSQL later), and each runs the same story from its tests:
//! enable the `conformance` feature and call `conformance::run_all`. kestrel uses stores as
//! `Arc<dyn SecretStore>`.
//!
//! The server's own records have their traits here too, each implemented by the same database
//! crates: [`FlowStore`] (flow sources with revisions), [`ExecutionStore`] (executions, task
//! runs and logs, masked), [`Retention`] (purging by age) and [`AuthStore`] (users and API
//! tokens, hashed); `conformance::server::run_all` is their story.
//!
//! ```
//! use kestrel_store::{Actor, SecretId, validate_key};
//! let id = SecretId::main("company.team", "DB_PASSWORD").unwrap();
//! assert_eq!(id.to_string(), "company.team/DB_PASSWORD");
//! assert!(validate_key("has space").is_err());
//! assert_eq!(Actor::Execution("4xRZ".into()).to_string(), "execution:4xRZ");
//! ```

mod auth;
mod backend;
mod cached;
pub mod chain;
#[cfg(feature = "conformance")]
pub mod conformance;
mod error;
mod executions;
mod external;
mod flows;
mod limited;
mod manager;
mod offload;
mod queue;
mod routed;
#[cfg(test)]
mod testing;
mod types;
mod validate;

pub use auth::{AuthStore, SecretAccess, TokenRecord, UserRecord};
pub use backend::{AuditedBackend, actor_of};
pub use cached::{CacheSettings, Cached, ManagerState};
pub use error::StoreError;
pub use executions::{
    ExecutionQuery, ExecutionRecord, ExecutionStore, LogRecord, PurgedExecution, Retention,
    StateChange, TaskRunRecord, keeps_inputs, waits_in_queue,
};
pub use external::External;
pub use flows::{FlowRecord, FlowStore};
pub use limited::Limited;
pub use manager::SecretManager;
pub use offload::Offload;
pub use queue::{
    Claimed, ConditionWindow, EndWatch, ExecutionQueue, Fire, QueueSignals, changed_within,
};
pub use routed::{Route, Routed};
pub use types::{
    Actor, AuditAction, AuditEntry, AuditFilter, BackendCheck, DEFAULT_TENANT,
    DEFAULT_VERSIONS_KEPT, Revealed, RotateReport, SecretId, SecretInfo, SecretMeta, Tag,
    VersionInfo,
};
pub use validate::{
    DEFAULT_MAX_VALUE_SIZE, ValueTooLarge, validate_key, validate_namespace, validate_tenant,
    validate_value_size, value_too_large,
};

use async_trait::async_trait;
use kestrel_crypto::MasterKey;
use kestrel_secrets::SecretValue;

/// Where secrets live: one namespace at a time (walking to parents is the
/// [`kestrel_secrets::Resolver`]'s job), values encrypted at rest, versions numbered from 1.
///
/// The protocol:
/// - Each `set` makes a new version (the previous one's number + 1, even after `destroy`);
///   beyond [`SecretStore::versions_kept`] the oldest versions are removed.
/// - `get` without a version answers the latest version if it is readable; a deleted or
///   destroyed latest version means `None`, as an absent key does. `get` records nothing: a
///   caller acting for someone uses [`SecretStore::read`], which audits.
/// - `delete` soft-deletes the latest version; `undelete` restores one; `destroy` removes
///   ciphertexts for good. Each change, and each recorded read, writes one audit entry in the
///   same transaction as the change; entries never hold a value.
/// - A change by any process is seen by every process's next `get` within one second.
/// - `rotate_key` is resumable: a call after an interrupted one finishes the same rotation.
/// - Errors never carry a value. Reads and writes are short; `rotate_key` may take long.
#[async_trait]
pub trait SecretStore: Send + Sync {
    /// A short name for messages (`embedded`).
    fn name(&self) -> &str;

    /// How many versions of each secret are kept.
    fn versions_kept(&self) -> u32;

    /// The state of each backend behind this store, for `/health`: this store alone, up, by
    /// default.
    async fn check_backends(&self) -> Vec<BackendCheck> {
        vec![BackendCheck::up(self.name())]
    }

    /// The name of the backend holding `namespace`'s secrets (this store's own, unless it
    /// routes namespaces to several).
    fn backend_name(&self, namespace: &str) -> &str {
        let _ = namespace;
        self.name()
    }

    /// Why writes to `namespace` would be refused ([`StoreError::ReadOnly`]), if they would:
    /// lets the API, the UI and the CLI say so before anyone types a value.
    fn writes_refused(&self, namespace: &str) -> Option<StoreError> {
        let _ = namespace;
        None
    }

    /// Sets a new version of `id` and returns its number. `meta`: `None` keeps the current
    /// description and tags, `Some` replaces them.
    async fn set(
        &self,
        actor: &Actor,
        id: &SecretId,
        value: &SecretValue,
        meta: Option<&SecretMeta>,
    ) -> Result<u64, StoreError>;

    /// The latest version (`version: None`) or the given one, when it exists and is neither
    /// deleted nor destroyed. Not audited.
    async fn get(
        &self,
        id: &SecretId,
        version: Option<u64>,
    ) -> Result<Option<Revealed>, StoreError>;

    /// [`SecretStore::get`], then the read recorded for `actor` when a value was found. No
    /// value leaves without its audit entry.
    async fn read(
        &self,
        actor: &Actor,
        id: &SecretId,
        version: Option<u64>,
    ) -> Result<Option<Revealed>, StoreError> {
        let found = self.get(id, version).await?;
        if let Some(revealed) = &found {
            self.record_read(actor, id, revealed.version).await?;
        }
        Ok(found)
    }

    /// Description, tags and latest version of `id`, readable or not; `None` if never set.
    async fn get_meta(&self, id: &SecretId) -> Result<Option<SecretInfo>, StoreError>;

    /// The readable secrets of exactly `namespace` (not its children), sorted by key.
    async fn list(&self, tenant: &str, namespace: &str) -> Result<Vec<SecretInfo>, StoreError>;

    /// The namespaces holding at least one readable secret, sorted.
    async fn list_namespaces(&self, tenant: &str) -> Result<Vec<String>, StoreError>;

    /// Every kept version of `id`, oldest first; empty if never set.
    async fn versions(&self, id: &SecretId) -> Result<Vec<VersionInfo>, StoreError>;

    /// The number of the version `name` designates: a number, or a label or stage the backend
    /// gives its versions (AWS's `VersionId`, `AWSCURRENT`); `None` when none has that name.
    async fn version_named(&self, id: &SecretId, name: &str) -> Result<Option<u64>, StoreError> {
        let _ = id;
        Ok(name.parse().ok())
    }

    /// Soft-deletes the latest version and returns its number;
    /// [`StoreError::NotFound`] when it is not readable.
    async fn delete(&self, actor: &Actor, id: &SecretId) -> Result<u64, StoreError>;

    /// Restores a soft-deleted version (default: the latest) and returns its number;
    /// [`StoreError::NotFound`] when that version is absent or destroyed.
    async fn undelete(
        &self,
        actor: &Actor,
        id: &SecretId,
        version: Option<u64>,
    ) -> Result<u64, StoreError>;

    /// Destroys one version's ciphertext, or every version's (`None`), and returns the versions
    /// destroyed; [`StoreError::NotFound`] when there was nothing to destroy.
    async fn destroy(
        &self,
        actor: &Actor,
        id: &SecretId,
        version: Option<u64>,
    ) -> Result<Vec<u64>, StoreError>;

    /// Replaces description and tags; [`StoreError::NotFound`] if the secret was never set.
    async fn update_meta(
        &self,
        actor: &Actor,
        id: &SecretId,
        meta: &SecretMeta,
    ) -> Result<(), StoreError>;

    /// Records that `actor` read `version` of `id`.
    async fn record_read(
        &self,
        actor: &Actor,
        id: &SecretId,
        version: u64,
    ) -> Result<(), StoreError>;

    /// Records that the read policy refused `actor` the secret `id` (no value was read).
    async fn record_refusal(&self, actor: &Actor, id: &SecretId) -> Result<(), StoreError>;

    /// Records a change `actor` made through kestrel to `id` in an external manager (kestrel
    /// keeps the audit trail of every backend) and moves the change generation, so that every
    /// process drops what it cached.
    async fn record_change(
        &self,
        actor: &Actor,
        id: &SecretId,
        action: AuditAction,
        version: Option<u64>,
    ) -> Result<(), StoreError>;

    /// The change generation as committed now by any process: it moves on every change made
    /// through kestrel, to this store or (by [`SecretStore::record_change`]) to another.
    async fn generation(&self) -> Result<i64, StoreError>;

    /// Audit entries matching `filter`, newest first.
    async fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError>;

    /// Up to `limit` audit entries written after row `after` (every tenant's and the
    /// keyring's), oldest first: what a forwarder sends on.
    async fn audit_after(&self, after: i64, limit: usize) -> Result<Vec<AuditEntry>, StoreError>;

    /// Checks every audit row against its link ([`chain::verify`]): what was altered or
    /// removed since it was written.
    async fn verify_audit(&self) -> Result<chain::ChainReport, StoreError>;

    /// Adds a data key and re-encrypts every stored version under it, a batch per transaction,
    /// while reads and writes go on; a call after an interrupted one finishes that rotation.
    async fn rotate_key(&self, actor: &Actor) -> Result<RotateReport, StoreError>;

    /// Re-wraps the keyring under `new_master` in one transaction; every version stays
    /// readable. Other processes must be restarted with the new key.
    async fn rekey(&self, actor: &Actor, new_master: &MasterKey) -> Result<(), StoreError>;
}
