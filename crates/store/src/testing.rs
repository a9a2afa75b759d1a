//! A manager for the tests of the layers in front of managers (cache, rate limit).

use crate::{Revealed, SecretId, SecretInfo, SecretManager, SecretMeta, StoreError, VersionInfo};
use async_trait::async_trait;
use kestrel_secrets::SecretValue;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// A manager holding `K` = `v1` in namespace `a`, counting its reads; it can be told to
/// fail, or to hold every read until the gate opens.
#[derive(Default)]
pub(crate) struct Counting {
    pub(crate) reads: AtomicUsize,
    pub(crate) failing: AtomicBool,
    pub(crate) gate: Option<tokio::sync::Semaphore>,
}

#[async_trait]
impl SecretManager for Counting {
    fn name(&self) -> &str {
        "counting"
    }

    async fn get(
        &self,
        id: &SecretId,
        _version: Option<u64>,
    ) -> Result<Option<Revealed>, StoreError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        if let Some(gate) = &self.gate {
            let _pass = gate.acquire().await;
        }
        if self.failing.load(Ordering::SeqCst) {
            return Err(StoreError::backend(
                "counting: reading",
                "connection refused",
            ));
        }
        let value = (id.key() == "K").then(|| Revealed {
            version: 1,
            value: SecretValue::new("v1".into()),
        });
        Ok(value)
    }

    async fn set(
        &self,
        _: &SecretId,
        _: &SecretValue,
        _: Option<&SecretMeta>,
    ) -> Result<u64, StoreError> {
        Ok(1)
    }

    async fn get_meta(&self, _: &SecretId) -> Result<Option<SecretInfo>, StoreError> {
        Ok(None)
    }

    async fn list(&self, _: &str, _: &str) -> Result<Vec<SecretInfo>, StoreError> {
        Ok(Vec::new())
    }

    async fn list_namespaces(&self, _: &str) -> Result<Vec<String>, StoreError> {
        Ok(Vec::new())
    }

    async fn versions(&self, _: &SecretId) -> Result<Vec<VersionInfo>, StoreError> {
        Ok(Vec::new())
    }

    async fn delete(&self, _: &SecretId) -> Result<u64, StoreError> {
        Ok(1)
    }

    async fn undelete(&self, _: &SecretId, _: Option<u64>) -> Result<u64, StoreError> {
        Ok(1)
    }

    async fn destroy(&self, _: &SecretId, _: Option<u64>) -> Result<Vec<u64>, StoreError> {
        Ok(vec![1])
    }

    async fn update_meta(&self, _: &SecretId, _: &SecretMeta) -> Result<(), StoreError> {
        Ok(())
    }

    async fn check(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
