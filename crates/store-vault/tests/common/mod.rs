//! What the Vault tests share: a dev server or a skip, a manager, plain blocking calls.

#![allow(dead_code, unreachable_pub)] // Each test file uses its own part.

use kestrel_secrets::SecretValue;
use kestrel_store::{SecretId, SecretManager, SecretMeta, StoreError};
use kestrel_store_vault::{VaultManager, VaultSettings};
use std::future::Future;

pub use kestrel_store_vault::testing::{DevVault, dev_vault_or_skip};

/// Runs `future` to its end on a current-thread runtime of the test's own (the manager's
/// requests run on its own runtime thread, created and dropped outside this one).
pub fn wait<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(future)
}

/// A dev server, its settings and a manager on them; `None` when the test is skipped.
pub fn vault_and_manager(test: &str) -> Option<(DevVault, VaultSettings, VaultManager)> {
    let vault = dev_vault_or_skip(test)?;
    let settings = vault.settings();
    let manager = manager(settings.clone());
    Some((vault, settings, manager))
}

pub fn manager(settings: VaultSettings) -> VaultManager {
    VaultManager::new(settings).unwrap()
}

pub fn id(namespace: &str, key: &str) -> SecretId {
    SecretId::main(namespace, key).unwrap()
}

pub fn set(manager: &VaultManager, id: &SecretId, value: &str) -> u64 {
    wait(manager.set(id, &SecretValue::new(value.into()), None)).unwrap()
}

pub fn set_with(manager: &VaultManager, id: &SecretId, value: &str, meta: &SecretMeta) -> u64 {
    wait(manager.set(id, &SecretValue::new(value.into()), Some(meta))).unwrap()
}

pub fn value(manager: &VaultManager, id: &SecretId, version: Option<u64>) -> Option<String> {
    try_value(manager, id, version).unwrap()
}

pub fn try_value(
    manager: &VaultManager,
    id: &SecretId,
    version: Option<u64>,
) -> Result<Option<String>, StoreError> {
    Ok(wait(manager.get(id, version))?.map(|r| r.value.expose_secret().to_owned()))
}

pub fn is_not_found<T: std::fmt::Debug>(result: Result<T, StoreError>) -> bool {
    matches!(result, Err(StoreError::NotFound { .. }))
}
