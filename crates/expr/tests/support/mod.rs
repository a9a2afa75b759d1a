//! A secret scope over an in-memory backend, for tests and benchmarks.

use async_trait::async_trait;
use kestrel_secrets::{
    BackendError, MaskRegistry, Reader, Resolver, SecretBackend, SecretScope, SecretValue,
};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Secrets held in memory, the same in every namespace.
pub(crate) struct MemoryBackend(pub(crate) BTreeMap<String, String>);

#[async_trait]
impl SecretBackend for MemoryBackend {
    fn name(&self) -> &str {
        "memory"
    }

    async fn get(
        &self,
        _: &Reader,
        _: &str,
        _: &str,
        key: &str,
    ) -> Result<Option<SecretValue>, BackendError> {
        Ok(self.0.get(key).map(|v| SecretValue::new(v.clone())))
    }

    async fn list(&self, _: &str, _: &str) -> Result<Vec<String>, BackendError> {
        Ok(self.0.keys().cloned().collect())
    }
}

/// A scope for namespace `company.team` over `secrets`, with its own registry.
pub(crate) fn scope(secrets: BTreeMap<String, String>) -> Arc<SecretScope> {
    let resolver = Resolver::new(None, Arc::new(MemoryBackend(secrets)));
    let registry = Arc::new(MaskRegistry::new(4));
    Arc::new(SecretScope::new(
        Arc::new(resolver),
        Reader::Operator("tests".into()),
        "main",
        "company.team",
        registry,
    ))
}
