//! The execution queue several processes share: servers put executions in it, workers take
//! them, heartbeat while they run them, and take over those whose worker stopped heartbeating.
//!
//! An execution is in the queue while it is CREATED, or RUNNING under a worker whose last
//! heartbeat is older than the `resume_after` the taker gives. Taking is exclusive (one
//! worker gets each execution per claim) and ending is fenced: only the worker holding an
//! execution can end it, so an execution taken over from a worker presumed dead never
//! completes twice. Task runs are therefore at least once: a taken-over execution runs again,
//! its task runs as new attempts.

use crate::{ExecutionRecord, LogRecord, StoreError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use kestrel_secrets::SecretValue;
use std::time::Duration;
use tokio::sync::watch;

/// An execution a worker took from the queue.
#[derive(Clone, Debug, PartialEq)]
pub struct Claimed {
    /// The execution, RUNNING, held by the worker that claimed it.
    pub record: ExecutionRecord,
    /// How many times it was claimed, this claim included: 1 for a fresh execution, more for
    /// one taken over from a worker that stopped heartbeating.
    pub claims: u32,
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
    /// The trigger's id in the flow.
    pub trigger_id: String,
    /// The tick.
    pub at: DateTime<Utc>,
}

/// Wake-ups for those who wait on the queue: a counter per event, bumped by this process's
/// writes and, where the database can tell (PostgreSQL's NOTIFY), by every other process's.
/// Waiters still wake on their own timeout, so an event another process's database cannot
/// signal is seen within that bound.
#[derive(Debug)]
pub struct QueueSignals {
    queued: watch::Sender<u64>,
    ended: watch::Sender<u64>,
}

impl Default for QueueSignals {
    fn default() -> Self {
        Self {
            queued: watch::Sender::new(0),
            ended: watch::Sender::new(0),
        }
    }
}

impl QueueSignals {
    /// Something was queued (a new execution, or one a worker gave back).
    pub fn queued(&self) {
        self.queued.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// An execution ended.
    pub fn ended(&self) {
        self.ended.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver that changes when something is queued.
    pub fn on_queued(&self) -> watch::Receiver<u64> {
        self.queued.subscribe()
    }

    /// A receiver that changes when an execution ends.
    pub fn on_ended(&self) -> watch::Receiver<u64> {
        self.ended.subscribe()
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

    /// Takes at most `limit` executions of `tenant` for `worker`, oldest first: CREATED ones
    /// (moved to RUNNING, with a history entry), and RUNNING ones whose worker's last
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

    /// Records that `fire` happened; true for the first caller only, so that a trigger's
    /// tick starts one execution however many nodes see it.
    async fn claim_fire(&self, fire: &Fire) -> Result<bool, StoreError>;

    /// The wake-ups of this queue.
    fn signals(&self) -> &QueueSignals;
}
