//! From `secret('KEY')` to a value: the namespace walk, the negative cache, the execution scope.

use crate::{BackendError, MaskRegistry, SecretBackend, SecretValue};
use std::fmt;
use std::sync::Arc;

/// A backend failed while resolving a key; the message names the backend and the key.
#[derive(Debug)]
pub struct ResolveError {
    /// The backend that failed.
    pub backend: String,
    /// Why.
    pub error: BackendError,
}

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "secret backend '{}' failed: {}", self.backend, self.error)
    }
}

impl std::error::Error for ResolveError {}

/// The chain of backends: namespaced ones walked from the namespace up to its root, then the
/// global ones (the environment).
pub struct Resolver {
    backends: Vec<Arc<dyn SecretBackend>>,
}

impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.backends.iter().map(|b| b.name()).collect();
        f.debug_struct("Resolver").field("backends", &names).finish()
    }
}

impl Resolver {
    /// A resolver over `backends`, in the order given.
    pub fn new(backends: Vec<Arc<dyn SecretBackend>>) -> Self {
        Self { backends }
    }

    /// The value of `key` seen from `namespace`: its own, then its parents', then global.
    pub fn resolve(
        &self,
        tenant: &str,
        namespace: &str,
        key: &str,
    ) -> Result<Option<SecretValue>, ResolveError> {
        todo!("{tenant}{namespace}{key}")
    }
}

/// What one execution resolved: a cache (hits and misses) and the execution's mask registry.
#[derive(Debug)]
pub struct SecretScope {
    resolver: Arc<Resolver>,
    tenant: String,
    namespace: String,
    registry: Arc<MaskRegistry>,
}

impl SecretScope {
    /// A scope for an execution of a flow in `namespace`.
    pub fn new(
        resolver: Arc<Resolver>,
        tenant: &str,
        namespace: &str,
        registry: Arc<MaskRegistry>,
    ) -> Self {
        Self {
            resolver,
            tenant: tenant.into(),
            namespace: namespace.into(),
            registry,
        }
    }

    /// Resolves `key` from `namespace` (default: the flow's), caches the answer, and registers
    /// a found value in the mask registry under `key`.
    pub fn get(
        &self,
        key: &str,
        namespace: Option<&str>,
    ) -> Result<Option<SecretValue>, ResolveError> {
        todo!("{key}{namespace:?}{:?}{}{}", self.resolver, self.tenant, self.namespace)
    }

    /// The execution's mask registry.
    pub fn registry(&self) -> &Arc<MaskRegistry> {
        &self.registry
    }

    /// The flow's namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }
}

/// Runs a backend future to completion on the calling thread (rendering is synchronous).
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    todo!("{:?}", std::mem::size_of_val(&future))
}
