//! From `secret('KEY')` to a value: the namespace walk, the negative cache, the execution scope.

use crate::{BackendError, MaskRegistry, SecretBackend, SecretValue};
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};

/// A backend failed while resolving a key; the message names the backend and the key.
#[derive(Debug)]
pub struct ResolveError {
    /// The backend that failed.
    pub backend: String,
    /// Why.
    pub error: BackendError,
}

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "secret backend '{}' failed: {}",
            self.backend, self.error
        )
    }
}

impl std::error::Error for ResolveError {}

/// The chain of backends: namespaced ones walked from the namespace up to its root, then the
/// global ones (the environment).
pub struct Resolver {
    backends: Vec<Arc<dyn SecretBackend>>,
}

impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.backends.iter().map(|b| b.name()).collect();
        f.debug_struct("Resolver")
            .field("backends", &names)
            .finish()
    }
}

impl Resolver {
    /// A resolver over `backends`, in the order given.
    pub fn new(backends: Vec<Arc<dyn SecretBackend>>) -> Self {
        Self { backends }
    }

    /// The value of `key` seen from `namespace`: its own, then its parents', then global.
    pub fn resolve(
        &self,
        tenant: &str,
        namespace: &str,
        key: &str,
    ) -> Result<Option<SecretValue>, ResolveError> {
        // Namespace outermost: a child's key shadows its parent's in every backend.
        for level in namespace_walk(namespace) {
            for backend in self.backends.iter().filter(|b| b.is_namespaced()) {
                if let Some(value) = fetch(backend.as_ref(), tenant, level, key)? {
                    return Ok(Some(value));
                }
            }
        }
        for backend in self.backends.iter().filter(|b| !b.is_namespaced()) {
            if let Some(value) = fetch(backend.as_ref(), tenant, namespace, key)? {
                return Ok(Some(value));
            }
        }
        Ok(None)
    }
}

/// One backend call; a failure stops the walk rather than falling through to a parent's value.
fn fetch(
    backend: &dyn SecretBackend,
    tenant: &str,
    namespace: &str,
    key: &str,
) -> Result<Option<SecretValue>, ResolveError> {
    block_on(backend.get(tenant, namespace, key)).map_err(|error| ResolveError {
        backend: backend.name().to_owned(),
        error,
    })
}

/// `a.b.c`, `a.b`, `a`: the namespace, then each parent up to the root (nothing for `""`).
fn namespace_walk(namespace: &str) -> impl Iterator<Item = &str> {
    let mut next = (!namespace.is_empty()).then_some(namespace);
    std::iter::from_fn(move || {
        let current = next?;
        next = current.rsplit_once('.').map(|(parent, _)| parent);
        Some(current)
    })
}

/// Cached answers by (namespace, key as written); `None` is a cached miss.
type Answers = HashMap<(String, String), Option<SecretValue>>;

/// What one execution resolved: a cache (hits and misses) and the execution's mask registry.
pub struct SecretScope {
    resolver: Arc<Resolver>,
    tenant: String,
    namespace: String,
    registry: Arc<MaskRegistry>,
    /// Answers by (namespace, key as written), misses included.
    cache: Mutex<Answers>,
}

impl fmt::Debug for SecretScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cached = self.cache().len();
        f.debug_struct("SecretScope")
            .field("tenant", &self.tenant)
            .field("namespace", &self.namespace)
            .field("cached", &cached)
            .finish_non_exhaustive()
    }
}

impl SecretScope {
    /// A scope for an execution of a flow in `namespace`.
    pub fn new(
        resolver: Arc<Resolver>,
        tenant: &str,
        namespace: &str,
        registry: Arc<MaskRegistry>,
    ) -> Self {
        Self {
            resolver,
            tenant: tenant.into(),
            namespace: namespace.into(),
            registry,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Resolves `key` from `namespace` (default: the flow's), caches the answer, and registers
    /// a found value in the mask registry under `key`.
    pub fn get(
        &self,
        key: &str,
        namespace: Option<&str>,
    ) -> Result<Option<SecretValue>, ResolveError> {
        let namespace = namespace.unwrap_or(&self.namespace);
        let cache_key = (namespace.to_owned(), key.to_owned());
        if let Some(answer) = self.cache().get(&cache_key) {
            return Ok(answer.clone());
        }
        // The lock is not held across the backends: two tasks resolving the same key at once
        // both ask, and both get the same answer.
        let answer = self.resolver.resolve(&self.tenant, namespace, key)?;
        if let Some(value) = &answer {
            self.registry.register(key, value.expose_secret());
        }
        self.cache().insert(cache_key, answer.clone());
        Ok(answer)
    }

    fn cache(&self) -> MutexGuard<'_, Answers> {
        // The map is only ever replaced entry by entry, so a poisoned lock holds no torn state.
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The execution's mask registry.
    pub fn registry(&self) -> &Arc<MaskRegistry> {
        &self.registry
    }

    /// The flow's namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }
}

/// Runs a backend future to completion on the calling thread (rendering is synchronous).
///
/// The calling thread parks until the future's waker unparks it. A future that needs a
/// runtime's reactor (tokio I/O, timers) must be polled on a thread of that runtime.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let waker = Waker::from(Arc::new(ThreadWaker(thread::current())));
    let mut context = Context::from_waker(&waker);
    loop {
        match future.as_mut().poll(&mut context) {
            Poll::Ready(output) => return output,
            // A spurious unpark only costs one more poll.
            Poll::Pending => thread::park(),
        }
    }
}

/// Wakes a parked [`block_on`] by unparking its thread.
struct ThreadWaker(Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A backend over fixed (namespace, key) pairs that counts its calls.
    struct Fake {
        name: &'static str,
        namespaced: bool,
        values: Vec<(&'static str, &'static str, &'static str)>,
        calls: AtomicUsize,
        asked: Mutex<Vec<String>>,
        failing: bool,
    }

    type Entry = (&'static str, &'static str, &'static str);

    impl Fake {
        fn new(name: &'static str, namespaced: bool, values: &[Entry]) -> Arc<Self> {
            Self::build(name, namespaced, values, false)
        }

        fn failing(name: &'static str) -> Arc<Self> {
            Self::build(name, true, &[], true)
        }

        fn build(
            name: &'static str,
            namespaced: bool,
            values: &[Entry],
            failing: bool,
        ) -> Arc<Self> {
            Arc::new(Self {
                name,
                namespaced,
                values: values.to_vec(),
                calls: AtomicUsize::new(0),
                asked: Mutex::new(Vec::new()),
                failing,
            })
        }
    }

    #[async_trait]
    impl SecretBackend for Fake {
        fn name(&self) -> &str {
            self.name
        }

        fn is_namespaced(&self) -> bool {
            self.namespaced
        }

        async fn get(
            &self,
            _tenant: &str,
            namespace: &str,
            key: &str,
        ) -> Result<Option<SecretValue>, BackendError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            self.asked
                .lock()
                .unwrap()
                .push(format!("{}:{namespace}", self.name));
            if self.failing {
                return Err(BackendError("database is locked".into()));
            }
            let found = self
                .values
                .iter()
                .find(|(ns, k, _)| (!self.namespaced || *ns == namespace) && *k == key);
            Ok(found.map(|(_, _, value)| SecretValue::new((*value).to_owned())))
        }

        async fn list(&self, _tenant: &str, _namespace: &str) -> Result<Vec<String>, BackendError> {
            Ok(Vec::new())
        }
    }

    fn resolved(resolver: &Resolver, namespace: &str, key: &str) -> Option<String> {
        resolver
            .resolve("main", namespace, key)
            .unwrap()
            .map(|value| value.expose_secret().to_owned())
    }

    #[test]
    fn walks_from_the_namespace_up_to_its_root_then_the_environment() {
        let store = Fake::new(
            "store",
            true,
            &[("company", "K", "root"), ("company.team", "K", "team")],
        );
        let env = Fake::new(
            "environment",
            false,
            &[("", "ENV_ONLY", "from env"), ("", "K", "env")],
        );
        let resolver = Resolver::new(vec![env.clone(), store.clone()]);
        assert_eq!(
            resolved(&resolver, "company.team.project", "K").as_deref(),
            Some("team")
        );
        assert_eq!(
            resolved(&resolver, "company.other", "K").as_deref(),
            Some("root")
        );
        assert_eq!(
            resolved(&resolver, "company.team", "ENV_ONLY").as_deref(),
            Some("from env")
        );
        assert_eq!(
            resolved(&resolver, "elsewhere", "K").as_deref(),
            Some("env")
        );
        assert_eq!(resolved(&resolver, "company", "NONE"), None);
        store.asked.lock().unwrap().clear();
        env.asked.lock().unwrap().clear();
        resolved(&resolver, "a.b.c", "NONE");
        assert_eq!(
            *store.asked.lock().unwrap(),
            ["store:a.b.c", "store:a.b", "store:a"]
        );
        assert_eq!(*env.asked.lock().unwrap(), ["environment:a.b.c"]);
    }

    #[test]
    fn a_child_shadows_its_parent_across_namespaced_backends() {
        let first = Fake::new("first", true, &[("a", "K", "parent in first")]);
        let second = Fake::new("second", true, &[("a.b", "K", "child in second")]);
        let resolver = Resolver::new(vec![first, second]);
        assert_eq!(
            resolved(&resolver, "a.b", "K").as_deref(),
            Some("child in second")
        );
    }

    #[test]
    fn a_failing_backend_stops_the_walk_and_is_named() {
        let failing = Fake::failing("embedded");
        let env = Fake::new("environment", false, &[("", "K", "env")]);
        let resolver = Resolver::new(vec![failing, env]);
        let error = resolver.resolve("main", "a", "K").unwrap_err();
        assert_eq!(
            error.to_string(),
            "secret backend 'embedded' failed: database is locked"
        );
    }

    #[test]
    fn namespace_walk_lists_parents() {
        assert_eq!(
            namespace_walk("a.b.c").collect::<Vec<_>>(),
            ["a.b.c", "a.b", "a"]
        );
        assert_eq!(namespace_walk("solo").collect::<Vec<_>>(), ["solo"]);
        assert_eq!(namespace_walk("").count(), 0);
    }

    fn scope(backend: Arc<Fake>) -> SecretScope {
        let resolver = Arc::new(Resolver::new(vec![backend]));
        SecretScope::new(
            resolver,
            "main",
            "company.team",
            Arc::new(MaskRegistry::new(4)),
        )
    }

    #[test]
    fn scope_caches_hits_and_misses() {
        let store = Fake::new("store", true, &[("company", "K", "hunter22")]);
        let scope = scope(store.clone());
        for _ in 0..3 {
            assert!(scope.get("K", None).unwrap().is_some());
            assert!(scope.get("MISSING", None).unwrap().is_none());
        }
        // One walk each: K found at the second level, MISSING after both levels.
        assert_eq!(store.calls.load(Ordering::SeqCst), 2 + 2);
    }

    #[test]
    fn scope_registers_what_it_finds_for_masking() {
        let store = Fake::new(
            "store",
            true,
            &[("company", "K", "hunter22"), ("other", "K", "other-secret")],
        );
        let scope = scope(store);
        assert_eq!(scope.registry().mask("hunter22"), "hunter22");
        scope.get("K", None).unwrap();
        assert_eq!(scope.registry().mask("hunter22"), crate::MASK);
        let other = scope.get("K", Some("other")).unwrap().unwrap();
        assert_eq!(other.expose_secret(), "other-secret");
        assert_eq!(scope.namespace(), "company.team");
        assert!(!format!("{scope:?}").contains("hunter22"));
    }

    #[test]
    fn block_on_polls_again_once_woken_from_another_thread() {
        use std::future::Future;
        use std::pin::Pin;
        use std::sync::atomic::AtomicBool;

        /// Ready only once a helper thread, started on the first poll, has set the flag.
        struct Later {
            done: Arc<AtomicBool>,
            started: bool,
        }

        impl Future for Later {
            type Output = &'static str;

            fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
                if self.done.load(Ordering::SeqCst) {
                    return Poll::Ready("done");
                }
                if !self.started {
                    self.started = true;
                    let (done, waker) = (Arc::clone(&self.done), cx.waker().clone());
                    thread::spawn(move || {
                        done.store(true, Ordering::SeqCst);
                        waker.wake();
                    });
                }
                Poll::Pending
            }
        }

        let later = Later {
            done: Arc::new(AtomicBool::new(false)),
            started: false,
        };
        assert_eq!(block_on(later), "done");
    }
}
