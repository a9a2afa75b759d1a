//! How results are shown: an execution's log lines as they happen or one JSON document at the
//! end (everything already masked by the engine), listings as a header and tab-separated rows
//! or JSON; warnings go to stderr.

use chrono::{DateTime, Local, SecondsFormat, Utc};
use clap::ValueEnum;
use kestrel_engine::{Execution, Listener, LogEntry, Shown};
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
    fn on_log(&self, entry: &Shown<LogEntry>) {
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

/// One line on stderr saying what a command did (stdout keeps the command's result only).
pub(crate) fn note(message: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{message}");
}

/// How a listing is printed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub(crate) enum ListFormat {
    /// A header, then one tab-separated row per item.
    #[default]
    Text,
    /// One JSON array.
    Json,
}

/// Prints a listing on stdout: `header` and `rows` as tab-separated lines, or `json`.
pub(crate) fn print_listing(
    format: ListFormat,
    header: &[&str],
    rows: &[Vec<String>],
    json: &Value,
) {
    let text = match format {
        ListFormat::Text => table(header, rows),
        ListFormat::Json => format!("{json}\n"),
    };
    // A closed stdout (a pipe whose reader left) has nothing left to show.
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

/// A header line and one line per row, cells separated by tabs. A tab or line break inside a
/// cell becomes a space, so that each row stays one line of `header.len()` cells.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut text = header.join("\t");
    text.push('\n');
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .map(|cell| cell.replace(['\t', '\n', '\r'], " "))
            .collect();
        text.push_str(&cells.join("\t"));
        text.push('\n');
    }
    text
}

/// A moment as listings show it: RFC 3339 in UTC, to the millisecond.
pub(crate) fn timestamp(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
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
            let attempts: Vec<Value> = run
                .attempts
                .iter()
                .map(|attempt| {
                    json!({
                        "state": attempt.state.as_str(),
                        "start": timestamp(&attempt.start),
                        "end": attempt.end.as_ref().map(timestamp),
                    })
                })
                .collect();
            let mut value = json!({
                "id": run.id,
                "taskId": run.task_id,
                "state": run.state.as_str(),
                "outputs": run.outputs,
                "attempts": attempts,
            });
            if let Some(error) = &run.error {
                value["error"] = json!(error);
            }
            if let Some(parent) = &run.parent_task_run_id {
                value["parentTaskRunId"] = json!(parent);
            }
            if let Some(item) = &run.value {
                value["value"] = json!(item);
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
        "outputs": execution.outputs,
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
            attempt_number: 1,
        }
    }

    #[test]
    fn a_table_keeps_one_line_per_row() {
        let rows = vec![
            vec!["K".to_owned(), "two\nlines\tand a tab".to_owned()],
            vec!["L".to_owned(), String::new()],
        ];
        assert_eq!(
            table(&["KEY", "DESCRIPTION"], &rows),
            "KEY\tDESCRIPTION\nK\ttwo lines and a tab\nL\t\n"
        );
    }

    #[test]
    fn timestamps_are_utc_to_the_millisecond() {
        let at = DateTime::parse_from_rfc3339("2026-01-02T03:04:05.678+02:00").unwrap();
        assert_eq!(timestamp(&at.to_utc()), "2026-01-02T01:04:05.678Z");
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
