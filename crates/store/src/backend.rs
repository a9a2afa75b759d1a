//! A store seen as a secret backend, every value it hands out recorded in the audit trail.

use crate::{Actor, SecretId, SecretStore};
use async_trait::async_trait;
use kestrel_secrets::{BackendError, Reader, SecretBackend, SecretValue};
use std::fmt;
use std::sync::Arc;

/// A [`SecretBackend`] over any [`SecretStore`]: each value `get` returns is first recorded as
/// a read by the [`Reader`] that asked (fail closed: no audit row, no value), and each read the
/// policy refused is recorded too. Put it in the [`kestrel_secrets::Resolver`] before the
/// environment backend.
#[derive(Clone)]
pub struct AuditedBackend {
    store: Arc<dyn SecretStore>,
}

impl fmt::Debug for AuditedBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditedBackend")
            .field("store", &self.store.name())
            .finish()
    }
}

impl AuditedBackend {
    /// A backend reading `store`.
    pub fn new(store: Arc<dyn SecretStore>) -> Self {
        Self { store }
    }
}

/// How the audit trail names a reader: an execution by its id and who triggered it, a
/// trigger or an operator as kestrel acting for them.
pub fn actor_of(reader: &Reader) -> Actor {
    match reader {
        Reader::Execution {
            id, triggered_by, ..
        } => Actor::Execution(format!("{id} by {triggered_by}")),
        Reader::Trigger { .. } | Reader::Operator(_) => Actor::System(reader.to_string()),
    }
}

fn backend_error(e: crate::StoreError) -> BackendError {
    BackendError(e.to_string())
}

#[async_trait]
impl SecretBackend for AuditedBackend {
    fn name(&self) -> &str {
        self.store.name()
    }

    async fn get(
        &self,
        reader: &Reader,
        tenant: &str,
        namespace: &str,
        key: &str,
    ) -> Result<Option<SecretValue>, BackendError> {
        // A name the store cannot hold is a miss here, so the walk goes on to the environment
        // (whose keys follow other rules).
        let Ok(id) = SecretId::new(tenant, namespace, key) else {
            return Ok(None);
        };
        let found = self
            .store
            .read(&actor_of(reader), &id, None)
            .await
            .map_err(backend_error)?;
        Ok(found.map(|r| r.value))
    }

    async fn record_refusal(
        &self,
        reader: &Reader,
        tenant: &str,
        namespace: &str,
        key: &str,
    ) -> Result<(), BackendError> {
        // An address the store cannot hold cannot be audited under it; the refusal stands.
        let Ok(id) = SecretId::new(tenant, namespace, key) else {
            return Ok(());
        };
        self.store
            .record_refusal(&actor_of(reader), &id)
            .await
            .map_err(backend_error)
    }

    async fn list(&self, tenant: &str, namespace: &str) -> Result<Vec<String>, BackendError> {
        let infos = self
            .store
            .list(tenant, namespace)
            .await
            .map_err(backend_error)?;
        let mut keys: Vec<String> = infos.into_iter().map(|i| i.key).collect();
        keys.sort();
        Ok(keys)
    }
}
