//! From the engine's types (already masked by its edge) to the store's: execution records,
//! task runs and log entries.

use chrono::{DateTime, Utc};
use kestrel_engine::{
    Attempt, Execution, LogEntry, MetricKind, MetricValue, ShownMetric, State, TaskRun,
};
use kestrel_store::{ExecutionRecord, LogRecord, StateChange, TaskRunRecord};
use serde_json::{Value, json};

/// Labels, `[{"key", "value"}]`.
pub(crate) fn labels_json(labels: &[(String, String)]) -> Value {
    Value::Array(
        labels
            .iter()
            .map(|(key, value)| json!({"key": key, "value": value}))
            .collect(),
    )
}

/// A task run as stored: its last attempt's state, the rest in `detail`; its attempt number
/// shifted by `attempt_offset` (the earlier runs of a resumed execution).
pub(crate) fn task_run(run: &TaskRun, attempt_offset: u32) -> TaskRunRecord {
    let attempts: Vec<Value> = run
        .attempts
        .iter()
        .map(|a| {
            let mut attempt = json!({"state": {
                "current": a.state.as_str(),
                "startDate": crate::view::date(a.start),
                "endDate": a.end.map(crate::view::date),
            }});
            if let Some(file) = &a.log_file {
                attempt["logFile"] = json!(file);
            }
            attempt
        })
        .collect();
    let metrics: Vec<Value> = run
        .metrics
        .iter()
        .map(|m| json!({"name": m.name, "type": m.kind.as_str(), "value": m.value.to_json(), "tags": m.tags}))
        .collect();
    TaskRunRecord {
        id: run.id.clone(),
        task_id: run.task_id.clone(),
        attempt: u32::try_from(run.attempts.len().max(1))
            .unwrap_or(u32::MAX)
            .saturating_add(attempt_offset),
        state: run.state.as_str().to_owned(),
        outputs: Value::Object(run.outputs.clone()),
        error: run.error.clone(),
        started_at: run.start,
        ended_at: run.end,
        detail: json!({
            "type": run.task_type,
            "parentTaskRunId": run.parent_task_run_id,
            "value": run.value,
            "attempts": attempts,
            "metrics": metrics,
        }),
    }
}

/// A log entry as stored, its attempt number shifted by `attempt_offset`.
pub(crate) fn log(entry: &LogEntry, attempt_offset: u32) -> LogRecord {
    LogRecord {
        task_id: Some(entry.task_id.clone()),
        task_run_id: Some(entry.task_run_id.clone()),
        attempt: Some(entry.attempt_number.saturating_add(attempt_offset)),
        at: entry.timestamp,
        level: entry.level.as_str().to_owned(),
        message: entry.message.clone(),
    }
}

/// A log entry of the server itself about an execution.
pub(crate) fn server_log(level: &str, message: &str) -> LogRecord {
    LogRecord {
        task_id: None,
        task_run_id: None,
        attempt: None,
        at: Utc::now(),
        level: level.to_owned(),
        message: message.to_owned(),
    }
}

/// `record` moved to `state` at `at`, with a history entry unless it is already there.
pub(crate) fn entered(record: &mut ExecutionRecord, state: &str, at: DateTime<Utc>) {
    if record.state != state || record.histories.is_empty() {
        record.histories.push(StateChange {
            state: state.to_owned(),
            at,
        });
    }
    record.state = state.to_owned();
}

/// `record` ended in `state` now.
pub(crate) fn ended(record: &mut ExecutionRecord, state: &str) {
    let now = Utc::now();
    entered(record, state, now);
    record.ended_at = Some(now);
}

/// The record of an execution the engine ran to its end, attempt numbers shifted by
/// `attempt_offset`.
pub(crate) fn finished(
    mut record: ExecutionRecord,
    execution: &Execution,
    attempt_offset: u32,
) -> ExecutionRecord {
    record.task_runs = execution
        .task_runs
        .iter()
        .map(|run| task_run(run, attempt_offset))
        .collect();
    record.outputs = Value::Object(execution.outputs.clone());
    record.inputs = Value::Object(execution.inputs.clone());
    record.labels = labels_json(&execution.labels);
    ended(&mut record, execution.state.as_str());
    record
}

/// A stored task run as the engine is given it to restart its execution (the inverse of
/// [`task_run`]): its values as readers saw them, masked.
pub(crate) fn prior_run(run: &TaskRunRecord) -> TaskRun {
    let detail = &run.detail;
    let text = |value: &Value| value.as_str().map(str::to_owned);
    let attempts = detail["attempts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|attempt| {
            let state = &attempt["state"];
            Attempt {
                state: state_named(state["current"].as_str().unwrap_or_default()),
                start: parse_date(&state["startDate"]).unwrap_or(run.started_at),
                end: parse_date(&state["endDate"]),
                log_file: text(&attempt["logFile"]),
            }
        })
        .collect();
    let metrics = detail["metrics"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|metric| {
            Some(ShownMetric {
                name: text(&metric["name"])?,
                kind: MetricKind::from_name(metric["type"].as_str()?)?,
                value: metric["value"]
                    .as_f64()
                    .map_or(MetricValue::Masked, MetricValue::Number),
                tags: serde_json::from_value(metric["tags"].clone()).unwrap_or_default(),
            })
        })
        .collect();
    TaskRun {
        id: run.id.clone(),
        task_id: run.task_id.clone(),
        task_type: text(&detail["type"]).unwrap_or_default(),
        state: state_named(&run.state),
        outputs: run.outputs.as_object().cloned().unwrap_or_default(),
        error: run.error.clone(),
        metrics,
        start: run.started_at,
        end: run.ended_at,
        attempts,
        parent_task_run_id: text(&detail["parentTaskRunId"]),
        value: text(&detail["value"]),
    }
}

/// The state `name` names; a name kestrel does not know reads as FAILED (it runs again).
fn state_named(name: &str) -> State {
    State::from_name(name).unwrap_or(State::Failed)
}

/// A date as [`crate::view::date`] writes it.
fn parse_date(value: &Value) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value.as_str()?)
        .ok()
        .map(|at| at.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn a_stored_task_run_reads_back_as_it_was_stored() {
        let at = DateTime::from_timestamp_millis(1_764_000_000_123).unwrap();
        let run = TaskRun {
            id: "tr".into(),
            task_id: "t".into(),
            task_type: "io.kestra.plugin.core.log.Log".into(),
            state: State::Failed,
            outputs: serde_json::Map::from_iter([("value".to_owned(), json!("******"))]),
            error: Some("boom".into()),
            metrics: vec![ShownMetric {
                name: "rows".into(),
                kind: MetricKind::Counter,
                value: MetricValue::Number(3.0),
                tags: BTreeMap::from([("table".to_owned(), "t".to_owned())]),
            }],
            start: at,
            end: Some(at),
            attempts: vec![Attempt {
                state: State::Failed,
                start: at,
                end: Some(at),
                log_file: Some("kestra:///log".into()),
            }],
            parent_task_run_id: Some("parent".into()),
            value: Some("v".into()),
        };
        let stored = task_run(&run, 0);
        assert_eq!(prior_run(&stored), run);
    }
}
