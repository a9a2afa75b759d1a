//! `io.kestra.plugin.core.log.Fetch`: the log entries of the execution so far, at a level or
//! above (of some tasks only), stored as a file of JSON lines (Kestra writes ION): outputs
//! `uri` and `size` (how many entries). It reads its own execution only: another execution's
//! entries are another flow's business, and may hold secrets it never resolved.

use crate::{Task, TaskContext, TaskError};
use async_trait::async_trait;
use kestrel_flow::Level;
use serde_json::Value;

/// Fetches its execution's log entries.
#[derive(Debug, Clone)]
pub(crate) struct FetchTask {
    /// `namespace`, `flowId` and `executionId` as written, in that order.
    owner: [Option<String>; 3],
    task_ids: Option<Vec<String>>,
    level: Level,
}

impl FetchTask {
    pub(crate) fn new(
        owner: [Option<String>; 3],
        task_ids: Option<Vec<String>>,
        level: Level,
    ) -> Self {
        Self {
            owner,
            task_ids,
            level,
        }
    }

    /// Fails when `namespace`, `flowId` or `executionId` names another execution than this.
    async fn check_owner(&self, ctx: &TaskContext<'_>) -> Result<(), TaskError> {
        let own = ctx.execution_logs().identity();
        let names = ["namespace", "flowId", "executionId"];
        for ((name, template), own) in names.iter().zip(&self.owner).zip(&own) {
            let Some(template) = template else { continue };
            if ctx.render(template).await?.trim() != own {
                return Err(TaskError::new(format!(
                    "{name}: log.Fetch reads the log entries of its own execution only"
                )));
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Task for FetchTask {
    async fn run(&self, ctx: &mut TaskContext<'_>) -> Result<(), TaskError> {
        self.check_owner(ctx).await?;
        let entries = ctx
            .execution_logs()
            .entries(self.task_ids.as_deref(), self.level);
        let mut lines = Vec::new();
        for entry in &entries {
            serde_json::to_writer(&mut lines, entry)
                .map_err(|error| TaskError::new(format!("cannot write the entries: {error}")))?;
            lines.push(b'\n');
        }
        let uri = ctx
            .store_file("logs.jsonl", Box::new(std::io::Cursor::new(lines)))
            .await?;
        ctx.output("size", Value::from(entries.len()));
        ctx.output("uri", Value::String(uri));
        Ok(())
    }
}
