//! The backend story: what kestrel promises of a secret backend as users meet it, run by the
//! embedded store, Vault/OpenBao and AWS Secrets Manager alike from their tests:
//! `kestrel_store::conformance::backend::run_all(&harness).await`. Each backend's harness says
//! how to build the store as kestrel composes it, how to change a value behind kestrel's back,
//! and how to stop the server, where it has one. A step a backend cannot take (the embedded
//! store has no server to stop) is skipped, saying so.

use crate::{
    Actor, AuditAction, AuditFilter, AuditedBackend, CacheSettings, Route, Routed, SecretId,
    SecretStore, StoreError,
};
use async_trait::async_trait;
use kestrel_secrets::{EnvBackend, ReadPolicy, Reader, Resolver, SecretValue};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a backend's tests provide.
#[async_trait]
pub trait Harness: Send + Sync {
    /// The backend's name in messages (`embedded`, `vault`, `aws-secret-manager`).
    fn name(&self) -> &str;

    /// The backend as kestrel composes it (an external manager behind `cache` and joined to a
    /// home store; the embedded store as it is), over secrets nobody else uses.
    async fn store(&self, cache: CacheSettings) -> Arc<dyn SecretStore>;

    /// Sets `id` to `value` the way another tool would, not through `store`.
    async fn write_outside(&self, id: &SecretId, value: &str);

    /// How many reads of values kestrel has asked the backend for so far
    /// ([`crate::Cached::fetches`]); `None` when it cannot tell.
    fn reads(&self) -> Option<usize>;

    /// Stops the backend's server; `false` when it has none.
    fn stop(&self) -> bool;

    /// Starts it again (an emulator may come back empty).
    fn start(&self);

    /// The backend as `store` composes it, with credentials it refuses; `None` when it has
    /// no credentials (the embedded store's key is checked when it opens).
    async fn with_wrong_credentials(&self) -> Option<Arc<dyn SecretStore>>;

    /// The backend with credentials that expire after the duration returned (and that kestrel
    /// must renew); `None` when its credentials do not expire.
    async fn with_expiring_credentials(&self) -> Option<(Arc<dyn SecretStore>, Duration)>;
}

fn id(namespace: &str, key: &str) -> SecretId {
    SecretId::main(namespace, key).expect("conformance names are valid")
}

fn user() -> Actor {
    Actor::User("conformance".into())
}

async fn set(store: &dyn SecretStore, id: &SecretId, value: &str) {
    store
        .set(&user(), id, &SecretValue::new(value.into()), None)
        .await
        .expect("set");
}

async fn value(store: &dyn SecretStore, id: &SecretId) -> Option<String> {
    store
        .get(id, None)
        .await
        .expect("get")
        .map(|r| r.value.expose_secret().to_owned())
}

/// A cache that keeps answers for the whole story, unless a step says otherwise.
fn long_cache() -> CacheSettings {
    CacheSettings {
        ttl: Duration::from_secs(3600),
        ..CacheSettings::default()
    }
}

/// Runs every step.
pub async fn run_all(harness: &dyn Harness) {
    values_versions_and_lists(harness).await;
    inheritance_and_subkeys_through_the_resolver(harness).await;
    read_only_mode_refuses_writes_and_serves_reads(harness).await;
    writes_through_kestrel_are_seen_at_once_and_others_within_the_ttl(harness).await;
    concurrent_reads_of_one_key_make_one_call(harness).await;
    a_stopped_backend_fails_reads_naming_itself_and_recovers(harness).await;
    wrong_credentials_are_refused_without_showing_them(harness).await;
    expiring_credentials_are_renewed(harness).await;
}

/// Set, get, versions, list, delete and restore, as the CLI and the API use them.
pub async fn values_versions_and_lists(harness: &dyn Harness) {
    let store = harness.store(long_cache()).await;
    let key = id("story.values", "DB_PASSWORD");
    assert_eq!(value(store.as_ref(), &key).await, None, "absent");
    set(store.as_ref(), &key, "first").await;
    set(store.as_ref(), &key, "second").await;
    assert_eq!(value(store.as_ref(), &key).await.as_deref(), Some("second"));
    let versions = store.versions(&key).await.expect("versions");
    assert_eq!(versions.len(), 2, "{versions:?}");
    let first = store
        .get(&key, Some(versions[0].version))
        .await
        .expect("get a version")
        .expect("kept");
    assert_eq!(first.value.expose_secret(), "first");
    let listed = store.list("main", "story.values").await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].key, "DB_PASSWORD");
    store.delete(&user(), &key).await.expect("delete");
    assert_eq!(value(store.as_ref(), &key).await, None, "deleted");
    store.undelete(&user(), &key, None).await.expect("undelete");
    assert_eq!(value(store.as_ref(), &key).await.as_deref(), Some("second"));
    let audit = store
        .audit(&AuditFilter {
            namespace: Some("story.values".into()),
            ..AuditFilter::default()
        })
        .await
        .expect("audit");
    let actions: Vec<AuditAction> = audit.iter().map(|entry| entry.action).collect();
    for action in [AuditAction::Set, AuditAction::Delete, AuditAction::Undelete] {
        assert!(actions.contains(&action), "{action} audited: {actions:?}");
    }
}

/// A flow's `secret()` walks its namespace and the parents, a child's key shadowing its
/// parent's; a JSON value keeps its fields for `subkey`; every read is audited.
pub async fn inheritance_and_subkeys_through_the_resolver(harness: &dyn Harness) {
    let store = harness.store(long_cache()).await;
    set(store.as_ref(), &id("story.walk", "SHARED"), "root").await;
    set(store.as_ref(), &id("story.walk.team", "SHARED"), "team").await;
    let json = r#"{"user":"admin","password":"pw-in-json"}"#;
    set(store.as_ref(), &id("story.walk", "DB"), json).await;
    let backend = Arc::new(AuditedBackend::new(Arc::clone(&store)));
    let resolver = Resolver::new(Some(backend), Arc::new(EnvBackend::default()))
        .with_policy(ReadPolicy::default());
    let reader = Reader::Execution {
        id: "story-exec".into(),
        namespace: "story.walk.team.project".into(),
        flow_id: "f".into(),
        triggered_by: "user:ada".into(),
    };
    let resolve = |key: &str| {
        resolver
            .resolve(&reader, "main", "story.walk.team.project", key)
            .expect("resolve")
            .map(|v| v.expose_secret().to_owned())
    };
    assert_eq!(
        resolve("SHARED").as_deref(),
        Some("team"),
        "the child shadows"
    );
    let db = resolve("DB").expect("inherited from the root");
    let fields: serde_json::Value = serde_json::from_str(&db).expect("JSON kept");
    assert_eq!(fields["password"], "pw-in-json");
    assert_eq!(resolve("NOWHERE"), None);
    let reads = store
        .audit(&AuditFilter {
            namespace: Some("story.walk".into()),
            ..AuditFilter::default()
        })
        .await
        .expect("audit");
    let by_execution = reads
        .iter()
        .filter(|e| e.action == AuditAction::Read)
        .filter(|e| e.actor == Actor::Execution("story-exec by user:ada".into()));
    assert_eq!(
        by_execution.count(),
        1,
        "DB read once, audited with its reader"
    );
}

/// A read-only backend refuses every write, naming itself and the mode, and still serves
/// what it holds.
pub async fn read_only_mode_refuses_writes_and_serves_reads(harness: &dyn Harness) {
    let store = harness.store(long_cache()).await;
    let key = id("story.locked", "KEY");
    set(store.as_ref(), &key, "kept").await;
    let route = |read_only| Route {
        store: Arc::clone(&store),
        read_only,
    };
    let routed = Routed::new(
        Arc::clone(&store),
        route(false),
        vec![("story.locked".into(), route(true))],
    );
    let refused = routed
        .set(&user(), &key, &SecretValue::new("new".into()), None)
        .await
        .expect_err("read-only");
    assert!(matches!(refused, StoreError::ReadOnly { .. }));
    let message = refused.to_string();
    assert!(
        message.contains(&format!("{} backend", store.name())),
        "{message}"
    );
    assert!(message.contains("read-only"), "{message}");
    assert!(routed.delete(&user(), &key).await.is_err());
    let read = routed.get(&key, None).await.expect("get").expect("kept");
    assert_eq!(read.value.expose_secret(), "kept");
}

/// A write through kestrel is read back at once; a write behind kestrel's back is seen when
/// the TTL ends (at once for the embedded store, which has no TTL).
pub async fn writes_through_kestrel_are_seen_at_once_and_others_within_the_ttl(
    harness: &dyn Harness,
) {
    let ttl = Duration::from_millis(300);
    let store = harness
        .store(CacheSettings {
            ttl,
            ..CacheSettings::default()
        })
        .await;
    let key = id("story.fresh", "ROTATED");
    set(store.as_ref(), &key, "v1").await;
    assert_eq!(value(store.as_ref(), &key).await.as_deref(), Some("v1"));
    set(store.as_ref(), &key, "v2").await;
    assert_eq!(
        value(store.as_ref(), &key).await.as_deref(),
        Some("v2"),
        "own write"
    );
    harness.write_outside(&key, "v3").await;
    let start = Instant::now();
    while value(store.as_ref(), &key).await.as_deref() != Some("v3") {
        assert!(
            start.elapsed() < ttl + Duration::from_secs(5),
            "a change made outside kestrel is seen once the TTL ends"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A thousand concurrent reads of one uncached key make one call to the backend.
pub async fn concurrent_reads_of_one_key_make_one_call(harness: &dyn Harness) {
    let store = harness.store(long_cache()).await;
    let key = id("story.flight", "POPULAR");
    set(store.as_ref(), &key, "v").await;
    let Some(before) = harness.reads() else {
        eprintln!(
            "{}: reads are not counted; single flight skipped",
            harness.name()
        );
        return;
    };
    let reads = (0..1000).map(|_| store.get(&key, None));
    let answers = futures_util::future::join_all(reads).await;
    assert!(answers.iter().all(|a| matches!(a, Ok(Some(_)))));
    let calls = harness.reads().unwrap_or(0) - before;
    assert_eq!(calls, 1, "one backend call for a thousand readers");
}

/// With the backend stopped, an uncached read fails naming the backend and the key (never a
/// value) and a cached one is answered stale; started again, reads work.
pub async fn a_stopped_backend_fails_reads_naming_itself_and_recovers(harness: &dyn Harness) {
    let ttl = Duration::from_millis(1);
    let store = harness
        .store(CacheSettings {
            ttl,
            ..CacheSettings::default()
        })
        .await;
    let cached = id("story.down", "CACHED");
    set(store.as_ref(), &cached, "cached-value").await;
    assert!(value(store.as_ref(), &cached).await.is_some());
    if !harness.stop() {
        eprintln!("{}: no server to stop; step skipped", harness.name());
        return;
    }
    tokio::time::sleep(ttl * 2).await;
    let stale = store.get(&cached, None).await.expect("stale on error");
    assert_eq!(stale.expect("kept").value.expose_secret(), "cached-value");
    let never = id("story.down", "NEVER_READ");
    let error = store.get(&never, None).await.expect_err("down").to_string();
    assert!(error.contains(harness.name()), "{error}");
    assert!(error.contains("NEVER_READ"), "{error}");
    assert!(!error.contains("cached-value"), "{error}");
    harness.start();
    let after = id("story.down", "AFTER");
    set(store.as_ref(), &after, "back").await;
    assert_eq!(value(store.as_ref(), &after).await.as_deref(), Some("back"));
}

/// Wrong credentials fail every read with a message naming the backend, never the
/// credentials.
pub async fn wrong_credentials_are_refused_without_showing_them(harness: &dyn Harness) {
    let Some(store) = harness.with_wrong_credentials().await else {
        eprintln!("{}: no credentials; step skipped", harness.name());
        return;
    };
    let error = store
        .get(&id("story.creds", "KEY"), None)
        .await
        .expect_err("refused")
        .to_string();
    assert!(error.contains(harness.name()), "{error}");
    assert!(
        !error.to_lowercase().contains("wrong-credential"),
        "{error}"
    );
}

/// Credentials that expire are renewed: reads keep working past their lifetime.
pub async fn expiring_credentials_are_renewed(harness: &dyn Harness) {
    let Some((store, lifetime)) = harness.with_expiring_credentials().await else {
        eprintln!(
            "{}: credentials do not expire; step skipped",
            harness.name()
        );
        return;
    };
    let key = id("story.renew", "KEY");
    set(store.as_ref(), &key, "renewed").await;
    tokio::time::sleep(lifetime + Duration::from_secs(1)).await;
    let read = store
        .get(&key, Some(1))
        .await
        .expect("read past the lifetime");
    assert_eq!(read.expect("kept").value.expose_secret(), "renewed");
}
