//! Secrets on PostgreSQL: the store's conformance stories, then what several nodes on one
//! database notice: a change on one node read by the others at once, rotations and rekeys
//! while the others work, distinct versions for concurrent writers, and a database that never
//! holds a value in clear. Each test has a database of its own.

#![allow(clippy::unwrap_used)] // Test code: a failure is a failed test.

use kestrel_crypto::MasterKey;
use kestrel_secrets::SecretValue;
use kestrel_store::conformance::backend::Harness;
use kestrel_store::{
    Actor, AuditFilter, CacheSettings, SecretId, SecretMeta, SecretStore, StoreError,
};
use kestrel_store_postgres::{PgOptions, PgStore, testing};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

fn ada() -> Actor {
    Actor::User("ada".into())
}

fn id(namespace: &str, key: &str) -> SecretId {
    SecretId::main(namespace, key).unwrap()
}

async fn node(url: &str, key: &MasterKey, options: PgOptions) -> PgStore {
    PgStore::connect(url, key.clone(), options).await.unwrap()
}

async fn set(store: &PgStore, id: &SecretId, value: &str) -> u64 {
    let value = SecretValue::new(value.into());
    store.set(&ada(), id, &value, None).await.unwrap()
}

async fn value(store: &PgStore, id: &SecretId, version: Option<u64>) -> Option<String> {
    let found = store.get(id, version).await.unwrap();
    found.map(|r| r.value.expose_secret().to_owned())
}

/// Reads `id` on `store` until it answers `expected`; how long that took.
async fn time_until(store: &PgStore, id: &SecretId, expected: Option<&str>) -> Duration {
    let start = Instant::now();
    while value(store, id, None).await.as_deref() != expected {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{expected:?} never read"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    start.elapsed()
}

/// A node whose backstop never fires during a test: only a notification empties its cache.
fn notified_only() -> PgOptions {
    PgOptions {
        freshness_interval: Duration::from_secs(3600),
        ..PgOptions::default()
    }
}

/// A plain connection to the test database, for looking at what it stores.
async fn raw(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

#[tokio::test]
async fn postgres_passes_the_store_conformance_story() {
    let Some(url) = testing::fresh_database().await else {
        return;
    };
    let store = node(&url, &MasterKey::generate().unwrap(), PgOptions::default()).await;
    assert_eq!(store.name(), "postgres");
    kestrel_store::conformance::run_all(Arc::new(store)).await;
}

#[tokio::test]
async fn the_story_holds_with_the_cache_off_and_three_versions_kept() {
    let Some(url) = testing::fresh_database().await else {
        return;
    };
    let options = PgOptions {
        cache_capacity: 0,
        versions_kept: 3,
        rotate_batch: 2,
        ..PgOptions::default()
    };
    let store = node(&url, &MasterKey::generate().unwrap(), options).await;
    kestrel_store::conformance::run_all(Arc::new(store)).await;
}

/// PostgreSQL in the backend story: a write "outside" is another node's.
struct Postgres {
    url: String,
    key: MasterKey,
    store: PgStore,
}

#[async_trait::async_trait]
impl Harness for Postgres {
    fn name(&self) -> &str {
        "postgres"
    }

    async fn store(&self, _cache: CacheSettings) -> Arc<dyn SecretStore> {
        Arc::new(self.store.clone())
    }

    async fn write_outside(&self, id: &SecretId, value: &str) {
        let other = node(&self.url, &self.key, PgOptions::default()).await;
        let actor = Actor::System("another-node".into());
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

// The story resolves through `Resolver`, which waits for the store with a plain `block_on` on
// the test's thread: the connections' tasks need another thread to run on meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_passes_the_backend_story() {
    let Some(url) = testing::fresh_database().await else {
        return;
    };
    let key = MasterKey::generate().unwrap();
    let store = node(&url, &key, notified_only()).await;
    kestrel_store::conformance::backend::run_all(&Postgres { url, key, store }).await;
}

#[tokio::test]
async fn a_change_on_one_node_is_read_by_the_other_within_a_second_by_notification() {
    let Some(url) = testing::fresh_database().await else {
        return;
    };
    let key = MasterKey::generate().unwrap();
    let (a, b) = (
        node(&url, &key, notified_only()).await,
        node(&url, &key, notified_only()).await,
    );
    let secret = id("company.team", "ROTATED");
    set(&a, &secret, "v1").await;
    // Cached on b: from now on only a notification can make b read the database again.
    assert_eq!(value(&b, &secret, None).await.as_deref(), Some("v1"));
    assert_eq!(value(&b, &secret, None).await.as_deref(), Some("v1"));

    set(&a, &secret, "v2").await;
    let took = time_until(&b, &secret, Some("v2")).await;
    assert!(took < Duration::from_secs(1), "b read v2 after {took:?}");

    assert_eq!(value(&a, &secret, None).await.as_deref(), Some("v2"));
    set(&b, &secret, "v3").await;
    let took = time_until(&a, &secret, Some("v3")).await;
    assert!(took < Duration::from_secs(1), "a read v3 after {took:?}");

    a.delete(&ada(), &secret).await.unwrap();
    let took = time_until(&b, &secret, None).await;
    assert!(
        took < Duration::from_secs(1),
        "b saw the deletion after {took:?}"
    );
}

#[tokio::test]
async fn a_change_made_while_the_listeners_were_disconnected_is_still_seen() {
    let Some(url) = testing::fresh_database().await else {
        return;
    };
    let key = MasterKey::generate().unwrap();
    let (a, b) = (
        node(&url, &key, PgOptions::default()).await,
        node(&url, &key, PgOptions::default()).await,
    );
    let secret = id("company.team", "MISSED");
    set(&a, &secret, "v1").await;
    assert_eq!(value(&b, &secret, None).await.as_deref(), Some("v1"));
    let db = raw(&url).await;
    let cut: i64 = db
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE datname = current_database() AND query LIKE 'LISTEN%'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(cut >= 1, "no listener found");
    set(&a, &secret, "v2").await;
    // The listener's reconnection, or the generation check, makes b read again.
    time_until(&b, &secret, Some("v2")).await;
}

#[tokio::test]
async fn concurrent_sets_of_one_key_on_two_nodes_make_distinct_versions() {
    let Some(url) = testing::fresh_database().await else {
        return;
    };
    let key = MasterKey::generate().unwrap();
    let options = PgOptions {
        versions_kept: 100,
        ..PgOptions::default()
    };
    let (a, b) = (
        node(&url, &key, options.clone()).await,
        node(&url, &key, options).await,
    );
    let secret = id("company.team", "BUSY");
    let writes = (0..20).map(|i| {
        let (store, secret) = (if i % 2 == 0 { a.clone() } else { b.clone() }, &secret);
        async move { (set(&store, secret, &format!("value-{i}")).await, i) }
    });
    let mut written = futures_util::future::join_all(writes).await;
    written.sort_unstable();
    let versions: Vec<u64> = written.iter().map(|(v, _)| *v).collect();
    assert_eq!(versions, (1..=20).collect::<Vec<u64>>());
    for (version, i) in written {
        let expected = format!("value-{i}");
        assert_eq!(
            value(&a, &secret, Some(version)).await,
            Some(expected.clone())
        );
        assert_eq!(value(&b, &secret, Some(version)).await, Some(expected));
    }
}

#[tokio::test]
async fn a_rotation_on_one_node_while_the_other_reads_and_writes_keeps_every_value() {
    let Some(url) = testing::fresh_database().await else {
        return;
    };
    let key = MasterKey::generate().unwrap();
    let options = PgOptions {
        rotate_batch: 3,
        ..PgOptions::default()
    };
    let (a, b) = (
        node(&url, &key, options.clone()).await,
        node(&url, &key, options).await,
    );
    let ids: Vec<SecretId> = (0..20)
        .map(|i| id("company.rotate", &format!("K{i}")))
        .collect();
    for (i, secret) in ids.iter().enumerate() {
        set(&a, secret, &format!("{i}-old")).await;
        set(&a, secret, &format!("{i}-new")).await;
    }

    let stop = Arc::new(AtomicBool::new(false));
    let writes = Arc::new(AtomicUsize::new(0));
    let worker = {
        let (b, ids, stop, writes) = (
            b.clone(),
            ids.clone(),
            Arc::clone(&stop),
            Arc::clone(&writes),
        );
        tokio::spawn(async move {
            let mut latest = HashMap::new();
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                let secret = &ids[n % ids.len()];
                let written = format!("b-{n}");
                set(&b, secret, &written).await;
                assert_eq!(value(&b, secret, None).await, Some(written.clone()));
                let other = &ids[(n + 7) % ids.len()];
                assert!(value(&b, other, None).await.is_some(), "{other} unreadable");
                assert!(
                    value(&b, other, Some(1)).await.is_some(),
                    "{other} v1 unreadable"
                );
                latest.insert(secret.clone(), written);
                writes.fetch_add(1, Ordering::SeqCst);
                n += 1;
            }
            latest
        })
    };
    let wait_for_writes = |at_least: usize| {
        let writes = Arc::clone(&writes);
        async move {
            let start = Instant::now();
            while writes.load(Ordering::SeqCst) < at_least {
                assert!(
                    start.elapsed() < Duration::from_secs(30),
                    "the writer stalled"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    wait_for_writes(5).await;
    let first = a.rotate_key(&ada()).await.unwrap();
    let second = a.rotate_key(&ada()).await.unwrap();
    assert!(second.key_id > first.key_id && !second.resumed);
    wait_for_writes(writes.load(Ordering::SeqCst) + 5).await;
    stop.store(true, Ordering::SeqCst);
    let latest = worker.await.unwrap();

    for (i, secret) in ids.iter().enumerate() {
        let expected = latest.get(secret).cloned().unwrap_or(format!("{i}-new"));
        for store in [&a, &b] {
            time_until(store, secret, Some(&expected)).await;
            for info in store.versions(secret).await.unwrap() {
                assert!(
                    value(store, secret, Some(info.version)).await.is_some(),
                    "{secret} v{} unreadable",
                    info.version
                );
            }
        }
    }
    let db = raw(&url).await;
    let behind: i64 = db
        .query_one(
            "SELECT count(*) FROM secret_versions
             WHERE sealed IS NOT NULL
               AND key_id <> (SELECT current_key FROM store_state WHERE singleton = 1)",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(behind, 0, "versions left under an old data key");
}

#[tokio::test]
async fn an_interrupted_rotation_is_finished_by_another_node() {
    let Some(url) = testing::fresh_database().await else {
        return;
    };
    let key = MasterKey::generate().unwrap();
    let options = PgOptions {
        rotate_batch: 2,
        ..PgOptions::default()
    };
    let (a, b) = (
        node(&url, &key, options.clone()).await,
        node(&url, &key, options).await,
    );
    let ids: Vec<SecretId> = (0..5)
        .map(|i| id("company.resume", &format!("K{i}")))
        .collect();
    for (i, secret) in ids.iter().enumerate() {
        set(&a, secret, &format!("{i}")).await;
    }
    assert!(a.rotate_key_partially(&ada(), 1).await.unwrap().is_none());
    let finished = b.rotate_key(&ada()).await.unwrap();
    assert!(finished.resumed, "{finished:?}");
    assert_eq!(finished.reencrypted, 3, "the versions the first batch left");
    for (i, secret) in ids.iter().enumerate() {
        for store in [&a, &b] {
            assert_eq!(value(store, secret, Some(1)).await, Some(format!("{i}")));
        }
    }
}

#[tokio::test]
async fn after_a_rekey_on_one_node_the_other_still_reads_and_writes() {
    let Some(url) = testing::fresh_database().await else {
        return;
    };
    let old = MasterKey::generate().unwrap();
    let (a, b) = (
        node(&url, &old, PgOptions::default()).await,
        node(&url, &old, PgOptions::default()).await,
    );
    let secret = id("company.team", "DB_PASSWORD");
    set(&a, &secret, "before").await;
    let new = MasterKey::generate().unwrap();
    a.rekey(&ada(), &new).await.unwrap();

    assert_eq!(value(&b, &secret, Some(1)).await.as_deref(), Some("before"));
    set(&b, &secret, "after").await;
    assert_eq!(value(&a, &secret, Some(2)).await.as_deref(), Some("after"));
    // A node still holding the old master key cannot add a data key the others cannot open.
    let refused = b.rotate_key(&ada()).await.unwrap_err();
    assert!(
        matches!(refused, StoreError::WrongMasterKey(_)),
        "{refused:?}"
    );
    let late = PgStore::connect(&url, old, PgOptions::default()).await;
    assert!(
        matches!(late, Err(StoreError::WrongMasterKey(_))),
        "{late:?}"
    );

    let restarted = node(&url, &new, PgOptions::default()).await;
    restarted.rotate_key(&ada()).await.unwrap();
    for store in [&a, &restarted] {
        assert_eq!(
            value(store, &secret, Some(1)).await.as_deref(),
            Some("before")
        );
        assert_eq!(
            value(store, &secret, Some(2)).await.as_deref(),
            Some("after")
        );
    }
}

#[tokio::test]
async fn the_database_and_the_audit_trail_never_hold_a_value() {
    let Some(url) = testing::fresh_database().await else {
        return;
    };
    let key = MasterKey::generate().unwrap();
    let store = node(&url, &key, PgOptions::default()).await;
    let values: Vec<String> = (0..3)
        .map(|i| format!("plaintext-{i}-{}", uuid::Uuid::new_v4()))
        .collect();
    let secret = id("company.team", "API_TOKEN");
    let meta = SecretMeta {
        description: Some("the billing API".into()),
        tags: Vec::new(),
    };
    for v in &values {
        let value = SecretValue::new(v.clone());
        store
            .set(&ada(), &secret, &value, Some(&meta))
            .await
            .unwrap();
    }
    let exec = Actor::Execution("exec-1".into());
    store.read(&exec, &secret, None).await.unwrap().unwrap();
    store.read(&exec, &secret, Some(1)).await.unwrap().unwrap();
    store.delete(&ada(), &secret).await.unwrap();
    store.undelete(&ada(), &secret, None).await.unwrap();
    store.rotate_key(&ada()).await.unwrap();
    store
        .rekey(&ada(), &MasterKey::generate().unwrap())
        .await
        .unwrap();

    let entries = store.audit(&AuditFilter::default()).await.unwrap();
    assert!(entries.len() >= 8, "{entries:?}");
    let shown = format!("{entries:?}");
    assert!(
        values.iter().all(|v| !shown.contains(v.as_str())),
        "{shown}"
    );

    let db = raw(&url).await;
    let columns = db
        .query(
            "SELECT table_name::text, column_name::text, data_type::text
             FROM information_schema.columns
             WHERE table_schema = 'public' AND data_type IN ('text', 'bytea')",
            &[],
        )
        .await
        .unwrap();
    let mut scanned = Vec::new();
    for column in &columns {
        let (table, name, kind): (String, String, String) =
            (column.get(0), column.get(1), column.get(2));
        let sql = format!(r#"SELECT "{name}" FROM "{table}" WHERE "{name}" IS NOT NULL"#);
        for row in db.query(&sql, &[]).await.unwrap() {
            let bytes = match kind.as_str() {
                "bytea" => row.get::<_, Vec<u8>>(0),
                _ => row.get::<_, String>(0).into_bytes(),
            };
            for v in &values {
                assert!(
                    !bytes.windows(v.len()).any(|w| w == v.as_bytes()),
                    "a value in clear in {table}.{name}"
                );
            }
        }
        scanned.push(format!("{table}.{name}"));
    }
    for expected in [
        "secret_versions.sealed",
        "audit.actor_id",
        "secrets.description",
    ] {
        assert!(
            scanned.iter().any(|s| s == expected),
            "{expected} not scanned: {scanned:?}"
        );
    }
}

#[tokio::test]
async fn a_value_over_max_size_is_refused_without_showing_it() {
    let Some(url) = testing::fresh_database().await else {
        return;
    };
    let options = PgOptions {
        max_value_size: 8,
        ..PgOptions::default()
    };
    let store = node(&url, &MasterKey::generate().unwrap(), options).await;
    let secret = id("company.team", "K");
    set(&store, &secret, "8 bytes!").await;
    let refused = store
        .set(&ada(), &secret, &SecretValue::new("nine byte".into()), None)
        .await
        .unwrap_err();
    assert_eq!(
        kestrel_store::value_too_large(&refused),
        Some(&kestrel_store::ValueTooLarge { max: 8 })
    );
    assert!(!refused.to_string().contains("nine byte"));
    assert_eq!(
        store.versions(&secret).await.unwrap().len(),
        1,
        "nothing stored"
    );
}
