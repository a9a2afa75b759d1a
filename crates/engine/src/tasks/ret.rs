//! `io.kestra.plugin.core.debug.Return`: renders `format` into the output `value`.

use crate::{Task, TaskContext, TaskError};
use async_trait::async_trait;
use serde_json::Value;

/// Renders its `format` into the output `value`; without a format, it has no output.
#[derive(Debug, Clone)]
pub struct ReturnTask {
    format: Option<String>,
}

impl ReturnTask {
    /// A task returning `format`, rendered.
    pub fn new(format: Option<String>) -> Self {
        Self { format }
    }
}

#[async_trait]
impl Task for ReturnTask {
    async fn run(&self, ctx: &mut TaskContext<'_>) -> Result<(), TaskError> {
        if let Some(format) = &self.format {
            let value = ctx.render(format).await?;
            ctx.output("value", Value::String(value));
        }
        Ok(())
    }
}
