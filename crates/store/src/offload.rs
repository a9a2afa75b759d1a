//! The runtime an external manager's network calls run on.
//!
//! A `secret()` is resolved on a render thread that waits for the answer with a plain
//! `block_on` (`kestrel_secrets`), under whatever runtime the host has: the CLI's
//! current-thread one, whose only thread may be the one waiting. A future that needs that
//! runtime's I/O driver would then never finish. So each external manager owns one small
//! runtime thread of its own and hands its requests to it; awaiting the answer needs no
//! runtime at all.

use crate::StoreError;
use std::future::Future;

/// One runtime thread that runs a manager's requests.
#[derive(Debug)]
pub struct Offload {
    runtime: tokio::runtime::Runtime,
}

impl Offload {
    /// A runtime with one worker thread named after the manager (`kestrel-vault`).
    pub fn new(manager: &str) -> Result<Self, StoreError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(format!("kestrel-{manager}"))
            .enable_all()
            .build()
            .map_err(|e| StoreError::backend(format!("starting the {manager} client"), e))?;
        Ok(Self { runtime })
    }

    /// Runs `future` on the manager's thread and waits for its output from any thread or
    /// runtime.
    pub async fn run<F>(&self, future: F) -> F::Output
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match self.runtime.spawn(future).await {
            Ok(output) => output,
            // The task never panics by itself; a panic there is a bug to surface, not hide.
            Err(join) => std::panic::resume_unwind(join.into_panic()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use kestrel_secrets::{BackendError, EnvBackend, Reader, Resolver, SecretBackend, SecretValue};
    use std::sync::Arc;

    /// A backend whose answer needs a timer, run on its own runtime thread.
    struct Remote(Offload);

    #[async_trait]
    impl SecretBackend for Remote {
        fn name(&self) -> &str {
            "remote"
        }

        async fn get(
            &self,
            _reader: &Reader,
            _tenant: &str,
            _namespace: &str,
            _key: &str,
        ) -> Result<Option<SecretValue>, BackendError> {
            let answer = self.0.run(async {
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                SecretValue::new("from-afar".into())
            });
            Ok(Some(answer.await))
        }

        async fn list(&self, _tenant: &str, _namespace: &str) -> Result<Vec<String>, BackendError> {
            Ok(Vec::new())
        }
    }

    #[test]
    fn a_request_finishes_while_the_resolving_thread_blocks_the_only_runtime_thread() {
        let remote = Remote(Offload::new("test").unwrap());
        let resolver = Resolver::new(Some(Arc::new(remote)), Arc::new(EnvBackend::default()));
        let cli = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // The resolver waits synchronously on the CLI runtime's one thread, as a render may.
        let reader = Reader::Operator("ada".into());
        let found = cli.block_on(async { resolver.resolve(&reader, "main", "a", "K") });
        assert_eq!(found.unwrap().unwrap().expose_secret(), "from-afar");
    }
}
