//! A store seen as a secret backend, every value it hands out recorded in the audit trail.

use crate::{Actor, SecretId, SecretStore};
use async_trait::async_trait;
use kestrel_secrets::{BackendError, SecretBackend, SecretValue};
use std::fmt;
use std::sync::Arc;

/// A [`SecretBackend`] over any [`SecretStore`], acting for one [`Actor`]: each value `get`
/// returns is first recorded as a read by that actor (fail closed: no audit row, no value).
/// Build one per execution (`Actor::Execution(id)`) or per person, and put it in the
/// [`kestrel_secrets::Resolver`] before the environment backend.
#[derive(Clone)]
pub struct AuditedBackend {
    store: Arc<dyn SecretStore>,
    actor: Actor,
}

impl fmt::Debug for AuditedBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditedBackend")
            .field("store", &self.store.name())
            .field("actor", &self.actor)
            .finish()
    }
}

impl AuditedBackend {
    /// A backend reading `store` on behalf of `actor`.
    pub fn new(store: Arc<dyn SecretStore>, actor: Actor) -> Self {
        Self { store, actor }
    }

    /// Who the reads are recorded for.
    pub fn actor(&self) -> &Actor {
        &self.actor
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

    fn is_namespaced(&self) -> bool {
        true
    }

    async fn get(
        &self,
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
            .read(&self.actor, &id, None)
            .await
            .map_err(backend_error)?;
        Ok(found.map(|r| r.value))
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
