//! `io.kestra.plugin.core.execution.Labels`: adds labels to the execution.

use crate::{Task, TaskContext, TaskError};
use async_trait::async_trait;
use serde_json::{Map, Value};

/// Renders its labels (a map, a list of `{key, value}`, or a text rendering to a JSON map)
/// and adds them to the execution; `system.` ones are Kestra's own and refused.
#[derive(Debug, Clone)]
pub(crate) struct LabelsTask {
    labels: Value,
}

impl LabelsTask {
    pub(crate) fn new(labels: Value) -> Self {
        Self { labels }
    }

    /// The labels, keys and values rendered.
    async fn rendered(&self, ctx: &TaskContext<'_>) -> Result<Vec<(String, String)>, TaskError> {
        let pairs: Vec<(Value, Value)> = match &self.labels {
            Value::String(template) => {
                let text = ctx.render(template).await?;
                let map: Map<String, Value> = serde_json::from_str(&text).map_err(|_| {
                    TaskError::new("labels: must render to a JSON object of labels")
                })?;
                return Ok(map.into_iter().map(|(k, v)| (k, text_of(&v))).collect());
            }
            Value::Object(map) => map
                .iter()
                .map(|(key, value)| (Value::String(key.clone()), value.clone()))
                .collect(),
            Value::Array(items) => items
                .iter()
                .map(|item| (item["key"].clone(), item["value"].clone()))
                .collect(),
            _ => return Err(TaskError::new("labels: must be a map or a list")),
        };
        let mut labels = Vec::with_capacity(pairs.len());
        for (key, value) in pairs {
            let key = ctx.render(&text_of(&key)).await?;
            let value = ctx.render(&text_of(&value)).await?;
            labels.push((key, value));
        }
        Ok(labels)
    }
}

/// A label's text: a text as it is, anything else as its JSON (`42`, `true`).
fn text_of(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

#[async_trait]
impl Task for LabelsTask {
    async fn run(&self, ctx: &mut TaskContext<'_>) -> Result<(), TaskError> {
        let labels = self.rendered(ctx).await?;
        if let Some((key, value)) = labels.iter().find(|(key, _)| key.starts_with("system.")) {
            return Err(TaskError::new(format!(
                "System labels can only be set by Kestra itself, offending label: {key}={value}"
            )));
        }
        for (key, value) in labels {
            ctx.add_label(key, value);
        }
        Ok(())
    }
}
