//! Kestra's restart of an ended execution: it goes back in the queue, RESTARTED, under its own
//! id, with the task runs it keeps and those it runs again ([`kestrel_engine::plan_restart`]).
//! Whichever worker claims it (here or on another node) runs it with the inputs it was given,
//! which its end kept sealed ([`kestrel_store::keeps_inputs`]).

use super::record;
use crate::error::AppError;
use crate::state::AppState;
use chrono::Utc;
use kestrel_store::ExecutionRecord;

/// The state of an execution put back in the queue to run again.
pub(crate) const RESTARTED: &str = "RESTARTED";

/// Puts `found` back in the queue to run its failed task runs again: the execution as it now
/// stands (RESTARTED). 409 while it has not ended (or when another restart came first), 422
/// when no task run failed or its inputs were not kept.
pub(crate) async fn restart(
    state: &AppState,
    found: &ExecutionRecord,
) -> Result<ExecutionRecord, AppError> {
    let flow = ended_flow(state, found, "restarted").await?;
    let ran = found.task_runs.iter().map(record::prior_run).collect();
    let planned = kestrel_engine::plan_restart(&flow.flow, ran).map_err(AppError::invalid)?;
    if !inputs_kept(state, found).await? {
        return Err(AppError::invalid(format!(
            "Execution {} cannot be restarted: the inputs it was given were not kept (an end \
             in FAILED or KILLED keeps them)",
            found.id
        )));
    }
    let mut restarted = found.clone();
    restarted.task_runs = planned.iter().map(|run| record::task_run(run, 0)).collect();
    restarted.ended_at = None;
    record::entered(&mut restarted, RESTARTED, Utc::now());
    if !state.0.store.requeue(&restarted, &found.state).await? {
        return Err(AppError::Conflict(format!(
            "Execution {} changed while it was being restarted",
            found.id
        )));
    }
    super::start_worker(state);
    Ok(restarted)
}

/// The flow revision `found` ran, once it ended: 409 while it runs (Kestra's words, `done` being
/// `restarted` or `replayed`), or when that revision is gone.
async fn ended_flow(
    state: &AppState,
    found: &ExecutionRecord,
    done: &str,
) -> Result<std::sync::Arc<crate::flows::LoadedFlow>, AppError> {
    if found.ended_at.is_none() || state.0.executor.get(&found.id).is_some() {
        return Err(AppError::Conflict(format!(
            "Execution must be terminated to be {done}, current state is '{}' !",
            found.state
        )));
    }
    state.flow_of(found).await?.ok_or_else(|| {
        AppError::Conflict(format!(
            "revision {} of the flow of execution {} is gone",
            found.flow_revision, found.id
        ))
    })
}

/// Whether the store still holds the sealed inputs `found` ran with.
async fn inputs_kept(state: &AppState, found: &ExecutionRecord) -> Result<bool, AppError> {
    if !kestrel_store::keeps_inputs(&found.state) {
        return Ok(false);
    }
    let tenant = &state.0.options.tenant;
    let kept = state.0.store.execution_inputs(tenant, &found.id).await?;
    Ok(kept.is_some())
}

/// The task runs a claimed execution runs again from, when a restart put it in the queue:
/// those of its record (readers see them there until the engine lists them again).
pub(crate) fn restarted_runs(record: &ExecutionRecord) -> Vec<kestrel_engine::TaskRun> {
    if !record.histories.iter().any(|h| h.state == RESTARTED) {
        return Vec::new();
    }
    record.task_runs.iter().map(record::prior_run).collect()
}

/// A new execution of `found`'s flow revision that runs again from its task run `from` (from
/// the start when `None`), with the inputs `found` was given, queued for any worker: the
/// execution as created (RESTARTED). 409 while `found` runs, 422 when it has no such task run
/// or had inputs that were not kept.
pub(crate) async fn replay(
    state: &AppState,
    found: &ExecutionRecord,
    from: Option<&str>,
    triggered_by: &str,
) -> Result<ExecutionRecord, AppError> {
    let flow = ended_flow(state, found, "replayed").await?;
    let ran = found.task_runs.iter().map(record::prior_run).collect();
    let planned = kestrel_engine::plan_replay(&flow.flow, ran, from).map_err(AppError::invalid)?;
    let payload = replay_payload(state, found, triggered_by).await?;
    let now = Utc::now();
    let mut created = ExecutionRecord {
        id: kestrel_engine::new_id(),
        state: String::new(),
        histories: Vec::new(),
        outputs: serde_json::json!({}),
        task_runs: planned.iter().map(|run| record::task_run(run, 0)).collect(),
        created_at: now,
        ended_at: None,
        ..found.clone()
    };
    record::entered(&mut created, "CREATED", now);
    record::entered(&mut created, RESTARTED, now);
    state
        .0
        .store
        .create_execution(&created, Some(&payload))
        .await?;
    super::start_worker(state);
    Ok(created)
}

/// What a replay runs with: the sealed inputs `found` kept, or, for an execution that was
/// given none, nothing but who asks.
async fn replay_payload(
    state: &AppState,
    found: &ExecutionRecord,
    triggered_by: &str,
) -> Result<kestrel_secrets::SecretValue, AppError> {
    let tenant = &state.0.options.tenant;
    if let Some(kept) = state.0.store.execution_inputs(tenant, &found.id).await? {
        return Ok(kept);
    }
    let given_none = found
        .inputs
        .as_object()
        .is_none_or(serde_json::Map::is_empty);
    if !given_none {
        return Err(AppError::invalid(format!(
            "Execution {} cannot be replayed: the inputs it was given were not kept (an end \
             in FAILED or KILLED keeps them)",
            found.id
        )));
    }
    Ok(super::sealed_payload(
        &[],
        None,
        &[],
        triggered_by,
        &super::Lineage::default(),
    ))
}
