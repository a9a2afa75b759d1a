//! The story of the server's records ([`FlowStore`], [`ExecutionStore`], [`Retention`],
//! [`AuthStore`], and the audit trail's purge), run by every implementation from its tests:
//! `kestrel_store::conformance::server::run_all(&store).await` on a new, empty store.

use crate::{
    Actor, AuthStore, ExecutionQuery, ExecutionRecord, ExecutionStore, FlowStore, LogRecord,
    Retention, SecretAccess, SecretId, SecretStore, StateChange, StoreError, TaskRunRecord,
    TokenRecord, UserRecord,
};
use chrono::{DateTime, Duration, Utc};
use kestrel_secrets::SecretValue;
use serde_json::json;

/// Runs every step on `store`, which must be new and empty.
pub async fn run_all<S>(store: &S)
where
    S: FlowStore + ExecutionStore + Retention + AuthStore + SecretStore,
{
    flows_keep_every_revision(store).await;
    flows_list_by_namespace_and_children(store).await;
    executions_round_trip_with_task_runs_and_logs(store).await;
    transitions_happen_once(store).await;
    searches_page_and_filter(store).await;
    retention_purges_ended_executions(store).await;
    the_audit_chain_survives_a_purge(store).await;
    users_and_tokens(store).await;
}

/// A purge of the audit trail's old rows leaves an anchor the rows after it verify from.
pub async fn the_audit_chain_survives_a_purge<S>(store: &S)
where
    S: SecretStore + Retention + ?Sized,
{
    let id = SecretId::new("main", "conformance.purge", "KEPT").expect("id");
    let actor = Actor::User("ada".into());
    let value = SecretValue::new("purged-chain-value".to_owned());
    store.set(&actor, &id, &value, None).await.expect("set");
    store.set(&actor, &id, &value, None).await.expect("set");
    store
        .purge_audit(Utc::now() + Duration::seconds(1))
        .await
        .expect("purge");
    store.set(&actor, &id, &value, None).await.expect("set");
    let report = store.verify_audit().await.expect("verify");
    assert!(report.breaks.is_empty(), "{report:?}");
    assert_eq!(
        report.chained, 1,
        "only the row after the purge: {report:?}"
    );
}

/// Create, update, delete and create again: revisions count up, the old ones stay readable.
pub async fn flows_keep_every_revision(store: &dyn FlowStore) {
    let (t, ns, id) = ("main", "conformance.flows", "hello");
    let first = store.create_flow(t, ns, id, "v1").await.expect("create");
    assert_eq!((first.revision, first.deleted), (1, false));
    let again = store.create_flow(t, ns, id, "v1").await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    let same = store.update_flow(t, ns, id, "v1").await.expect("update");
    assert_eq!(
        same.map(|f| f.revision),
        Some(1),
        "same source, same revision"
    );
    let second = store.update_flow(t, ns, id, "v2").await.expect("update");
    assert_eq!(second.map(|f| f.revision), Some(2));
    let latest = store.get_flow(t, ns, id, None).await.expect("get");
    assert_eq!(
        latest.map(|f| (f.revision, f.source)),
        Some((2, "v2".into()))
    );
    let old = store.get_flow(t, ns, id, Some(1)).await.expect("get");
    assert_eq!(old.map(|f| f.source).as_deref(), Some("v1"));
    assert!(store.delete_flow(t, ns, id).await.expect("delete"));
    assert!(!store.delete_flow(t, ns, id).await.expect("delete twice"));
    assert!(
        store
            .get_flow(t, ns, id, None)
            .await
            .expect("get")
            .is_none()
    );
    assert!(
        store
            .update_flow(t, ns, id, "v3")
            .await
            .expect("update")
            .is_none()
    );
    let revived = store.create_flow(t, ns, id, "v3").await.expect("create");
    assert_eq!(revived.revision, 4, "the deletion was revision 3");
    let other_tenant = store.get_flow("other", ns, id, None).await.expect("get");
    assert!(other_tenant.is_none(), "tenants are apart");
}

/// A listing shows a namespace's live flows and its children's, not its siblings'.
pub async fn flows_list_by_namespace_and_children(store: &dyn FlowStore) {
    for (ns, id) in [
        ("conformance.list", "a"),
        ("conformance.list.child", "b"),
        ("conformance.listing", "c"),
    ] {
        store
            .create_flow("main", ns, id, "x")
            .await
            .expect("create");
    }
    store
        .delete_flow("main", "conformance.list", "a")
        .await
        .expect("delete");
    store
        .create_flow("main", "conformance.list", "z", "x")
        .await
        .expect("create");
    let listed = store
        .list_flows("main", Some("conformance.list"))
        .await
        .expect("list");
    let names: Vec<(String, String)> = listed.into_iter().map(|f| (f.namespace, f.id)).collect();
    assert_eq!(
        names,
        [
            ("conformance.list".into(), "z".into()),
            ("conformance.list.child".into(), "b".into())
        ]
    );
    let all = store.list_flows("main", None).await.expect("list");
    assert!(all.iter().any(|f| f.namespace == "conformance.listing"));
}

/// Now, to the millisecond: what stores keep.
fn now() -> DateTime<Utc> {
    DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap_or_default()
}

fn execution(id: &str, namespace: &str, state: &str) -> ExecutionRecord {
    let now = now();
    ExecutionRecord {
        id: id.into(),
        tenant: "main".into(),
        namespace: namespace.into(),
        flow_id: "flow".into(),
        flow_revision: 1,
        state: state.into(),
        histories: vec![StateChange {
            state: state.into(),
            at: now,
        }],
        inputs: json!({"name": "ada", "password": "******"}),
        outputs: json!({}),
        labels: json!([{"key": "team", "value": "core"}]),
        task_runs: Vec::new(),
        created_at: now,
        ended_at: None,
    }
}

fn ended(mut record: ExecutionRecord, state: &str) -> ExecutionRecord {
    let now = now();
    record.state = state.into();
    record.histories.push(StateChange {
        state: state.into(),
        at: now,
    });
    record.ended_at = Some(now);
    record
}

fn log(task: &str, message: &str) -> LogRecord {
    LogRecord {
        task_id: Some(task.into()),
        task_run_id: Some(format!("{task}-run")),
        attempt: Some(1),
        at: now(),
        level: "INFO".into(),
        message: message.into(),
    }
}

/// An execution comes back as written: task runs, outputs, histories, logs in order; its
/// sealed inputs open until it ends, then are gone.
pub async fn executions_round_trip_with_task_runs_and_logs(store: &dyn ExecutionStore) {
    let record = execution("conformance-exec-1", "conformance.exec", "CREATED");
    let inputs = SecretValue::new(r#"{"password":"hunter2"}"#.into());
    store
        .create_execution(&record, Some(&inputs))
        .await
        .expect("create");
    let got = store.get_execution("main", &record.id).await.expect("get");
    assert_eq!(got.as_ref(), Some(&record));
    let opened = store
        .execution_inputs("main", &record.id)
        .await
        .expect("inputs");
    assert_eq!(
        opened.as_ref().map(SecretValue::expose_secret),
        Some(inputs.expose_secret())
    );
    let mut done = ended(record.clone(), "SUCCESS");
    done.outputs = json!({"answer": 42});
    done.task_runs = vec![TaskRunRecord {
        id: "t1-run".into(),
        task_id: "t1".into(),
        attempt: 1,
        state: "SUCCESS".into(),
        outputs: json!({"value": "******"}),
        error: None,
        started_at: now(),
        ended_at: Some(now()),
        detail: json!({"attempts": [{"state": {"current": "SUCCESS"}}]}),
    }];
    let logs = [log("t1", "first"), log("t1", "second")];
    store.end_execution(&done, &logs).await.expect("end");
    let got = store.get_execution("main", &record.id).await.expect("get");
    assert_eq!(got.as_ref(), Some(&done));
    let messages: Vec<String> = store
        .execution_logs("main", &record.id)
        .await
        .expect("logs")
        .into_iter()
        .map(|l| l.message)
        .collect();
    assert_eq!(messages, ["first", "second"]);
    let forgotten = store
        .execution_inputs("main", &record.id)
        .await
        .expect("inputs");
    assert!(forgotten.is_none(), "an ended execution keeps no inputs");
    let elsewhere = store.get_execution("other", &record.id).await.expect("get");
    assert!(elsewhere.is_none(), "tenants are apart");
}

/// A transition from a state the execution already left does nothing: two writers cannot
/// both start, or both kill, one execution.
pub async fn transitions_happen_once(store: &dyn ExecutionStore) {
    let record = execution("conformance-exec-2", "conformance.exec", "CREATED");
    store.create_execution(&record, None).await.expect("create");
    let mut running = record.clone();
    running.state = "RUNNING".into();
    assert!(store.transition(&running, "CREATED").await.expect("start"));
    assert!(
        !store
            .transition(&running, "CREATED")
            .await
            .expect("start twice")
    );
    let unfinished = store.unfinished_executions("main").await.expect("list");
    assert!(
        unfinished
            .iter()
            .any(|e| e.id == record.id && e.state == "RUNNING")
    );
    store
        .end_execution(&ended(running, "KILLED"), &[])
        .await
        .expect("end");
    let unfinished = store.unfinished_executions("main").await.expect("list");
    assert!(unfinished.iter().all(|e| e.id != record.id));
}

/// Searches filter by namespace (and children), flow, state, reach, creation time and labels,
/// and page from 1.
pub async fn searches_page_and_filter(store: &dyn ExecutionStore) {
    let start = now() - Duration::hours(1);
    for i in 0..5 {
        let ns = if i < 3 {
            "conformance.search"
        } else {
            "conformance.search.child"
        };
        let mut record = execution(&format!("conformance-search-{i}"), ns, "CREATED");
        record.created_at = start + Duration::minutes(i);
        record.labels =
            json!([{"key": "team", "value": "core"}, {"key": "run", "value": i.to_string()}]);
        store.create_execution(&record, None).await.expect("create");
    }
    let query = |namespace: &str, page, size| ExecutionQuery {
        tenant: "main".into(),
        namespace: Some(namespace.into()),
        flow_id: Some("flow".into()),
        state: Some("CREATED".into()),
        page,
        size,
        ..ExecutionQuery::default()
    };
    let (first, total) = store
        .search_executions(&query("conformance.search", 1, 2))
        .await
        .expect("search");
    assert_eq!((first.len(), total), (2, 5));
    let (last, _) = store
        .search_executions(&query("conformance.search", 3, 2))
        .await
        .expect("search");
    assert_eq!(last.len(), 1);
    let (_, children) = store
        .search_executions(&query("conformance.search.child", 1, 10))
        .await
        .expect("search");
    assert_eq!(children, 2);
    let mut within = query("conformance.search", 1, 10);
    within.within = vec!["conformance.search.child".into()];
    let (_, reach) = store.search_executions(&within).await.expect("search");
    assert_eq!(reach, 2, "only the reachable namespaces count");
    let mut span = query("conformance.search", 1, 10);
    span.created_after = Some(start + Duration::minutes(1));
    span.created_before = Some(start + Duration::minutes(3));
    let (found, total) = store.search_executions(&span).await.expect("search");
    let ids: Vec<&str> = found.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(total, 2, "from the first instant, before the second");
    assert_eq!(ids, ["conformance-search-2", "conformance-search-1"]);
    let mut labelled = query("conformance.search", 1, 10);
    labelled.labels = vec![("team".into(), "core".into()), ("run".into(), "4".into())];
    let (found, _) = store.search_executions(&labelled).await.expect("search");
    assert_eq!(found.len(), 1, "every label asked for must match");
    assert_eq!(found[0].id, "conformance-search-4");
    labelled.labels = vec![("team".into(), "other".into())];
    let (_, none) = store.search_executions(&labelled).await.expect("search");
    assert_eq!(none, 0);
}

/// Purging removes what ended before the date, with its logs, and nothing running.
pub async fn retention_purges_ended_executions<S>(store: &S)
where
    S: ExecutionStore + Retention + ?Sized,
{
    let old = execution("conformance-old", "conformance.retention", "RUNNING");
    store.create_execution(&old, None).await.expect("create");
    store
        .end_execution(&ended(old.clone(), "SUCCESS"), &[log("t", "old")])
        .await
        .expect("end");
    let running = execution("conformance-running", "conformance.retention", "RUNNING");
    store
        .create_execution(&running, None)
        .await
        .expect("create");
    let purged = store
        .purge_executions(Utc::now() + Duration::seconds(1))
        .await
        .expect("purge");
    assert!(
        purged.iter().any(|gone| gone.id == old.id
            && gone.namespace == old.namespace
            && gone.flow_id == old.flow_id),
        "{purged:?}"
    );
    assert!(purged.iter().all(|gone| gone.id != running.id));
    assert!(
        store
            .get_execution("main", &old.id)
            .await
            .expect("get")
            .is_none()
    );
    assert!(
        store
            .execution_logs("main", &old.id)
            .await
            .expect("logs")
            .is_empty()
    );
    assert!(
        store
            .get_execution("main", &running.id)
            .await
            .expect("get")
            .is_some()
    );
    store
        .purge_audit(Utc::now() + Duration::seconds(1))
        .await
        .expect("purge the audit trail");
}

/// Users and tokens: names unique, tokens found by hash until revoked.
pub async fn users_and_tokens(store: &dyn AuthStore) {
    let user = UserRecord {
        name: "ada".into(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        namespaces: vec!["company".into(), "dev".into()],
        secrets: SecretAccess::Write,
        created_at: now(),
    };
    store.add_user(&user).await.expect("add");
    assert!(matches!(
        store.add_user(&user).await,
        Err(StoreError::Conflict(_))
    ));
    let got = store.user("ada").await.expect("user").expect("added");
    assert_eq!(
        (got.namespaces, got.secrets),
        (user.namespaces.clone(), SecretAccess::Write)
    );
    assert_eq!(store.users().await.expect("users").len(), 1);
    assert!(store.remove_user("ada").await.expect("remove"));
    assert!(!store.remove_user("ada").await.expect("remove twice"));
    let token = TokenRecord {
        name: "ci".into(),
        namespaces: Vec::new(),
        secrets: SecretAccess::Read,
        created_at: now(),
        revoked_at: None,
    };
    store.add_token(&token, "hash-1").await.expect("add");
    assert!(matches!(
        store.add_token(&token, "hash-2").await,
        Err(StoreError::Conflict(_))
    ));
    let found = store.token_by_hash("hash-1").await.expect("find");
    assert_eq!(found.map(|t| t.secrets), Some(SecretAccess::Read));
    assert!(store.token_by_hash("hash-2").await.expect("find").is_none());
    let carried = store.token_hashes().await.expect("token hashes");
    assert_eq!(carried.len(), 1, "only live tokens are carried");
    assert_eq!(
        (carried[0].0.name.as_str(), carried[0].1.as_str()),
        ("ci", "hash-1")
    );
    assert!(store.revoke_token("ci").await.expect("revoke"));
    assert!(store.token_by_hash("hash-1").await.expect("find").is_none());
    assert!(store.token_hashes().await.expect("token hashes").is_empty());
    let listed = store.tokens().await.expect("tokens");
    assert!(listed[0].revoked_at.is_some(), "revoked tokens stay listed");
    store
        .add_token(&token, "hash-3")
        .await
        .expect("a revoked name is free again");
}
