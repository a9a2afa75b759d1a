//! The seam through which a Subflow task starts an execution of another flow: the host (the
//! CLI, the server) gives the engine a [`SubflowLauncher`] that finds flows and runs them.
//!
//! What crosses the seam is what readers may see: the child's outputs come back as its
//! readers see them (masked), so a secret of the child's namespace never becomes a value of
//! the parent; the inputs and labels the parent sends that hold one of its secrets travel in
//! [`SubflowRequest::registered`], for the child to mask them as a whole.

use crate::{Execution, State, TaskError};
use async_trait::async_trait;
use kestrel_secrets::SecretValue;
use serde_json::{Map, Value};

/// How deep subflows may nest: a flow starting itself, directly or not, stops there.
pub const SUBFLOW_MAX_DEPTH: usize = 10;

/// Starts executions of flows for Subflow tasks.
#[async_trait]
pub trait SubflowLauncher: Send + Sync {
    /// Starts an execution of the flow `request` names and, when `request.wait`, waits for
    /// its end. An error (the flow is unknown, disabled, refuses the inputs, the depth limit
    /// is reached) fails the Subflow task run with its message.
    async fn launch(&self, request: SubflowRequest) -> Result<SubflowEnd, TaskError>;

    /// Resumes the PAUSED execution `request` names (an `execution.Resume` task). Hosts that
    /// hold no other execution (`kestrel run`) cannot.
    async fn resume(&self, request: ResumeRequest) -> Result<(), TaskError> {
        Err(TaskError::new(format!(
            "Cannot resume execution {}: only the server holds other executions",
            request.execution_id
        )))
    }
}

/// The resume an `execution.Resume` task asks for: everything rendered.
pub struct ResumeRequest {
    /// The namespace the execution must be in: the resuming execution's.
    pub namespace: String,
    /// The flow the execution must be of, when the task names one.
    pub flow_id: Option<String>,
    /// The execution.
    pub execution_id: String,
    /// Its Pause's `onResume` inputs, as text (none holds a secret of the resuming execution).
    pub inputs: Vec<(String, SecretValue)>,
}

/// An execution a Subflow task asks for: everything rendered.
pub struct SubflowRequest {
    /// The flow's namespace.
    pub namespace: String,
    /// The flow's id.
    pub flow_id: String,
    /// The flow's revision; the latest when `None`.
    pub revision: Option<u64>,
    /// The inputs, as text (JSON for lists, maps and numbers), as `--input` gives them.
    pub inputs: Vec<(String, SecretValue)>,
    /// The values the child registers for masking from its start: those of `inputs` and
    /// `labels` that hold a secret of the parent, by name.
    pub registered: Vec<(String, SecretValue)>,
    /// The child's labels besides its flow's: the parent's (all of them under
    /// `inheritLabels`, else `system.correlationId`), then the task's.
    pub labels: Vec<(String, String)>,
    /// The child's `trigger` variable: the parent's `executionId`, `namespace`, `flowId` and
    /// `flowRevision`, as Kestra gives them.
    pub trigger: Value,
    /// Whether the task waits for the child's end.
    pub wait: bool,
}

impl std::fmt::Debug for SubflowRequest {
    // Inputs and labels may hold secrets: only the flow is shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubflowRequest")
            .field("namespace", &self.namespace)
            .field("flow_id", &self.flow_id)
            .field("revision", &self.revision)
            .finish_non_exhaustive()
    }
}

/// A child execution, as its readers see it (masked).
#[derive(Debug, Clone, PartialEq)]
pub struct SubflowEnd {
    /// The child's id.
    pub execution_id: String,
    /// Its final state; `None` when the task did not wait.
    pub state: Option<State>,
    /// Its flow's `outputs`.
    pub outputs: Map<String, Value>,
    /// Its task runs' outputs by task id (then by ForEach value), as its expressions would
    /// read them: what a Subflow task's own `outputs` render against.
    pub task_outputs: Map<String, Value>,
}

impl SubflowEnd {
    /// A child started and not waited for.
    pub fn started(execution_id: impl Into<String>) -> Self {
        Self {
            execution_id: execution_id.into(),
            state: None,
            outputs: Map::new(),
            task_outputs: Map::new(),
        }
    }

    /// A child that ended, from its execution.
    pub fn ended(execution: &Execution) -> Self {
        let runs = execution
            .task_runs
            .iter()
            .map(|run| (run.task_id.as_str(), run.value.as_deref(), &run.outputs));
        Self {
            execution_id: execution.id.clone(),
            state: Some(execution.state),
            outputs: execution.outputs.clone(),
            task_outputs: task_outputs(runs),
        }
    }
}

/// Task runs' outputs as expressions read them: `<task>`, or `<task>.<value>` for a run of a
/// ForEach iteration; each run given as its task id, its ForEach value and its outputs.
pub fn task_outputs<'r>(
    runs: impl IntoIterator<Item = (&'r str, Option<&'r str>, &'r Map<String, Value>)>,
) -> Map<String, Value> {
    let mut all = Map::new();
    for (task_id, value, outputs) in runs {
        let outputs = Value::Object(outputs.clone());
        match value {
            None => {
                all.insert(task_id.to_owned(), outputs);
            }
            Some(value) => {
                let slot = all
                    .entry(task_id.to_owned())
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(by_value) = slot {
                    by_value.insert(value.to_owned(), outputs);
                }
            }
        }
    }
    all
}

/// The execution a Subflow task runs in, as its child sees it.
#[derive(Debug, Clone)]
pub(crate) struct Parent {
    pub(crate) execution_id: String,
    pub(crate) namespace: String,
    pub(crate) flow_id: String,
    pub(crate) revision: Option<u64>,
    /// Its labels, real (a label rendered from a secret is masked by the child's registry).
    pub(crate) labels: Vec<(String, String)>,
}

/// What the task runs of an execution may start children with: the host's launcher, and the
/// execution they start them from.
#[derive(Clone, Copy)]
pub(crate) struct Subflows<'a> {
    pub(crate) launcher: &'a dyn SubflowLauncher,
    pub(crate) parent: &'a Parent,
}

/// The failure of a launch past [`SUBFLOW_MAX_DEPTH`].
pub fn too_deep(namespace: &str, flow_id: &str) -> TaskError {
    TaskError::new(format!(
        "Cannot start flow '{namespace}'.'{flow_id}': subflows are nested {SUBFLOW_MAX_DEPTH} \
         deep already (does a flow start itself?)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn task_outputs_are_keyed_like_expressions_read_them() {
        let plain = json!({"value": 1});
        let a = json!({"value": "a"});
        let b = json!({"value": "b"});
        let (plain, a, b) = (
            plain.as_object().unwrap().clone(),
            a.as_object().unwrap().clone(),
            b.as_object().unwrap().clone(),
        );
        let found = task_outputs([
            ("t", None, &plain),
            ("each", Some("x"), &a),
            ("each", Some("y"), &b),
        ]);
        assert_eq!(
            Value::Object(found),
            json!({"t": {"value": 1}, "each": {"x": {"value": "a"}, "y": {"value": "b"}}})
        );
    }
}
