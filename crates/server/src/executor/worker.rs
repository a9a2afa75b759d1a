//! This process's worker: a loop that claims queued executions (and those whose worker
//! stopped heartbeating) as slots free, and a heartbeat that keeps what it holds from takeover
//! and kills what another node ended meanwhile.

use super::{Job, Live, STORE_POLL, Slot, end, prepare, record, start};
use crate::state::AppState;
use kestrel_store::{Claimed, changed_within};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::MissedTickBehavior;

/// The log entry of an execution taken over from a worker presumed dead.
const RESUMED: &str = "resumed after its worker stopped heartbeating: it runs again \
     from its start, its task runs as new attempts";

/// Starts the claim loop and the heartbeat, once, when this process runs a worker (from the
/// server's start, or from the first submission of a state no server started).
pub(crate) fn start_worker(state: &AppState) {
    let executor = &state.0.executor;
    if !state.0.options.worker.enabled || executor.started.swap(true, Ordering::SeqCst) {
        return;
    }
    tokio::spawn(claim_forever(state.clone()));
    tokio::spawn(heartbeat_forever(state.clone()));
}

/// Claims as many executions as there are free slots, whenever something is queued, a slot
/// frees, or [`STORE_POLL`] passed (other nodes' queueing is not always signalled); until the
/// pool stops.
async fn claim_forever(state: AppState) {
    let executor = &state.0.executor;
    let mut queued = state.0.store.signals().on_queued();
    loop {
        if executor.is_stopping() {
            return;
        }
        // A stop waits for what is being claimed to be started (and then for its end).
        let claiming = executor.inflight.enter();
        if let Err(error) = super::concurrency::promote(&state).await {
            crate::log::error(&format!("start queued executions: {error}"));
        }
        let permits = free_permits(&state);
        if !permits.is_empty() {
            claim(&state, permits).await;
        }
        drop(claiming);
        tokio::select! {
            () = changed_within(&mut queued, STORE_POLL) => {}
            () = executor.slot_freed.notified() => {}
        }
    }
}

/// Every free slot (released silently when unused: no wake-up for nothing).
fn free_permits(state: &AppState) -> Vec<OwnedSemaphorePermit> {
    let permits = &state.0.executor.permits;
    std::iter::from_fn(|| Arc::clone(permits).try_acquire_owned().ok()).collect()
}

async fn claim(state: &AppState, mut permits: Vec<OwnedSemaphorePermit>) {
    let executor = &state.0.executor;
    let options = &state.0.options;
    let limit = u32::try_from(permits.len()).unwrap_or(u32::MAX);
    let claimed = state
        .0
        .store
        .claim(
            &options.tenant,
            &executor.worker_id,
            limit,
            options.worker.resume_after,
        )
        .await;
    match claimed {
        Ok(claimed) => {
            for (claimed, permit) in claimed.into_iter().zip(permits.drain(..)) {
                run_claimed(state, claimed, executor.slot(permit)).await;
            }
        }
        Err(error) => crate::log::error(&format!("claim executions from the queue: {error}")),
    }
}

/// Starts a claimed execution; one that cannot run (its flow's revision gone, its inputs
/// unreadable) ends FAILED saying why.
async fn run_claimed(state: &AppState, claimed: Claimed, slot: Slot) {
    let executor = &state.0.executor;
    let Claimed {
        record,
        claims,
        inputs,
    } = claimed;
    if executor.get(&record.id).is_some() {
        // This worker's own heartbeat came late: it still runs the execution here.
        crate::log::warn(&format!(
            "execution {} was claimed again while it runs here: the worker's heartbeat is late",
            record.id
        ));
        return;
    }
    let restarted = super::restart::restarted_runs(&record);
    let live = Arc::new(Live::new(record.clone(), claims.saturating_sub(1)));
    let mut prelude = Vec::new();
    if claims > 1 {
        let resumed = record::server_log("WARN", RESUMED);
        live.log(resumed.clone());
        prelude.push(resumed);
    }
    let prepared = match inputs {
        Ok(inputs) => prepare(state, &record, inputs.as_ref()).await,
        Err(error) => Err(format!("its stored inputs cannot be read: {error}")),
    };
    let mut record = record;
    if let Ok(prepared) = &prepared {
        match super::concurrency::may_start(state, &prepared.flow.flow, &mut record).await {
            Ok(true) => {}
            Ok(false) => return,
            // Held here, it would wait for nothing: it runs, the limit unchecked this once.
            Err(error) => crate::log::error(&format!(
                "count the running executions of flow {}.{}: {error}",
                record.namespace, record.flow_id
            )),
        }
    }
    match prepared {
        Ok(prepared) => start(
            state,
            Job {
                live,
                flow: prepared.flow,
                inputs: prepared.inputs,
                trigger: prepared.trigger,
                triggered_by: prepared.triggered_by,
                prelude,
                lineage: prepared.lineage,
                payload: prepared.payload,
                due: prepared.due,
                restarted,
                slot,
                _inflight: executor.inflight.enter(),
            },
        ),
        Err(reason) => {
            drop(slot);
            let mut failed = record;
            record::ended(&mut failed, "FAILED");
            prelude.push(record::server_log(
                "ERROR",
                &format!("cannot be run: {reason}"),
            ));
            end(state, &live, failed, prelude, None).await;
        }
    }
}

/// Tells the queue this worker is alive every `worker.heartbeat`, and kills the executions
/// running here that another node ended meanwhile (a kill through another server).
async fn heartbeat_forever(state: AppState) {
    let executor = &state.0.executor;
    let mut every = tokio::time::interval(state.0.options.worker.heartbeat);
    every.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        if let Err(error) = state.0.store.heartbeat(&executor.worker_id).await {
            crate::log::error(&format!("heartbeat: {error}"));
        }
        kill_ended_elsewhere(&state).await;
    }
}

/// Cancels each execution running here whose stored state says it ended (or that is gone).
async fn kill_ended_elsewhere(state: &AppState) {
    let running: Vec<(String, Arc<Live>)> = state
        .0
        .executor
        .live()
        .iter()
        .map(|(id, live)| (id.clone(), Arc::clone(live)))
        .collect();
    let tenant = &state.0.options.tenant;
    for (id, live) in running {
        match state.0.store.get_execution(tenant, &id).await {
            Ok(Some(stored)) if stored.ended_at.is_none() => {}
            Ok(_) => live.cancel.cancel(),
            Err(error) => crate::log::error(&format!("read the state of execution {id}: {error}")),
        }
    }
}
