//! `io.kestra.plugin.core.log.Log`: renders and logs each message.

use crate::{Task, TaskContext, TaskError};
use async_trait::async_trait;
use kestrel_flow::Level;

/// Logs each of its messages, rendered, as its own entry at its level. A message that fails
/// to render fails the task; the entries before it stay logged.
#[derive(Debug, Clone)]
pub struct LogTask {
    messages: Vec<String>,
    level: Level,
}

impl LogTask {
    /// A task logging `messages` (templates) at `level`.
    pub fn new(messages: Vec<String>, level: Level) -> Self {
        Self { messages, level }
    }
}

#[async_trait]
impl Task for LogTask {
    async fn run(&self, ctx: &mut TaskContext<'_>) -> Result<(), TaskError> {
        for message in &self.messages {
            let text = ctx.render(message).await?;
            ctx.log(self.level, &text);
        }
        Ok(())
    }
}
