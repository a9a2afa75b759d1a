//! The store contract's conformance story, run against SQLite.

#![allow(clippy::unwrap_used)] // Test code: a failure is a failed test.

use kestrel_crypto::MasterKey;
use kestrel_secrets::SecretValue;
use kestrel_store::conformance::backend::Harness;
use kestrel_store::{Actor, CacheSettings, SecretId, SecretStore};
use kestrel_store_sqlite::{SqliteStore, StoreOptions};
use std::sync::Arc;
use std::time::Duration;

#[tokio::test]
async fn sqlite_passes_the_store_conformance_story() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(
        dir.path(),
        MasterKey::generate().unwrap(),
        StoreOptions::default(),
    )
    .unwrap();
    kestrel_store::conformance::run_all(Arc::new(store)).await;
}

#[tokio::test]
async fn the_story_holds_with_the_cache_off_and_three_versions_kept() {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions {
        cache_capacity: 0,
        versions_kept: 3,
        rotate_batch: 2,
        ..StoreOptions::default()
    };
    let store = SqliteStore::open(dir.path(), MasterKey::generate().unwrap(), options).unwrap();
    kestrel_store::conformance::run_all(Arc::new(store)).await;
}

#[tokio::test]
async fn sqlite_passes_the_server_records_story() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(
        dir.path(),
        MasterKey::generate().unwrap(),
        StoreOptions::default(),
    )
    .unwrap();
    kestrel_store::conformance::server::run_all(&store).await;
}

#[tokio::test]
async fn sqlite_passes_the_queue_story() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(
        dir.path(),
        MasterKey::generate().unwrap(),
        StoreOptions::default(),
    )
    .unwrap();
    kestrel_store::conformance::queue::run_all(Arc::new(store)).await;
}

#[tokio::test]
async fn the_story_holds_with_checkpoints_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions {
        background_checkpoint: Some(std::time::Duration::from_millis(10)),
        ..StoreOptions::default()
    };
    let store = SqliteStore::open(dir.path(), MasterKey::generate().unwrap(), options).unwrap();
    let file = dir.path().join(kestrel_store_sqlite::FILE_NAME);
    let size = || std::fs::metadata(&file).unwrap().len();
    let before = size();
    kestrel_store::conformance::run_all(Arc::new(store.clone())).await;
    kestrel_store::conformance::server::run_all(&store).await;
    // The checkpoint thread moves what the WAL holds into the database file.
    for _ in 0..500 {
        if size() > before {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(size() > before, "nothing was checkpointed: {before} bytes");
}

/// The embedded store in the backend story: no server to stop, no credentials but its key,
/// always current (no TTL); a write "outside" is another process's handle on the file.
struct Embedded {
    dir: tempfile::TempDir,
    key: MasterKey,
    store: SqliteStore,
}

#[async_trait::async_trait]
impl Harness for Embedded {
    fn name(&self) -> &str {
        "embedded"
    }

    async fn store(&self, _cache: CacheSettings) -> Arc<dyn SecretStore> {
        Arc::new(self.store.clone())
    }

    async fn write_outside(&self, id: &SecretId, value: &str) {
        let other =
            SqliteStore::open(self.dir.path(), self.key.clone(), StoreOptions::default()).unwrap();
        let actor = Actor::System("another-process".into());
        let value = SecretValue::new(value.into());
        other.set(&actor, id, &value, None).await.unwrap();
    }

    fn reads(&self) -> Option<usize> {
        None
    }

    fn stop(&self) -> bool {
        false
    }

    fn start(&self) {}

    async fn with_wrong_credentials(&self) -> Option<Arc<dyn SecretStore>> {
        None
    }

    async fn with_expiring_credentials(&self) -> Option<(Arc<dyn SecretStore>, Duration)> {
        None
    }
}

#[tokio::test]
async fn the_embedded_store_passes_the_backend_story() {
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate().unwrap();
    let store = SqliteStore::open(dir.path(), key.clone(), StoreOptions::default()).unwrap();
    kestrel_store::conformance::backend::run_all(&Embedded { dir, key, store }).await;
}
