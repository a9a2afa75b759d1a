//! How results are shown: an execution's log lines as they happen or one JSON document at the
//! end (everything already masked by the engine), listings as a header and tab-separated rows
//! or JSON; warnings go to stderr. Text meant for a terminal has its control characters
//! escaped, so that no script can make a terminal draw what the masker hid.

use chrono::{DateTime, Local, SecondsFormat, Utc};
use clap::ValueEnum;
use kestrel_engine::{Execution, Listener, LogEntry, Shown};
use serde_json::{Value, json};
use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::io::{self, Write};

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
    let message = escape_controls(message);
    let _ = writeln!(std::io::stderr().lock(), "warning: {message}");
}

/// `text` safe to print on a terminal: every control character but the line break and the
/// tab (C0, DEL, C1) and every bidirectional override written as an escape (`\r`, `\x1b`,
/// `\u{9b}`, `\u{202e}`). A script that splits a secret with `\b`, `\r` or an ANSI sequence
/// defeats the masker, which sees no secret in the pieces; escaped, the terminal cannot
/// draw them back together. A line ending `\r\n` is a line break: it hides nothing.
pub(crate) fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe_on_a_terminal) {
        return Cow::Borrowed(text);
    }
    let mut escaped = String::with_capacity(text.len() + 16);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' if chars.peek() == Some(&'\n') => {}
            '\r' => escaped.push_str("\\r"),
            c if !is_unsafe_on_a_terminal(c) => escaped.push(c),
            c if c.is_ascii() => {
                let _ = write!(escaped, "\\x{:02x}", u32::from(c));
            }
            c => {
                let _ = write!(escaped, "\\u{{{:x}}}", u32::from(c));
            }
        }
    }
    Cow::Owned(escaped)
}

fn is_unsafe_on_a_terminal(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `HH:MM:SS.mmm LEVEL TASK_ID MESSAGE` in local time, the level padded to 5; the following
/// lines of a multi-line message as they are (its final line break dropped), control
/// characters escaped.
fn log_line(entry: &LogEntry) -> String {
    let time = entry.timestamp.with_timezone(&Local).format("%H:%M:%S%.3f");
    let message = entry.message.strip_suffix('\n').unwrap_or(&entry.message);
    let message = message.strip_suffix('\r').unwrap_or(message);
    let message = escape_controls(message);
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
        ListFormat::Json => format!("{}\n", json_text(json)),
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
            .map(|cell| escape_controls(&cell.replace(['\t', '\n', '\r'], " ")).into_owned())
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

/// A JSON document as kestrel prints it: compact, with every character a terminal acts on
/// escaped. JSON escapes the C0 controls itself; DEL, the C1 controls and the bidirectional
/// overrides, which it leaves as they are, become `\u007f`-style escapes too: the same
/// document for any JSON reader.
pub(crate) fn json_text(value: &Value) -> String {
    let mut text = Vec::new();
    let mut serializer = serde_json::Serializer::with_formatter(&mut text, TerminalSafe);
    // Writing a `Value` to memory cannot fail.
    let _ = serde::Serialize::serialize(value, &mut serializer);
    String::from_utf8_lossy(&text).into_owned()
}

/// serde_json's compact formatter, escaping what [`json_text`] says.
struct TerminalSafe;

impl serde_json::ser::Formatter for TerminalSafe {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut rest = fragment;
        while let Some((at, c)) = rest
            .char_indices()
            .find(|&(_, c)| is_unsafe_on_a_terminal(c))
        {
            writer.write_all(&rest.as_bytes()[..at])?;
            write!(writer, "\\u{:04x}", u32::from(c))?;
            rest = &rest[at + c.len_utf8()..];
        }
        writer.write_all(rest.as_bytes())
    }
}

/// The JSON document of `--output json`, printed with [`json_text`].
pub(crate) struct ExecutionJson(Value);

impl fmt::Display for ExecutionJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&json_text(&self.0))
    }
}

impl ExecutionJson {
    /// The document with the executions of its Subflow tasks (and theirs), in the order they
    /// ended, under `subflowExecutions`; unchanged without any.
    pub(crate) fn with_subflows(mut self, children: &[Execution]) -> Self {
        if !children.is_empty() {
            let documents: Vec<Value> = children
                .iter()
                .map(|child| execution_json(child).0)
                .collect();
            self.0["subflowExecutions"] = Value::Array(documents);
        }
        self
    }
}

/// The JSON document of `--output json`.
pub(crate) fn execution_json(execution: &Execution) -> ExecutionJson {
    let task_runs: Vec<Value> = execution
        .task_runs
        .iter()
        .map(|run| {
            let attempts: Vec<Value> = run
                .attempts
                .iter()
                .map(|attempt| {
                    let mut shown = json!({
                        "state": attempt.state.as_str(),
                        "start": timestamp(&attempt.start),
                        "end": attempt.end.as_ref().map(timestamp),
                    });
                    if let Some(file) = &attempt.log_file {
                        shown["logFile"] = json!(file);
                    }
                    shown
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
    let labels: Vec<Value> = execution
        .labels
        .iter()
        .map(|(key, value)| json!({"key": key, "value": value}))
        .collect();
    let mut document = json!({
        "id": execution.id,
        "namespace": execution.namespace,
        "flowId": execution.flow_id,
        "state": execution.state.as_str(),
        "labels": labels,
        "metadata": {"attemptNumber": execution.attempt_number},
        "taskRuns": task_runs,
        "logs": logs,
        "outputs": execution.outputs,
    });
    if let Some(trigger) = &execution.trigger {
        document["trigger"] = trigger.clone();
    }
    ExecutionJson(document)
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

    #[test]
    fn control_characters_are_escaped_but_lines_and_tabs_kept() {
        let line = log_line(&entry(
            Level::Info,
            "pass\x1b[2Kwo\rrd\x08!\x7f\u{9b}\u{202e}\r\nnext\tcol\r\n",
        ));
        let (_, rest) = line.split_once(' ').unwrap();
        assert_eq!(
            rest,
            "INFO  hello pass\\x1b[2Kwo\\rrd\\x08!\\x7f\\u{9b}\\u{202e}\nnext\tcol"
        );
        assert!(matches!(escape_controls("plain\ttext\n"), Cow::Borrowed(_)));
    }

    #[test]
    fn json_escapes_what_a_terminal_acts_on_and_stays_the_same_document() {
        let value = json!({"m": "a\u{1b}[0mb\u{7f}c\u{9b}d\u{202e}e\tf\u{e9}"});
        let text = json_text(&value);
        assert_eq!(
            text,
            "{\"m\":\"a\\u001b[0mb\\u007fc\\u009bd\\u202ee\\tf\u{e9}\"}"
        );
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), value);
    }
}
