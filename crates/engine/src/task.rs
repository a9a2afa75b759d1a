//! The seam between the engine and what a task does: the [`Task`] trait and the
//! [`TaskContext`] a task run gets.

use crate::edge::Edge;
use crate::held::HeldLog;
use crate::subflow::Subflows;
use crate::workdir::{Place, SharedDir};
use crate::{Engine, Listener, Metric};
use async_trait::async_trait;
use chrono::Utc;
use kestrel_expr::{Context, ExprError, Expressions};
use kestrel_flow::Level;
use kestrel_secrets::MaskRegistry;
use kestrel_storage::ExecutionFiles;
use serde_json::{Map, Value};
use std::fmt;
use std::io::Read;
use std::sync::Arc;

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

/// The log entries of the running execution, as `log.Fetch` reads them.
pub(crate) trait ExecutionLogs: Sync {
    /// The execution's namespace, flow id and id.
    fn identity(&self) -> [String; 3];
    /// The entries so far at `level` or above (of `task_ids` only, when given), oldest first,
    /// each as Kestra's log entry (real values: they are masked wherever readers see them).
    fn entries(&self, task_ids: Option<&[String]>, level: Level) -> Vec<Value>;
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
    engine: &'a Engine,
    expressions: &'a Arc<Expressions>,
    render: Context,
    registry: &'a MaskRegistry,
    listener: &'a dyn Listener,
    task_id: &'a str,
    task_run_id: &'a str,
    task_run_value: Option<&'a str>,
    min_level: Option<Level>,
    files: Option<&'a ExecutionFiles>,
    working_dir: Option<Arc<SharedDir>>,
    execution_logs: &'a dyn ExecutionLogs,
    subflows: Option<Subflows<'a>>,
    /// Whether the task asked to end in WARNING rather than SUCCESS.
    warned: bool,
    attempt_number: u32,
    logs: Vec<HeldLog>,
    outputs: Map<String, Value>,
    metrics: Vec<Metric>,
    /// Labels the task adds to the execution (real values).
    labels: Vec<(String, String)>,
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
    /// What tasks share across executions (the HTTP clients, the configuration).
    pub(crate) engine: &'a Engine,
    pub(crate) expressions: &'a Arc<Expressions>,
    pub(crate) render: Context,
    pub(crate) registry: &'a MaskRegistry,
    pub(crate) listener: &'a dyn Listener,
    pub(crate) task_id: &'a str,
    pub(crate) task_run_id: &'a str,
    /// The task run's ForEach value.
    pub(crate) task_run_value: Option<&'a str>,
    pub(crate) min_level: Option<Level>,
    /// The execution's files, when the engine has a storage.
    pub(crate) files: Option<&'a ExecutionFiles>,
    /// The directory of the enclosing WorkingDirectory.
    pub(crate) working_dir: Option<Arc<SharedDir>>,
    /// The execution's log entries so far.
    pub(crate) logs: &'a dyn ExecutionLogs,
    /// What Subflow tasks start children with, when the host gave a launcher.
    pub(crate) subflows: Option<Subflows<'a>>,
}

impl<'a> TaskContext<'a> {
    pub(crate) fn new(parts: ContextParts<'a>) -> Self {
        Self {
            engine: parts.engine,
            expressions: parts.expressions,
            render: parts.render,
            registry: parts.registry,
            listener: parts.listener,
            task_id: parts.task_id,
            task_run_id: parts.task_run_id,
            task_run_value: parts.task_run_value,
            min_level: parts.min_level,
            files: parts.files,
            working_dir: parts.working_dir,
            execution_logs: parts.logs,
            subflows: parts.subflows,
            warned: false,
            attempt_number: 1,
            logs: Vec::new(),
            outputs: Map::new(),
            metrics: Vec::new(),
            labels: Vec::new(),
        }
    }

    /// The context of attempt `number` (from 1) of the task run: its log entries carry it.
    pub(crate) fn with_attempt(mut self, number: u32) -> Self {
        self.attempt_number = number;
        self
    }

    /// The id of the running task.
    pub fn task_id(&self) -> &str {
        self.task_id
    }

    /// Renders a templated property; secrets it resolves join the execution's mask registry.
    /// The render runs off the async runtime's threads, under `expression.render-timeout`:
    /// the task's `timeout` and a kill end it mid-render.
    pub async fn render(&self, template: &str) -> Result<String, TaskError> {
        crate::render::render(self.expressions, template, &self.render)
            .await
            .map_err(TaskError::new)
    }

    /// Renders every text inside `value` (keys too, nested maps and lists as well), as
    /// [`TaskContext::render`] renders one.
    pub async fn render_value(&self, value: &Value) -> Result<Value, TaskError> {
        crate::render::render_value(self.expressions, value, &self.render)
            .await
            .map_err(TaskError::new)
    }

    /// Logs `message` at `level`, unless the task's `logLevel` drops that level. Readers see
    /// the message masked.
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

    /// Records a metric on the task run; readers see it masked.
    pub fn metric(&mut self, metric: Metric) {
        self.metrics.push(metric);
    }

    /// The execution's files in the internal storage; an error when the engine has none.
    pub fn files(&self) -> Result<&ExecutionFiles, TaskError> {
        self.place().files()
    }

    /// Stores what `content` yields as this task run's file `name`, on a blocking thread;
    /// its `kestra://` URI.
    pub async fn store_file(
        &self,
        name: &str,
        content: Box<dyn Read + Send>,
    ) -> Result<String, TaskError> {
        self.place().store(name, content).await
    }

    /// Where this task run's files go.
    pub(crate) fn place(&self) -> Place<'_> {
        Place {
            files: self.files,
            task_id: self.task_id,
            task_run_id: self.task_run_id,
        }
    }

    /// The execution's log entries so far.
    pub(crate) fn execution_logs(&self) -> &dyn ExecutionLogs {
        self.execution_logs
    }

    /// What the task's templates render against.
    pub(crate) fn render_context(&self) -> &Context {
        &self.render
    }

    /// Renders the task's next templates against `render` (a ForEachItem batch's variables).
    pub(crate) fn set_render_context(&mut self, render: Context) {
        self.render = render;
    }

    /// The task run's ForEach value (`taskrun.value`).
    pub(crate) fn task_run_value(&self) -> Option<&str> {
        self.task_run_value
    }

    /// The directory of the enclosing WorkingDirectory, which its tasks share.
    pub(crate) fn shared_dir(&self) -> Option<Arc<SharedDir>> {
        self.working_dir.clone()
    }

    /// Ends the task run in WARNING instead of SUCCESS when it returns `Ok` (a child
    /// execution that warned).
    pub fn warn(&mut self) {
        self.warned = true;
    }

    /// Whether [`TaskContext::warn`] was called.
    pub(crate) fn warned(&self) -> bool {
        self.warned
    }

    /// What Subflow tasks start children with; none where the host finds no flows.
    pub(crate) fn subflows(&self) -> Option<Subflows<'a>> {
        self.subflows
    }

    /// The engine running the task: what tasks share across executions.
    pub(crate) fn engine(&self) -> &Engine {
        self.engine
    }

    /// The execution's mask registry.
    pub(crate) fn registry(&self) -> &MaskRegistry {
        self.registry
    }

    /// Adds a label to the execution once the task run succeeds; readers see it masked.
    pub(crate) fn add_label(&mut self, key: String, value: String) {
        self.labels.push((key, value));
    }

    /// The labels added so far, taken for the execution.
    pub(crate) fn take_labels(&mut self) -> Vec<(String, String)> {
        std::mem::take(&mut self.labels)
    }

    /// The metrics recorded so far, taken for the task run.
    pub(crate) fn take_metrics(&mut self) -> Vec<Metric> {
        std::mem::take(&mut self.metrics)
    }

    /// Logs whatever the level filter says: the ERROR entry of a failed task.
    pub(crate) fn push_log(&mut self, level: Level, message: &str) {
        let entry = HeldLog {
            task_id: self.task_id.to_owned(),
            task_run_id: self.task_run_id.to_owned(),
            level,
            message: message.to_owned(),
            timestamp: Utc::now(),
            attempt_number: self.attempt_number,
        };
        self.listener.on_log(&Edge::new(self.registry).log(&entry));
        self.logs.push(entry);
    }

    /// Under `logToFile`: stores the attempt's entries (`<timestamp> <LEVEL> <message>` lines,
    /// masked with the execution's files when it ends) as the file `attempt-<n>.log`; its URI,
    /// or none (with a WARN entry) when it cannot be stored.
    pub(crate) async fn store_log_file(&mut self) -> Option<String> {
        let mut lines = String::new();
        for entry in &self.logs {
            let at = entry
                .timestamp
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            lines.push_str(&format!(
                "{at} {} {}\n",
                entry.level.as_str(),
                entry.message
            ));
        }
        let name = format!("attempt-{}.log", self.attempt_number);
        let stored = self
            .store_file(&name, Box::new(std::io::Cursor::new(lines.into_bytes())))
            .await;
        match stored {
            Ok(uri) => Some(uri),
            Err(error) => {
                self.push_log(Level::Warn, &format!("logToFile: {error}"));
                None
            }
        }
    }

    /// The entries logged (real) and the real outputs set.
    pub(crate) fn finish(self) -> (Vec<HeldLog>, Map<String, Value>) {
        (self.logs, self.outputs)
    }
}
