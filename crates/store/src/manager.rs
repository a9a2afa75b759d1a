//! The contract of a secret manager kestrel does not own (Vault/OpenBao KV v2, AWS Secrets
//! Manager): values, versions and metadata live there; kestrel keeps the audit trail in its
//! own database ([`crate::External`] joins the two into a [`crate::SecretStore`]).

use crate::{Revealed, SecretId, SecretInfo, SecretMeta, StoreError, VersionInfo};
use async_trait::async_trait;
use kestrel_secrets::SecretValue;

/// A secret manager outside kestrel, addressed by [`SecretId`].
///
/// The protocol follows [`crate::SecretStore`]'s, without actors, audit or key rotation:
/// - Versions are the manager's own, numbered from 1 oldest first as kestrel lists them; a
///   manager whose versions have identifiers of their own (AWS's `VersionId`) gives each
///   [`VersionInfo`] its `label` and `stages`, and [`SecretManager::version_named`] maps
///   either to the number.
/// - `get` without a version answers the current version; a deleted one is `None`.
/// - Errors never carry a value; a manager that cannot be reached or refuses kestrel's
///   credentials answers [`StoreError::Backend`] naming the manager and what was being done.
#[async_trait]
pub trait SecretManager: Send + Sync {
    /// The backend's kind for messages (`vault`, `aws-secret-manager`).
    fn name(&self) -> &str;

    /// The current version (`None`) or the given one, if readable.
    async fn get(
        &self,
        id: &SecretId,
        version: Option<u64>,
    ) -> Result<Option<Revealed>, StoreError>;

    /// Writes a new version and returns its number; `meta`: `None` keeps description and tags.
    async fn set(
        &self,
        id: &SecretId,
        value: &SecretValue,
        meta: Option<&SecretMeta>,
    ) -> Result<u64, StoreError>;

    /// Description, tags and current version, readable or not; `None` if never set.
    async fn get_meta(&self, id: &SecretId) -> Result<Option<SecretInfo>, StoreError>;

    /// The readable secrets of exactly `namespace`, sorted by key.
    async fn list(&self, tenant: &str, namespace: &str) -> Result<Vec<SecretInfo>, StoreError>;

    /// The namespaces holding at least one readable secret, sorted.
    async fn list_namespaces(&self, tenant: &str) -> Result<Vec<String>, StoreError>;

    /// Every version the manager keeps, oldest first; empty if never set.
    async fn versions(&self, id: &SecretId) -> Result<Vec<VersionInfo>, StoreError>;

    /// The number of the version `name` designates: a number, or the manager's own label or
    /// stage (`AWSCURRENT`, a `VersionId`). `None` when no version has that name.
    async fn version_named(&self, id: &SecretId, name: &str) -> Result<Option<u64>, StoreError> {
        if let Ok(number) = name.parse::<u64>() {
            return Ok(Some(number));
        }
        let versions = self.versions(id).await?;
        Ok(versions
            .iter()
            .find(|v| v.label.as_deref() == Some(name) || v.stages.iter().any(|s| s == name))
            .map(|v| v.version))
    }

    /// Soft-deletes the current version (recoverable) and returns its number.
    async fn delete(&self, id: &SecretId) -> Result<u64, StoreError>;

    /// Restores a soft-deleted version (default: the latest) and returns its number.
    async fn undelete(&self, id: &SecretId, version: Option<u64>) -> Result<u64, StoreError>;

    /// Destroys one version, or every version (`None`), for good; returns those destroyed.
    async fn destroy(&self, id: &SecretId, version: Option<u64>) -> Result<Vec<u64>, StoreError>;

    /// Replaces description and tags; [`StoreError::NotFound`] if never set.
    async fn update_meta(&self, id: &SecretId, meta: &SecretMeta) -> Result<(), StoreError>;

    /// Whether the manager answers and accepts kestrel's credentials (for `/health`).
    async fn check(&self) -> Result<(), StoreError>;
}
