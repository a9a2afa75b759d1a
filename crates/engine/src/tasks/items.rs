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
        let place = ctx.place();
        let files = place.files()?.clone();
        let (task_id, task_run_id) = (place.task_id.to_owned(), place.task_run_id.to_owned());
        // The file is read and the batches written on a blocking thread: storage is a disk.
        let splits = tokio::task::spawn_blocking(move || {
            let file = files
                .open(uri.trim())
                .map_err(|error| format!("items: {error}"))?;
            split(BufReader::new(file), rows, |number, batch| {
                let name = format!("{number}.txt");
                let stored = files
                    .task_file(&task_id, &task_run_id, &name)
                    .and_then(|uri| files.put(&uri, &mut batch.as_bytes()).map(|_| uri));
                stored
                    .map(|uri| uri.to_string())
                    .map_err(|error| format!("cannot store batch {number}: {error}"))
            })
        })
        .await
        .map_err(|error| TaskError::new(format!("splitting the items stopped: {error}")))?
        .map_err(TaskError::new)?;
        ctx.output(
            "splits",
            Value::Array(splits.into_iter().map(Value::String).collect()),
        );
        Ok(())
    }
}

/// The lines of `items` in batches of `rows`, each (numbered from 1) given to `store`: what it
/// returns for each, at most [`BATCHES_MAX`].
fn split(
    items: impl BufRead,
    rows: usize,
    mut store: impl FnMut(usize, &str) -> Result<String, String>,
) -> Result<Vec<String>, String> {
    let mut lines = items.lines();
    let mut stored = Vec::new();
    loop {
        let mut batch = String::new();
        for line in lines.by_ref().take(rows) {
            batch.push_str(&line.map_err(|error| format!("items: cannot read: {error}"))?);
            batch.push('\n');
        }
        if batch.is_empty() {
            return Ok(stored);
        }
        if stored.len() == BATCHES_MAX {
            return Err(format!(
                "items: more than {BATCHES_MAX} batches; raise batch.rows"
            ));
        }
        stored.push(store(stored.len() + 1, &batch)?);
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

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn lines_go_in_batches_of_rows_the_last_one_shorter() {
        let mut batches = Vec::new();
        let names = split(&b"a\nb\nc\nd\ne"[..], 2, |number, batch| {
            batches.push(batch.to_owned());
            Ok(format!("{number}.txt"))
        })
        .unwrap();
        assert_eq!(names, ["1.txt", "2.txt", "3.txt"]);
        assert_eq!(batches, ["a\nb\n", "c\nd\n", "e\n"]);
        assert!(
            split(&b""[..], 2, |_, _| Ok(String::new()))
                .unwrap()
                .is_empty()
        );
    }
}
