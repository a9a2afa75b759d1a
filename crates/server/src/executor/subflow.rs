//! Subflows on the server: a Subflow task starts an execution of a stored flow, a stored
//! execution of its own (in the API under its own id) that runs here in its parent's slot.
//! The child reads its secrets as itself, in its own namespace, under the same policy as any
//! execution; killing the parent while it waits kills the child.

use super::{Lineage, Submission, submit_in, submitted_ended};
use crate::state::AppState;
use async_trait::async_trait;
use kestrel_engine::{
    ResumeRequest, SUBFLOW_MAX_DEPTH, State, SubflowEnd, SubflowLauncher, SubflowRequest,
    TaskError, task_outputs, too_deep,
};
use kestrel_store::ExecutionRecord;
use serde_json::Map;

/// Starts children of the stored flows for the Subflow tasks of one execution.
pub(super) struct StoredFlows<'a> {
    pub(super) state: &'a AppState,
    /// Who triggered the parent: the child's reads are audited under them too.
    pub(super) triggered_by: &'a str,
    /// How deep the parent is (0 for an execution no Subflow started).
    pub(super) depth: usize,
}

#[async_trait]
impl SubflowLauncher for StoredFlows<'_> {
    async fn launch(&self, request: SubflowRequest) -> Result<SubflowEnd, TaskError> {
        let state = self.state;
        let (namespace, flow_id) = (request.namespace.as_str(), request.flow_id.as_str());
        if self.depth >= SUBFLOW_MAX_DEPTH {
            return Err(too_deep(namespace, flow_id));
        }
        let store = state.0.store.as_ref();
        let tenant = &state.0.options.tenant;
        let found = match request.revision {
            Some(revision) => {
                let flows = &state.0.flows;
                flows
                    .revision(store, tenant, namespace, flow_id, revision)
                    .await
            }
            None => {
                state
                    .0
                    .flows
                    .latest(store, tenant, namespace, flow_id)
                    .await
            }
        };
        let flow = found.map_err(failure)?.ok_or_else(|| {
            TaskError::new(format!(
                "Unable to find flow '{namespace}'.'{flow_id}' with revision '{}'",
                request.revision.unwrap_or(0)
            ))
        })?;
        let submission = Submission {
            id: None,
            flow,
            inputs: request.inputs,
            trigger: Some(request.trigger),
            triggered_by: self.triggered_by.to_owned(),
        };
        let lineage = Lineage {
            labels: request.labels,
            depth: self.depth + 1,
        };
        let submitted = submit_in(state, submission, request.registered, lineage)
            .await
            .map_err(failure)?;
        let id = submitted.record.id.clone();
        if !request.wait {
            return Ok(SubflowEnd::started(id));
        }
        let mut waiting = KillOnDrop {
            state,
            id: &id,
            armed: true,
        };
        let ended = submitted_ended(state, submitted).await.map_err(failure)?;
        waiting.armed = false;
        Ok(end_of(&ended))
    }

    /// Resumes a PAUSED execution running on this node, as the resume route does; the
    /// engine checked it is of the resuming execution's namespace.
    async fn resume(&self, request: ResumeRequest) -> Result<(), TaskError> {
        let id = &request.execution_id;
        let live = self.state.0.executor.get(id);
        let record = live.as_ref().map(|live| live.record());
        let Some((live, record)) = live.zip(record).filter(|(_, record)| {
            record.namespace == request.namespace
                && request
                    .flow_id
                    .as_ref()
                    .is_none_or(|flow| *flow == record.flow_id)
        }) else {
            return Err(TaskError::new(format!(
                "No paused execution {id} in namespace {} runs on this node",
                request.namespace
            )));
        };
        if record.state != "PAUSED" {
            return Err(TaskError::new(format!(
                "Execution {id} is not paused ({})",
                record.state
            )));
        }
        live.resumer
            .resume(request.inputs)
            .await
            .map_err(TaskError::new)
    }
}

/// Why a launch failed, as the task run's error.
fn failure(error: impl std::fmt::Display) -> TaskError {
    TaskError::new(error.to_string())
}

/// A stored child that ended, as the Subflow task reads it.
fn end_of(record: &ExecutionRecord) -> SubflowEnd {
    let outputs = record.outputs.as_object().cloned().unwrap_or_default();
    let empty = Map::new();
    let runs = record.task_runs.iter().map(|run| {
        let outputs = run.outputs.as_object().unwrap_or(&empty);
        (run.task_id.as_str(), run.detail["value"].as_str(), outputs)
    });
    SubflowEnd {
        execution_id: record.id.clone(),
        state: Some(State::from_name(&record.state).unwrap_or(State::Failed)),
        outputs,
        task_outputs: task_outputs(runs),
    }
}

/// Kills the child when the parent stops waiting for it before its end (the parent was
/// killed, or its task timed out).
struct KillOnDrop<'a> {
    state: &'a AppState,
    id: &'a str,
    /// Cleared once the child ended.
    armed: bool,
}

impl Drop for KillOnDrop<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(live) = self.state.0.executor.get(self.id) {
            live.cancel.cancel();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use kestrel_store::TaskRunRecord;
    use serde_json::{Value, json};

    #[test]
    fn a_stored_child_gives_its_state_outputs_and_task_outputs() {
        let run = |task: &str, value: Value, outputs: Value| TaskRunRecord {
            id: "r".into(),
            task_id: task.into(),
            attempt: 1,
            state: "SUCCESS".into(),
            outputs,
            error: None,
            started_at: Utc::now(),
            ended_at: None,
            detail: json!({"value": value}),
        };
        let record = ExecutionRecord {
            id: "child".into(),
            tenant: "main".into(),
            namespace: "dev".into(),
            flow_id: "c".into(),
            flow_revision: 1,
            state: "WARNING".into(),
            histories: Vec::new(),
            inputs: json!({}),
            outputs: json!({"o": 1}),
            labels: json!([]),
            task_runs: vec![
                run("t", Value::Null, json!({"value": "x"})),
                run("each", json!("a"), json!({"value": "y"})),
            ],
            created_at: Utc::now(),
            ended_at: Some(Utc::now()),
        };
        let end = end_of(&record);
        assert_eq!(end.state, Some(State::Warning));
        assert_eq!(Value::Object(end.outputs), json!({"o": 1}));
        assert_eq!(
            Value::Object(end.task_outputs),
            json!({"t": {"value": "x"}, "each": {"a": {"value": "y"}}})
        );
    }
}
