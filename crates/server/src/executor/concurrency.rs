//! A flow's `concurrency` on the server, across every node sharing the store: at most `limit`
//! of its executions run at once (RUNNING or PAUSED, as the store has them).
//!
//! An execution beyond the limit ends CANCELLED or FAILED (`behavior: CANCEL`, `FAIL`), or
//! waits QUEUED (`QUEUE`, the default). Whoever moves an execution to RUNNING (a submission
//! that runs it at once, a worker that claimed it) counts again once that is stored, before
//! any task runs, and moves it back to QUEUED when the flow is over its limit: of two nodes
//! starting executions at once, the later to count sees both, so the limit holds without a
//! lock. Each worker's claim loop moves the oldest QUEUED executions of flows under their
//! limit back to CREATED, where any worker claims them.

use super::record;
use crate::error::AppError;
use crate::state::AppState;
use chrono::Utc;
use kestrel_flow::{ConcurrencyBehavior, Flow};
use kestrel_store::{ExecutionQuery, ExecutionRecord, LogRecord, StoreError};
use std::collections::HashMap;

/// The state of an execution waiting for its flow to be under its limit.
pub(crate) const QUEUED: &str = "QUEUED";

/// Kestra's words for an execution failed by its flow's limit.
const FAILED_BY_LIMIT: &str = "Flow is FAILED due to concurrency limit exceeded";

/// The most executions of one state a count or a promotion reads at once.
const PAGE: u32 = 1000;

/// What becomes of a new execution of a flow.
pub(super) enum Admission {
    /// It may run (or wait in the queue like any other).
    Run,
    /// It waits QUEUED.
    Queue,
    /// It ends at once in that state, with that entry.
    End(&'static str, LogRecord),
}

/// What becomes of a new execution of `flow`, whose executions run elsewhere too.
pub(super) async fn admit(state: &AppState, flow: &Flow) -> Result<Admission, AppError> {
    let Some(concurrency) = &flow.concurrency else {
        return Ok(Admission::Run);
    };
    let running = running(state, &flow.namespace, &flow.id).await?;
    if running < concurrency.limit as usize {
        return Ok(Admission::Run);
    }
    Ok(match concurrency.behavior {
        ConcurrencyBehavior::Queue => Admission::Queue,
        ConcurrencyBehavior::Cancel => Admission::End(
            "CANCELLED",
            record::server_log(
                "WARN",
                "Flow is CANCELLED due to concurrency limit exceeded",
            ),
        ),
        ConcurrencyBehavior::Fail => {
            Admission::End("FAILED", record::server_log("ERROR", FAILED_BY_LIMIT))
        }
    })
}

/// Whether `record`, stored RUNNING, may run its tasks: else (its flow is over its limit,
/// counting it) it is stored QUEUED again and `record` says so.
pub(super) async fn may_start(
    state: &AppState,
    flow: &Flow,
    record: &mut ExecutionRecord,
) -> Result<bool, AppError> {
    let Some(concurrency) = &flow.concurrency else {
        return Ok(true);
    };
    let running = running(state, &flow.namespace, &flow.id).await?;
    if running <= concurrency.limit as usize {
        return Ok(true);
    }
    let mut queued = record.clone();
    record::entered(&mut queued, QUEUED, Utc::now());
    if state.0.store.transition(&queued, "RUNNING").await? {
        *record = queued;
        return Ok(false);
    }
    // Someone else moved it on meanwhile (a kill): it does not run here.
    Ok(false)
}

/// Moves the oldest QUEUED executions of flows under their limit to CREATED, for a worker to
/// claim; whether any moved.
pub(super) async fn promote(state: &AppState) -> Result<bool, AppError> {
    let mut waiting = executions(state, None, QUEUED).await?;
    waiting.sort_by_key(|record| record.created_at);
    let mut room: HashMap<(String, String), usize> = HashMap::new();
    let mut moved = false;
    for execution in waiting {
        let key = (execution.namespace.clone(), execution.flow_id.clone());
        if !room.contains_key(&key) {
            let free = free_room(state, &key.0, &key.1).await?;
            room.insert(key.clone(), free);
        }
        let Some(free) = room.get_mut(&key).filter(|free| **free > 0) else {
            continue;
        };
        let mut created = execution;
        // No history entry: as in Kestra, QUEUED is followed by RUNNING once it is claimed.
        created.state = "CREATED".to_owned();
        if state.0.store.transition(&created, QUEUED).await? {
            *free -= 1;
            moved = true;
        }
    }
    Ok(moved)
}

/// How many more executions of the flow may run now (0 when it lost its limit: they all may,
/// and go one batch at a time).
async fn free_room(state: &AppState, namespace: &str, flow_id: &str) -> Result<usize, AppError> {
    let limit = match state.latest_flow(namespace, flow_id).await? {
        Some(flow) => flow.flow.concurrency.as_ref().map(|c| c.limit as usize),
        None => None,
    };
    let running = running(state, namespace, flow_id).await?;
    Ok(limit.map_or(usize::MAX, |limit| limit.saturating_sub(running)))
}

/// How many executions of the flow run now, on every node.
async fn running(state: &AppState, namespace: &str, flow_id: &str) -> Result<usize, StoreError> {
    let mut count = 0;
    for state_name in ["RUNNING", "PAUSED"] {
        count += executions(state, Some((namespace, flow_id)), state_name)
            .await?
            .len();
    }
    Ok(count)
}

/// The executions in `state_name` (of one flow, or all), at most [`PAGE`].
async fn executions(
    state: &AppState,
    flow: Option<(&str, &str)>,
    state_name: &str,
) -> Result<Vec<ExecutionRecord>, StoreError> {
    let query = ExecutionQuery {
        tenant: state.0.options.tenant.clone(),
        namespace: flow.map(|(namespace, _)| namespace.to_owned()),
        flow_id: flow.map(|(_, id)| id.to_owned()),
        state: Some(state_name.to_owned()),
        page: 1,
        size: PAGE,
        ..ExecutionQuery::default()
    };
    let (found, _) = state.0.store.search_executions(&query).await?;
    // The namespace filter takes child namespaces too.
    Ok(found
        .into_iter()
        .filter(|record| flow.is_none_or(|(namespace, _)| record.namespace == namespace))
        .collect())
}
