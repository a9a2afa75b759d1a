//! What readers see of an execution: its task runs, log entries and record, every
//! user-produced value masked. Only the edge ([`crate::edge`]) builds them from what the
//! engine holds.

use crate::{ShownMetric, State};
use chrono::{DateTime, Utc};
use kestrel_flow::Level;
use serde_json::{Map, Value};
use std::time::Duration;

/// One log entry of a task run. `message` is masked.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEntry {
    /// The task that emitted it.
    pub task_id: String,
    /// The task run that emitted it.
    pub task_run_id: String,
    /// Its level.
    pub level: Level,
    /// The text, masked.
    pub message: String,
    /// When it was emitted.
    pub timestamp: DateTime<Utc>,
    /// The attempt of the task run that emitted it, from 1.
    pub attempt_number: u32,
}

/// One run of one task. `outputs` and `error` are masked.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskRun {
    /// Random id, 22 base-62 characters.
    pub id: String,
    /// The task's id in the flow.
    pub task_id: String,
    /// The task's type as written in the flow.
    pub task_type: String,
    /// Its current state.
    pub state: State,
    /// The outputs the task produced, masked (expressions of the execution see the real ones).
    pub outputs: Map<String, Value>,
    /// Why it failed, masked.
    pub error: Option<String>,
    /// The metrics it recorded, masked (a value equal to a numeric secret included).
    pub metrics: Vec<ShownMetric>,
    /// When it started.
    pub start: DateTime<Utc>,
    /// When it ended, once it has.
    pub end: Option<DateTime<Utc>>,
    /// Its attempts, oldest first: one, or more under `retry`. The task run's `state`,
    /// `outputs` and `error` are those of the last one.
    pub attempts: Vec<Attempt>,
    /// The task run of the flowable task (Sequential, ForEach...) it runs under, if any.
    pub parent_task_run_id: Option<String>,
    /// The ForEach value it runs for (also `{{ taskrun.value }}`), if any, masked.
    pub value: Option<String>,
}

/// One attempt of a task run.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    /// How it ended (RUNNING while it runs).
    pub state: State,
    /// When it started.
    pub start: DateTime<Utc>,
    /// When it ended, once it has.
    pub end: Option<DateTime<Utc>>,
    /// Under the task's `logToFile`, the `kestra://` URI of the file of its log entries.
    pub log_file: Option<String>,
}

/// One execution of a flow, as readers see it: everything masked.
#[derive(Debug, Clone, PartialEq)]
pub struct Execution {
    /// Random id, 22 base-62 characters.
    pub id: String,
    /// The flow's namespace.
    pub namespace: String,
    /// The flow's id.
    pub flow_id: String,
    /// Its current state.
    pub state: State,
    /// The inputs, typed, SECRET ones as the mask and every other masked; inputs given no
    /// value are left out.
    pub inputs: Map<String, Value>,
    /// The `trigger` variable of a triggered execution, masked.
    pub trigger: Option<Value>,
    /// The flow's labels, in order, masked.
    pub labels: Vec<(String, String)>,
    /// Task runs in the order they started.
    pub task_runs: Vec<TaskRun>,
    /// Every entry the tasks emitted, in order (and one ERROR entry per failed task).
    pub logs: Vec<LogEntry>,
    /// The flow's `outputs`, rendered once the execution succeeded, masked.
    pub outputs: Map<String, Value>,
    /// When it started.
    pub start: DateTime<Utc>,
    /// How long it took, once it ended.
    pub duration: Duration,
    /// Kestra's `attemptNumber`: 1, or which execution of a chain a retry under
    /// `behavior: CREATE_NEW_EXECUTION` started this one as.
    pub attempt_number: u32,
}
