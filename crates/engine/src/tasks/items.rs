//! The first and last steps of a ForEachItem (the middle one is a Subflow in batch mode):
//! `<id>_split` stores the lines of a file of the internal storage in batches, one file each;
//! `<id>_merge` names the file of the children's outputs.

use crate::{Task, TaskContext, TaskError};
use async_trait::async_trait;
use serde_json::Value;
use std::io::{BufRead, BufReader};

/// The most batches one ForEachItem starts: each is an execution.
const BATCHES_MAX: usize = 10_000;

/// Splits the file `items` renders to into batches of `rows` lines.
#[derive(Debug, Clone)]
pub(crate) struct SplitTask {
    items: String,
    rows: String,
}

impl SplitTask {
    pub(crate) fn new(items: String, rows: String) -> Self {
        Self { items, rows }
    }

    async fn rows(&self, ctx: &TaskContext<'_>) -> Result<usize, TaskError> {
        let text = ctx.render(&self.rows).await?;
        match text.trim().parse::<usize>() {
            Ok(rows) if rows >= 1 => Ok(rows),
            _ => Err(TaskError::new(format!(
                "batch.rows: must be a whole number, 1 or more, got '{text}'"
            ))),
        }
    }
}

#[async_trait]
impl Task for SplitTask {
    async fn run(&self, ctx: &mut TaskContext<'_>) -> Result<(), TaskError> {
        let rows = self.rows(ctx).await?;
        let uri = ctx.render(&self.items).await?;
        let file = ctx
            .files()?
            .open(uri.trim())
            .map_err(|error| TaskError::new(format!("items: {error}")))?;
        let mut lines = BufReader::new(file).lines();
        let mut splits = Vec::new();
        loop {
            let mut batch = String::new();
            for line in lines.by_ref().take(rows) {
                let line =
                    line.map_err(|error| TaskError::new(format!("items: cannot read: {error}")))?;
                batch.push_str(&line);
                batch.push('\n');
            }
            if batch.is_empty() {
                break;
            }
            if splits.len() == BATCHES_MAX {
                return Err(TaskError::new(format!(
                    "items: more than {BATCHES_MAX} batches; raise batch.rows"
                )));
            }
            let name = format!("{}.txt", splits.len() + 1);
            let stored = ctx
                .store_file(&name, Box::new(std::io::Cursor::new(batch.into_bytes())))
                .await?;
            splits.push(Value::String(stored));
        }
        ctx.output("splits", Value::Array(splits));
        Ok(())
    }
}

/// Outputs `subflowOutputs`: the file `file` renders to, when it renders to one.
#[derive(Debug, Clone)]
pub(crate) struct MergeTask {
    file: String,
}

impl MergeTask {
    pub(crate) fn new(file: String) -> Self {
        Self { file }
    }
}

#[async_trait]
impl Task for MergeTask {
    async fn run(&self, ctx: &mut TaskContext<'_>) -> Result<(), TaskError> {
        let file = ctx.render(&self.file).await?;
        if !file.is_empty() {
            ctx.output("subflowOutputs", Value::String(file));
        }
        Ok(())
    }
}
