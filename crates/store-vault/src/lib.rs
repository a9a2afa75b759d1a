//! Vault and OpenBao KV v2 as a kestrel secret manager: [`VaultManager`] implements
//! [`kestrel_store::SecretManager`] over Vault's HTTP API.
//!
//! [`VaultSettings`] say where the server is (address, `X-Vault-Namespace`, KV v2 mount,
//! prefix) and [`VaultAuth`] how kestrel logs in: a token, AppRole, Kubernetes or JWT. A login
//! happens on first use; its token is renewed at two thirds of its lease while renewal extends
//! it, and replaced by a new login after that, or at once when Vault refuses it (one retry).
//! Tokens and credentials live in zeroized memory and no `Debug` shows them.
//!
//! # Layout in Vault
//! The secret `KEY` of namespace `company.team` in tenant `main` lives at
//! `<mount>/data/<prefix>/main/company/team/KEY` (metadata at `<mount>/metadata/...`); a
//! folder is a child namespace. kestrel writes `{"value": "<the secret>"}`. Reading a version:
//! - data holding only `value` (a string): the secret is that string;
//! - data holding other fields too (written outside kestrel): the secret is the whole map as
//!   a JSON object, so `secret('KEY', subkey='user')` reaches `user` and `subkey='value'` the
//!   value.
//!
//! Versions are KV v2's, numbered as Vault numbers them; `delete` soft-deletes the current
//! version, `undelete` and `destroy` map to KV v2's, and `destroy` of every version deletes
//! the metadata (Vault then numbers the next write 1 again). Description and tags are KV v2
//! `custom_metadata`: `description`, and `tag.<key>` per tag.
//!
//! Every request runs on the manager's own [`kestrel_store::Offload`] thread, times out
//! after 10 s and reads at most 8 MiB. Errors name `vault`, what was being done and the key
//! or namespace; never a value or a token.
//!
//! The `testing` feature adds `testing::DevVault`, an OpenBao dev server for tests, this
//! crate's and other crates' (`scripts/services/openbao-install` installs `bao`).
//!
//! ```
//! use kestrel_store_vault::{VaultAuth, VaultManager, VaultSettings};
//! let mut settings = VaultSettings::new("http://127.0.0.1:8200", VaultAuth::app_role("r", "s"));
//! settings.prefix = "kestrel-prod".into();
//! assert!(!format!("{settings:?}").contains("\"s\""));
//! let manager = VaultManager::new(settings).unwrap(); // no request yet
//! assert_eq!(manager.address(), "http://127.0.0.1:8200");
//! ```

mod auth;
mod client;
mod kv;
mod paths;
mod settings;
#[cfg(feature = "testing")]
pub mod testing;

pub use settings::{VaultAuth, VaultSettings};

use async_trait::async_trait;
use kestrel_secrets::SecretValue;
use kestrel_store::{
    Offload, Revealed, SecretId, SecretInfo, SecretManager, SecretMeta, StoreError, VersionInfo,
};
use kv::Kv;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

/// A Vault or OpenBao server's KV v2 mount as a [`SecretManager`].
pub struct VaultManager {
    kv: Arc<Kv>,
    /// Always `Some` until dropped.
    offload: Option<Offload>,
}

impl Drop for VaultManager {
    fn drop(&mut self) {
        // A tokio runtime dropped inside another runtime's task panics ("Cannot drop a
        // runtime in a context where blocking is not allowed"): the server drops managers
        // there, so the runtime thread is shut down from a thread of its own.
        if let Some(offload) = self.offload.take()
            && tokio::runtime::Handle::try_current().is_ok()
        {
            std::thread::spawn(move || drop(offload));
        }
    }
}

impl fmt::Debug for VaultManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultManager")
            .field("address", &self.kv.client.address)
            .field("auth", &self.kv.client.auth)
            .field("mount", &self.kv.paths.mount())
            .finish_non_exhaustive()
    }
}

impl VaultManager {
    /// Checks `settings` and prepares the client; makes no request (the first use logs in).
    pub fn new(settings: VaultSettings) -> Result<Self, StoreError> {
        settings.validate()?;
        let kv = Kv {
            client: client::Client::new(&settings)?,
            paths: paths::Paths::new(&settings.mount, &settings.prefix),
        };
        Ok(Self {
            kv: Arc::new(kv),
            offload: Some(Offload::new("vault")?),
        })
    }

    /// The server's address, as configured without a trailing `/`.
    pub fn address(&self) -> &str {
        &self.kv.client.address
    }

    /// Runs `operation` on the manager's own runtime thread.
    async fn run<T, F, Fut>(&self, operation: F) -> Result<T, StoreError>
    where
        F: FnOnce(Arc<Kv>) -> Fut,
        Fut: Future<Output = Result<T, StoreError>> + Send + 'static,
        T: Send + 'static,
    {
        match &self.offload {
            Some(offload) => offload.run(operation(Arc::clone(&self.kv))).await,
            None => unreachable!("the runtime thread goes only when the manager is dropped"),
        }
    }
}

#[async_trait]
impl SecretManager for VaultManager {
    fn name(&self) -> &str {
        "vault"
    }

    async fn get(
        &self,
        id: &SecretId,
        version: Option<u64>,
    ) -> Result<Option<Revealed>, StoreError> {
        let id = id.clone();
        self.run(|kv| async move { kv.get(&id, version).await })
            .await
    }

    async fn set(
        &self,
        id: &SecretId,
        value: &SecretValue,
        meta: Option<&SecretMeta>,
    ) -> Result<u64, StoreError> {
        let (id, value, meta) = (id.clone(), value.clone(), meta.cloned());
        self.run(|kv| async move { kv.set(&id, &value, meta.as_ref()).await })
            .await
    }

    async fn get_meta(&self, id: &SecretId) -> Result<Option<SecretInfo>, StoreError> {
        let id = id.clone();
        self.run(|kv| async move { kv.get_meta(&id).await }).await
    }

    async fn list(&self, tenant: &str, namespace: &str) -> Result<Vec<SecretInfo>, StoreError> {
        let (tenant, namespace) = (tenant.to_owned(), namespace.to_owned());
        self.run(|kv| async move { kv.list(&tenant, &namespace).await })
            .await
    }

    async fn list_namespaces(&self, tenant: &str) -> Result<Vec<String>, StoreError> {
        let tenant = tenant.to_owned();
        self.run(|kv| async move { kv.list_namespaces(&tenant).await })
            .await
    }

    async fn versions(&self, id: &SecretId) -> Result<Vec<VersionInfo>, StoreError> {
        let id = id.clone();
        self.run(|kv| async move { kv.versions(&id).await }).await
    }

    async fn delete(&self, id: &SecretId) -> Result<u64, StoreError> {
        let id = id.clone();
        self.run(|kv| async move { kv.delete(&id).await }).await
    }

    async fn undelete(&self, id: &SecretId, version: Option<u64>) -> Result<u64, StoreError> {
        let id = id.clone();
        self.run(|kv| async move { kv.undelete(&id, version).await })
            .await
    }

    async fn destroy(&self, id: &SecretId, version: Option<u64>) -> Result<Vec<u64>, StoreError> {
        let id = id.clone();
        self.run(|kv| async move { kv.destroy(&id, version).await })
            .await
    }

    async fn update_meta(&self, id: &SecretId, meta: &SecretMeta) -> Result<(), StoreError> {
        let (id, meta) = (id.clone(), meta.clone());
        self.run(|kv| async move { kv.update_meta(&id, &meta).await })
            .await
    }

    async fn check(&self) -> Result<(), StoreError> {
        self.run(|kv| async move { kv.check().await }).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unused_manager() -> VaultManager {
        VaultManager::new(VaultSettings::new(
            "http://127.0.0.1:1",
            VaultAuth::token("t"),
        ))
        .unwrap()
    }

    #[tokio::test]
    async fn a_manager_dropped_inside_an_async_task_does_not_panic() {
        drop(unused_manager());
    }

    #[test]
    fn a_manager_dropped_outside_any_runtime_shuts_its_thread_down_there() {
        drop(unused_manager());
    }
}
