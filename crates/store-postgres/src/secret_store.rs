//! [`SecretStore`] for [`PgStore`]: the embedded store's semantics over PostgreSQL, for any
//! number of nodes.
//!
//! Reads go through this node's cache ([`crate::cache`]) and take no lock. Each change runs in
//! one transaction that first bumps the change generation, which locks the store-state row:
//! changes of secrets run one at a time across all nodes (as SQLite's single writer runs them),
//! never interleaved with a step of `rotate-key` or `rekey`, and the secret's own row is locked
//! too. Before committing, the change NOTIFYs `kestrel_secrets` with its generation; PostgreSQL
//! delivers it at commit (and drops it on rollback), and every node's listener then empties
//! that node's cache.

use crate::cache::Lookup;
use crate::db::err;
use crate::secrets::{self, NewVersion, StoredVersion, Undeleted, aad};
use crate::time::now_ms;
use crate::{Inner, PgStore, audit};
use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use kestrel_crypto::{ChainKey, CryptoError, MasterKey};
use kestrel_secrets::SecretValue;
use kestrel_store::{
    Actor, AuditAction, AuditEntry, AuditFilter, AuditedBackend, Revealed, RotateReport, SecretId,
    SecretInfo, SecretMeta, SecretStore, StoreError, VersionInfo, validate_namespace,
    validate_tenant,
};
use std::sync::Arc;
use zeroize::{Zeroize as _, Zeroizing};

/// A change of secrets in progress: its transaction holds the store-state row.
struct Change<'a> {
    tx: deadpool_postgres::Transaction<'a>,
    generation: i64,
}

impl Inner {
    /// A connection from the pool.
    pub(crate) async fn connection(
        &self,
        doing: &'static str,
    ) -> Result<deadpool_postgres::Client, StoreError> {
        self.pool.get().await.map_err(err(doing))
    }

    /// Starts a change: the generation is bumped first (see the module's comment).
    async fn begin_change<'a>(
        &self,
        client: &'a mut deadpool_postgres::Client,
        doing: &'static str,
    ) -> Result<Change<'a>, StoreError> {
        let tx = client.transaction().await.map_err(err(doing))?;
        let generation = secrets::bump_generation(&tx).await?;
        Ok(Change { tx, generation })
    }

    /// Announces and commits a change of `id`, and drops `id` from this node's cache at once
    /// (the notification empties the rest when it arrives).
    async fn commit_change(
        &self,
        change: Change<'_>,
        id: &SecretId,
        doing: &'static str,
    ) -> Result<(), StoreError> {
        secrets::notify(&change.tx, change.generation).await?;
        change.tx.commit().await.map_err(err(doing))?;
        self.cache.changed(id, change.generation);
        Ok(())
    }

    /// The latest readable version through the cache, or a given version from the database.
    async fn get(
        &self,
        id: &SecretId,
        version: Option<u64>,
    ) -> Result<Option<Revealed>, StoreError> {
        if version.is_some() {
            return self.get_uncached(id, version).await;
        }
        if self.cache.check_due() {
            let client = self.connection("read the change generation").await?;
            self.cache
                .observe_generation(secrets::generation(&client).await?);
        }
        match self.cache.lookup(id, self.notifications()) {
            Lookup::Hit(found) => Ok(found),
            Lookup::Miss { epoch } => {
                let found = self.get_uncached(id, None).await?;
                self.cache
                    .insert(id, epoch, self.notifications(), found.as_ref());
                Ok(found)
            }
        }
    }

    /// How many secret-change notifications this node has received.
    fn notifications(&self) -> u64 {
        *self.secret_changes.borrow()
    }

    async fn get_uncached(
        &self,
        id: &SecretId,
        version: Option<u64>,
    ) -> Result<Option<Revealed>, StoreError> {
        let client = self.connection("read a secret").await?;
        let Some((version, sealed)) = secrets::load_version(&client, id, version)
            .await?
            .and_then(StoredVersion::readable)
        else {
            return Ok(None);
        };
        let undecryptable = |cause| StoreError::Undecryptable {
            namespace: id.namespace().to_owned(),
            key: id.key().to_owned(),
            version,
            cause,
        };
        let ring = self.keys.holding(&client, sealed.key_id).await?;
        let plain = ring
            .open(&aad(id, version), &sealed)
            .map_err(undecryptable)?;
        let value = into_value(plain).map_err(undecryptable)?;
        Ok(Some(Revealed { version, value }))
    }

    /// The key the audit trail is chained under (see [`kestrel_store::chain`]): derived from
    /// the first data key, which every keyring holds, so the keyring in memory serves without
    /// asking the database whether a rotation moved on.
    pub(crate) fn chain_key(&self) -> ChainKey {
        self.keys.ring().chain_key()
    }

    /// Writes one audit entry on its own.
    async fn record_alone(
        &self,
        actor: &Actor,
        action: AuditAction,
        id: &SecretId,
        version: Option<u64>,
    ) -> Result<(), StoreError> {
        const DOING: &str = "write the audit trail";
        let mut client = self.connection(DOING).await?;
        let tx = client.transaction().await.map_err(err(DOING))?;
        let chain = self.chain_key();
        audit::record(&tx, &chain, now_ms(), actor, action, Some(id), version).await?;
        tx.commit().await.map_err(err(DOING))
    }
}

/// A decrypted value as text; values are stored from text, so anything else is corruption.
fn into_value(mut plain: Zeroizing<Vec<u8>>) -> Result<SecretValue, CryptoError> {
    match String::from_utf8(std::mem::take(&mut *plain)) {
        Ok(text) => Ok(SecretValue::new(text)),
        Err(e) => {
            e.into_bytes().zeroize();
            Err(CryptoError::Malformed)
        }
    }
}

impl PgStore {
    /// A secret backend over this store that records every value it returns as read by the
    /// reader that asked; put it in the resolver before the environment.
    pub fn backend(&self) -> AuditedBackend {
        AuditedBackend::new(Arc::new(self.clone()))
    }

    /// Re-encrypts at most `max_batches` batches of a rotation and stops, as an interrupted
    /// `rotate-key` would; `None` when stopped early.
    #[doc(hidden)]
    pub async fn rotate_key_partially(
        &self,
        actor: &Actor,
        max_batches: usize,
    ) -> Result<Option<RotateReport>, StoreError> {
        self.inner.rotate(actor, Some(max_batches)).await
    }
}

#[async_trait]
impl SecretStore for PgStore {
    fn name(&self) -> &str {
        "postgres"
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
        let doing = "store a secret";
        kestrel_store::validate_value_size(
            value.expose_secret().len(),
            self.inner.options.max_value_size,
        )
        .map_err(|too_large| StoreError::backend(doing, too_large))?;
        let now = now_ms();
        let mut client = self.inner.connection(doing).await?;
        let change = self.inner.begin_change(&mut client, doing).await?;
        // Read under the lock: a rotation started before this change is seen here.
        let ring = self.inner.keys.current(&change.tx).await?;
        let new = NewVersion {
            actor,
            id,
            value,
            meta,
            kept: self.inner.options.versions_kept,
            now,
        };
        let version = secrets::insert_version(&change.tx, &ring, &new).await?;
        audit::record(
            &change.tx,
            &self.inner.chain_key(),
            now,
            actor,
            AuditAction::Set,
            Some(id),
            Some(version),
        )
        .await?;
        self.inner.commit_change(change, id, doing).await?;
        Ok(version)
    }

    async fn get(
        &self,
        id: &SecretId,
        version: Option<u64>,
    ) -> Result<Option<Revealed>, StoreError> {
        self.inner.get(id, version).await
    }

    async fn get_meta(&self, id: &SecretId) -> Result<Option<SecretInfo>, StoreError> {
        let client = self.inner.connection("read a secret's metadata").await?;
        secrets::info(&client, id).await
    }

    async fn list(&self, tenant: &str, namespace: &str) -> Result<Vec<SecretInfo>, StoreError> {
        validate_tenant(tenant)?;
        validate_namespace(namespace)?;
        let client = self.inner.connection("list secrets").await?;
        secrets::list(&client, tenant, namespace).await
    }

    async fn list_namespaces(&self, tenant: &str) -> Result<Vec<String>, StoreError> {
        validate_tenant(tenant)?;
        let client = self.inner.connection("list namespaces").await?;
        secrets::namespaces(&client, tenant).await
    }

    async fn versions(&self, id: &SecretId) -> Result<Vec<VersionInfo>, StoreError> {
        let client = self.inner.connection("list versions").await?;
        secrets::versions(&client, id).await
    }

    async fn delete(&self, actor: &Actor, id: &SecretId) -> Result<u64, StoreError> {
        let doing = "delete a secret";
        let now = now_ms();
        let mut client = self.inner.connection(doing).await?;
        let change = self.inner.begin_change(&mut client, doing).await?;
        let version = secrets::soft_delete(&change.tx, id, now)
            .await?
            .ok_or_else(|| id.not_found(None))?;
        let action = AuditAction::Delete;
        audit::record(
            &change.tx,
            &self.inner.chain_key(),
            now,
            actor,
            action,
            Some(id),
            Some(version),
        )
        .await?;
        self.inner.commit_change(change, id, doing).await?;
        Ok(version)
    }

    async fn undelete(
        &self,
        actor: &Actor,
        id: &SecretId,
        version: Option<u64>,
    ) -> Result<u64, StoreError> {
        let doing = "undelete a secret";
        let mut client = self.inner.connection(doing).await?;
        let change = self.inner.begin_change(&mut client, doing).await?;
        let latest = secrets::lock_latest_version(&change.tx, id).await?;
        let version = version.or(latest).ok_or_else(|| id.not_found(None))?;
        match secrets::undelete(&change.tx, id, version).await? {
            Undeleted::Absent => return Err(id.not_found(Some(version))),
            Undeleted::WasReadable => {}
            Undeleted::Restored => {
                let action = AuditAction::Undelete;
                audit::record(
                    &change.tx,
                    &self.inner.chain_key(),
                    now_ms(),
                    actor,
                    action,
                    Some(id),
                    Some(version),
                )
                .await?;
            }
        }
        self.inner.commit_change(change, id, doing).await?;
        Ok(version)
    }

    async fn destroy(
        &self,
        actor: &Actor,
        id: &SecretId,
        version: Option<u64>,
    ) -> Result<Vec<u64>, StoreError> {
        let doing = "destroy a secret";
        let now = now_ms();
        let mut client = self.inner.connection(doing).await?;
        let change = self.inner.begin_change(&mut client, doing).await?;
        let destroyed = secrets::destroy(&change.tx, id, version, now).await?;
        if destroyed.is_empty() {
            return Err(id.not_found(version));
        }
        audit::record(
            &change.tx,
            &self.inner.chain_key(),
            now,
            actor,
            AuditAction::Destroy,
            Some(id),
            version,
        )
        .await?;
        self.inner.commit_change(change, id, doing).await?;
        Ok(destroyed)
    }

    async fn update_meta(
        &self,
        actor: &Actor,
        id: &SecretId,
        meta: &SecretMeta,
    ) -> Result<(), StoreError> {
        let doing = "update a secret's metadata";
        let now = now_ms();
        let mut client = self.inner.connection(doing).await?;
        // Metadata is never cached: no generation to bump.
        let tx = client.transaction().await.map_err(err(doing))?;
        if !secrets::update_meta(&tx, id, meta, now).await? {
            return Err(id.not_found(None));
        }
        audit::record(
            &tx,
            &self.inner.chain_key(),
            now,
            actor,
            AuditAction::UpdateMeta,
            Some(id),
            None,
        )
        .await?;
        tx.commit().await.map_err(err(doing))
    }

    async fn record_read(
        &self,
        actor: &Actor,
        id: &SecretId,
        version: u64,
    ) -> Result<(), StoreError> {
        self.inner
            .record_alone(actor, AuditAction::Read, id, Some(version))
            .await
    }

    async fn record_refusal(&self, actor: &Actor, id: &SecretId) -> Result<(), StoreError> {
        self.inner
            .record_alone(actor, AuditAction::Refused, id, None)
            .await
    }

    async fn record_change(
        &self,
        actor: &Actor,
        id: &SecretId,
        action: AuditAction,
        version: Option<u64>,
    ) -> Result<(), StoreError> {
        let doing = "record a secret change";
        let mut client = self.inner.connection(doing).await?;
        let change = self.inner.begin_change(&mut client, doing).await?;
        audit::record(
            &change.tx,
            &self.inner.chain_key(),
            now_ms(),
            actor,
            action,
            Some(id),
            version,
        )
        .await?;
        self.inner.commit_change(change, id, doing).await
    }

    async fn generation(&self) -> Result<i64, StoreError> {
        let client = self.inner.connection("read the change generation").await?;
        secrets::generation(&client).await
    }

    async fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
        validate_tenant(&filter.tenant)?;
        if let Some(ns) = &filter.namespace {
            validate_namespace(ns)?;
        }
        let client = self.inner.connection("read the audit trail").await?;
        audit::query(&client, filter).await
    }

    async fn audit_after(&self, after: i64, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        let client = self.inner.connection("read the audit trail").await?;
        audit::after(&client, after, limit).await
    }

    async fn verify_audit(&self) -> Result<kestrel_store::chain::ChainReport, StoreError> {
        let client = self.inner.connection("verify the audit trail").await?;
        let (rows, anchor) = audit::chained(&client).await?;
        let chain = self.inner.chain_key();
        Ok(kestrel_store::chain::verify(&chain, anchor.as_ref(), rows))
    }

    async fn rotate_key(&self, actor: &Actor) -> Result<RotateReport, StoreError> {
        self.inner
            .rotate(actor, None)
            .await?
            .ok_or_else(|| StoreError::backend("rotate the data key", "the rotation stopped early"))
    }

    async fn rekey(&self, actor: &Actor, new_master: &MasterKey) -> Result<(), StoreError> {
        self.inner.rekey(actor, new_master).await
    }
}
