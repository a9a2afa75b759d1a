//! What an execution leaves behind: its task runs and log entries, every text already masked.

use crate::State;
use chrono::{DateTime, Utc};
use kestrel_flow::Level;
use kestrel_secrets::MaskRegistry;
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
    /// When it started.
    pub start: DateTime<Utc>,
    /// When it ended, once it has.
    pub end: Option<DateTime<Utc>>,
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
    /// Task runs in the order they started.
    pub task_runs: Vec<TaskRun>,
    /// Every entry the tasks emitted, in order (and one ERROR entry per failed task).
    pub logs: Vec<LogEntry>,
    /// When it started.
    pub start: DateTime<Utc>,
    /// How long it took, once it ended.
    pub duration: Duration,
}

impl Execution {
    /// Masks every text of the execution again with `registry`: a value registered by a later
    /// task may hide inside an earlier entry.
    pub(crate) fn remask(&mut self, registry: &MaskRegistry) {
        for entry in &mut self.logs {
            entry.message = registry.mask(&entry.message).into_owned();
        }
        for run in &mut self.task_runs {
            run.remask(registry);
        }
    }
}

impl TaskRun {
    pub(crate) fn remask(&mut self, registry: &MaskRegistry) {
        let mut outputs = Value::Object(std::mem::take(&mut self.outputs));
        registry.mask_json(&mut outputs);
        if let Value::Object(map) = outputs {
            self.outputs = map;
        }
        if let Some(error) = &mut self.error {
            *error = registry.mask(error).into_owned();
        }
    }
}
