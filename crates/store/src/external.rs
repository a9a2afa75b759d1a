//! An external manager as a [`SecretStore`]: values, versions and metadata in the manager
//! (through its [`Cached`] front), the audit trail and the change generation in kestrel's own
//! store (the home store), so that `AuditedBackend`, the API and the CLI treat every backend
//! alike.
//!
//! Freshness: a change made through this process drops its cache entry at once and is recorded
//! in the home store, moving its generation; every process reads that generation at most every
//! [`External::FRESHNESS`] and drops its whole cache when it moved. A change made outside
//! kestrel is seen when the entry's TTL ends.

use crate::{
    Actor, AuditAction, AuditEntry, AuditFilter, BackendCheck, Cached, Revealed, RotateReport,
    SecretId, SecretInfo, SecretMeta, SecretStore, StoreError, VersionInfo, validate_value_size,
};
use async_trait::async_trait;
use kestrel_crypto::MasterKey;
use kestrel_secrets::SecretValue;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Instant;

/// An external manager joined to kestrel's home store.
pub struct External {
    cached: Arc<Cached>,
    home: Arc<dyn SecretStore>,
    max_value_size: usize,
    start: Instant,
    last_check_ms: AtomicU64,
    seen_generation: AtomicI64,
}

impl fmt::Debug for External {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("External")
            .field("manager", &self.name())
            .field("home", &self.home.name())
            .finish_non_exhaustive()
    }
}

impl External {
    /// How often the home store's generation is read, at most (the spec's bound is 1 s).
    pub const FRESHNESS: std::time::Duration = std::time::Duration::from_millis(250);

    /// `cached` (a manager behind its cache) joined to `home`, refusing values over
    /// `max_value_size` bytes as every store does.
    pub async fn new(
        cached: Arc<Cached>,
        home: Arc<dyn SecretStore>,
        max_value_size: usize,
    ) -> Result<Self, StoreError> {
        let generation = home.generation().await?;
        Ok(Self {
            cached,
            home,
            max_value_size,
            start: Instant::now(),
            last_check_ms: AtomicU64::new(0),
            seen_generation: AtomicI64::new(generation),
        })
    }

    /// The manager behind its cache (for `/health`).
    pub fn cached(&self) -> &Arc<Cached> {
        &self.cached
    }

    /// Drops the cache when another process changed something since the last look; looks at
    /// most once per [`External::FRESHNESS`], one caller at a time.
    async fn stay_fresh(&self) -> Result<(), StoreError> {
        let now = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        let last = self.last_check_ms.load(Ordering::Relaxed);
        let due = now.saturating_sub(last) >= Self::FRESHNESS.as_millis() as u64 || last == 0;
        if !due
            || self
                .last_check_ms
                .compare_exchange(last, now.max(1), Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
        {
            return Ok(());
        }
        let generation = self.home.generation().await?;
        if self.seen_generation.swap(generation, Ordering::AcqRel) != generation {
            self.cached.clear();
        }
        Ok(())
    }

    /// After a change through this process: its entry goes now, the others' at their next look.
    async fn changed(
        &self,
        actor: &Actor,
        id: &SecretId,
        action: AuditAction,
        version: Option<u64>,
    ) -> Result<(), StoreError> {
        self.cached.forget(id);
        self.home.record_change(actor, id, action, version).await
    }

    fn unsupported(&self, what: &str) -> StoreError {
        StoreError::Unsupported {
            backend: self.name().to_owned(),
            what: what.to_owned(),
        }
    }
}

#[async_trait]
impl SecretStore for External {
    fn name(&self) -> &str {
        self.cached.manager().name()
    }

    fn versions_kept(&self) -> u32 {
        // The manager keeps versions by its own rules.
        u32::MAX
    }

    async fn check_backends(&self) -> Vec<BackendCheck> {
        let check = match self.cached.manager().check().await {
            Ok(()) => BackendCheck::up(self.name()),
            Err(error) => BackendCheck::down(self.name(), error.to_string()),
        };
        vec![check]
    }

    async fn set(
        &self,
        actor: &Actor,
        id: &SecretId,
        value: &SecretValue,
        meta: Option<&SecretMeta>,
    ) -> Result<u64, StoreError> {
        validate_value_size(value.expose_secret().len(), self.max_value_size)
            .map_err(|too_large| StoreError::backend("store a secret", too_large))?;
        let version = self.cached.manager().set(id, value, meta).await?;
        self.changed(actor, id, AuditAction::Set, Some(version))
            .await?;
        Ok(version)
    }

    async fn get(
        &self,
        id: &SecretId,
        version: Option<u64>,
    ) -> Result<Option<Revealed>, StoreError> {
        match version {
            None => {
                self.stay_fresh().await?;
                self.cached.get(id).await
            }
            Some(_) => self.cached.manager().get(id, version).await,
        }
    }

    async fn get_meta(&self, id: &SecretId) -> Result<Option<SecretInfo>, StoreError> {
        self.cached.manager().get_meta(id).await
    }

    async fn list(&self, tenant: &str, namespace: &str) -> Result<Vec<SecretInfo>, StoreError> {
        self.cached.manager().list(tenant, namespace).await
    }

    async fn list_namespaces(&self, tenant: &str) -> Result<Vec<String>, StoreError> {
        self.cached.manager().list_namespaces(tenant).await
    }

    async fn versions(&self, id: &SecretId) -> Result<Vec<VersionInfo>, StoreError> {
        self.cached.manager().versions(id).await
    }

    async fn version_named(&self, id: &SecretId, name: &str) -> Result<Option<u64>, StoreError> {
        self.cached.manager().version_named(id, name).await
    }

    async fn delete(&self, actor: &Actor, id: &SecretId) -> Result<u64, StoreError> {
        let version = self.cached.manager().delete(id).await?;
        self.changed(actor, id, AuditAction::Delete, Some(version))
            .await?;
        Ok(version)
    }

    async fn undelete(
        &self,
        actor: &Actor,
        id: &SecretId,
        version: Option<u64>,
    ) -> Result<u64, StoreError> {
        let version = self.cached.manager().undelete(id, version).await?;
        self.changed(actor, id, AuditAction::Undelete, Some(version))
            .await?;
        Ok(version)
    }

    async fn destroy(
        &self,
        actor: &Actor,
        id: &SecretId,
        version: Option<u64>,
    ) -> Result<Vec<u64>, StoreError> {
        let destroyed = self.cached.manager().destroy(id, version).await?;
        self.changed(actor, id, AuditAction::Destroy, version)
            .await?;
        Ok(destroyed)
    }

    async fn update_meta(
        &self,
        actor: &Actor,
        id: &SecretId,
        meta: &SecretMeta,
    ) -> Result<(), StoreError> {
        self.cached.manager().update_meta(id, meta).await?;
        self.changed(actor, id, AuditAction::UpdateMeta, None).await
    }

    async fn record_read(
        &self,
        actor: &Actor,
        id: &SecretId,
        version: u64,
    ) -> Result<(), StoreError> {
        self.home.record_read(actor, id, version).await
    }

    async fn record_refusal(&self, actor: &Actor, id: &SecretId) -> Result<(), StoreError> {
        self.home.record_refusal(actor, id).await
    }

    async fn record_change(
        &self,
        actor: &Actor,
        id: &SecretId,
        action: AuditAction,
        version: Option<u64>,
    ) -> Result<(), StoreError> {
        self.home.record_change(actor, id, action, version).await
    }

    async fn generation(&self) -> Result<i64, StoreError> {
        self.home.generation().await
    }

    async fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
        self.home.audit(filter).await
    }

    async fn audit_after(&self, after: i64, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        self.home.audit_after(after, limit).await
    }

    async fn verify_audit(&self) -> Result<crate::chain::ChainReport, StoreError> {
        self.home.verify_audit().await
    }

    async fn rotate_key(&self, _actor: &Actor) -> Result<RotateReport, StoreError> {
        Err(self.unsupported("key rotation: it encrypts with keys of its own"))
    }

    async fn rekey(&self, _actor: &Actor, _new_master: &MasterKey) -> Result<(), StoreError> {
        Err(self.unsupported("rekey: kestrel's master key does not wrap its keys"))
    }
}
