//! What the engine holds while an execution runs: real values (outputs, errors, log messages,
//! metrics, ForEach values, inputs, trigger variables), which never leave the engine. Only the
//! edge ([`crate::edge`]) turns them into what readers see.

use crate::{Attempt, Metric, State};
use chrono::{DateTime, Utc};
use kestrel_flow::Level;
use serde_json::{Map, Value};
use std::time::Duration;

/// One log entry, its message real.
#[derive(Clone)]
pub(crate) struct HeldLog {
    pub(crate) task_id: String,
    pub(crate) task_run_id: String,
    pub(crate) level: Level,
    pub(crate) message: String,
    pub(crate) timestamp: DateTime<Utc>,
    pub(crate) attempt_number: u32,
}

/// One task run, its outputs, error, metrics and ForEach value real.
#[derive(Clone)]
pub(crate) struct HeldRun {
    pub(crate) id: String,
    pub(crate) task_id: String,
    pub(crate) task_type: String,
    pub(crate) state: State,
    pub(crate) outputs: Map<String, Value>,
    pub(crate) error: Option<String>,
    pub(crate) metrics: Vec<Metric>,
    pub(crate) start: DateTime<Utc>,
    pub(crate) end: Option<DateTime<Utc>>,
    pub(crate) attempts: Vec<Attempt>,
    pub(crate) parent_task_run_id: Option<String>,
    pub(crate) value: Option<String>,
}

/// The inputs of an execution: their typed values (SECRET ones in clear) and which are SECRET.
#[derive(Clone, Default)]
pub(crate) struct HeldInputs {
    pub(crate) values: Map<String, Value>,
    pub(crate) secret_ids: Vec<String>,
}

/// One execution, everything in it real.
pub(crate) struct HeldExecution {
    pub(crate) id: String,
    pub(crate) namespace: String,
    pub(crate) flow_id: String,
    pub(crate) state: State,
    pub(crate) inputs: HeldInputs,
    pub(crate) trigger: Option<Value>,
    pub(crate) labels: Vec<(String, String)>,
    pub(crate) task_runs: Vec<HeldRun>,
    pub(crate) logs: Vec<HeldLog>,
    pub(crate) outputs: Map<String, Value>,
    pub(crate) start: DateTime<Utc>,
    pub(crate) duration: Duration,
    pub(crate) attempt_number: u32,
}
