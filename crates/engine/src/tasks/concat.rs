//! `io.kestra.plugin.core.storage.Concat`: files of the internal storage (of the execution's
//! namespace) joined into one, with an optional separator after each; the output `uri`.

use crate::{Task, TaskContext, TaskError};
use async_trait::async_trait;
use serde_json::Value;
use std::io::{Read, Write};

/// Joins its files.
#[derive(Debug, Clone)]
pub(crate) struct ConcatTask {
    files: Value,
    separator: Option<String>,
    extension: String,
}

impl ConcatTask {
    pub(crate) fn new(files: Value, separator: Option<String>, extension: String) -> Self {
        Self {
            files,
            separator,
            extension,
        }
    }

    /// The URIs, rendered.
    async fn uris(&self, ctx: &TaskContext<'_>) -> Result<Vec<String>, TaskError> {
        let invalid = || TaskError::new("files: must render to a list of URIs");
        let rendered = ctx.render_value(&self.files).await?;
        let list = match rendered {
            Value::Array(items) => items,
            Value::String(text) => serde_json::from_str(&text).map_err(|_| invalid())?,
            _ => return Err(invalid()),
        };
        list.into_iter()
            .map(|item| match item {
                Value::String(uri) => Ok(uri),
                _ => Err(invalid()),
            })
            .collect()
    }
}

#[async_trait]
impl Task for ConcatTask {
    async fn run(&self, ctx: &mut TaskContext<'_>) -> Result<(), TaskError> {
        let uris = self.uris(ctx).await?;
        let separator = match &self.separator {
            Some(template) => ctx.render(template).await?,
            None => String::new(),
        };
        let mut joined = crate::workdir::spool_file()?;
        let files = ctx.files()?;
        for uri in &uris {
            let mut file = files
                .open(uri)
                .map_err(|error| TaskError::new(format!("files: {error}")))?;
            let copied = std::io::copy(&mut file, &mut joined)
                .and_then(|_| joined.write_all(separator.as_bytes()));
            copied.map_err(|error| TaskError::new(format!("cannot join {uri}: {error}")))?;
        }
        std::io::Seek::rewind(&mut joined)
            .map_err(|error| TaskError::new(format!("cannot join the files: {error}")))?;
        let extension = self.extension.trim_start_matches('.');
        if !extension.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(TaskError::new(
                "extension: letters and digits only, after an optional dot",
            ));
        }
        let name = format!("concat.{extension}");
        let content: Box<dyn Read + Send> = Box::new(joined);
        let uri = ctx.store_file(&name, content).await?;
        ctx.output("uri", Value::String(uri));
        Ok(())
    }
}
