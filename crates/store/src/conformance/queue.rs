//! The story of the execution queue ([`ExecutionQueue`]), run by every database from its
//! tests: `kestrel_store::conformance::queue::run_all(&store).await` on a new, empty store.
//! Every step works in its own tenant, so the other stories' executions never reach a claim.

use crate::{
    ConditionWindow, ExecutionQueue, ExecutionRecord, ExecutionStore, Fire, StateChange,
    TaskRunRecord,
};
use chrono::{DateTime, Utc};
use kestrel_secrets::SecretValue;
use serde_json::json;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

/// Long enough that no execution held by a live worker is taken over during a step.
const ALIVE: Duration = Duration::from_secs(3600);

/// Runs every step on `store`.
pub async fn run_all<S>(store: Arc<S>)
where
    S: ExecutionQueue + ExecutionStore + 'static,
{
    claims_are_exclusive_and_oldest_first(store.as_ref()).await;
    only_the_holder_ends_an_execution(store.as_ref()).await;
    silent_workers_lose_their_executions(store.as_ref()).await;
    heartbeats_keep_executions(store.as_ref()).await;
    a_tick_fires_once(store.as_ref()).await;
    a_condition_window_counts_what_it_met_and_resets_once(store.as_ref()).await;
    a_claim_gives_the_inputs_as_submitted(store.as_ref()).await;
    a_failed_execution_keeps_its_inputs_and_is_restarted_once(store.as_ref()).await;
    concurrent_claims_never_share_an_execution(store).await;
}

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap_or_default()
}

fn queued(tenant: &str, id: &str) -> ExecutionRecord {
    let now = now();
    ExecutionRecord {
        id: id.into(),
        tenant: tenant.into(),
        namespace: "conformance.queue".into(),
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

fn succeeded(mut record: ExecutionRecord) -> ExecutionRecord {
    record.state = "SUCCESS".into();
    record.histories.push(StateChange {
        state: "SUCCESS".into(),
        at: now(),
    });
    record.ended_at = Some(now());
    record
}

async fn enqueue<S: ExecutionStore + ?Sized>(store: &S, tenant: &str, ids: &[&str]) {
    for id in ids {
        let record = queued(tenant, id);
        store.create_execution(&record, None).await.expect("create");
        // Distinct creation times keep "oldest first" observable.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

async fn claim_ids<S: ExecutionQueue + ?Sized>(
    store: &S,
    tenant: &str,
    worker: &str,
    limit: u32,
    resume_after: Duration,
) -> Vec<String> {
    store
        .claim(tenant, worker, limit, resume_after)
        .await
        .expect("claim")
        .into_iter()
        .map(|c| c.record.id)
        .collect()
}

/// Claims take CREATED executions oldest first, move them to RUNNING, and never give one
/// twice.
pub async fn claims_are_exclusive_and_oldest_first<S>(store: &S)
where
    S: ExecutionQueue + ExecutionStore + ?Sized,
{
    let t = "queue1";
    enqueue(store, t, &["q1-a", "q1-b", "q1-c"]).await;
    let first = store.claim(t, "w1", 1, ALIVE).await.expect("claim");
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].record.id, "q1-a", "the oldest first");
    assert_eq!(first[0].record.state, "RUNNING");
    assert_eq!(first[0].claims, 1);
    let states: Vec<&str> = first[0]
        .record
        .histories
        .iter()
        .map(|h| h.state.as_str())
        .collect();
    assert_eq!(states, ["CREATED", "RUNNING"]);
    let stored = store.get_execution(t, "q1-a").await.expect("get");
    assert_eq!(stored.map(|r| r.state), Some("RUNNING".into()));
    assert_eq!(claim_ids(store, t, "w2", 10, ALIVE).await, ["q1-b", "q1-c"]);
    assert!(claim_ids(store, t, "w3", 10, ALIVE).await.is_empty());
    assert!(
        claim_ids(store, "queue-elsewhere", "w3", 10, ALIVE)
            .await
            .is_empty(),
        "tenants are apart"
    );
}

/// Only the worker holding an execution ends it, once; a new execution can start held.
pub async fn only_the_holder_ends_an_execution<S>(store: &S)
where
    S: ExecutionQueue + ExecutionStore + ?Sized,
{
    let t = "queue2";
    enqueue(store, t, &["q2-a"]).await;
    let claimed = store.claim(t, "w1", 1, ALIVE).await.expect("claim");
    let done = succeeded(claimed[0].record.clone());
    assert!(!store.end_claimed(&done, &[], "w2").await.expect("end"));
    let still = store.get_execution(t, "q2-a").await.expect("get");
    assert_eq!(still.map(|r| r.state), Some("RUNNING".into()));
    assert!(store.end_claimed(&done, &[], "w1").await.expect("end"));
    assert!(
        !store.end_claimed(&done, &[], "w1").await.expect("end"),
        "an ended execution ends once"
    );
    let held = {
        let mut record = queued(t, "q2-b");
        record.state = "RUNNING".into();
        record
    };
    store
        .create_claimed(&held, None, "w1")
        .await
        .expect("create");
    assert!(claim_ids(store, t, "w2", 10, ALIVE).await.is_empty());
    assert!(
        store
            .end_claimed(&succeeded(held), &[], "w1")
            .await
            .expect("end")
    );
    let ended = store.get_execution(t, "q2-b").await.expect("get");
    assert_eq!(ended.map(|r| r.state), Some("SUCCESS".into()));
}

/// A RUNNING execution whose worker stopped heartbeating is claimed again, counted, and its
/// old worker can no longer end it.
pub async fn silent_workers_lose_their_executions<S>(store: &S)
where
    S: ExecutionQueue + ExecutionStore + ?Sized,
{
    let t = "queue3";
    enqueue(store, t, &["q3-a"]).await;
    let first = store.claim(t, "w1", 1, ALIVE).await.expect("claim");
    assert_eq!(first.len(), 1);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let resume_after = Duration::from_millis(10);
    let again = store.claim(t, "w2", 10, resume_after).await.expect("claim");
    assert_eq!(again.len(), 1, "taken over");
    assert_eq!((again[0].record.id.as_str(), again[0].claims), ("q3-a", 2));
    let done = succeeded(again[0].record.clone());
    assert!(
        !store.end_claimed(&done, &[], "w1").await.expect("end"),
        "the old worker is fenced off"
    );
    assert!(store.end_claimed(&done, &[], "w2").await.expect("end"));
    assert!(claim_ids(store, t, "w3", 10, resume_after).await.is_empty());
}

/// A heartbeat keeps a worker's executions from takeover.
pub async fn heartbeats_keep_executions<S>(store: &S)
where
    S: ExecutionQueue + ExecutionStore + ?Sized,
{
    let t = "queue4";
    enqueue(store, t, &["q4-a"]).await;
    store.claim(t, "w1", 1, ALIVE).await.expect("claim");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    store.heartbeat("w1").await.expect("heartbeat");
    let taken = claim_ids(store, t, "w2", 10, Duration::from_millis(1000)).await;
    assert!(taken.is_empty(), "a live worker keeps its executions");
}

/// A trigger's tick is claimed by one caller only.
pub async fn a_tick_fires_once<S>(store: &S)
where
    S: ExecutionQueue + ?Sized,
{
    let fire = Fire {
        tenant: "main".into(),
        namespace: "conformance.queue".into(),
        flow_id: "scheduled".into(),
        trigger_id: "every-minute".into(),
        at: now(),
    };
    assert!(store.claim_fire(&fire).await.expect("fire"));
    assert!(!store.claim_fire(&fire).await.expect("fire again"));
    let other = Fire {
        trigger_id: "hourly".into(),
        ..fire.clone()
    };
    assert!(store.claim_fire(&other).await.expect("another trigger"));
    let later = Fire {
        at: fire.at + chrono::Duration::minutes(1),
        ..fire
    };
    assert!(store.claim_fire(&later).await.expect("the next tick"));
}

/// A condition window answers what it met since its start, and resets for one caller only.
pub async fn a_condition_window_counts_what_it_met_and_resets_once<S>(store: &S)
where
    S: ExecutionQueue + ?Sized,
{
    let window = ConditionWindow {
        tenant: "main".into(),
        namespace: "conformance.queue".into(),
        flow_id: "listener".into(),
        trigger_id: "listen".into(),
        condition_id: "both".into(),
    };
    let start = now();
    let meet = |met: &'static [&'static str], at| {
        let met: Vec<String> = met.iter().map(|m| (*m).to_owned()).collect();
        let window = window.clone();
        async move {
            let mut found = store
                .meet_window(&window, &met, at, start)
                .await
                .expect("meet");
            found.sort();
            found
        }
    };
    assert_eq!(meet(&["a"], start).await, ["a"]);
    assert_eq!(meet(&["a"], start).await, ["a"], "met twice counts once");
    let other = ConditionWindow {
        condition_id: "other".into(),
        ..window.clone()
    };
    assert!(
        store
            .meet_window(&other, &[], start, start)
            .await
            .expect("other")
            .is_empty()
    );
    assert_eq!(meet(&["b"], start).await, ["a", "b"]);
    assert!(store.reset_window(&window).await.expect("reset"));
    assert!(!store.reset_window(&window).await.expect("reset again"));
    assert_eq!(meet(&[], start).await, Vec::<String>::new());
    assert_eq!(meet(&["a"], start).await, ["a"]);
    let later = start + chrono::Duration::hours(1);
    let moved = store
        .meet_window(&window, &["b".to_owned()], later, later)
        .await
        .expect("a later window");
    assert_eq!(
        moved,
        ["b"],
        "what was met before the window's start is forgotten"
    );
}

/// Four workers claiming at once share out 60 executions, each exactly once.
pub async fn concurrent_claims_never_share_an_execution<S>(store: Arc<S>)
where
    S: ExecutionQueue + ExecutionStore + 'static,
{
    let t = "queue5";
    for i in 0..60 {
        let record = queued(t, &format!("q5-{i:02}"));
        store.create_execution(&record, None).await.expect("create");
    }
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let got = claim_ids(store.as_ref(), t, &format!("w{w}"), 3, ALIVE).await;
                    if got.is_empty() {
                        return mine;
                    }
                    mine.extend(got);
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for worker in workers {
        all.extend(worker.await.expect("worker"));
    }
    let distinct: HashSet<&String> = all.iter().collect();
    assert_eq!(all.len(), 60, "every execution claimed once: {all:?}");
    assert_eq!(distinct.len(), 60);
}

/// A claim gives each execution's inputs as they were submitted (sealed in the store), and
/// none for one submitted without.
pub async fn a_claim_gives_the_inputs_as_submitted<S>(store: &S)
where
    S: ExecutionQueue + ExecutionStore + ?Sized,
{
    let t = "queue-inputs";
    let payload = SecretValue::new(r#"{"inputs":{"password":"hunter2-queued"}}"#.into());
    let with = queued(t, "qi-with");
    store
        .create_execution(&with, Some(&payload))
        .await
        .expect("create");
    tokio::time::sleep(Duration::from_millis(2)).await;
    enqueue(store, t, &["qi-without"]).await;
    let claimed = store.claim(t, "w1", 10, ALIVE).await.expect("claim");
    let inputs: Vec<(&str, Option<&str>)> = claimed
        .iter()
        .map(|c| {
            let opened = c.inputs.as_ref().expect("inputs opened");
            (
                c.record.id.as_str(),
                opened.as_ref().map(SecretValue::expose_secret),
            )
        })
        .collect();
    assert_eq!(
        inputs,
        [
            ("qi-with", Some(payload.expose_secret())),
            ("qi-without", None)
        ]
    );
}

/// A FAILED end keeps the sealed inputs (a SUCCESS end drops them); a requeue from the ended
/// state happens once, with the task runs given, and the next claim takes the execution as a
/// fresh one (RUNNING, its first claim) with those task runs and its inputs.
pub async fn a_failed_execution_keeps_its_inputs_and_is_restarted_once<S>(store: &S)
where
    S: ExecutionQueue + ExecutionStore + ?Sized,
{
    let t = "queue-restart";
    let payload = SecretValue::new(r#"{"inputs":{"password":"hunter2-restarted"}}"#.into());
    let (failed, fine) = (queued(t, "qr-failed"), queued(t, "qr-fine"));
    for record in [&failed, &fine] {
        store
            .create_claimed(record, Some(&payload), "w1")
            .await
            .expect("create");
    }
    let mut ended = succeeded(failed.clone());
    ended.state = "FAILED".into();
    ended.task_runs = vec![task_run("tr-1", "SUCCESS"), task_run("tr-2", "FAILED")];
    assert!(store.end_claimed(&ended, &[], "w1").await.expect("end"));
    assert!(
        store
            .end_claimed(&succeeded(fine.clone()), &[], "w1")
            .await
            .expect("end")
    );
    let kept = store.execution_inputs(t, "qr-failed").await.expect("read");
    assert_eq!(
        kept.as_ref().map(SecretValue::expose_secret),
        Some(payload.expose_secret())
    );
    assert!(
        store
            .execution_inputs(t, "qr-fine")
            .await
            .expect("read")
            .is_none()
    );

    let mut restarted = ended.clone();
    restarted.state = "RESTARTED".into();
    restarted.histories.push(StateChange {
        state: "RESTARTED".into(),
        at: now(),
    });
    restarted.ended_at = None;
    restarted.task_runs = vec![task_run("tr-1", "SUCCESS"), task_run("tr-2", "RESTARTED")];
    assert!(store.requeue(&restarted, "FAILED").await.expect("requeue"));
    assert!(
        !store
            .requeue(&restarted, "FAILED")
            .await
            .expect("requeue twice"),
        "a second restart of the same end is refused"
    );
    let claimed = store.claim(t, "w2", 10, ALIVE).await.expect("claim");
    assert_eq!(claimed.len(), 1);
    let claim = &claimed[0];
    assert_eq!(
        (
            claim.record.id.as_str(),
            claim.record.state.as_str(),
            claim.claims
        ),
        ("qr-failed", "RUNNING", 1)
    );
    let states: Vec<&str> = claim
        .record
        .histories
        .iter()
        .map(|h| h.state.as_str())
        .collect();
    assert_eq!(states[states.len() - 2..], ["RESTARTED", "RUNNING"]);
    let runs: Vec<(&str, &str)> = claim
        .record
        .task_runs
        .iter()
        .map(|r| (r.id.as_str(), r.state.as_str()))
        .collect();
    assert_eq!(runs, [("tr-1", "SUCCESS"), ("tr-2", "RESTARTED")]);
    let opened = claim.inputs.as_ref().expect("inputs opened");
    assert_eq!(
        opened.as_ref().map(SecretValue::expose_secret),
        Some(payload.expose_secret())
    );
}

fn task_run(id: &str, state: &str) -> TaskRunRecord {
    TaskRunRecord {
        id: id.into(),
        task_id: id.into(),
        attempt: 1,
        state: state.into(),
        outputs: json!({}),
        error: None,
        started_at: now(),
        ended_at: None,
        detail: json!({}),
    }
}
