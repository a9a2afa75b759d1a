//! The contract every secret source implements.

use crate::{Reader, SecretValue};
use async_trait::async_trait;
use std::fmt;

/// A failure of a backend itself (unreachable, corrupt, denied); never carries a secret value.
#[derive(Debug)]
pub struct BackendError(pub String);

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BackendError {}

/// A source of secrets, addressed by tenant, namespace and key.
///
/// `get` answers `Ok(None)` for a key the backend does not hold in exactly that namespace: the
/// walk to parent namespaces is the [`crate::Resolver`]'s job, not the backend's. A backend
/// that has no notion of namespaces (the environment) answers the same for every namespace.
/// Whether `reader` may read at all was decided before `get` is called (the policy lives in
/// the resolver alone); a backend that keeps an audit trail records `reader` with the read.
#[async_trait]
pub trait SecretBackend: Send + Sync {
    /// A short name for messages (`environment`, `embedded`, `vault`).
    fn name(&self) -> &str;

    /// The value of `key` in exactly `namespace`, if the backend holds one, read for `reader`.
    async fn get(
        &self,
        reader: &Reader,
        tenant: &str,
        namespace: &str,
        key: &str,
    ) -> Result<Option<SecretValue>, BackendError>;

    /// Records that the policy refused `reader` the secrets of `namespace` (for backends that
    /// keep an audit trail; others have nothing to do).
    async fn record_refusal(
        &self,
        reader: &Reader,
        tenant: &str,
        namespace: &str,
        key: &str,
    ) -> Result<(), BackendError> {
        let _ = (reader, tenant, namespace, key);
        Ok(())
    }

    /// The keys held in exactly `namespace`, sorted.
    async fn list(&self, tenant: &str, namespace: &str) -> Result<Vec<String>, BackendError>;
}
