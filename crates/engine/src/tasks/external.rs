//! Tasks whose code lives in a crate of its own, one per external system (PostgreSQL...), so
//! that the engine links no client of theirs: the host (the `kestrel` binary) registers them
//! once at start, and a flow naming one that is not registered fails when it runs, saying so.

use crate::{Task, TaskContext, TaskError};
use async_trait::async_trait;
use kestrel_flow::TaskKind;
use std::sync::OnceLock;

/// Builds the tasks of the kinds it knows.
pub trait TaskProvider: Send + Sync {
    /// The task running `kind`; `None` for a kind this provider does not run.
    fn task_for(&self, kind: &TaskKind) -> Option<Box<dyn Task>>;
}

static PROVIDERS: OnceLock<Vec<Box<dyn TaskProvider>>> = OnceLock::new();

/// Registers the providers of this process's external tasks; only the first call counts
/// (whether it did is returned), as the process has one set of them.
pub fn register_tasks(providers: Vec<Box<dyn TaskProvider>>) -> bool {
    PROVIDERS.set(providers).is_ok()
}

/// The registered task running `kind` (of Kestra's class `class`), or one failing because
/// none is.
pub(crate) fn task_for(kind: &TaskKind, class: &'static str) -> Box<dyn Task> {
    PROVIDERS
        .get()
        .into_iter()
        .flatten()
        .find_map(|provider| provider.task_for(kind))
        .unwrap_or_else(|| Box::new(Unavailable(class)))
}

/// A task of a class this process cannot run.
struct Unavailable(&'static str);

#[async_trait]
impl Task for Unavailable {
    async fn run(&self, _ctx: &mut TaskContext<'_>) -> Result<(), TaskError> {
        Err(TaskError::new(format!(
            "{} is not available in this kestrel: its crate is not registered",
            self.0
        )))
    }
}
