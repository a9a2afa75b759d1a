//! Records as Kestra's API shows them (Kestra's REST API): executions with their state and task runs,
//! log entries, secret metadata. Everything here was masked before it was stored.

use chrono::{DateTime, SecondsFormat, Utc};
use kestrel_store::{ExecutionRecord, LogRecord, SecretInfo, StateChange, TaskRunRecord};
use serde_json::{Value, json};

/// A date as Kestra writes it: RFC 3339, UTC, milliseconds.
pub(crate) fn date(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A duration as Java's `Duration` prints it: `PT0.123S`, `PT1M5S`.
pub(crate) fn iso_duration(millis: i64) -> String {
    let millis = millis.max(0);
    let (minutes, rest) = (millis / 60_000, millis % 60_000);
    let seconds = rest as f64 / 1000.0;
    let hours = minutes / 60;
    let mut text = String::from("PT");
    if hours > 0 {
        text.push_str(&format!("{hours}H"));
    }
    if minutes % 60 > 0 {
        text.push_str(&format!("{}M", minutes % 60));
    }
    if rest > 0 || millis == 0 {
        text.push_str(&format!("{seconds}S"));
    }
    text
}

/// Kestra's `state` object: current state, histories, start, end and duration.
fn state_json(current: &str, histories: &[StateChange], end: Option<DateTime<Utc>>) -> Value {
    let start = histories.first().map(|h| h.at);
    let last = end.or_else(|| histories.last().map(|h| h.at));
    let duration = start
        .zip(last)
        .map(|(s, e)| iso_duration(e.timestamp_millis() - s.timestamp_millis()));
    json!({
        "current": current,
        "histories": histories
            .iter()
            .map(|h| json!({"state": h.state, "date": date(h.at)}))
            .collect::<Vec<_>>(),
        "startDate": start.map(date),
        "endDate": end.map(date),
        "duration": duration,
    })
}

/// An execution as `GET /executions/{id}` answers it.
pub(crate) fn execution_json(record: &ExecutionRecord) -> Value {
    json!({
        "id": record.id,
        "namespace": record.namespace,
        "flowId": record.flow_id,
        "flowRevision": record.flow_revision,
        "originalId": record.id,
        "deleted": false,
        "metadata": {"originalCreatedDate": date(record.created_at), "attemptNumber": 1},
        "state": state_json(&record.state, &record.histories, record.ended_at),
        "taskRunList": record
            .task_runs
            .iter()
            .map(|run| task_run_json(record, run))
            .collect::<Vec<_>>(),
        "inputs": record.inputs,
        "outputs": record.outputs,
        "labels": record.labels,
    })
}

fn task_run_json(execution: &ExecutionRecord, run: &TaskRunRecord) -> Value {
    let detail = &run.detail;
    let histories = [
        Some(StateChange {
            state: "RUNNING".into(),
            at: run.started_at,
        }),
        run.ended_at.map(|at| StateChange {
            state: run.state.clone(),
            at,
        }),
    ];
    let histories: Vec<StateChange> = histories.into_iter().flatten().collect();
    let mut json = json!({
        "id": run.id,
        "executionId": execution.id,
        "namespace": execution.namespace,
        "flowId": execution.flow_id,
        "taskId": run.task_id,
        "parentTaskRunId": detail.get("parentTaskRunId").cloned().unwrap_or(Value::Null),
        "value": detail.get("value").cloned().unwrap_or(Value::Null),
        "attempts": detail.get("attempts").cloned().unwrap_or_else(|| json!([])),
        "outputs": run.outputs,
        "state": state_json(&run.state, &histories, run.ended_at),
    });
    if let Some(error) = &run.error {
        json["error"] = json!(error);
    }
    if let Some(metrics) = detail.get("metrics") {
        json["metrics"] = metrics.clone();
    }
    json
}

/// A log entry as `GET /logs/{executionId}` lists it.
pub(crate) fn log_json(execution: &ExecutionRecord, log: &LogRecord) -> Value {
    json!({
        "namespace": execution.namespace,
        "flowId": execution.flow_id,
        "executionId": execution.id,
        "taskId": log.task_id,
        "taskRunId": log.task_run_id,
        "attemptNumber": log.attempt,
        "level": log.level,
        "message": log.message,
        "timestamp": date(log.at),
    })
}

/// A secret's metadata as the secrets API shows it: never a value, `tags` always a list.
pub(crate) fn secret_json(info: &SecretInfo) -> Value {
    json!({
        "key": info.key,
        "namespace": info.namespace,
        "description": info.meta.description,
        "tags": info.meta.tags,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_as_java_does() {
        assert_eq!(iso_duration(123), "PT0.123S");
        assert_eq!(iso_duration(0), "PT0S");
        assert_eq!(iso_duration(65_000), "PT1M5S");
        assert_eq!(iso_duration(3_600_000), "PT1H");
    }

    #[test]
    fn dates_are_utc_with_milliseconds() {
        let at = DateTime::from_timestamp_millis(1_700_000_000_123).unwrap();
        assert_eq!(date(at), "2023-11-14T22:13:20.123Z");
    }
}
