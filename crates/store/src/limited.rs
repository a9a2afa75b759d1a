//! A rate limit toward an external manager: at most `rate` calls a second on average, bursts
//! of up to `rate` allowed; a call over the limit waits its turn (never fails for it), so that a
//! thousand executions reading a thousand different keys do not flood Vault or run up an AWS
//! bill. The wait runs on a runtime thread of its own, so any caller can await it.

use crate::{
    Offload, Revealed, SecretId, SecretInfo, SecretManager, SecretMeta, StoreError, VersionInfo,
};
use async_trait::async_trait;
use kestrel_secrets::SecretValue;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// A manager behind a rate limit.
pub struct Limited {
    manager: Arc<dyn SecretManager>,
    interval: Duration,
    burst: Duration,
    /// When the next call would be on schedule (GCRA's theoretical arrival time).
    next: Mutex<Instant>,
    timer: Offload,
}

impl std::fmt::Debug for Limited {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limited")
            .field("manager", &self.manager.name())
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

impl Limited {
    /// `manager`, called at most `per_second` times a second on average.
    pub fn new(manager: Arc<dyn SecretManager>, per_second: u32) -> Result<Self, StoreError> {
        let per_second = per_second.max(1);
        let interval = Duration::from_secs(1) / per_second;
        Ok(Self {
            timer: Offload::new(&format!("{}-limit", manager.name()))?,
            manager,
            interval,
            burst: interval * per_second,
            next: Mutex::new(Instant::now()),
        })
    }

    /// How long the call asking now must wait for its turn (and takes that turn).
    fn turn(&self, now: Instant) -> Duration {
        let mut next = self.next.lock().unwrap_or_else(PoisonError::into_inner);
        let scheduled = (*next).max(now);
        *next = scheduled + self.interval;
        (scheduled + self.interval).saturating_duration_since(now + self.burst)
    }

    async fn admit(&self) {
        let wait = self.turn(Instant::now());
        if !wait.is_zero() {
            self.timer.run(tokio::time::sleep(wait)).await;
        }
    }
}

#[async_trait]
impl SecretManager for Limited {
    fn name(&self) -> &str {
        self.manager.name()
    }

    async fn get(
        &self,
        id: &SecretId,
        version: Option<u64>,
    ) -> Result<Option<Revealed>, StoreError> {
        self.admit().await;
        self.manager.get(id, version).await
    }

    async fn set(
        &self,
        id: &SecretId,
        value: &SecretValue,
        meta: Option<&SecretMeta>,
    ) -> Result<u64, StoreError> {
        self.admit().await;
        self.manager.set(id, value, meta).await
    }

    async fn get_meta(&self, id: &SecretId) -> Result<Option<SecretInfo>, StoreError> {
        self.admit().await;
        self.manager.get_meta(id).await
    }

    async fn list(&self, tenant: &str, namespace: &str) -> Result<Vec<SecretInfo>, StoreError> {
        self.admit().await;
        self.manager.list(tenant, namespace).await
    }

    async fn list_namespaces(&self, tenant: &str) -> Result<Vec<String>, StoreError> {
        self.admit().await;
        self.manager.list_namespaces(tenant).await
    }

    async fn versions(&self, id: &SecretId) -> Result<Vec<VersionInfo>, StoreError> {
        self.admit().await;
        self.manager.versions(id).await
    }

    async fn version_named(&self, id: &SecretId, name: &str) -> Result<Option<u64>, StoreError> {
        self.admit().await;
        self.manager.version_named(id, name).await
    }

    async fn delete(&self, id: &SecretId) -> Result<u64, StoreError> {
        self.admit().await;
        self.manager.delete(id).await
    }

    async fn undelete(&self, id: &SecretId, version: Option<u64>) -> Result<u64, StoreError> {
        self.admit().await;
        self.manager.undelete(id, version).await
    }

    async fn destroy(&self, id: &SecretId, version: Option<u64>) -> Result<Vec<u64>, StoreError> {
        self.admit().await;
        self.manager.destroy(id, version).await
    }

    async fn update_meta(&self, id: &SecretId, meta: &SecretMeta) -> Result<(), StoreError> {
        self.admit().await;
        self.manager.update_meta(id, meta).await
    }

    async fn check(&self) -> Result<(), StoreError> {
        self.manager.check().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Counting;

    #[test]
    fn a_burst_passes_then_calls_are_spaced_at_the_rate() {
        let limited = Limited::new(Arc::new(Counting::default()), 10).unwrap();
        let start = Instant::now();
        // Ten calls at once are the burst: no wait.
        for _ in 0..10 {
            assert_eq!(limited.turn(start), Duration::ZERO);
        }
        // The next ones wait a tenth of a second more each.
        assert_eq!(limited.turn(start), Duration::from_millis(100));
        assert_eq!(limited.turn(start), Duration::from_millis(200));
        // A second later the schedule is only 0.2 s ahead: calls pass again.
        let later = start + Duration::from_secs(1);
        assert_eq!(limited.turn(later), Duration::ZERO);
    }
}
