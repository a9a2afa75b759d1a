//! `io.kestra.plugin.core.storage.LocalFiles`: writes files into the working directory and
//! stores those matching its patterns. Inside a WorkingDirectory the directory is the one its
//! tasks share; elsewhere it is the task run's own, gone once it ends (as in Kestra).

use crate::workdir::TaskDir;
use crate::{Task, TaskContext, TaskError};
use async_trait::async_trait;
use serde_json::Value;

/// Writes `inputs` (name and content template; a `kestra://` URI is that file), then stores
/// the files matching `outputs`: the output `uris`, by relative path.
#[derive(Debug, Clone)]
pub(crate) struct LocalFilesTask {
    inputs: Vec<(String, String)>,
    outputs: Vec<String>,
}

impl LocalFilesTask {
    pub(crate) fn new(inputs: Vec<(String, String)>, outputs: Vec<String>) -> Self {
        Self { inputs, outputs }
    }
}

#[async_trait]
impl Task for LocalFilesTask {
    async fn run(&self, ctx: &mut TaskContext<'_>) -> Result<(), TaskError> {
        let dir = TaskDir::of(ctx)?;
        for (name, template) in &self.inputs {
            let content = ctx.render(template).await?;
            ctx.place().write_input(&dir, name, &content)?;
        }
        let uris = ctx.place().store_outputs(&dir, &self.outputs).await?;
        ctx.output("uris", Value::Object(uris));
        Ok(())
    }
}
