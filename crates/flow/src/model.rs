//! The typed flow model.

use serde_json::Value;
use std::fmt;
use std::time::Duration;

/// A validated flow.
#[derive(Debug, Clone)]
pub struct Flow {
    /// `id`, matching `^[a-zA-Z0-9][a-zA-Z0-9._-]*` (≤ 100).
    pub id: String,
    /// `namespace`, matching `^[a-z0-9][a-z0-9_-]*(\.[a-z0-9][a-z0-9_-]*)*$` (≤ 150): a dot-separated
    /// hierarchy with no empty segment.
    pub namespace: String,
    /// `description`.
    pub description: Option<String>,
    /// `labels`, as a map or a list of `{key, value}`, kept in order.
    pub labels: Vec<(String, String)>,
    /// `variables`, not rendered.
    pub variables: serde_json::Map<String, Value>,
    /// `inputs`.
    pub inputs: Vec<InputDef>,
    /// Flow `outputs`.
    pub outputs: Vec<OutputDef>,
    /// `tasks`, non-empty.
    pub tasks: Vec<Task>,
    /// `errors`: tasks run when a task fails.
    pub errors: Vec<Task>,
    /// `finally`: tasks run after `tasks` (and `errors`), whatever their outcome.
    pub finally: Vec<Task>,
    /// `afterExecution`: tasks run once the execution has its final state, which they do not
    /// change.
    pub after_execution: Vec<Task>,
    /// `retry`, as written: the retry of every task that has none of its own (nor a flowable
    /// around it).
    pub retry: Option<Value>,
    /// `concurrency`: how many executions of the flow run at once.
    pub concurrency: Option<crate::Concurrency>,
    /// `sla`: conditions on its executions.
    pub sla: Vec<crate::Sla>,
    /// `triggers`, as written.
    pub triggers: Vec<Value>,
    /// The `io.kestra.plugin.core.trigger.Schedule` triggers among `triggers`, typed.
    pub schedules: Vec<crate::Schedule>,
    /// The `io.kestra.plugin.core.trigger.Webhook` triggers among `triggers`, typed.
    pub webhooks: Vec<crate::Webhook>,
    /// The `io.kestra.plugin.core.trigger.Flow` triggers among `triggers`, typed.
    pub flow_triggers: Vec<crate::FlowTrigger>,
    /// `disabled`: a disabled flow is kept but not run.
    pub disabled: bool,
    /// `revision`, as Kestra exports it; informational.
    pub revision: Option<u64>,
    /// The YAML source.
    pub source: String,
}

/// One task of a flow.
#[derive(Debug, Clone)]
pub struct Task {
    /// `id`, unique across the whole flow.
    pub id: String,
    /// The type as written in the flow (old or new class name).
    pub type_name: String,
    /// What the task does, with its own properties.
    pub kind: TaskKind,
    /// Properties every task has.
    pub common: TaskCommon,
    /// 1-based line of the task in the source.
    pub line: usize,
}

impl Flow {
    /// The flow's own task lists: `tasks`, `errors`, `finally` and `afterExecution` (not their
    /// children).
    pub fn all_tasks(&self) -> impl Iterator<Item = &Task> {
        self.tasks
            .iter()
            .chain(&self.errors)
            .chain(&self.finally)
            .chain(&self.after_execution)
    }

    /// Whether any task of the flow, at any depth, starts a process (a script task): what
    /// the task sandbox is checked for.
    pub fn runs_processes(&self) -> bool {
        self.any_task(|task| matches!(task.kind, TaskKind::Script(_)))
    }

    /// Whether any task of the flow, at any depth (in every task list), is one `found` says
    /// yes to.
    pub fn any_task(&self, found: impl Fn(&Task) -> bool) -> bool {
        self.find_task(found).is_some()
    }

    /// The first task of the flow, at any depth (in every task list), that `found` says yes
    /// to. The walk keeps its own stack, so no nesting overflows.
    pub fn find_task(&self, found: impl Fn(&Task) -> bool) -> Option<&Task> {
        let mut pending: Vec<&Task> = self.all_tasks().collect();
        while let Some(task) = pending.pop() {
            if found(task) {
                return Some(task);
            }
            if let TaskKind::Flowable(flowable) = &task.kind {
                pending.extend(flowable.children());
            }
        }
        None
    }
}

/// The task types kestrel runs, with their own properties (templates unrendered).
#[derive(Debug, Clone)]
pub enum TaskKind {
    /// `io.kestra.plugin.core.log.Log` (old: `io.kestra.core.tasks.log.Log`).
    Log {
        /// `message`: one entry, or a list of entries each logged on its own.
        messages: Vec<String>,
        /// `level`, default INFO.
        level: Level,
    },
    /// `io.kestra.plugin.core.debug.Return` (old: `io.kestra.core.tasks.debugs.Return`).
    Return {
        /// `format`, rendered into the output `value`.
        format: Option<String>,
    },
    /// A flowable task (`io.kestra.plugin.core.flow.Sequential`, `Parallel`, `If`, `ForEach`...):
    /// it runs other tasks, its children.
    Flowable(crate::Flowable),
    /// A script task (`io.kestra.plugin.scripts.shell.Commands`, `.shell.Script`,
    /// `.python.Commands`, `.python.Script`, `.node.Commands`, `.node.Script`): commands or a
    /// script run by an interpreter on the host.
    Script(Box<crate::ScriptTask>),
    /// `io.kestra.plugin.core.http.Request`: one HTTP request.
    Request(Box<crate::HttpRequest>),
    /// `io.kestra.plugin.jdbc.postgresql.Query`: one SQL statement on a PostgreSQL server.
    PostgresQuery(Box<crate::PostgresQuery>),
    /// `io.kestra.plugin.core.execution.Fail` (old: `io.kestra.core.tasks.executions.Fail`):
    /// fails with `errorMessage`, always, or when `condition` renders truthy.
    Fail {
        /// `condition`, a template; none: always fail.
        condition: Option<String>,
        /// `errorMessage`, a template (Kestra's default: `Task failure`).
        error_message: String,
    },
    /// `io.kestra.plugin.core.flow.Sleep`: waits for `duration` (a kill or the task's timeout
    /// ends the wait).
    Sleep {
        /// `duration`, at most a day.
        duration: Duration,
    },
    /// `io.kestra.plugin.core.execution.Labels` (old: `io.kestra.core.tasks.executions.Labels`):
    /// adds labels to the execution, replacing those of the same key.
    Labels {
        /// `labels` as written: a map, a list of `{key, value}`, or a template rendering to a
        /// JSON map.
        labels: Value,
    },
    /// `io.kestra.plugin.core.flow.Subflow` (old: `io.kestra.core.tasks.flows.Subflow`,
    /// `io.kestra.core.tasks.flows.Flow`): an execution of another flow.
    Subflow(Box<crate::SubflowCall>),
    /// `io.kestra.plugin.core.output.OutputValues`: `values` (a map; every text in it a
    /// template) rendered into the output `values`.
    OutputValues {
        /// `values` as written; null when absent.
        values: Value,
    },
    /// `io.kestra.plugin.core.storage.Concat` (old: `io.kestra.core.tasks.storages.Concat`):
    /// files of the internal storage joined into one, the output `uri`.
    Concat {
        /// `files` as written: a list of URI templates, or a template rendering to a JSON list.
        files: Value,
        /// `separator`, a template written after each file.
        separator: Option<String>,
        /// `extension` of the file made (default `.tmp`).
        extension: String,
    },
    /// The `<id>_split` step of a ForEachItem: the lines of the file `items` renders to, stored
    /// in batches of `rows` (a template); the output `splits` lists their URIs.
    SplitItems {
        /// `items`: a template rendering to a `kestra://` URI.
        items: String,
        /// `batch.rows`: a template rendering to a whole number, 1 or more.
        rows: String,
    },
    /// The `<id>_merge` step of a ForEachItem: the output `subflowOutputs`, the file `file`
    /// renders to (none when it renders empty).
    MergeOutputs {
        /// A template naming the `<id>_items` step's file of the children's outputs.
        file: String,
    },
    /// `io.kestra.plugin.core.log.Fetch` (old: `io.kestra.core.tasks.log.Fetch`): the log
    /// entries of the execution so far, stored as a file (outputs `uri` and `size`).
    FetchLogs {
        /// `namespace`, a template: the execution's own when given.
        namespace: Option<String>,
        /// `flowId`, a template: the execution's own when given.
        flow_id: Option<String>,
        /// `executionId`, a template: the execution's own when given.
        execution_id: Option<String>,
        /// `tasksId`: only these tasks' entries.
        task_ids: Option<Vec<String>>,
        /// `level` (default INFO): entries at it or above.
        level: Level,
    },
    /// `io.kestra.plugin.core.execution.Resume`: resumes a PAUSED execution of the flow (or of
    /// `namespace` and `flowId`) with `inputs`, its Pause's `onResume`.
    Resume {
        /// `namespace`, a template; the flow's own when absent.
        namespace: Option<String>,
        /// `flowId`, a template; the flow's own when absent.
        flow_id: Option<String>,
        /// `executionId`, a template; required in kestrel (an execution cannot resume itself).
        execution_id: Option<String>,
        /// `inputs` as written (a map; every text a template); null when absent.
        inputs: Value,
    },
    /// `io.kestra.plugin.core.state.Get`, `Set` and `Delete` (old: `io.kestra.core.tasks.states.*`).
    State(Box<crate::StateCall>),
    /// `io.kestra.plugin.core.storage.LocalFiles` (old: `io.kestra.core.tasks.storages.LocalFiles`):
    /// writes files into the working directory, stores those matching `outputs` (output
    /// `uris`). Inside a WorkingDirectory, it works in the directory its siblings share.
    LocalFiles {
        /// `inputs`: name and content template (a `kestra://` URI is that file's content).
        inputs: Vec<(String, String)>,
        /// `outputs`: glob patterns relative to the working directory.
        outputs: Vec<String>,
    },
}

/// Properties shared by every task.
#[derive(Debug, Clone, Default)]
pub struct TaskCommon {
    /// `description`.
    pub description: Option<String>,
    /// `logLevel`: entries below it are dropped.
    pub log_level: Option<Level>,
    /// `allowFailure`: a failure ends the task run in WARNING.
    pub allow_failure: bool,
    /// `allowWarning`: a task run that would end in WARNING (a failure under `allowFailure`
    /// too) ends in SUCCESS.
    pub allow_warning: bool,
    /// `disabled`.
    pub disabled: bool,
    /// `runIf`, a template; false makes the task run SKIPPED.
    pub run_if: Option<String>,
    /// `timeout`, an ISO-8601 duration as written (`PT10S`).
    pub timeout: Option<String>,
    /// `retry`, as written.
    pub retry: Option<Value>,
    /// `logToFile`: each attempt's log entries are also stored as a file, the attempt's
    /// `logFile`.
    pub log_to_file: bool,
}

impl TaskCommon {
    /// `timeout` as a duration; `None` without a timeout. Parsing checked it, so a flow from
    /// [`parse_flow`](crate::parse_flow) never has one this cannot read.
    pub fn timeout_duration(&self) -> Option<Duration> {
        self.timeout
            .as_deref()
            .and_then(crate::duration::parse_iso8601)
    }
}

/// Log levels, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// TRACE
    Trace,
    /// DEBUG
    Debug,
    /// INFO
    Info,
    /// WARN
    Warn,
    /// ERROR
    Error,
}

impl Level {
    /// Every level, lowest first.
    pub const ALL: [Level; 5] = [
        Level::Trace,
        Level::Debug,
        Level::Info,
        Level::Warn,
        Level::Error,
    ];

    /// The level of that name as Kestra writes it (`INFO`), if any.
    pub fn from_name(name: &str) -> Option<Level> {
        Level::ALL.into_iter().find(|level| level.as_str() == name)
    }

    /// The level's name as Kestra writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "TRACE",
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A flow input.
#[derive(Debug, Clone)]
pub struct InputDef {
    /// `id`.
    pub id: String,
    /// `type`.
    pub input_type: InputType,
    /// `required` (default true).
    pub required: bool,
    /// `defaults`.
    pub defaults: Option<Value>,
    /// `description`.
    pub description: Option<String>,
    /// What the value must also satisfy.
    pub rules: InputRules,
}

/// Input types, as Kestra names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InputType {
    /// STRING, with an optional `validator` (a regular expression the whole text matches).
    String,
    /// ENUM: one of `values`.
    Enum,
    /// SELECT: one of `values`, or any text under `allowCustomValue`.
    Select,
    /// INT, between `min` and `max` when given.
    Int,
    /// FLOAT, between `min` and `max` when given.
    Float,
    /// BOOLEAN
    Boolean,
    /// DATETIME: an ISO-8601 instant (`2024-05-01T10:00:00Z`), within `after` and `before`.
    DateTime,
    /// DATE: `2024-05-01`, within `after` and `before`.
    Date,
    /// TIME: `10:15:30`, within `after` and `before`.
    Time,
    /// DURATION: ISO-8601 (`PT5M`), between `min` and `max`.
    Duration,
    /// FILE: a file of the internal storage, by its `kestra:///` URI (`kestrel run` and the
    /// API store a file given to them first, and pass its URI).
    File,
    /// JSON
    Json,
    /// URI: an absolute URL, as Kestra's pattern checks it.
    Uri,
    /// SECRET: masked everywhere.
    Secret,
    /// ARRAY: a JSON list, each item of `itemType`.
    Array,
    /// MULTISELECT: a JSON list of `values` (any under `allowCustomValue`).
    Multiselect,
    /// YAML, read into its JSON shape.
    Yaml,
    /// EMAIL
    Email,
}

impl InputType {
    /// Every input type, in Kestra's order.
    pub const ALL: [InputType; 18] = [
        InputType::String,
        InputType::Enum,
        InputType::Select,
        InputType::Int,
        InputType::Float,
        InputType::Boolean,
        InputType::DateTime,
        InputType::Date,
        InputType::Time,
        InputType::Duration,
        InputType::File,
        InputType::Json,
        InputType::Uri,
        InputType::Secret,
        InputType::Array,
        InputType::Multiselect,
        InputType::Yaml,
        InputType::Email,
    ];

    /// The type of that name as Kestra writes it (`STRING`), if any.
    pub fn from_name(name: &str) -> Option<InputType> {
        InputType::ALL
            .into_iter()
            .find(|kind| kind.as_str() == name)
    }

    /// The type's name as Kestra writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            InputType::String => "STRING",
            InputType::Enum => "ENUM",
            InputType::Select => "SELECT",
            InputType::Int => "INT",
            InputType::Float => "FLOAT",
            InputType::Boolean => "BOOLEAN",
            InputType::DateTime => "DATETIME",
            InputType::Date => "DATE",
            InputType::Time => "TIME",
            InputType::Duration => "DURATION",
            InputType::File => "FILE",
            InputType::Json => "JSON",
            InputType::Uri => "URI",
            InputType::Secret => "SECRET",
            InputType::Array => "ARRAY",
            InputType::Multiselect => "MULTISELECT",
            InputType::Yaml => "YAML",
            InputType::Email => "EMAIL",
        }
    }
}

/// The checks an input's type takes beyond its type (Kestra's validation properties), as
/// written and already checked to be well formed by [`parse_flow`](crate::parse_flow).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InputRules {
    /// STRING's `validator`.
    pub validator: Option<String>,
    /// `min` and `max`: numbers for INT and FLOAT, ISO-8601 durations for DURATION.
    pub min: Option<Value>,
    /// See `min`.
    pub max: Option<Value>,
    /// `after` and `before` for DATETIME, DATE and TIME, as written.
    pub after: Option<String>,
    /// See `after`.
    pub before: Option<String>,
    /// `values` of ENUM, SELECT and MULTISELECT (MULTISELECT's older `options` too).
    pub values: Option<Vec<String>>,
    /// `allowCustomValue` of SELECT and MULTISELECT.
    pub allow_custom_value: bool,
    /// `itemType` of ARRAY and MULTISELECT.
    pub item_type: Option<InputType>,
}

impl fmt::Display for InputType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A flow output.
#[derive(Debug, Clone)]
pub struct OutputDef {
    /// `id`.
    pub id: String,
    /// `value`, a template.
    pub value: Value,
    /// `type`, as written.
    pub output_type: Option<String>,
}

/// One thing wrong with a flow, in Kestra's words, with its position where known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The message, e.g. `Duplicate task id with name [a]`.
    pub message: String,
    /// 1-based line.
    pub line: Option<usize>,
    /// 1-based column.
    pub column: Option<usize>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(line), Some(col)) => write!(f, "{line}:{col}: {}", self.message),
            (Some(line), None) => write!(f, "{line}: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}
