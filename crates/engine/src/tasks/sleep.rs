//! `io.kestra.plugin.core.flow.Sleep`: waits.

use crate::{Task, TaskContext, TaskError};
use async_trait::async_trait;
use kestrel_flow::Level;
use std::time::Duration;

/// Waits for its duration. The engine drops the wait when the execution is killed or the
/// task's `timeout` passes, so a sleep holds nothing.
#[derive(Debug, Clone)]
pub(crate) struct SleepTask {
    duration: Duration,
}

impl SleepTask {
    /// A task waiting `duration`.
    pub(crate) fn new(duration: Duration) -> Self {
        Self { duration }
    }
}

#[async_trait]
impl Task for SleepTask {
    async fn run(&self, ctx: &mut TaskContext<'_>) -> Result<(), TaskError> {
        ctx.log(
            Level::Info,
            &format!("Waiting for {}", kestrel_flow::java_duration(self.duration)),
        );
        tokio::time::sleep(self.duration).await;
        Ok(())
    }
}
