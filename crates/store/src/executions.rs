//! The server's executions, their task runs and their logs, as readers see them: masked.

use crate::StoreError;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use kestrel_secrets::SecretValue;
use serde_json::{Value, json};

/// A state an execution entered, and when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateChange {
    /// The state's name as Kestra writes it (`RUNNING`).
    pub state: String,
    /// When it was entered.
    pub at: DateTime<Utc>,
}

/// One execution as stored. Every text in it is masked: the store never sees a secret value
/// in clear here (what an execution needs in clear goes through `create_execution`'s sealed
/// inputs).
#[derive(Clone, Debug, PartialEq)]
pub struct ExecutionRecord {
    /// Random id, unique across tenants.
    pub id: String,
    /// The tenant.
    pub tenant: String,
    /// The flow's namespace.
    pub namespace: String,
    /// The flow's id.
    pub flow_id: String,
    /// The revision of the flow it runs.
    pub flow_revision: u64,
    /// The current state's name (`CREATED`, `RUNNING`, `SUCCESS`...).
    pub state: String,
    /// Every state entered, oldest first.
    pub histories: Vec<StateChange>,
    /// The inputs, masked (a JSON object).
    pub inputs: Value,
    /// The flow's outputs, masked (a JSON object).
    pub outputs: Value,
    /// The labels, `[{"key", "value"}]`.
    pub labels: Value,
    /// Task runs in the order they started.
    pub task_runs: Vec<TaskRunRecord>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it ended, once it has.
    pub ended_at: Option<DateTime<Utc>>,
}

impl ExecutionRecord {
    /// What every database keeps of an execution beyond its columns, as JSON text: histories
    /// (times in Unix milliseconds), outputs and labels, in that key order.
    pub fn detail_text(&self) -> String {
        let histories: Vec<Value> = self
            .histories
            .iter()
            .map(|h| json!({"state": h.state, "at": h.at.timestamp_millis()}))
            .collect();
        json!({
            "histories": histories,
            "outputs": self.outputs,
            "labels": self.labels,
        })
        .to_string()
    }
}

impl StateChange {
    /// The histories of a detail [`ExecutionRecord::detail_text`] wrote.
    pub fn list_in(detail: &Value) -> Vec<Self> {
        detail["histories"]
            .as_array()
            .map(|list| {
                list.iter()
                    .map(|h| Self {
                        state: h["state"].as_str().unwrap_or_default().to_owned(),
                        at: DateTime::from_timestamp_millis(h["at"].as_i64().unwrap_or_default())
                            .unwrap_or_default(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// One task run (its last attempt's state), masked.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskRunRecord {
    /// Random id.
    pub id: String,
    /// The task's id in the flow.
    pub task_id: String,
    /// The number of its last attempt, from 1.
    pub attempt: u32,
    /// The current state's name.
    pub state: String,
    /// The outputs, masked (a JSON object).
    pub outputs: Value,
    /// Why it failed, masked.
    pub error: Option<String>,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended, once it has.
    pub ended_at: Option<DateTime<Utc>>,
    /// Everything else readers see (attempts, parent task run, value, metrics), a JSON
    /// object kept as given.
    pub detail: Value,
}

/// One log entry of an execution, masked before it is written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRecord {
    /// The task that emitted it; `None` for the server's own entries (an interruption).
    pub task_id: Option<String>,
    /// Its task run.
    pub task_run_id: Option<String>,
    /// The attempt of the task run, from 1.
    pub attempt: Option<u32>,
    /// When it was emitted.
    pub at: DateTime<Utc>,
    /// `TRACE`, `DEBUG`, `INFO`, `WARN` or `ERROR`.
    pub level: String,
    /// The text, masked.
    pub message: String,
}

/// Which executions a search returns, newest first, one page at a time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExecutionQuery {
    /// The tenant.
    pub tenant: String,
    /// Only this namespace and its children.
    pub namespace: Option<String>,
    /// Only this flow.
    pub flow_id: Option<String>,
    /// Only executions in this state.
    pub state: Option<String>,
    /// Only these namespaces and their children (the caller's reach); empty: every one.
    pub within: Vec<String>,
    /// Only executions created at this instant or later.
    pub created_after: Option<DateTime<Utc>>,
    /// Only executions created before this instant.
    pub created_before: Option<DateTime<Utc>>,
    /// Only executions with every one of these labels (key, value).
    pub labels: Vec<(String, String)>,
    /// The page, from 1.
    pub page: u32,
    /// Results per page.
    pub size: u32,
}

impl ExecutionQuery {
    /// The labels asked for as an execution's record holds labels: `[{"key", "value"}]`.
    pub fn labels_json(&self) -> String {
        let labels: Vec<Value> = self
            .labels
            .iter()
            .map(|(key, value)| json!({"key": key, "value": value}))
            .collect();
        Value::Array(labels).to_string()
    }
}

/// Whether an execution written in `state` waits in the queue for a worker to claim it: a new
/// one (CREATED), or one to run again (RESTARTED: a restart, a replay).
pub fn waits_in_queue(state: &str) -> bool {
    matches!(state, "CREATED" | "RESTARTED")
}

/// Whether an execution that ended in `state` keeps its sealed inputs: only one that can be
/// restarted (FAILED or KILLED) does, so that its restart runs with the inputs it was given;
/// they go with it when retention purges it. Every other end forgets them.
pub fn keeps_inputs(state: &str) -> bool {
    matches!(state, "FAILED" | "KILLED")
}

/// Where executions live.
///
/// The protocol: `create_execution` writes an execution in its first state (CREATED, or
/// RUNNING when it starts at once) with the inputs it was given, sealed (only what its run
/// needs, for a restart to resume it); `transition` moves it on only from the state the caller
/// saw, so two writers never both start or kill one execution; `end_execution` writes the end
/// state, every task run and the logs, and forgets the sealed inputs unless the end
/// [`keeps_inputs`].
#[async_trait]
pub trait ExecutionStore: Send + Sync {
    /// Writes a new execution; `inputs` (the raw inputs as JSON text) is stored sealed.
    async fn create_execution(
        &self,
        record: &ExecutionRecord,
        inputs: Option<&SecretValue>,
    ) -> Result<(), StoreError>;

    /// Writes `record`'s state and histories if the stored state is still `from`; whether it
    /// did.
    async fn transition(&self, record: &ExecutionRecord, from: &str) -> Result<bool, StoreError>;

    /// Writes an ended execution: its state, outputs, task runs, and `logs` appended; its
    /// sealed inputs are dropped, unless its state [`keeps_inputs`].
    async fn end_execution(
        &self,
        record: &ExecutionRecord,
        logs: &[LogRecord],
    ) -> Result<(), StoreError>;

    /// One execution with its task runs.
    async fn get_execution(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<Option<ExecutionRecord>, StoreError>;

    /// A page of executions matching `query`, newest first, and how many match in all.
    async fn search_executions(
        &self,
        query: &ExecutionQuery,
    ) -> Result<(Vec<ExecutionRecord>, u64), StoreError>;

    /// Executions not ended (CREATED or RUNNING), oldest first: what a restart finds.
    async fn unfinished_executions(&self, tenant: &str)
    -> Result<Vec<ExecutionRecord>, StoreError>;

    /// The sealed inputs of an execution not ended (or ended in a state that
    /// [`keeps_inputs`]), opened; `None` when there are none.
    async fn execution_inputs(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<Option<SecretValue>, StoreError>;

    /// The log entries of an execution, in the order they were written.
    async fn execution_logs(&self, tenant: &str, id: &str) -> Result<Vec<LogRecord>, StoreError>;
}

/// An execution a purge removed: what names its files in the internal storage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PurgedExecution {
    /// Its namespace.
    pub namespace: String,
    /// Its flow's id.
    pub flow_id: String,
    /// Its id.
    pub id: String,
}

/// What the server purges as it ages.
#[async_trait]
pub trait Retention: Send + Sync {
    /// Removes executions ended before `before`, with their task runs and logs; which.
    async fn purge_executions(
        &self,
        before: DateTime<Utc>,
    ) -> Result<Vec<PurgedExecution>, StoreError>;

    /// Removes audit entries recorded before `before`; how many.
    async fn purge_audit(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_column_keeps_key_order_and_histories_to_the_millisecond() {
        let at = DateTime::from_timestamp_millis(1_764_000_000_123).unwrap();
        let record = ExecutionRecord {
            id: "e1".into(),
            tenant: "main".into(),
            namespace: "company".into(),
            flow_id: "hello".into(),
            flow_revision: 1,
            state: "RUNNING".into(),
            histories: vec![StateChange {
                state: "RUNNING".into(),
                at,
            }],
            inputs: json!({}),
            outputs: json!({"z": 1, "a": 2}),
            labels: json!([{"key": "team", "value": "core"}]),
            task_runs: Vec::new(),
            created_at: at,
            ended_at: None,
        };
        let text = record.detail_text();
        assert!(text.contains(r#""outputs":{"z":1,"a":2}"#), "{text}");
        let detail: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(StateChange::list_in(&detail), record.histories);
        assert_eq!(detail["labels"], record.labels);
    }
}
