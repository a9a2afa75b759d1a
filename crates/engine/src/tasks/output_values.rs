//! `io.kestra.plugin.core.output.OutputValues`: renders a map into the output `values`.

use crate::{Task, TaskContext, TaskError};
use async_trait::async_trait;
use serde_json::Value;

/// Renders every text in its map (keys too, nested maps and lists as well) into the output
/// `values`; numbers and booleans stay as written.
#[derive(Debug, Clone)]
pub(crate) struct OutputValuesTask {
    values: Value,
}

impl OutputValuesTask {
    /// A task rendering `values` into its output.
    pub(crate) fn new(values: Value) -> Self {
        Self { values }
    }
}

#[async_trait]
impl Task for OutputValuesTask {
    async fn run(&self, ctx: &mut TaskContext<'_>) -> Result<(), TaskError> {
        let values = ctx.render_value(&self.values).await?;
        ctx.output("values", values);
        Ok(())
    }
}
