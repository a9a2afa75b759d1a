//! The one [`SecretStore`] kestrel reads and writes through: each namespace goes to the backend
//! configured for it (the longest `namespaces.<ns>.secret` entry that is it or an ancestor,
//! else `secret.type`), and a backend configured read-only refuses every write with
//! [`StoreError::ReadOnly`]. The audit trail, the change generation and the keyring are the
//! home store's, whatever the backend.

use crate::{
    Actor, AuditAction, AuditEntry, AuditFilter, BackendCheck, Revealed, RotateReport, SecretId,
    SecretInfo, SecretMeta, SecretStore, StoreError, VersionInfo,
};
use async_trait::async_trait;
use kestrel_crypto::MasterKey;
use kestrel_secrets::{SecretValue, is_within};
use std::fmt;
use std::sync::Arc;

/// A backend and its mode.
#[derive(Clone)]
pub struct Route {
    /// Where the secrets live.
    pub store: Arc<dyn SecretStore>,
    /// Whether kestrel never writes there.
    pub read_only: bool,
}

impl fmt::Debug for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Route")
            .field("store", &self.store.name())
            .field("read_only", &self.read_only)
            .finish()
    }
}

/// Namespaces routed to their backends.
pub struct Routed {
    home: Arc<dyn SecretStore>,
    default: Route,
    /// Namespace prefixes with their own backend, longest first.
    namespaces: Vec<(String, Route)>,
}

impl Routed {
    /// `default` for every namespace but those under one of `namespaces`; `home` keeps the
    /// audit trail.
    pub fn new(
        home: Arc<dyn SecretStore>,
        default: Route,
        namespaces: Vec<(String, Route)>,
    ) -> Self {
        let mut namespaces = namespaces;
        namespaces.sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
        Self {
            home,
            default,
            namespaces,
        }
    }

    /// Every distinct route: the default (`None`) and each namespace's own.
    pub fn routes(&self) -> impl Iterator<Item = (Option<&str>, &Route)> {
        std::iter::once((None, &self.default)).chain(
            self.namespaces
                .iter()
                .map(|(ns, route)| (Some(ns.as_str()), route)),
        )
    }

    /// The route `namespace` takes.
    pub fn route(&self, namespace: &str) -> &Route {
        self.namespaces
            .iter()
            .find(|(prefix, _)| is_within(namespace, prefix))
            .map_or(&self.default, |(_, route)| route)
    }

    fn store(&self, namespace: &str) -> &dyn SecretStore {
        self.route(namespace).store.as_ref()
    }

    /// The store to write `id` to; a read-only one refuses.
    fn writable(&self, id: &SecretId) -> Result<&dyn SecretStore, StoreError> {
        match self.writes_refused(id.namespace()) {
            Some(refusal) => Err(refusal),
            None => Ok(self.store(id.namespace())),
        }
    }
}

impl fmt::Debug for Routed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Routed")
            .field("home", &self.home.name())
            .field("default", &self.default)
            .field("namespaces", &self.namespaces)
            .finish()
    }
}

#[async_trait]
impl SecretStore for Routed {
    fn name(&self) -> &str {
        self.default.store.name()
    }

    fn versions_kept(&self) -> u32 {
        self.default.store.versions_kept()
    }

    async fn check_backends(&self) -> Vec<BackendCheck> {
        let mut checks = Vec::new();
        for (namespace, route) in self.routes() {
            for check in route.store.check_backends().await {
                checks.push(BackendCheck {
                    namespace: namespace.map(str::to_owned),
                    read_only: route.read_only,
                    ..check
                });
            }
        }
        checks
    }

    fn backend_name(&self, namespace: &str) -> &str {
        self.store(namespace).name()
    }

    fn writes_refused(&self, namespace: &str) -> Option<StoreError> {
        let route = self.route(namespace);
        route.read_only.then(|| StoreError::ReadOnly {
            backend: route.store.name().to_owned(),
            namespace: namespace.to_owned(),
        })
    }

    async fn set(
        &self,
        actor: &Actor,
        id: &SecretId,
        value: &SecretValue,
        meta: Option<&SecretMeta>,
    ) -> Result<u64, StoreError> {
        self.writable(id)?.set(actor, id, value, meta).await
    }

    async fn get(
        &self,
        id: &SecretId,
        version: Option<u64>,
    ) -> Result<Option<Revealed>, StoreError> {
        self.store(id.namespace()).get(id, version).await
    }

    async fn get_meta(&self, id: &SecretId) -> Result<Option<SecretInfo>, StoreError> {
        self.store(id.namespace()).get_meta(id).await
    }

    async fn list(&self, tenant: &str, namespace: &str) -> Result<Vec<SecretInfo>, StoreError> {
        self.store(namespace).list(tenant, namespace).await
    }

    async fn list_namespaces(&self, tenant: &str) -> Result<Vec<String>, StoreError> {
        let mut all = Vec::new();
        let mut asked: Vec<&Arc<dyn SecretStore>> = Vec::new();
        for (_, route) in self.routes() {
            if asked.iter().any(|store| Arc::ptr_eq(store, &route.store)) {
                continue;
            }
            asked.push(&route.store);
            let held = route.store.list_namespaces(tenant).await?;
            // A backend may hold namespaces routed elsewhere (written before a change of
            // configuration): only those it serves are listed.
            all.extend(
                held.into_iter()
                    .filter(|ns| Arc::ptr_eq(&self.route(ns).store, &route.store)),
            );
        }
        all.sort();
        all.dedup();
        Ok(all)
    }

    async fn versions(&self, id: &SecretId) -> Result<Vec<VersionInfo>, StoreError> {
        self.store(id.namespace()).versions(id).await
    }

    async fn version_named(&self, id: &SecretId, name: &str) -> Result<Option<u64>, StoreError> {
        self.store(id.namespace()).version_named(id, name).await
    }

    async fn delete(&self, actor: &Actor, id: &SecretId) -> Result<u64, StoreError> {
        self.writable(id)?.delete(actor, id).await
    }

    async fn undelete(
        &self,
        actor: &Actor,
        id: &SecretId,
        version: Option<u64>,
    ) -> Result<u64, StoreError> {
        self.writable(id)?.undelete(actor, id, version).await
    }

    async fn destroy(
        &self,
        actor: &Actor,
        id: &SecretId,
        version: Option<u64>,
    ) -> Result<Vec<u64>, StoreError> {
        self.writable(id)?.destroy(actor, id, version).await
    }

    async fn update_meta(
        &self,
        actor: &Actor,
        id: &SecretId,
        meta: &SecretMeta,
    ) -> Result<(), StoreError> {
        self.writable(id)?.update_meta(actor, id, meta).await
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

    async fn rotate_key(&self, actor: &Actor) -> Result<RotateReport, StoreError> {
        self.home.rotate_key(actor).await
    }

    async fn rekey(&self, actor: &Actor, new_master: &MasterKey) -> Result<(), StoreError> {
        self.home.rekey(actor, new_master).await
    }
}
