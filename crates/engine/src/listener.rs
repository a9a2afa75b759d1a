//! How a caller follows an execution while it runs, and how it stops one.

use crate::{Execution, LogEntry, Shown, TaskRun};
use serde_json::{Map, Value};
use std::sync::Arc;
use tokio::sync::watch;

/// Receives an execution's events as they happen. Everything it is given is [`Shown`]: built
/// and masked by the edge, the only way out of the engine.
///
/// Every method has an empty default, so a listener implements only what it shows. Calls come
/// from the task running the execution, in order; a slow listener slows the execution.
pub trait Listener: Send + Sync {
    /// A task emitted a log entry (kept by the task's `logLevel`), or a task failed and this is
    /// the ERROR entry carrying its error.
    fn on_log(&self, entry: &Shown<LogEntry>) {
        let _ = entry;
    }

    /// A task run changed state (CREATED, RUNNING, then a terminal state).
    fn on_task_state(&self, task_run: &Shown<TaskRun>) {
        let _ = task_run;
    }

    /// The execution changed state (CREATED, RUNNING, then a terminal state).
    fn on_execution_state(&self, execution: &Shown<Execution>) {
        let _ = execution;
    }

    /// The inputs as readers see them changed: a value registered since (a secret a task
    /// resolved) hides in one of them.
    fn on_inputs(&self, inputs: &Shown<Map<String, Value>>) {
        let _ = inputs;
    }

    /// The engine has something to say that is not a task's log: a secret too short to mask.
    /// Never holds a value.
    fn on_warning(&self, message: &str) {
        let _ = message;
    }
}

/// A listener that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoListener;

impl Listener for NoListener {}

/// Cancels an execution from anywhere (a Ctrl-C handler, an API call): the running task is
/// dropped, its task run and the execution end KILLED, and no further task starts.
#[derive(Debug, Clone)]
pub struct CancelToken {
    sender: Arc<watch::Sender<bool>>,
}

impl Default for CancelToken {
    fn default() -> Self {
        Self::new()
    }
}

impl CancelToken {
    /// A token not yet cancelled.
    pub fn new() -> Self {
        Self {
            sender: Arc::new(watch::Sender::new(false)),
        }
    }

    /// Cancels every execution holding this token (or a clone of it).
    pub fn cancel(&self) {
        self.sender.send_replace(true);
    }

    /// Whether [`CancelToken::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        *self.sender.borrow()
    }

    /// Completes once the token is cancelled.
    pub async fn cancelled(&self) {
        let mut receiver = self.sender.subscribe();
        // The sender lives as long as `self`, so waiting cannot fail with a closed channel.
        let _ = receiver.wait_for(|cancelled| *cancelled).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_clone_sees_the_cancel() {
        let token = CancelToken::new();
        let clone = token.clone();
        assert!(!clone.is_cancelled());
        let waiter = tokio::spawn(async move { clone.cancelled().await });
        token.cancel();
        waiter.await.unwrap();
        assert!(token.is_cancelled());
    }
}
