//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)] // Test helpers: a failure is a failed test.

use kestrel_crypto::MasterKey;
use kestrel_secrets::SecretValue;
use kestrel_store::{Actor, SecretId, SecretStore};
use kestrel_store_sqlite::{SqliteStore, StoreOptions};
use std::path::Path;

pub fn open(dir: &Path, key: &MasterKey) -> SqliteStore {
    SqliteStore::open(dir, key.clone(), StoreOptions::default()).unwrap()
}

pub fn open_with(dir: &Path, key: &MasterKey, options: StoreOptions) -> SqliteStore {
    SqliteStore::open(dir, key.clone(), options).unwrap()
}

pub fn actor() -> Actor {
    Actor::User("tester".into())
}

pub fn id(namespace: &str, key: &str) -> SecretId {
    SecretId::main(namespace, key).unwrap()
}

/// Sets a value, synchronously (the store's futures complete at once).
pub fn set(store: &SqliteStore, id: &SecretId, value: &str) -> u64 {
    wait(store.set(&actor(), id, &SecretValue::new(value.into()), None)).unwrap()
}

/// The latest value (or a given version), synchronously.
pub fn get(store: &SqliteStore, id: &SecretId, version: Option<u64>) -> Option<String> {
    wait(store.get(id, version))
        .unwrap()
        .map(|r| r.value.expose_secret().to_owned())
}

/// Whether `needle` occurs anywhere in `haystack`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Runs a store call to its end on a current-thread runtime.
pub fn wait<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime")
        .block_on(future)
}
