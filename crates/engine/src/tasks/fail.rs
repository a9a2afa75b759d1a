//! `io.kestra.plugin.core.execution.Fail`: fails the task run, always or on a condition.

use crate::runner::is_truthy;
use crate::{Task, TaskContext, TaskError};
use async_trait::async_trait;
use kestrel_flow::Level;

/// Fails with its message; with a condition, only when the condition renders truthy, and then
/// as Kestra does: the message logged at ERROR, the failure itself `Fail on a condition`.
#[derive(Debug, Clone)]
pub(crate) struct FailTask {
    condition: Option<String>,
    error_message: String,
}

impl FailTask {
    /// A task failing with `error_message` (a template), when `condition` renders truthy or
    /// always without one.
    pub(crate) fn new(condition: Option<String>, error_message: String) -> Self {
        Self {
            condition,
            error_message,
        }
    }
}

#[async_trait]
impl Task for FailTask {
    async fn run(&self, ctx: &mut TaskContext<'_>) -> Result<(), TaskError> {
        let Some(condition) = &self.condition else {
            return Err(TaskError::new(ctx.render(&self.error_message).await?));
        };
        if !is_truthy(&ctx.render(condition).await?) {
            return Ok(());
        }
        let message = ctx.render(&self.error_message).await?;
        ctx.log(Level::Error, &message);
        Err(TaskError::new("Fail on a condition"))
    }
}
