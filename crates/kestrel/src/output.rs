//! How executions are shown: log lines as they happen, or one JSON document at the end.
//! Everything shown comes from the engine already masked; warnings go to stderr.

use chrono::Local;
use kestrel_engine::{Execution, Listener, LogEntry};
use serde_json::{Value, json};
use std::io::Write;

/// Prints the engine's warnings on stderr, and nothing else.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Quiet;

impl Listener for Quiet {
    fn on_warning(&self, message: &str) {
        warn(message);
    }
}

/// Prints each log entry on stdout as it happens, `HH:MM:SS.mmm LEVEL TASK_ID MESSAGE`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LogLines;

impl Listener for LogLines {
    fn on_log(&self, entry: &LogEntry) {
        // A closed stdout (a pipe whose reader left) is no reason to stop the execution.
        let _ = writeln!(std::io::stdout().lock(), "{}", log_line(entry));
    }

    fn on_warning(&self, message: &str) {
        warn(message);
    }
}

/// One warning line on stderr.
pub(crate) fn warn(message: &str) {
    let _ = writeln!(std::io::stderr().lock(), "warning: {message}");
}

/// `HH:MM:SS.mmm LEVEL TASK_ID MESSAGE` in local time, the level padded to 5; the following
/// lines of a multi-line message as they are (its final line break dropped).
fn log_line(entry: &LogEntry) -> String {
    let time = entry.timestamp.with_timezone(&Local).format("%H:%M:%S%.3f");
    let message = entry.message.strip_suffix('\n').unwrap_or(&entry.message);
    let message = message.strip_suffix('\r').unwrap_or(message);
    format!(
        "{time} {:<5} {} {message}",
        entry.level.as_str(),
        entry.task_id
    )
}

/// The last line of text output.
pub(crate) fn summary_line(execution: &Execution) -> String {
    format!(
        "Execution {} {} in {} ms",
        execution.id,
        execution.state,
        execution.duration.as_millis()
    )
}

/// The JSON document of `--output json`.
pub(crate) fn execution_json(execution: &Execution) -> Value {
    let task_runs: Vec<Value> = execution
        .task_runs
        .iter()
        .map(|run| {
            let mut value = json!({
                "taskId": run.task_id,
                "state": run.state.as_str(),
                "outputs": run.outputs,
            });
            if let Some(error) = &run.error {
                value["error"] = json!(error);
            }
            value
        })
        .collect();
    let logs: Vec<Value> = execution
        .logs
        .iter()
        .map(|entry| {
            json!({
                "taskId": entry.task_id,
                "level": entry.level.as_str(),
                "message": entry.message,
            })
        })
        .collect();
    json!({
        "id": execution.id,
        "namespace": execution.namespace,
        "flowId": execution.flow_id,
        "state": execution.state.as_str(),
        "taskRuns": task_runs,
        "logs": logs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use kestrel_flow::Level;

    fn entry(level: Level, message: &str) -> LogEntry {
        LogEntry {
            task_id: "hello".into(),
            task_run_id: "run".into(),
            level,
            message: message.into(),
            timestamp: Utc::now(),
        }
    }

    #[test]
    fn a_log_line_pads_the_level_and_keeps_continuation_lines() {
        let line = log_line(&entry(Level::Info, "one\ntwo\n"));
        let (time, rest) = line.split_once(' ').unwrap();
        assert_eq!(time.len(), "12:34:56.789".len());
        assert_eq!(time.as_bytes()[2], b':');
        assert_eq!(time.as_bytes()[8], b'.');
        assert_eq!(rest, "INFO  hello one\ntwo");
        assert!(log_line(&entry(Level::Error, "x")).contains(" ERROR hello x"));
    }
}
