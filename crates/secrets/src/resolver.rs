//! From `secret('KEY')` to a value: the policy check, the namespace walk, the negative cache,
//! the execution scope.

use crate::policy::with_ancestors;
use crate::{BackendError, MaskRegistry, ReadPolicy, Reader, Refusal, SecretBackend, SecretValue};
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};

/// Why a key could not be resolved; never carries a value.
#[derive(Debug)]
pub enum ResolveError {
    /// A backend failed; the message names it.
    Backend {
        /// The backend that failed.
        backend: String,
        /// Why.
        error: BackendError,
    },
    /// The policy refused the reader that namespace's secrets.
    Refused(Refusal),
}

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResolveError::Backend { backend, error } => {
                write!(f, "secret backend '{backend}' failed: {error}")
            }
            ResolveError::Refused(refusal) => refusal.fmt(f),
        }
    }
}

impl std::error::Error for ResolveError {}

/// The one place secret sources are composed and the read policy is checked: the namespaced
/// backend (the host's store, whatever backends it routes to) walked from the namespace up to
/// its root, then the one global backend (the environment).
pub struct Resolver {
    namespaced: Option<Arc<dyn SecretBackend>>,
    global: Arc<dyn SecretBackend>,
    policy: ReadPolicy,
}

impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resolver")
            .field("namespaced", &self.namespaced.as_ref().map(|b| b.name()))
            .field("global", &self.global.name())
            .field("policy", &self.policy)
            .finish()
    }
}

impl Resolver {
    /// A resolver over `namespaced` (if the host has a store) and then `global`, under the
    /// default policy (a flow reads its namespace and its ancestors only).
    pub fn new(namespaced: Option<Arc<dyn SecretBackend>>, global: Arc<dyn SecretBackend>) -> Self {
        Self {
            namespaced,
            global,
            policy: ReadPolicy::default(),
        }
    }

    /// This resolver with `policy` deciding who reads what.
    pub fn with_policy(self, policy: ReadPolicy) -> Self {
        Self { policy, ..self }
    }

    /// The value of `key` seen from `namespace` by `reader`: its own, then its parents', then
    /// global. A namespace the policy does not open to `reader` is refused before any lookup
    /// (and the refusal recorded), and never falls through to the environment; a parent that
    /// does not admit `reader` is skipped.
    pub fn resolve(
        &self,
        reader: &Reader,
        tenant: &str,
        namespace: &str,
        key: &str,
    ) -> Result<Option<SecretValue>, ResolveError> {
        if let Err(refusal) = self.policy.check(reader, namespace) {
            self.record_refusal(reader, tenant, namespace, key)?;
            return Err(ResolveError::Refused(refusal));
        }
        if let Some(backend) = &self.namespaced {
            let readable =
                with_ancestors(namespace).filter(|level| self.policy.check(reader, level).is_ok());
            for level in readable {
                if let Some(value) = fetch(backend.as_ref(), reader, tenant, level, key)? {
                    return Ok(Some(value));
                }
            }
        }
        fetch(self.global.as_ref(), reader, tenant, namespace, key)
    }

    /// Tells the namespaced backend (it keeps the audit trail) of a refused read; a backend
    /// that cannot record it fails the read as a backend error would.
    fn record_refusal(
        &self,
        reader: &Reader,
        tenant: &str,
        namespace: &str,
        key: &str,
    ) -> Result<(), ResolveError> {
        match &self.namespaced {
            Some(backend) => block_on(backend.record_refusal(reader, tenant, namespace, key))
                .map_err(|error| backend_error(backend.as_ref(), error)),
            None => Ok(()),
        }
    }
}

fn backend_error(backend: &dyn SecretBackend, error: BackendError) -> ResolveError {
    ResolveError::Backend {
        backend: backend.name().to_owned(),
        error,
    }
}

/// One backend call; a failure stops the walk rather than falling through to a parent's value.
fn fetch(
    backend: &dyn SecretBackend,
    reader: &Reader,
    tenant: &str,
    namespace: &str,
    key: &str,
) -> Result<Option<SecretValue>, ResolveError> {
    block_on(backend.get(reader, tenant, namespace, key))
        .map_err(|error| backend_error(backend, error))
}

/// Cached answers by (namespace, key as written); `None` is a cached miss.
type Answers = HashMap<(String, String), Option<SecretValue>>;

/// What one reader (an execution, a trigger, an operator) resolved: a cache (hits and misses)
/// and the mask registry of what it may show.
pub struct SecretScope {
    resolver: Arc<Resolver>,
    reader: Reader,
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
            .field("reader", &self.reader)
            .field("tenant", &self.tenant)
            .field("namespace", &self.namespace)
            .field("cached", &cached)
            .finish_non_exhaustive()
    }
}

impl SecretScope {
    /// A scope for `reader`, whose `secret('KEY')` looks in `namespace` by default (the
    /// flow's).
    pub fn new(
        resolver: Arc<Resolver>,
        reader: Reader,
        tenant: &str,
        namespace: &str,
        registry: Arc<MaskRegistry>,
    ) -> Self {
        Self {
            resolver,
            reader,
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
        let answer = self
            .resolver
            .resolve(&self.reader, &self.tenant, namespace, key)?;
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
/// The calling thread parks until the future's waker unparks it. A backend whose future needs a
/// runtime's reactor (tokio I/O, timers) runs that work on a runtime of its own
/// (`kestrel_store::Offload`): the thread parked here may be the only one of its host's.
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
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
    use crate::policy::flow_in;
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

        async fn get(
            &self,
            _reader: &Reader,
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

        async fn record_refusal(
            &self,
            reader: &Reader,
            _tenant: &str,
            namespace: &str,
            key: &str,
        ) -> Result<(), BackendError> {
            let refusal = format!("refused {reader} {namespace}/{key}");
            self.asked.lock().unwrap().push(refusal);
            Ok(())
        }

        async fn list(&self, _tenant: &str, _namespace: &str) -> Result<Vec<String>, BackendError> {
            Ok(Vec::new())
        }
    }

    /// The operator: the policy lets it read anywhere.
    fn operator() -> Reader {
        Reader::Operator("ada".into())
    }

    fn open(store: Arc<Fake>, env: Arc<Fake>) -> Resolver {
        Resolver::new(Some(store), env)
    }

    fn empty_env() -> Arc<Fake> {
        Fake::new("environment", false, &[])
    }

    fn resolved(resolver: &Resolver, namespace: &str, key: &str) -> Option<String> {
        resolver
            .resolve(&operator(), "main", namespace, key)
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
        let resolver = open(store.clone(), env.clone());
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
    fn a_failing_backend_stops_the_walk_and_is_named() {
        let failing = Fake::failing("embedded");
        let env = Fake::new("environment", false, &[("", "K", "env")]);
        let resolver = open(failing, env);
        let error = resolver.resolve(&operator(), "main", "a", "K").unwrap_err();
        assert_eq!(
            error.to_string(),
            "secret backend 'embedded' failed: database is locked"
        );
    }

    #[test]
    fn a_flow_reading_another_namespace_is_refused_before_any_lookup_and_recorded() {
        let store = Fake::new("store", true, &[("team.b", "X", "b-secret")]);
        let env = Fake::new("environment", false, &[("", "X", "env")]);
        let resolver = open(store.clone(), env.clone());
        let error = resolver
            .resolve(&flow_in("team.a"), "main", "team.b", "X")
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "namespace 'team.b' does not allow flows of namespace 'team.a' to read its secrets \
             (namespaces.team.b.allowed-namespaces)"
        );
        assert_eq!(
            *store.asked.lock().unwrap(),
            ["refused execution:e1 team.b/X"],
            "no lookup, one audited refusal"
        );
        assert!(env.asked.lock().unwrap().is_empty(), "no fall-through");
    }

    #[test]
    fn parents_that_do_not_admit_the_flow_are_skipped() {
        let store = Fake::new("store", true, &[("other", "K", "parent-of-shared")]);
        let policy = ReadPolicy::new(std::collections::BTreeMap::from([(
            "other.shared".to_owned(),
            vec!["team".to_owned()],
        )]));
        let resolver = open(store.clone(), empty_env()).with_policy(policy);
        let found = resolver
            .resolve(&flow_in("team.a"), "main", "other.shared", "K")
            .unwrap();
        assert!(found.is_none());
        assert_eq!(*store.asked.lock().unwrap(), ["store:other.shared"]);
    }

    fn scope(backend: Arc<Fake>) -> SecretScope {
        let resolver = Arc::new(open(backend, empty_env()));
        SecretScope::new(
            resolver,
            operator(),
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
