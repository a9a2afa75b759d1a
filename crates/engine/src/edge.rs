//! The edge: the one component that turns what the engine holds (real values) into what
//! readers see. Every log entry, task run, metric, execution record, input and message that
//! leaves the engine (to a [`crate::Listener`], or returned to the CLI, the store and the
//! server) is built here and masked with the execution's registry; nothing else can build a
//! [`Shown`] value, so no other path exists.
//!
//! Each record is destructured field by field, never with `..`: a new field does not compile
//! until its masking is decided here. User-produced values (outputs, logs, errors, inputs,
//! trigger variables, labels, metric values, ForEach values) are masked, numbers included; the
//! engine's own fields (ids, states, timestamps, durations, attempt numbers) are shown as they
//! are, so a secret `2024` cannot break a date.

use crate::held::{HeldExecution, HeldInputs, HeldLog, HeldRun};
use crate::metric::number_json;
use crate::{Attempt, Execution, LogEntry, Metric, MetricValue, ShownMetric, TaskRun};
use kestrel_secrets::{MASK, MaskRegistry};
use serde_json::{Map, Value};
use std::ops::Deref;

/// Something a reader may see: built by the edge alone, masked with everything the execution
/// had registered then. Read it through `Deref`, or take it with [`Shown::into_inner`].
#[derive(Debug, Clone, PartialEq)]
pub struct Shown<T>(T);

impl<T> Shown<T> {
    /// The value, masked.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> Deref for Shown<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

/// Masks with one execution's registry.
#[derive(Clone, Copy)]
pub(crate) struct Edge<'r> {
    registry: &'r MaskRegistry,
}

impl<'r> Edge<'r> {
    pub(crate) fn new(registry: &'r MaskRegistry) -> Self {
        Self { registry }
    }

    /// A text as readers see it.
    pub(crate) fn text(self, text: &str) -> Shown<String> {
        Shown(self.masked_text(text))
    }

    /// A log entry as readers see it: its message masked.
    pub(crate) fn log(self, held: &HeldLog) -> Shown<LogEntry> {
        let HeldLog {
            task_id,
            task_run_id,
            level,
            message,
            timestamp,
            attempt_number,
        } = held;
        Shown(LogEntry {
            task_id: task_id.clone(),
            task_run_id: task_run_id.clone(),
            level: *level,
            message: self.masked_text(message),
            timestamp: *timestamp,
            attempt_number: *attempt_number,
        })
    }

    /// A task run as readers see it: outputs, error, metrics and ForEach value masked.
    pub(crate) fn task_run(self, held: &HeldRun) -> Shown<TaskRun> {
        Shown(self.masked_run(held))
    }

    /// The inputs as readers see them: SECRET ones as the mask, the others masked, those given
    /// no value left out.
    pub(crate) fn inputs(self, held: &HeldInputs) -> Shown<Map<String, Value>> {
        Shown(self.masked_inputs(held))
    }

    /// The execution as readers see it: every part masked with everything registered so far.
    pub(crate) fn execution(self, held: &HeldExecution) -> Shown<Execution> {
        let HeldExecution {
            id,
            namespace,
            flow_id,
            state,
            inputs,
            trigger,
            labels,
            task_runs,
            logs,
            outputs,
            start,
            duration,
            attempt_number,
        } = held;
        Shown(Execution {
            id: id.clone(),
            namespace: namespace.clone(),
            flow_id: flow_id.clone(),
            state: *state,
            inputs: self.masked_inputs(inputs),
            trigger: trigger.as_ref().map(|trigger| self.masked_json(trigger)),
            labels: labels
                .iter()
                .map(|(key, value)| (self.masked_text(key), self.masked_text(value)))
                .collect(),
            task_runs: task_runs.iter().map(|run| self.masked_run(run)).collect(),
            logs: logs.iter().map(|entry| self.log(entry).0).collect(),
            outputs: self.masked_map(outputs),
            start: *start,
            duration: *duration,
            attempt_number: *attempt_number,
        })
    }

    fn masked_run(self, held: &HeldRun) -> TaskRun {
        let HeldRun {
            id,
            task_id,
            task_type,
            state,
            outputs,
            error,
            metrics,
            start,
            end,
            attempts,
            parent_task_run_id,
            value,
        } = held;
        TaskRun {
            id: id.clone(),
            task_id: task_id.clone(),
            task_type: task_type.clone(),
            state: *state,
            outputs: self.masked_map(outputs),
            error: error.as_deref().map(|error| self.masked_text(error)),
            metrics: metrics.iter().map(|metric| self.metric(metric)).collect(),
            start: *start,
            end: *end,
            attempts: attempts.iter().map(attempt).collect(),
            parent_task_run_id: parent_task_run_id.clone(),
            value: value.as_deref().map(|value| self.masked_text(value)),
        }
    }

    fn metric(self, metric: &Metric) -> ShownMetric {
        let Metric {
            name,
            kind,
            value,
            tags,
        } = metric;
        ShownMetric {
            name: self.masked_text(name),
            kind: *kind,
            value: self.metric_value(*value),
            tags: tags
                .iter()
                .map(|(key, value)| (self.masked_text(key), self.masked_text(value)))
                .collect(),
        }
    }

    /// The mask when the value's decimal text is a registered value.
    fn metric_value(self, value: f64) -> MetricValue {
        let mut shown = number_json(value);
        self.registry.mask_json(&mut shown);
        match shown {
            Value::Number(_) => MetricValue::Number(value),
            _ => MetricValue::Masked,
        }
    }

    fn masked_inputs(self, held: &HeldInputs) -> Map<String, Value> {
        let HeldInputs { values, secret_ids } = held;
        values
            .iter()
            .filter(|(_, value)| !value.is_null())
            .map(|(id, value)| {
                let shown = if secret_ids.contains(id) {
                    Value::String(MASK.to_owned())
                } else {
                    self.masked_json(value)
                };
                (id.clone(), shown)
            })
            .collect()
    }

    fn masked_text(self, text: &str) -> String {
        self.registry.mask(text).into_owned()
    }

    /// Strings (keys too) and numbers masked at any depth.
    fn masked_json(self, value: &Value) -> Value {
        let mut shown = value.clone();
        self.registry.mask_json(&mut shown);
        shown
    }

    fn masked_map(self, map: &Map<String, Value>) -> Map<String, Value> {
        match self.masked_json(&Value::Object(map.clone())) {
            Value::Object(shown) => shown,
            _ => Map::new(),
        }
    }
}

/// An attempt holds only the engine's own fields: shown as it is.
fn attempt(attempt: &Attempt) -> Attempt {
    let Attempt {
        state,
        start,
        end,
        log_file,
    } = attempt;
    Attempt {
        state: *state,
        start: *start,
        end: *end,
        log_file: log_file.clone(),
    }
}
