//! The server's records and the execution queue on PostgreSQL: the conformance stories every
//! store runs, then what only a shared database shows: several nodes claiming from one queue,
//! a node's writes waking the others, and what the stories leave out (an execution written
//! with its task runs).

use kestrel_crypto::MasterKey;
use kestrel_secrets::SecretValue;
use kestrel_store::{
    AuthStore, ExecutionQueue, ExecutionRecord, ExecutionStore, LogRecord, SecretAccess,
    StateChange, TaskRunRecord, TokenRecord, conformance,
};
use kestrel_store_postgres::{PgOptions, PgStore, testing};
use serde_json::json;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::{Instant, timeout};

/// The bound on any wait for another node: generous, so only a lost wake-up fails it.
const WAKE_BOUND: Duration = Duration::from_secs(5);

async fn node(url: &str, key: &MasterKey) -> PgStore {
    PgStore::connect(url, key.clone(), PgOptions::default())
        .await
        .expect("connect")
}

/// The audit trail's table, created by the secrets migration; made here (the same shape) only
/// when that migration is not part of this build, so that `purge_audit` has a table to purge.
async fn ensure_audit_table(url: &str) {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    let driver = tokio::spawn(connection);
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS audit (
                 id BIGSERIAL PRIMARY KEY, at BIGINT NOT NULL, actor_kind TEXT NOT NULL,
                 actor_id TEXT NOT NULL, action TEXT NOT NULL, tenant TEXT, namespace TEXT,
                 key TEXT, version BIGINT)",
        )
        .await
        .expect("create the audit table");
    drop(client);
    let _ = driver.await;
}

fn queued(tenant: &str, id: &str) -> ExecutionRecord {
    let now = chrono::DateTime::from_timestamp_millis(chrono::Utc::now().timestamp_millis())
        .unwrap_or_default();
    ExecutionRecord {
        id: id.into(),
        tenant: tenant.into(),
        namespace: "nodes".into(),
        flow_id: "flow".into(),
        flow_revision: 1,
        state: "CREATED".into(),
        histories: vec![StateChange {
            state: "CREATED".into(),
            at: now,
        }],
        inputs: json!({}),
        outputs: json!({}),
        labels: json!([]),
        task_runs: Vec::new(),
        created_at: now,
        ended_at: None,
    }
}

#[tokio::test]
async fn the_server_story_holds() {
    let Some(url) = testing::fresh_database().await else {
        return;
    };
    let store = node(&url, &MasterKey::generate().unwrap()).await;
    ensure_audit_table(&url).await;
    conformance::server::run_all(&store).await;
}

#[tokio::test]
async fn the_queue_story_holds() {
    let Some(url) = testing::fresh_database().await else {
        return;
    };
    let store = node(&url, &MasterKey::generate().unwrap()).await;
    conformance::queue::run_all(Arc::new(store)).await;
}

#[tokio::test]
async fn an_execution_written_with_task_runs_and_inputs_comes_back_whole() {
    let Some(url) = testing::fresh_database().await else {
        return;
    };
    let store = node(&url, &MasterKey::generate().unwrap()).await;
    let mut record = queued("main", "with-runs");
    record.state = "RUNNING".into();
    record.outputs = json!({"z": 1, "a": [true, null]});
    record.task_runs = (1..=2)
        .map(|n| TaskRunRecord {
            id: format!("run-{n}"),
            task_id: format!("t{n}"),
            attempt: n,
            state: "RUNNING".into(),
            outputs: json!({"value": "******", "n": n}),
            error: (n == 2).then(|| "failed: ******".to_owned()),
            started_at: record.created_at,
            ended_at: None,
            detail: json!({"attempts": [{"state": {"current": "RUNNING"}}], "parentTaskRunId": null}),
        })
        .collect();
    let inputs = SecretValue::new(r#"{"password":"hunter2"}"#.into());
    store
        .create_claimed(&record, Some(&inputs), "w1")
        .await
        .expect("create");
    let got = store.get_execution("main", "with-runs").await.expect("get");
    assert_eq!(got.as_ref(), Some(&record));
    let opened = store
        .execution_inputs("main", "with-runs")
        .await
        .expect("inputs");
    assert_eq!(
        opened.as_ref().map(SecretValue::expose_secret),
        Some(inputs.expose_secret())
    );
    let taken = store
        .claim("main", "w2", 10, Duration::from_secs(3600))
        .await
        .expect("claim");
    assert!(taken.is_empty(), "an execution created held is not queued");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_claiming_together_take_each_execution_once() {
    let Some(url) = testing::fresh_database().await else {
        return;
    };
    let key = MasterKey::generate().unwrap();
    let nodes = [node(&url, &key).await, node(&url, &key).await];
    for i in 0..200 {
        let record = queued("nodes", &format!("e{i:03}"));
        nodes[i % 2]
            .create_execution(&record, None)
            .await
            .expect("create");
    }
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let store = nodes[w % 2].clone();
            tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let got = store
                        .claim("nodes", &format!("w{w}"), 4, Duration::from_secs(3600))
                        .await
                        .expect("claim");
                    if got.is_empty() {
                        return mine;
                    }
                    assert!(
                        got.iter()
                            .all(|c| c.claims == 1 && c.record.state == "RUNNING")
                    );
                    mine.extend(got.into_iter().map(|c| c.record.id));
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for worker in workers {
        all.extend(worker.await.expect("worker"));
    }
    let distinct: HashSet<&String> = all.iter().collect();
    assert_eq!(all.len(), 200, "every execution claimed once");
    assert_eq!(distinct.len(), 200);
    let left = nodes[0].unfinished_executions("nodes").await.expect("list");
    assert!(left.iter().all(|e| e.state == "RUNNING"));
}

/// Waits until `store`'s listener is up: it signals everything once it LISTENs, and this store
/// writes nothing itself.
async fn listening(store: &PgStore) {
    let deadline = Instant::now() + WAKE_BOUND;
    while *store.signals().on_queued().borrow() == 0 {
        assert!(Instant::now() < deadline, "the listener never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn one_nodes_writes_wake_the_others_waiters() {
    let Some(url) = testing::fresh_database().await else {
        return;
    };
    let key = MasterKey::generate().unwrap();
    let (writer, waiter) = (node(&url, &key).await, node(&url, &key).await);
    listening(&waiter).await;
    let mut on_queued = waiter.signals().on_queued();
    let mut on_ended = waiter.signals().on_ended();
    on_queued.borrow_and_update();

    let record = queued("wake", "wake-1");
    writer
        .create_execution(&record, None)
        .await
        .expect("create");
    timeout(WAKE_BOUND, on_queued.changed())
        .await
        .expect("a queued execution wakes the other node")
        .expect("signals live");

    let claimed = writer
        .claim("wake", "w1", 1, Duration::from_secs(3600))
        .await
        .expect("claim");
    let mut done = claimed[0].record.clone();
    done.state = "SUCCESS".into();
    done.ended_at = Some(done.created_at);
    assert!(writer.end_claimed(&done, &[], "w1").await.expect("end"));
    assert!(
        on_ended.ended_within(&done.id, WAKE_BOUND).await,
        "an ended execution wakes the other node's waiter for it"
    );
}

/// Waits until `b` has handled every notification of what `a` committed so far: PostgreSQL
/// delivers notifications in commit order, so a later queued execution's arriving means the
/// earlier ones did.
async fn notifications_delivered(a: &PgStore, b: &PgStore) {
    let mut on_queued = b.signals().on_queued();
    on_queued.borrow_and_update();
    let marker = queued("barrier", &uuid::Uuid::new_v4().to_string());
    a.create_execution(&marker, None)
        .await
        .expect("create a marker execution");
    timeout(WAKE_BOUND, on_queued.changed())
        .await
        .expect("the other node is told")
        .expect("signals live");
}

#[tokio::test]
async fn a_token_revoked_on_one_node_is_refused_by_the_other_at_once() {
    let Some(url) = testing::fresh_database().await else {
        return;
    };
    let key = MasterKey::generate().unwrap();
    // Tokens are trusted for an hour without a notification: only one can make b forget.
    let remembering = PgOptions {
        freshness_interval: Duration::from_secs(3600),
        ..PgOptions::default()
    };
    let a = PgStore::connect(&url, key.clone(), remembering.clone())
        .await
        .unwrap();
    let b = PgStore::connect(&url, key.clone(), remembering)
        .await
        .unwrap();
    listening(&b).await;
    let token = TokenRecord {
        name: "ci".into(),
        namespaces: vec!["company".into()],
        secrets: SecretAccess::Read,
        created_at: chrono::DateTime::UNIX_EPOCH,
        revoked_at: None,
    };
    a.add_token(&token, "hash-of-ci").await.unwrap();
    // b remembers the token only once the announcement of its creation has reached it.
    notifications_delivered(&a, &b).await;
    let found = b.token_by_hash("hash-of-ci").await.unwrap();
    assert_eq!(found.map(|t| t.namespaces), Some(token.namespaces.clone()));
    assert!(a.token_by_hash("hash-of-ci").await.unwrap().is_some());

    // Gone from the database behind the nodes' backs (no notification): b still knows it.
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let row = client
        .query_one(
            "DELETE FROM tokens WHERE name = 'ci' RETURNING token_hash",
            &[],
        )
        .await
        .unwrap();
    assert!(b.token_by_hash("hash-of-ci").await.unwrap().is_some());
    client
        .execute(
            "INSERT INTO tokens (name, token_hash, secrets, created_at) VALUES ('ci', $1, 'read', 0)",
            &[&row.get::<_, String>(0)],
        )
        .await
        .unwrap();

    assert!(a.revoke_token("ci").await.unwrap());
    // The node that revoked it forgets it at once, before any notification arrives.
    assert!(a.token_by_hash("hash-of-ci").await.unwrap().is_none());
    let deadline = Instant::now() + WAKE_BOUND;
    while b.token_by_hash("hash-of-ci").await.unwrap().is_some() {
        assert!(Instant::now() < deadline, "b still takes the revoked token");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_heartbeat_never_waits_for_an_execution_being_ended() {
    let Some(url) = testing::fresh_database().await else {
        return;
    };
    let key = MasterKey::generate().unwrap();
    let store = node(&url, &key).await;
    for id in ["beat-1", "beat-2"] {
        store
            .create_execution(&queued("beat", id), None)
            .await
            .unwrap();
    }
    let held = store
        .claim("beat", "w1", 2, Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(held.len(), 2);

    // Another transaction holds beat-1's row, as a batch of ends does while it is written.
    let (mut client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let ending = client.transaction().await.unwrap();
    ending
        .execute(
            "UPDATE executions SET updated_at = updated_at WHERE id = 'beat-1'",
            &[],
        )
        .await
        .unwrap();
    let beats = |at: &'static str| {
        let url = url.clone();
        async move {
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(connection);
            let row = client
                .query_one("SELECT heartbeat_at FROM executions WHERE id = $1", &[&at])
                .await
                .unwrap();
            row.get::<_, i64>(0)
        }
    };
    let before = beats("beat-2").await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    timeout(WAKE_BOUND, store.heartbeat("w1"))
        .await
        .expect("the heartbeat waited for the row being ended")
        .unwrap();
    assert!(
        beats("beat-2").await > before,
        "the other execution's heartbeat moved"
    );
    ending.rollback().await.unwrap();
}

/// `record` ended SUCCESS by its worker, with one task run and one log entry of its own.
fn ended_with_its_run(mut record: ExecutionRecord) -> (ExecutionRecord, Vec<LogRecord>) {
    record.state = "SUCCESS".into();
    record.ended_at = Some(record.created_at);
    record.task_runs = vec![TaskRunRecord {
        id: format!("{}-run", record.id),
        task_id: "t".into(),
        attempt: 1,
        state: "SUCCESS".into(),
        outputs: json!({"of": record.id}),
        error: None,
        started_at: record.created_at,
        ended_at: Some(record.created_at),
        detail: json!({}),
    }];
    let log = LogRecord {
        task_id: Some("t".into()),
        task_run_id: Some(format!("{}-run", record.id)),
        attempt: Some(1),
        at: record.created_at,
        level: "INFO".into(),
        message: format!("the log of {}", record.id),
    };
    (record, vec![log])
}

/// Writes made at the same time are written together (one transaction of array statements),
/// yet each is answered for itself: a duplicate among many creations fails alone, an end by a
/// worker that does not hold its execution is refused alone, and every other execution gets
/// its own task runs and logs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_made_together_are_answered_each_for_itself() {
    let Some(url) = testing::fresh_database().await else {
        return;
    };
    let store = node(&url, &MasterKey::generate().unwrap()).await;
    store
        .create_execution(&queued("batch", "e00"), None)
        .await
        .expect("create the first");
    let creations = (0..40).map(|i| {
        let store = store.clone();
        // e00 again: already written.
        tokio::spawn(async move {
            store
                .create_execution(&queued("batch", &format!("e{i:02}")), None)
                .await
        })
    });
    let created = futures_util::future::join_all(creations).await;
    for (i, result) in created.into_iter().enumerate() {
        let result = result.expect("task");
        assert_eq!(result.is_err(), i == 0, "creation {i}: {result:?}");
    }
    let claimed = store
        .claim("batch", "w1", 100, Duration::from_secs(3600))
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 40);
    let ends = claimed.into_iter().enumerate().map(|(i, claimed)| {
        let store = store.clone();
        // Every third end comes from a worker that does not hold the execution.
        let worker = if i % 3 == 0 { "w2" } else { "w1" };
        tokio::spawn(async move {
            let (record, logs) = ended_with_its_run(claimed.record);
            let written = store.end_claimed(&record, &logs, worker).await;
            (record, logs, worker, written)
        })
    });
    for end in futures_util::future::join_all(ends).await {
        let (record, logs, worker, written) = end.expect("task");
        assert_eq!(written.expect("end"), worker == "w1", "{}", record.id);
        let stored = store
            .get_execution("batch", &record.id)
            .await
            .expect("get")
            .expect("stored");
        let stored_logs = store
            .execution_logs("batch", &record.id)
            .await
            .expect("logs");
        if worker == "w1" {
            assert_eq!(stored, record);
            assert_eq!(stored_logs, logs);
        } else {
            assert_eq!(stored.state, "RUNNING", "a refused end changes nothing");
            assert!(stored.task_runs.is_empty() && stored_logs.is_empty());
        }
    }
}
