//! Kestra's script line protocol (`docs/tasks.md`): a line `::{...}::` holding JSON carries
//! `outputs` (merged into the task's `vars`), `metrics` and `logs`. A line that looks like one
//! but does not hold a JSON object is an ordinary log line.

use crate::{Metric, MetricKind, TaskContext};
use kestrel_flow::Level;
use serde_json::{Map, Value};

/// The JSON object a protocol line carries; `None` for an ordinary line.
pub(super) fn parse(line: &str) -> Option<Map<String, Value>> {
    let inner = line.trim().strip_prefix("::")?.strip_suffix("::")?;
    if !inner.starts_with('{') {
        return None;
    }
    match serde_json::from_str(inner) {
        Ok(Value::Object(message)) => Some(message),
        _ => None,
    }
}

/// Does what a protocol line says: its outputs join `vars` (later values win), its metrics are
/// recorded and its entries logged. A part it cannot read is logged as a warning instead.
pub(super) fn apply(
    ctx: &mut TaskContext<'_>,
    vars: &mut Map<String, Value>,
    message: Map<String, Value>,
) {
    for (key, value) in message {
        match (key.as_str(), value) {
            ("outputs", Value::Object(outputs)) => vars.extend(outputs),
            ("metrics", Value::Array(metrics)) => {
                for value in metrics {
                    match metric(&value) {
                        Some(metric) => ctx.metric(metric),
                        None => unreadable(ctx, "metric", &value),
                    }
                }
            }
            ("logs", Value::Array(entries)) => {
                for entry in entries {
                    log_entry(ctx, &entry);
                }
            }
            (_, value) => unreadable(ctx, &key, &value),
        }
    }
}

/// `{"name": "rows", "type": "counter", "value": 5, "tags": {"k": "v"}}`.
fn metric(value: &Value) -> Option<Metric> {
    let name = value.get("name")?.as_str()?;
    let kind = MetricKind::from_name(value.get("type")?.as_str()?)?;
    let number = value.get("value")?.as_f64()?;
    let tags = match value.get("tags") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(tags)) => tags.clone(),
        Some(_) => return None,
    };
    Some(Metric {
        name: name.to_owned(),
        kind,
        value: number,
        tags: tags
            .into_iter()
            .map(|(key, value)| (key, text(value)))
            .collect(),
    })
}

/// `{"level": "INFO", "message": "text"}`; an unknown or missing level is INFO.
fn log_entry(ctx: &mut TaskContext<'_>, entry: &Value) {
    let Some(message) = entry.get("message") else {
        unreadable(ctx, "log entry", entry);
        return;
    };
    let level = entry
        .get("level")
        .and_then(Value::as_str)
        .and_then(|name| Level::from_name(&name.to_ascii_uppercase()))
        .unwrap_or(Level::Info);
    ctx.log(level, &text(message.clone()));
}

fn unreadable(ctx: &mut TaskContext<'_>, what: &str, value: &Value) {
    ctx.log(
        Level::Warn,
        &format!("Ignored an unreadable {what} of a ::{{...}}:: line: {value}"),
    );
}

/// A JSON value as text: strings as they are, anything else as JSON.
fn text(value: Value) -> String {
    match value {
        Value::String(text) => text,
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_a_json_object_between_double_colons_is_a_message() {
        assert_eq!(
            parse(r#"::{"outputs":{"a":1}}::"#),
            Some(json!({"outputs": {"a": 1}}).as_object().unwrap().clone())
        );
        assert!(parse("  ::{\"logs\":[]}::\r").is_some());
        assert_eq!(parse(r#"::{"outputs": nope}::"#), None);
        assert_eq!(parse(r#"::[1]::"#), None);
        assert_eq!(parse(r#"::{"a":1}"#), None);
        assert_eq!(parse("plain text"), None);
    }

    #[test]
    fn metrics_need_a_name_a_known_type_and_a_number() {
        let read =
            metric(&json!({"name": "rows", "type": "counter", "value": 5, "tags": {"t": 1}}))
                .unwrap();
        assert_eq!(read.kind, MetricKind::Counter);
        assert_eq!(read.value, 5.0);
        assert_eq!(read.tags["t"], "1");
        assert!(metric(&json!({"name": "d", "type": "timer", "value": 0.25})).is_some());
        assert!(metric(&json!({"name": "x", "type": "histogram", "value": 1})).is_none());
        assert!(metric(&json!({"name": "x", "type": "gauge", "value": "1"})).is_none());
        assert!(metric(&json!({"type": "gauge", "value": 1})).is_none());
    }
}
