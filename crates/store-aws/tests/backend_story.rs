//! The backend story every secret backend runs (embedded, Vault, AWS), here against moto's
//! server, the manager composed as kestrel composes it: behind its cache, joined to an
//! embedded home store that keeps the audit trail. Wrong credentials are tried on a second
//! moto that checks signatures as AWS does (the first one is stopped and started in the
//! story, and moto forgets its users when it stops). Without `moto_server` on PATH it says so
//! and passes, unless `KESTREL_REQUIRE_MOTO` is set.

#![allow(clippy::unwrap_used)] // Test code: a failure is a failed test.

use async_trait::async_trait;
use kestrel_crypto::MasterKey;
use kestrel_store::conformance::backend::{Harness, run_all};
use kestrel_store::{
    CacheSettings, Cached, DEFAULT_MAX_VALUE_SIZE, External, SecretId, SecretManager, SecretStore,
};
use kestrel_store_aws::testing::{DevAws, dev_aws_or_skip};
use kestrel_store_aws::{AwsManager, AwsSettings};
use kestrel_store_sqlite::{SqliteStore, StoreOptions};
use std::sync::{Arc, Mutex};
use std::time::Duration;

struct Aws {
    server: Mutex<DevAws>,
    settings: AwsSettings,
    checking: DevAws,
    home: Arc<dyn SecretStore>,
    _dir: tempfile::TempDir,
    caches: Mutex<Vec<Arc<Cached>>>,
}

impl Aws {
    async fn compose(&self, settings: &AwsSettings, cache: CacheSettings) -> Arc<dyn SecretStore> {
        let manager: Arc<dyn SecretManager> = Arc::new(AwsManager::new(settings).unwrap());
        let cached = Arc::new(Cached::new(manager, cache, Arc::new(|_: &str| {})));
        self.caches.lock().unwrap().push(Arc::clone(&cached));
        let external = External::new(cached, Arc::clone(&self.home), DEFAULT_MAX_VALUE_SIZE);
        Arc::new(external.await.unwrap())
    }
}

#[async_trait]
impl Harness for Aws {
    fn name(&self) -> &str {
        "aws-secret-manager"
    }

    async fn store(&self, cache: CacheSettings) -> Arc<dyn SecretStore> {
        self.compose(&self.settings, cache).await
    }

    async fn write_outside(&self, id: &SecretId, value: &str) {
        let other = AwsManager::new(&self.settings).unwrap();
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
        let settings = AwsSettings {
            secret_access_key: Some(zeroize::Zeroizing::new("wrong-credential-key".into())),
            ..self.checking.settings()
        };
        Some(self.compose(&settings, CacheSettings::default()).await)
    }

    /// Fixed keys do not expire; those of the chain do, and are read again five minutes
    /// before (`credentials.rs`), which no emulator's lifetime lets a test wait for.
    async fn with_expiring_credentials(&self) -> Option<(Arc<dyn SecretStore>, Duration)> {
        None
    }
}

#[tokio::test]
async fn aws_runs_the_backend_story() {
    let Some(server) = dev_aws_or_skip("the backend story") else {
        return;
    };
    let checking = DevAws::start_checking_signatures().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let home = SqliteStore::open(
        dir.path(),
        MasterKey::generate().unwrap(),
        StoreOptions::default(),
    )
    .unwrap();
    let harness = Aws {
        settings: server.settings(),
        server: Mutex::new(server),
        checking,
        home: Arc::new(home),
        _dir: dir,
        caches: Mutex::new(Vec::new()),
    };
    run_all(&harness).await;
}
