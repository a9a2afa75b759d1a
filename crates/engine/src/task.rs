//! The seam between the engine and what a task does: the [`Task`] trait and the
//! [`TaskContext`] a task run gets.

use crate::{Listener, LogEntry};
use async_trait::async_trait;
use chrono::Utc;
use kestrel_expr::{Context, ExprError, Expressions};
use kestrel_flow::Level;
use kestrel_secrets::MaskRegistry;
use serde_json::{Map, Value};
use std::fmt;

/// What a task does when it runs.
///
/// `run` renders its properties through the context, logs, sets outputs, and returns `Ok` for
/// SUCCESS or an error for FAILED (WARNING under `allowFailure`). The engine drops the future
/// when the execution is cancelled, so a task must hold nothing that outlives it unattended.
#[async_trait]
pub trait Task: Send + Sync {
    /// Runs the task once.
    async fn run(&self, ctx: &mut TaskContext<'_>) -> Result<(), TaskError>;
}

/// Why a task run failed. The message may hold a secret: the engine masks it before anyone
/// reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskError {
    message: String,
}

impl TaskError {
    /// A failure described by `message`.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for TaskError {}

impl From<ExprError> for TaskError {
    fn from(error: ExprError) -> Self {
        Self::new(error.to_string())
    }
}

/// What one task run sees: rendering in the execution's context, logging through the masker,
/// and its outputs (real values, which only later tasks' expressions see).
pub struct TaskContext<'a> {
    expressions: &'a Expressions,
    render: Context,
    registry: &'a MaskRegistry,
    listener: &'a dyn Listener,
    task_id: &'a str,
    task_run_id: &'a str,
    min_level: Option<Level>,
    logs: Vec<LogEntry>,
    outputs: Map<String, Value>,
}

impl fmt::Debug for TaskContext<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Outputs hold real values: only their names are shown.
        let outputs: Vec<&String> = self.outputs.keys().collect();
        f.debug_struct("TaskContext")
            .field("task_id", &self.task_id)
            .field("task_run_id", &self.task_run_id)
            .field("min_level", &self.min_level)
            .field("outputs", &outputs)
            .finish_non_exhaustive()
    }
}

/// Where a task run's context comes from; the engine fills it in.
pub(crate) struct ContextParts<'a> {
    pub(crate) expressions: &'a Expressions,
    pub(crate) render: Context,
    pub(crate) registry: &'a MaskRegistry,
    pub(crate) listener: &'a dyn Listener,
    pub(crate) task_id: &'a str,
    pub(crate) task_run_id: &'a str,
    pub(crate) min_level: Option<Level>,
}

impl<'a> TaskContext<'a> {
    pub(crate) fn new(parts: ContextParts<'a>) -> Self {
        Self {
            expressions: parts.expressions,
            render: parts.render,
            registry: parts.registry,
            listener: parts.listener,
            task_id: parts.task_id,
            task_run_id: parts.task_run_id,
            min_level: parts.min_level,
            logs: Vec::new(),
            outputs: Map::new(),
        }
    }

    /// The id of the running task.
    pub fn task_id(&self) -> &str {
        self.task_id
    }

    /// Renders a templated property; secrets it resolves join the execution's mask registry.
    pub fn render(&self, template: &str) -> Result<String, TaskError> {
        Ok(self.expressions.render(template, &self.render)?)
    }

    /// Logs `message` at `level`, unless the task's `logLevel` drops that level. The message
    /// is masked before it is kept or shown.
    pub fn log(&mut self, level: Level, message: &str) {
        if self.min_level.is_some_and(|min| level < min) {
            return;
        }
        self.push_log(level, message);
    }

    /// Sets the output `name`. Later tasks' expressions see `value` itself; readers see it
    /// masked.
    pub fn output(&mut self, name: &str, value: Value) {
        self.outputs.insert(name.to_owned(), value);
    }

    /// Logs whatever the level filter says: the ERROR entry of a failed task.
    pub(crate) fn push_log(&mut self, level: Level, message: &str) {
        let entry = LogEntry {
            task_id: self.task_id.to_owned(),
            task_run_id: self.task_run_id.to_owned(),
            level,
            message: self.registry.mask(message).into_owned(),
            timestamp: Utc::now(),
        };
        self.listener.on_log(&entry);
        self.logs.push(entry);
    }

    /// The entries logged and the real outputs set.
    pub(crate) fn finish(self) -> (Vec<LogEntry>, Map<String, Value>) {
        (self.logs, self.outputs)
    }
}
