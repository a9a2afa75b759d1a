//! The execution queue several processes share: servers put executions in it, workers take
//! them, heartbeat while they run them, and take over those whose worker stopped heartbeating.
//!
//! An execution is in the queue while it is CREATED (or RESTARTED), or RUNNING under a worker
//! whose last heartbeat is older than the `resume_after` the taker gives. Taking is exclusive (one
//! worker gets each execution per claim) and ending is fenced: only the worker holding an
//! execution can end it, so an execution taken over from a worker presumed dead never
//! completes twice. Task runs are therefore at least once: a taken-over execution runs again,
//! its task runs as new attempts.

use crate::{ExecutionRecord, LogRecord, StoreError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use kestrel_secrets::SecretValue;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, watch};

/// An execution a worker took from the queue.
#[derive(Clone, Debug, PartialEq)]
pub struct Claimed {
    /// The execution, RUNNING, held by the worker that claimed it.
    pub record: ExecutionRecord,
    /// How many times it was claimed, this claim included: 1 for a fresh execution, more for
    /// one taken over from a worker that stopped heartbeating.
    pub claims: u32,
    /// Its inputs as submitted, opened (what `execution_inputs` gives): read with the claim,
    /// so that a worker starts it without another read. Why not when they cannot be opened
    /// (the claim itself stands, so that the worker ends the execution FAILED saying why).
    pub inputs: Result<Option<SecretValue>, String>,
}

/// Which trigger fired for which tick: the key that makes a tick fire once across nodes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fire {
    /// The tenant.
    pub tenant: String,
    /// The flow's namespace.
    pub namespace: String,
    /// The flow's id.
    pub flow_id: String,
    /// The trigger's id in the flow; for a Flow trigger, `<trigger id>:<id of the execution
    /// whose end fired it>` (trigger ids hold no `:`), so that each end fires it once.
    pub trigger_id: String,
    /// The tick; for a Flow trigger, the end of the execution that fired it.
    pub at: DateTime<Utc>,
}

/// A Flow trigger's multiple condition (`MultipleCondition` or `preconditions`): the key under
/// which the conditions met within its window are kept, so that every node counts the ends
/// every other node stored, and a restart forgets nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConditionWindow {
    /// The tenant.
    pub tenant: String,
    /// The listening flow's namespace.
    pub namespace: String,
    /// The listening flow's id.
    pub flow_id: String,
    /// The Flow trigger's id in the flow.
    pub trigger_id: String,
    /// The multiple condition's id.
    pub condition_id: String,
}

/// Wake-ups for those who wait on the queue, sent on this process's writes and, where the
/// database can tell (PostgreSQL's NOTIFY), on every other process's: a counter that moves when
/// something is queued, and the id of each execution that ends (so that a waiter reads the
/// store again for its own execution only, not for every end). Waiters still wake on their own
/// timeout, so an event another process's database cannot signal is seen within that bound.
#[derive(Debug)]
pub struct QueueSignals {
    queued: watch::Sender<u64>,
    ended: broadcast::Sender<Arc<str>>,
}

/// Ends kept for a waiter that has not looked yet; a waiter further behind reads the store.
const ENDS_KEPT: usize = 4096;

/// The id sent when any execution may have ended (a listener that reconnected).
const ANY: &str = "";

impl Default for QueueSignals {
    fn default() -> Self {
        Self {
            queued: watch::Sender::new(0),
            ended: broadcast::Sender::new(ENDS_KEPT),
        }
    }
}

/// The ends a waiter is told of, from the moment it subscribed.
#[derive(Debug)]
pub struct EndWatch(broadcast::Receiver<Arc<str>>);

impl EndWatch {
    /// Waits until execution `id` may have ended (it was said to, or ends were missed) or
    /// `timeout` passes; whether it was told.
    pub async fn ended_within(&mut self, id: &str, timeout: Duration) -> bool {
        let told = async {
            loop {
                match self.0.recv().await {
                    Ok(ended) if &*ended == id || &*ended == ANY => return true,
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => return true,
                    Err(broadcast::error::RecvError::Closed) => return false,
                }
            }
        };
        tokio::time::timeout(timeout, told).await.unwrap_or(false)
    }
}

impl QueueSignals {
    /// Something was queued (a new execution, or one a worker gave back).
    pub fn queued(&self) {
        self.queued.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Execution `id` ended.
    pub fn ended(&self, id: &str) {
        // No waiter, no one to tell.
        let _ = self.ended.send(Arc::from(id));
    }

    /// Any execution may have ended (a listener that was away is back).
    pub fn any_ended(&self) {
        self.ended(ANY);
    }

    /// A receiver that changes when something is queued.
    pub fn on_queued(&self) -> watch::Receiver<u64> {
        self.queued.subscribe()
    }

    /// The ends from now on.
    pub fn on_ended(&self) -> EndWatch {
        EndWatch(self.ended.subscribe())
    }
}

/// Waits until `receiver` changes or `timeout` passes, whichever comes first.
pub async fn changed_within(receiver: &mut watch::Receiver<u64>, timeout: Duration) {
    let _ = tokio::time::timeout(timeout, receiver.changed()).await;
}

/// The queue of executions, in the database every node shares.
#[async_trait]
pub trait ExecutionQueue: Send + Sync {
    /// Writes a new execution, RUNNING, already held by `worker` (a server that runs it at
    /// once); `inputs` sealed as by `create_execution`.
    async fn create_claimed(
        &self,
        record: &ExecutionRecord,
        inputs: Option<&SecretValue>,
        worker: &str,
    ) -> Result<(), StoreError>;

    /// Takes at most `limit` executions of `tenant` for `worker`, oldest first: CREATED and
    /// RESTARTED ones (moved to RUNNING, with a history entry), and RUNNING ones whose worker's last
    /// heartbeat is older than `resume_after`. Never gives one execution to two claims.
    async fn claim(
        &self,
        tenant: &str,
        worker: &str,
        limit: u32,
        resume_after: Duration,
    ) -> Result<Vec<Claimed>, StoreError>;

    /// Tells the queue `worker` is alive: every execution it holds is kept from takeover for
    /// another `resume_after`.
    async fn heartbeat(&self, worker: &str) -> Result<(), StoreError>;

    /// [`crate::ExecutionStore::end_execution`], only while `worker` still holds the execution
    /// and it has not ended; whether it did (false: another worker took it over).
    async fn end_claimed(
        &self,
        record: &ExecutionRecord,
        logs: &[LogRecord],
        worker: &str,
    ) -> Result<bool, StoreError>;

    /// Puts an ended execution back in the queue, as Kestra's restart does: writes `record`
    /// (RESTARTED, not ended, its task runs those a restart keeps or runs again) if the stored
    /// execution is still ended in `from`, its claims counted afresh; its sealed inputs are
    /// those its end kept ([`crate::keeps_inputs`]). Whether it did. A claim takes a RESTARTED
    /// execution as a CREATED one, with its task runs.
    async fn requeue(&self, record: &ExecutionRecord, from: &str) -> Result<bool, StoreError>;

    /// Records that `fire` happened; true for the first caller only, so that a trigger's
    /// tick starts one execution however many nodes see it.
    async fn claim_fire(&self, fire: &Fire) -> Result<bool, StoreError>;

    /// Records that the conditions `met` held at `at` in `window`, forgets those met before
    /// `since` (the window's start), and answers every condition met since: what the window
    /// has met so far, across nodes.
    async fn meet_window(
        &self,
        window: &ConditionWindow,
        met: &[String],
        at: DateTime<Utc>,
        since: DateTime<Utc>,
    ) -> Result<Vec<String>, StoreError>;

    /// Forgets what `window` met, once it fired; true for the first caller only, so that a
    /// window completed on several nodes at once fires once.
    async fn reset_window(&self, window: &ConditionWindow) -> Result<bool, StoreError>;

    /// The wake-ups of this queue.
    fn signals(&self) -> &QueueSignals;
}
