//! `io.kestra.plugin.core.state.Get`, `Set` and `Delete`: a JSON map per flow (or namespace),
//! name and ForEach value, kept in the internal storage beside the executions so that the next
//! execution reads it. The map is masked before it is stored, as an ended execution's files
//! are: a state never holds a secret at rest.

use crate::{Task, TaskContext, TaskError};
use async_trait::async_trait;
use kestrel_flow::{StateCall, StateOp};
use kestrel_storage::{Storage, StorageUri};
use serde_json::{Map, Value};
use std::io::Read;

/// The largest state, as Kestra keeps states small: a map, not a file store.
const STATE_MAX: u64 = 1024 * 1024;

/// Where a state is.
struct Place {
    name: String,
    folder: StorageUri,
    file: StorageUri,
}

/// Runs a state task.
#[derive(Debug, Clone)]
pub(crate) struct StateTask {
    call: StateCall,
}

impl StateTask {
    pub(crate) fn new(call: StateCall) -> Self {
        Self { call }
    }

    /// The state's name rendered, its folder and its file.
    async fn place(&self, ctx: &TaskContext<'_>) -> Result<Place, TaskError> {
        let name = ctx.render(&self.call.name).await?;
        // The name goes into the state's place (its key, a folder) in a form the masker does
        // not know: it must not hold a secret.
        if ctx.registry().contains_secret(&name) {
            return Err(TaskError::new("name: must not hold a secret"));
        }
        let value = ctx.task_run_value().filter(|_| self.call.taskrun_value);
        let folder = ctx
            .files()?
            .state_folder(&name, value, self.call.namespace_wide)
            .map_err(|error| TaskError::new(format!("name: {error}")))?;
        let file = folder
            .join(["state.json"])
            .map_err(|error| TaskError::new(format!("name: {error}")))?;
        Ok(Place { name, folder, file })
    }
}

#[async_trait]
impl Task for StateTask {
    async fn run(&self, ctx: &mut TaskContext<'_>) -> Result<(), TaskError> {
        let Place { name, folder, file } = self.place(ctx).await?;
        let storage = ctx.files()?.storage().clone();
        let current = read(storage.as_ref(), &file)?;
        let missing = || TaskError::new(format!("Unable to find the state file '{name}'"));
        match &self.call.op {
            StateOp::Get { error_on_missing } => {
                if current.is_none() && *error_on_missing {
                    return Err(missing());
                }
                let data = current.unwrap_or_default();
                ctx.output("count", Value::from(data.len()));
                ctx.output("data", Value::Object(data));
            }
            StateOp::Set { data } => {
                let Value::Object(data) = ctx.render_value(data).await? else {
                    return Err(TaskError::new("data: must be a map"));
                };
                let mut merged = current.unwrap_or_default();
                merged.extend(data);
                let mut stored = Value::Object(merged);
                ctx.registry().mask_json(&mut stored);
                let bytes = serde_json::to_vec(&stored)
                    .map_err(|error| TaskError::new(format!("cannot write the state: {error}")))?;
                if bytes.len() as u64 > STATE_MAX {
                    return Err(TaskError::new(format!(
                        "the state '{name}' would be larger than {STATE_MAX} bytes"
                    )));
                }
                storage
                    .put(&file, &mut bytes.as_slice())
                    .map_err(|error| TaskError::new(format!("cannot store the state: {error}")))?;
                let count = stored.as_object().map_or(0, Map::len);
                ctx.output("count", Value::from(count));
                ctx.output("key", Value::String(file.to_string()));
            }
            StateOp::Delete { error_on_missing } => {
                if current.is_none() && *error_on_missing {
                    return Err(missing());
                }
                if current.is_some() {
                    storage.delete_all(&folder).map_err(|error| {
                        TaskError::new(format!("cannot delete the state: {error}"))
                    })?;
                }
                ctx.output("deleted", Value::Bool(current.is_some()));
            }
        }
        Ok(())
    }
}

/// The state stored at `file`; `None` when there is none.
fn read(storage: &dyn Storage, file: &StorageUri) -> Result<Option<Map<String, Value>>, TaskError> {
    let unreadable = |error: String| TaskError::new(format!("cannot read the state: {error}"));
    if !storage
        .exists(file)
        .map_err(|e| unreadable(e.to_string()))?
    {
        return Ok(None);
    }
    let mut content = Vec::new();
    storage
        .open(file)
        .map_err(|e| unreadable(e.to_string()))?
        .take(STATE_MAX)
        .read_to_end(&mut content)
        .map_err(|e| unreadable(e.to_string()))?;
    match serde_json::from_slice(&content) {
        Ok(Value::Object(map)) => Ok(Some(map)),
        _ => Err(unreadable("it is not a JSON map".into())),
    }
}
