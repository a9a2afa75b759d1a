//! The backend story every secret backend runs (embedded, Vault, AWS), here against a real
//! OpenBao dev server, the manager composed as kestrel composes it: behind its cache, joined to
//! an embedded home store that keeps the audit trail. Without `bao` on PATH it says so and
//! passes, unless `KESTREL_REQUIRE_OPENBAO` is set.

#![allow(clippy::unwrap_used)] // Test code: a failure is a failed test.

mod common;

use async_trait::async_trait;
use common::{DevVault, dev_vault_or_skip, wait};
use kestrel_crypto::MasterKey;
use kestrel_store::conformance::backend::{Harness, run_all};
use kestrel_store::{
    CacheSettings, Cached, DEFAULT_MAX_VALUE_SIZE, External, SecretId, SecretManager, SecretStore,
};
use kestrel_store_sqlite::{SqliteStore, StoreOptions};
use kestrel_store_vault::{VaultAuth, VaultManager, VaultSettings};
use std::sync::{Arc, Mutex};
use std::time::Duration;

struct Vault {
    server: Mutex<DevVault>,
    settings: VaultSettings,
    home: Arc<dyn SecretStore>,
    _dir: tempfile::TempDir,
    caches: Mutex<Vec<Arc<Cached>>>,
}

impl Vault {
    async fn compose(&self, settings: VaultSettings, cache: CacheSettings) -> Arc<dyn SecretStore> {
        let manager: Arc<dyn SecretManager> = Arc::new(VaultManager::new(settings).unwrap());
        let cached = Arc::new(Cached::new(manager, cache, Arc::new(|_: &str| {})));
        self.caches.lock().unwrap().push(Arc::clone(&cached));
        let external = External::new(cached, Arc::clone(&self.home), DEFAULT_MAX_VALUE_SIZE);
        Arc::new(external.await.unwrap())
    }
}

#[async_trait]
impl Harness for Vault {
    fn name(&self) -> &str {
        "vault"
    }

    async fn store(&self, cache: CacheSettings) -> Arc<dyn SecretStore> {
        self.compose(self.settings.clone(), cache).await
    }

    async fn write_outside(&self, id: &SecretId, value: &str) {
        let other = VaultManager::new(self.settings.clone()).unwrap();
        let value = kestrel_secrets::SecretValue::new(value.into());
        other.set(id, &value, None).await.unwrap();
    }

    fn reads(&self) -> Option<usize> {
        let caches = self.caches.lock().unwrap();
        Some(caches.iter().map(|cache| cache.fetches()).sum())
    }

    fn stop(&self) -> bool {
        self.server.lock().unwrap().stop();
        true
    }

    fn start(&self) {
        self.server.lock().unwrap().start_again().unwrap();
    }

    async fn with_wrong_credentials(&self) -> Option<Arc<dyn SecretStore>> {
        let mut settings = self.settings.clone();
        settings.auth = VaultAuth::token("wrong-credential-token");
        Some(self.compose(settings, CacheSettings::default()).await)
    }

    async fn with_expiring_credentials(&self) -> Option<(Arc<dyn SecretStore>, Duration)> {
        let lifetime = Duration::from_secs(3);
        let auth = {
            let server = self.server.lock().unwrap();
            server.app_role("story", lifetime, lifetime, 0).unwrap()
        };
        let mut settings = self.settings.clone();
        settings.auth = auth;
        Some((
            self.compose(settings, CacheSettings::default()).await,
            lifetime,
        ))
    }
}

#[test]
fn vault_runs_the_backend_story() {
    let Some(server) = dev_vault_or_skip("the backend story") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let home = SqliteStore::open(
        dir.path(),
        MasterKey::generate().unwrap(),
        StoreOptions::default(),
    )
    .unwrap();
    let harness = Vault {
        settings: server.settings(),
        server: Mutex::new(server),
        home: Arc::new(home),
        _dir: dir,
        caches: Mutex::new(Vec::new()),
    };
    wait(run_all(&harness));
}
