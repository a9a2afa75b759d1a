//! One execution, step by step: the plan of its task tree, its task runs as they open and
//! close, and the render context each sees. What it holds is real; every event and the
//! returned execution go out through the edge.
//!
//! Task runs of parallel branches run in the execution's own task, polled together, so the
//! record they share sits behind a mutex that is never held across an await.

use crate::edge::Edge;
use crate::flowable::{PlannedFlowable, plan_flowable};
use crate::held::{HeldExecution, HeldLog, HeldRun};
use crate::id::new_id;
use crate::pause::Resumes;
use crate::subflow::{Parent, Subflows};
use crate::tasks::task_for;
use crate::{
    Attempt, CancelToken, Engine, Execution, Host, Inputs, Listener, Origin, State,
    SubflowLauncher, Task,
};
use chrono::{SecondsFormat, Utc};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use kestrel_expr::Context;
use kestrel_flow::{Flow, Level, Retry, TaskCommon, TaskKind};
use kestrel_secrets::{MaskRegistry, Reader, SecretScope};
use kestrel_storage::ExecutionFiles;
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

mod lifecycle;
mod replay;
mod restart;

pub(crate) use lifecycle::{CORRELATION_ID, Plans};
pub use replay::plan_replay;
pub(crate) use restart::Again;
pub use restart::{NOTHING_TO_RESTART, plan_restart};

/// A future of the execution's task tree; boxed, as the tree is recursive.
pub(crate) type Branch<'f> = Pin<Box<dyn Future<Output = State> + Send + 'f>>;

/// A flow task ready to run: what the flow says about it and what runs it.
pub(crate) struct PlannedTask {
    pub(crate) id: String,
    pub(crate) type_name: String,
    pub(crate) common: TaskCommon,
    /// `retry`, read.
    pub(crate) retry: Option<Retry>,
    /// Whose outputs its render contexts are given.
    pub(crate) reads: Reads,
    /// Whether its templates call `errorLogs()`: only then are its render contexts given the
    /// execution's ERROR entries.
    pub(crate) reads_error_logs: bool,
    pub(crate) work: Work,
}

/// Whose outputs a task's expressions (and its children's) can read: its render contexts are
/// given those alone, so that a task run's cost does not grow with the task runs before it.
pub(crate) type Reads = Option<Arc<[String]>>;

/// The ids of the tasks whose outputs the templates in `text` (a task's definition, which holds
/// every template of the task and of its children) read, when every mention of `outputs` is
/// `outputs.<id>`; `None` (every output) otherwise (`outputs[name]`, `outputs | keys`...).
fn outputs_read(text: &str) -> Reads {
    let mut ids = BTreeSet::new();
    for (at, word) in text.match_indices("outputs") {
        let rest = text[at + word.len()..].strip_prefix('.')?;
        let id: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if id.is_empty() {
            return None;
        }
        ids.insert(id);
    }
    Some(ids.into_iter().collect())
}

/// What running a task means.
pub(crate) enum Work {
    /// A task that does something itself.
    Run(Box<dyn Task>),
    /// A flowable task: its children run.
    Children(Box<PlannedFlowable>),
}

/// The tasks to run, in order; `disabled` ones are left out (they get no task run).
pub(crate) fn plan(tasks: &[kestrel_flow::Task]) -> Vec<PlannedTask> {
    tasks
        .iter()
        .filter(|task| !task.common.disabled)
        .filter_map(|task| {
            let work = match &task.kind {
                TaskKind::Flowable(flowable) => Work::Children(Box::new(plan_flowable(flowable))),
                // Every other kind has a task that runs it.
                kind => Work::Run(task_for(kind)?),
            };
            let definition = format!("{task:?}");
            Some(PlannedTask {
                id: task.id.clone(),
                type_name: task.type_name.clone(),
                retry: task.common.retry.as_ref().and_then(Retry::from_json),
                common: task.common.clone(),
                reads: outputs_read(&definition),
                reads_error_logs: definition.contains("errorLogs"),
                work,
            })
        })
        .collect()
}

/// Where a task run sits in the tree: under which flowable task run, for which ForEach value.
#[derive(Debug, Clone, Default)]
pub(crate) struct Frame {
    /// The flowable task run it runs under.
    pub(crate) parent_id: Option<String>,
    /// The enclosing flowable task runs, closest first, as `parents` shows them.
    pub(crate) parents: Vec<Value>,
    /// The closest ForEach value: `taskrun.value`.
    pub(crate) value: Option<String>,
    /// Every enclosing ForEach value, outermost first: where outputs are kept.
    pub(crate) values: Vec<String>,
    /// The directory of the enclosing WorkingDirectory, which its tasks share.
    pub(crate) working_dir: Option<Arc<crate::workdir::SharedDir>>,
}

impl Frame {
    /// The frame of the children of the flowable task run `run`.
    /// As in Kestra, `parents` lists the enclosing task runs that have a value, each as
    /// `{"taskrun": {"value": ...}}`.
    pub(crate) fn under(&self, run: &HeldRun) -> Frame {
        let mut parents: Vec<Value> = run
            .value
            .iter()
            .map(|value| json!({"taskrun": {"value": value}}))
            .collect();
        parents.extend(self.parents.iter().cloned());
        Frame {
            parent_id: Some(run.id.clone()),
            parents,
            value: self.value.clone(),
            values: self.values.clone(),
            working_dir: self.working_dir.clone(),
        }
    }

    /// This frame, for the ForEach iteration over `value`.
    pub(crate) fn with_value(&self, value: &str) -> Frame {
        let mut frame = self.clone();
        frame.value = Some(value.to_owned());
        frame.values.push(value.to_owned());
        frame
    }
}

/// What branches share: the execution, and the outputs expressions see.
struct Record {
    execution: HeldExecution,
    /// Real output values, by task id (then by ForEach value): only expressions see them.
    outputs: Map<String, Value>,
    /// How many values the registry held when readers were last shown the inputs.
    inputs_shown_at: usize,
    /// When a new execution is to run in this one's place (a failure under a retry with
    /// `behavior: CREATE_NEW_EXECUTION`): after this delay.
    retry_in: Option<Duration>,
}

/// The state of one execution while it runs.
pub(crate) struct Run<'a> {
    pub(crate) engine: &'a Engine,
    pub(crate) listener: &'a dyn Listener,
    pub(crate) registry: Arc<MaskRegistry>,
    pub(crate) scope: Arc<SecretScope>,
    /// Where the execution's files go, when the engine has a storage.
    pub(crate) files: Option<ExecutionFiles>,
    /// What every task's render sees, but `task`, `taskrun`, `parents` and `outputs`.
    base_vars: Map<String, Value>,
    record: Mutex<Record>,
    /// Which execution of its chain this is.
    chain: lifecycle::Chain,
    /// The host's launcher of child executions, and this execution as they see it.
    launcher: Option<(&'a dyn SubflowLauncher, Parent)>,
    /// Where Pause tasks wait for resumes, when the host can resume executions.
    pub(crate) resumes: Option<Resumes>,
    /// The task runs of a restarted execution not reached yet.
    prior: Option<restart::Prior>,
}

/// A task run being run: its place in the execution's list, its current state (real), and
/// whose outputs its expressions read.
pub(crate) struct OpenRun {
    index: usize,
    pub(crate) run: HeldRun,
    reads: Reads,
    reads_error_logs: bool,
    /// The task's `allowWarning`: a WARNING end is a SUCCESS.
    allow_warning: bool,
    /// Whether it runs again in a restarted execution (a Pause it passed does not pause again).
    pub(crate) restarted: bool,
}

impl crate::task::ExecutionLogs for Run<'_> {
    fn identity(&self) -> [String; 3] {
        let execution = &self.lock().execution;
        [
            execution.namespace.clone(),
            execution.flow_id.clone(),
            execution.id.clone(),
        ]
    }

    fn entries(&self, task_ids: Option<&[String]>, level: Level) -> Vec<Value> {
        let record = self.lock();
        let execution = &record.execution;
        execution
            .logs
            .iter()
            .filter(|log| log.level >= level)
            .filter(|log| task_ids.is_none_or(|ids| ids.contains(&log.task_id)))
            .map(|log| {
                json!({
                    "namespace": execution.namespace,
                    "flowId": execution.flow_id,
                    "executionId": execution.id,
                    "taskId": log.task_id,
                    "taskRunId": log.task_run_id,
                    "attemptNumber": log.attempt_number.saturating_sub(1),
                    "timestamp": log.timestamp.to_rfc3339_opts(SecondsFormat::Millis, true),
                    "level": log.level.as_str(),
                    "message": log.message,
                })
            })
            .collect()
    }
}

impl<'a> Run<'a> {
    /// A new execution of `flow`, CREATED, with its SECRET inputs (and the other values
    /// `inputs` holds to register) registered for masking; its id, who triggered it and its
    /// `trigger` variable from `origin`. Its secret reads name it as their reader.
    pub(crate) fn start(
        engine: &'a Engine,
        flow: &Flow,
        inputs: &Inputs,
        origin: Origin,
        listener: &'a dyn Listener,
    ) -> Self {
        let registry = Arc::new(MaskRegistry::new(engine.config.mask_min_length));
        inputs.register_in(&registry);
        let Origin {
            id,
            triggered_by,
            trigger,
            mut labels,
            retry_chain,
            restarted,
        } = origin;
        let id = id.unwrap_or_else(new_id);
        if let Some(chain) = &retry_chain {
            labels.push((CORRELATION_ID.to_owned(), chain.correlation_id.clone()));
        }
        let labels = execution_labels(&flow.labels, labels, &id);
        let reader = Reader::Execution {
            id: id.clone(),
            namespace: flow.namespace.clone(),
            flow_id: flow.id.clone(),
            triggered_by,
        };
        let scope = Arc::new(engine.scope(reader, &flow.namespace, &registry));
        let files = engine.execution_files(flow, &id);
        let execution = HeldExecution {
            id: id.clone(),
            namespace: flow.namespace.clone(),
            flow_id: flow.id.clone(),
            state: State::Created,
            inputs: inputs.held(),
            trigger,
            labels,
            task_runs: Vec::new(),
            logs: Vec::new(),
            outputs: Map::new(),
            start: Utc::now(),
            duration: Duration::ZERO,
            attempt_number: retry_chain.as_ref().map_or(1, |chain| chain.number),
        };
        let chain = match retry_chain {
            Some(chain) => lifecycle::Chain::continued(chain),
            None => lifecycle::Chain::first(&execution.labels, &execution.id),
        };
        let base_vars = base_vars(engine, flow, inputs, &execution);
        let inputs_shown_at = registry.pattern_count();
        let run = Self {
            engine,
            listener,
            registry,
            scope,
            files,
            base_vars,
            record: Mutex::new(Record {
                execution,
                outputs: Map::new(),
                inputs_shown_at,
                retry_in: None,
            }),
            chain,
            launcher: None,
            resumes: None,
            prior: restart::Prior::new(restarted),
        };
        run.flush_warnings();
        run.set_state(State::Created);
        run
    }

    /// This execution of `flow` in `host`: its Subflow tasks start children through the
    /// host's launcher, its Pause tasks wait for the host's resumes.
    pub(crate) fn hosted(mut self, flow: &Flow, host: Host<'a>) -> Self {
        self.resumes = host.resumes;
        let Some(launcher) = host.subflows else {
            return self;
        };
        let parent = {
            let record = self.lock();
            Parent {
                execution_id: record.execution.id.clone(),
                namespace: flow.namespace.clone(),
                flow_id: flow.id.clone(),
                revision: flow.revision,
                labels: record.execution.labels.clone(),
            }
        };
        self.launcher = Some((launcher, parent));
        self
    }

    /// What this execution's Subflow tasks start children with, if it may.
    pub(crate) fn subflows(&self) -> Option<Subflows<'_>> {
        self.launcher.as_ref().map(|(launcher, parent)| Subflows {
            launcher: *launcher,
            parent,
        })
    }

    /// Runs `tasks` one after the other until one fails or the execution is cancelled; their
    /// state together: SUCCESS, WARNING, FAILED or KILLED.
    pub(crate) async fn sequence(
        &self,
        tasks: &[PlannedTask],
        frame: &Frame,
        cancel: &CancelToken,
    ) -> State {
        // Collected first: an iterator's closure held across the await would trip the
        // compiler's check that the future is `Send`.
        let branches: Vec<Branch<'_>> = tasks
            .iter()
            .map(|task| self.run_task(task, frame, cancel))
            .collect();
        together(branches, 1, cancel).await
    }

    /// Runs one task run (and its children) to its end; its final state.
    pub(crate) fn run_task<'f>(
        &'f self,
        planned: &'f PlannedTask,
        frame: &'f Frame,
        cancel: &'f CancelToken,
    ) -> Branch<'f> {
        match &planned.work {
            Work::Run(task) => Box::pin(self.run_leaf(planned, task.as_ref(), frame, cancel)),
            Work::Children(flowable) => {
                Box::pin(self.run_flowable(planned, flowable, frame, cancel))
            }
        }
    }

    /// Opens a task run of `planned` in `frame`: CREATED, listed, announced.
    pub(crate) fn open(&self, planned: &PlannedTask, frame: &Frame) -> OpenRun {
        self.list(
            planned,
            HeldRun {
                id: new_id(),
                task_id: planned.id.clone(),
                task_type: planned.type_name.clone(),
                state: State::Created,
                outputs: Map::new(),
                error: None,
                metrics: Vec::new(),
                start: Utc::now(),
                end: None,
                attempts: Vec::new(),
                parent_task_run_id: frame.parent_id.clone(),
                value: frame.value.clone(),
            },
        )
    }

    /// Lists `run` of `planned` and announces it.
    fn list(&self, planned: &PlannedTask, run: HeldRun) -> OpenRun {
        let index = {
            let mut record = self.lock();
            record.execution.task_runs.push(run.clone());
            record.execution.task_runs.len() - 1
        };
        self.listener.on_task_state(&self.edge().task_run(&run));
        OpenRun {
            index,
            run,
            reads: planned.reads.clone(),
            reads_error_logs: planned.reads_error_logs,
            allow_warning: planned.common.allow_warning,
            restarted: false,
        }
    }

    /// Starts a new attempt of the task run: RUNNING.
    pub(crate) fn begin_attempt(&self, open: &mut OpenRun) {
        open.run.state = State::Running;
        open.run.attempts.push(Attempt {
            state: State::Running,
            start: Utc::now(),
            end: None,
            log_file: None,
        });
        self.update(open);
    }

    /// Ends the current attempt in `state`.
    pub(crate) fn end_attempt(open: &mut OpenRun, state: State) {
        if let Some(attempt) = open.run.attempts.last_mut() {
            attempt.state = state;
            attempt.end = Some(Utc::now());
        }
    }

    /// Records the task run as it is now and tells the listener, with the inputs again when
    /// a value registered since may hide in them.
    pub(crate) fn update(&self, open: &mut OpenRun) {
        self.flush_warnings();
        if let Some(slot) = self.lock().execution.task_runs.get_mut(open.index) {
            slot.clone_from(&open.run);
        }
        self.listener
            .on_task_state(&self.edge().task_run(&open.run));
        self.show_inputs_again();
    }

    /// Shows readers the inputs again when the registry grew since they last saw them.
    fn show_inputs_again(&self) {
        let count = self.registry.pattern_count();
        let shown = {
            let mut record = self.lock();
            if record.inputs_shown_at == count {
                return;
            }
            record.inputs_shown_at = count;
            self.edge().inputs(&record.execution.inputs)
        };
        self.listener.on_inputs(&shown);
    }

    /// What turns what the execution holds into what readers see.
    pub(crate) fn edge(&self) -> Edge<'_> {
        Edge::new(&self.registry)
    }

    /// Ends the task run in `state` (SUCCESS for a WARNING under `allowWarning`), keeping
    /// `outputs` (real values) for later expressions.
    pub(crate) fn close(
        &self,
        mut open: OpenRun,
        state: State,
        outputs: Map<String, Value>,
        frame: &Frame,
    ) -> State {
        let state = match state {
            State::Warning if open.allow_warning => State::Success,
            other => other,
        };
        open.run.outputs.clone_from(&outputs);
        open.run.state = state;
        open.run.end = Some(Utc::now());
        store_outputs(
            &mut self.lock().outputs,
            &open.run.task_id,
            &frame.values,
            Value::Object(outputs),
        );
        self.update(&mut open);
        state
    }

    /// Keeps `outputs` (real) of a task run still running, for its children's expressions
    /// (a WaitFor's `iterationCount`).
    pub(crate) fn keep_outputs(&self, open: &OpenRun, frame: &Frame, outputs: Value) {
        store_outputs(
            &mut self.lock().outputs,
            &open.run.task_id,
            &frame.values,
            outputs,
        );
    }

    /// Adds `labels` to the execution's, one of the same key replacing its value in place.
    pub(crate) fn add_labels(&self, labels: Vec<(String, String)>) {
        if labels.is_empty() {
            return;
        }
        let execution = &mut self.lock().execution;
        for (key, value) in labels {
            match execution.labels.iter_mut().find(|(name, _)| *name == key) {
                Some(slot) => slot.1 = value,
                None => execution.labels.push((key, value)),
            }
        }
    }

    /// What every render sees but `task`, `taskrun`, `parents` and `outputs`: the execution's
    /// variables, with its labels as they are now (a Labels task changes them).
    fn vars(&self) -> Map<String, Value> {
        let mut vars = self.base_vars.clone();
        let labels = labels_var(&self.lock().execution.labels);
        vars.insert("labels".into(), Value::Object(labels));
        vars
    }

    /// Keeps log entries of a task run (already shown to the listener).
    pub(crate) fn keep_logs(&self, logs: Vec<HeldLog>) {
        self.lock().execution.logs.extend(logs);
    }

    /// Logs `message` as the ERROR entry of a failed task run that ran no task itself (a
    /// flowable), and sets it as the run's error.
    pub(crate) fn fail_with(&self, open: &mut OpenRun, message: &str) {
        self.log_on(open, Level::Error, message);
        open.run.error = Some(message.to_owned());
    }

    /// Logs `message` at `level` on behalf of a task run that runs no task itself.
    pub(crate) fn log_on(&self, open: &OpenRun, level: Level, message: &str) {
        let entry = HeldLog {
            task_id: open.run.task_id.clone(),
            task_run_id: open.run.id.clone(),
            level,
            message: message.to_owned(),
            timestamp: Utc::now(),
            attempt_number: u32::try_from(open.run.attempts.len().max(1)).unwrap_or(u32::MAX),
        };
        self.listener.on_log(&self.edge().log(&entry));
        self.keep_logs(vec![entry]);
    }

    /// The render context of a task run: the execution's, plus `task`, `taskrun`, `parent`,
    /// `parents` and the real `outputs` of the task runs so far.
    pub(crate) fn context(&self, open: &OpenRun, frame: &Frame) -> Context {
        let mut vars = self.vars();
        // The state as it is now: `afterExecution` tasks see the final one.
        if let Some(execution) = vars.get_mut("execution").and_then(Value::as_object_mut) {
            let state = self.lock().execution.state;
            execution.insert("state".into(), json!(state.as_str()));
        }
        let run = &open.run;
        vars.insert(
            "task".into(),
            json!({"id": run.task_id, "type": run.task_type}),
        );
        let start = run.start.to_rfc3339_opts(SecondsFormat::Millis, true);
        let mut taskrun = json!({
            "id": run.id,
            "startDate": start,
            "attemptsCount": run.attempts.len().saturating_sub(1),
        });
        if let Some(value) = &run.value {
            taskrun["value"] = json!(value);
        }
        if let Some(parent) = &run.parent_task_run_id {
            taskrun["parentId"] = json!(parent);
        }
        vars.insert("taskrun".into(), taskrun);
        if let Some(parent) = frame.parents.first() {
            vars.insert("parent".into(), parent.clone());
            vars.insert("parents".into(), json!(frame.parents));
        }
        if let Some(shared) = &frame.working_dir {
            vars.insert("workerTaskrun".into(), shared.taskrun.clone());
            vars.insert("workingDir".into(), json!(shared.dir.work()));
        }
        vars.insert(
            "outputs".into(),
            Value::Object(self.outputs_read(&open.reads)),
        );
        if open.reads_error_logs {
            vars.insert(kestrel_expr::ERROR_LOGS.into(), self.error_logs());
        }
        self.with_files(Context::new(
            Value::Object(vars),
            Some(Arc::clone(&self.scope)),
        ))
    }

    /// The execution's first 25 ERROR entries, as Kestra's `errorLogs()` gives them, masked as
    /// readers see them: a task reading them learns no secret.
    fn error_logs(&self) -> Value {
        let errors = crate::task::ExecutionLogs::entries(self, None, Level::Error);
        let mut shown: Vec<Value> = errors.into_iter().take(25).collect();
        for entry in &mut shown {
            if let Some(Value::String(message)) = entry.get_mut("message") {
                *message = self.registry.mask(message).into_owned();
            }
        }
        Value::Array(shown)
    }

    /// The real outputs `reads` names (their size counted in the engine's work).
    fn outputs_read(&self, reads: &Reads) -> Map<String, Value> {
        let record = self.lock();
        let outputs: Map<String, Value> = match reads {
            None => record.outputs.clone(),
            Some(ids) => ids
                .iter()
                .filter_map(|id| Some((id.clone(), record.outputs.get(id)?.clone())))
                .collect(),
        };
        self.engine
            .count_context_values(outputs.values().map(values_in).sum());
        outputs
    }

    /// Renders `template` in `ctx` off the runtime's threads, until `cancel`; the error as a
    /// text (real: readers see it through the edge).
    pub(crate) async fn render(
        &self,
        template: &str,
        ctx: &Context,
        cancel: &CancelToken,
    ) -> Result<String, Unrendered> {
        tokio::select! {
            rendered = crate::render::render(&self.engine.expressions, template, ctx) => {
                rendered.map_err(Unrendered::Failed)
            }
            () = cancel.cancelled() => Err(Unrendered::Killed),
        }
    }

    /// Whether `runIf` lets the task run go: `Ok(false)` to skip it, why not otherwise.
    /// Kestra's falsy texts are `false`, `0`, `-0` and the empty text.
    pub(crate) async fn run_if(
        &self,
        planned: &PlannedTask,
        open: &OpenRun,
        frame: &Frame,
        cancel: &CancelToken,
    ) -> Result<bool, Unrendered> {
        match &planned.common.run_if {
            None => Ok(true),
            Some(condition) => {
                let ctx = self.context(open, frame);
                let text = self.render(condition, &ctx, cancel).await?;
                Ok(is_truthy(&text))
            }
        }
    }

    /// The vars of the flow outputs' render: the execution's and every output.
    pub(crate) fn output_context(&self) -> Context {
        let mut vars = self.vars();
        vars.insert("outputs".into(), Value::Object(self.lock().outputs.clone()));
        self.with_files(Context::new(
            Value::Object(vars),
            Some(Arc::clone(&self.scope)),
        ))
    }

    /// Sets the flow's rendered outputs (real values; readers see them through the edge).
    pub(crate) fn set_flow_outputs(&self, outputs: Map<String, Value>) {
        self.lock().execution.outputs = outputs;
    }

    pub(crate) fn set_state(&self, state: State) {
        let shown = {
            let mut record = self.lock();
            record.execution.state = state;
            self.edge().execution(&record.execution)
        };
        self.listener.on_execution_state(&shown);
    }

    /// Ends the execution in `state` and shows it, masked with everything it registered; log
    /// entries of parallel branches in the order they were emitted.
    fn finish(self, state: State) -> Execution {
        let mut held = self
            .record
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner)
            .execution;
        held.logs.sort_by_key(|entry| entry.timestamp);
        held.duration = (Utc::now() - held.start).to_std().unwrap_or_default();
        held.state = state;
        let shown = Edge::new(&self.registry).execution(&held);
        self.listener.on_execution_state(&shown);
        for warning in self.registry.take_warnings() {
            self.listener.on_warning(&warning);
        }
        shown.into_inner()
    }

    /// Hands the registry's warnings (values too short to mask, by key) to the listener.
    pub(crate) fn flush_warnings(&self) {
        for warning in self.registry.take_warnings() {
            self.listener.on_warning(&warning);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Record> {
        // A panic elsewhere cannot leave the record half-written: each change is one call.
        self.record.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Why a render of the runner (`runIf`, an If's condition, a ForEach's values) gave no text.
pub(crate) enum Unrendered {
    /// The render failed: why (real: readers see it through the edge).
    Failed(String),
    /// The execution was cancelled during the render.
    Killed,
}

/// Runs `branches` at most `limit` at once (0: no limit), in order, starting none once one
/// failed, was killed or stayed paused, or `cancel` fired; their state together: KILLED if one
/// was killed (or one could not start), else FAILED if one failed, else PAUSED if one stayed
/// paused, else WARNING if one warned, else SUCCESS.
pub(crate) async fn together<'f>(
    branches: impl IntoIterator<Item = Branch<'f>>,
    limit: usize,
    cancel: &CancelToken,
) -> State {
    let mut waiting = branches.into_iter().peekable();
    let mut running = FuturesUnordered::new();
    let mut summary = Summary::default();
    loop {
        while limit == 0 || running.len() < limit {
            if summary.stops() || waiting.peek().is_none() {
                break;
            }
            if cancel.is_cancelled() {
                summary.killed = true;
                break;
            }
            running.extend(waiting.next());
        }
        match running.next().await {
            Some(state) => summary.add(state),
            None => break,
        }
    }
    summary.state()
}

/// The states of branches, added up.
#[derive(Debug, Default)]
pub(crate) struct Summary {
    killed: bool,
    failed: bool,
    paused: bool,
    warning: bool,
}

impl Summary {
    pub(crate) fn add(&mut self, state: State) {
        match state {
            State::Killed => self.killed = true,
            State::Failed | State::Retried => self.failed = true,
            State::Paused => self.paused = true,
            State::Warning => self.warning = true,
            _ => {}
        }
    }

    /// Whether a branch failed, was killed or stayed paused: no other starts.
    pub(crate) fn stops(&self) -> bool {
        self.failed || self.killed || self.paused
    }

    pub(crate) fn state(&self) -> State {
        match self {
            Summary { killed: true, .. } => State::Killed,
            Summary { failed: true, .. } => State::Failed,
            Summary { paused: true, .. } => State::Paused,
            Summary { warning: true, .. } => State::Warning,
            _ => State::Success,
        }
    }
}

/// How many JSON values `value` holds, itself included: the size of a copy of it.
fn values_in(value: &Value) -> usize {
    1 + match value {
        Value::Array(items) => items.iter().map(values_in).sum(),
        Value::Object(map) => map.values().map(values_in).sum(),
        _ => 0,
    }
}

/// Kestra's truth of a rendered condition: anything but `false`, `0`, `-0` and the empty text
/// (spaces around ignored).
pub(crate) fn is_truthy(text: &str) -> bool {
    !matches!(text.trim(), "false" | "0" | "-0" | "")
}

/// Keeps a task run's outputs at `outputs.<task>`, or inside a ForEach at
/// `outputs.<task>.<value>...`, one level per enclosing value.
fn store_outputs(outputs: &mut Map<String, Value>, task_id: &str, values: &[String], value: Value) {
    let mut slot = outputs
        .entry(task_id.to_owned())
        .or_insert_with(|| Value::Object(Map::new()));
    for key in values {
        if !slot.is_object() {
            *slot = Value::Object(Map::new());
        }
        let Value::Object(map) = slot else {
            return;
        };
        slot = map
            .entry(key.clone())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    *slot = value;
}

/// The labels of execution `id`: its flow's, then `extra` (its own: one of the same key
/// replaces the flow's in place), then `system.correlationId`, `id` itself unless `extra` gave
/// it (a subflow's root).
pub fn execution_labels(
    flow: &[(String, String)],
    extra: Vec<(String, String)>,
    id: &str,
) -> Vec<(String, String)> {
    let mut labels = flow.to_vec();
    for (key, value) in extra {
        match labels.iter_mut().find(|(name, _)| *name == key) {
            Some(slot) => slot.1 = value,
            None => labels.push((key, value)),
        }
    }
    if !labels.iter().any(|(key, _)| key == CORRELATION_ID) {
        labels.push((CORRELATION_ID.to_owned(), id.to_owned()));
    }
    labels
}

/// The `labels` variable: each label by key, `system.` ones under `system` (Kestra's
/// `labels.system.correlationId`); of two with the same key, the first.
fn labels_var(labels: &[(String, String)]) -> Map<String, Value> {
    let mut vars = Map::new();
    let mut system = Map::new();
    for (key, value) in labels {
        let (map, key) = match key.strip_prefix("system.") {
            Some(rest) => (&mut system, rest),
            None => (&mut vars, key.as_str()),
        };
        map.entry(key.to_owned())
            .or_insert_with(|| Value::String(value.clone()));
    }
    if !system.is_empty() {
        vars.entry("system").or_insert(Value::Object(system));
    }
    vars
}

/// What every task run of the execution sees: `flow`, `execution`, `inputs`, `labels`, `vars`
/// (unrendered) and `envs`.
fn base_vars(
    engine: &Engine,
    flow: &Flow,
    inputs: &Inputs,
    execution: &HeldExecution,
) -> Map<String, Value> {
    let labels = labels_var(&execution.labels);
    let start_date = execution.start.to_rfc3339_opts(SecondsFormat::Millis, true);
    let mut vars = Map::new();
    vars.insert(
        "flow".into(),
        json!({"id": flow.id, "namespace": flow.namespace}),
    );
    vars.insert(
        "execution".into(),
        json!({"id": execution.id, "startDate": start_date}),
    );
    // Kestra has no `inputs` in an execution of a flow without any: `{{ inputs.x }}` names
    // `inputs` as what is missing.
    if !flow.inputs.is_empty() || !inputs.values().is_empty() {
        vars.insert("inputs".into(), Value::Object(inputs.values().clone()));
    }
    vars.insert("labels".into(), Value::Object(labels));
    vars.insert("vars".into(), Value::Object(flow.variables.clone()));
    vars.insert("envs".into(), json!(engine.envs));
    if let Some(trigger) = &execution.trigger {
        vars.insert("trigger".into(), trigger.clone());
    }
    vars
}

#[cfg(test)]
mod tests {
    use super::lifecycle::Plans;
    use super::*;
    use crate::{EngineConfig, Shown, TaskContext, TaskError, TaskRun, listener::NoListener};
    use async_trait::async_trait;
    use kestrel_expr::Expressions;
    use kestrel_secrets::{Resolver, SecretValue};
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    /// What a scripted task does, in order.
    enum Step {
        Log(Level, &'static str),
        Output(&'static str, &'static str),
        Fail(&'static str),
        /// Cancels the execution, then waits forever (a task stuck in a long job).
        CancelAndHang(CancelToken),
    }

    struct Script(Vec<Step>);

    #[async_trait]
    impl Task for Script {
        async fn run(&self, ctx: &mut TaskContext<'_>) -> Result<(), TaskError> {
            for step in &self.0 {
                match step {
                    Step::Log(level, message) => ctx.log(*level, message),
                    Step::Output(name, value) => ctx.output(name, json!(value)),
                    Step::Fail(message) => return Err(TaskError::new(*message)),
                    Step::CancelAndHang(cancel) => {
                        cancel.cancel();
                        std::future::pending::<()>().await;
                    }
                }
            }
            Ok(())
        }
    }

    fn task(id: &str, steps: Vec<Step>) -> PlannedTask {
        PlannedTask {
            id: id.into(),
            type_name: "test.Script".into(),
            common: TaskCommon::default(),
            retry: None,
            reads: None,
            reads_error_logs: false,
            work: Work::Run(Box::new(Script(steps))),
        }
    }

    fn with(mut planned: PlannedTask, common: TaskCommon) -> PlannedTask {
        planned.common = common;
        planned
    }

    fn flow() -> Flow {
        kestrel_flow::parse_flow(concat!(
            "id: f\nnamespace: dev\n",
            "inputs:\n  - id: pw\n    type: SECRET\n    required: false\n",
            "tasks:\n  - id: unused\n    type: io.kestra.plugin.core.log.Log\n    message: x\n",
        ))
        .unwrap()
    }

    fn engine() -> Engine {
        Engine::new(
            EngineConfig::default(),
            Arc::new(Expressions::new(json!({}))),
            Arc::new(Resolver::new(
                None,
                Arc::new(kestrel_secrets::EnvBackend::default()),
            )),
            BTreeMap::new(),
        )
    }

    /// Every event, as one line each.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<String>>);

    impl Recorder {
        fn events(&self) -> Vec<String> {
            self.0.lock().unwrap().clone()
        }
        fn push(&self, event: String) {
            self.0.lock().unwrap().push(event);
        }
    }

    impl Listener for Recorder {
        fn on_log(&self, entry: &Shown<crate::LogEntry>) {
            self.push(format!(
                "log {} {} {}",
                entry.task_id, entry.level, entry.message
            ));
        }
        fn on_task_state(&self, run: &Shown<TaskRun>) {
            let outputs = Value::Object(run.outputs.clone());
            self.push(format!("task {} {} {outputs}", run.task_id, run.state));
        }
        fn on_execution_state(&self, execution: &Shown<Execution>) {
            self.push(format!("execution {}", execution.state));
        }
    }

    async fn run_with(
        tasks: Vec<PlannedTask>,
        errors: Vec<PlannedTask>,
        secret_input: Option<&str>,
        listener: &dyn Listener,
        cancel: &CancelToken,
    ) -> Execution {
        let engine = engine();
        let flow = flow();
        let raw = secret_input.map(|value| ("pw".to_string(), SecretValue::new(value.into())));
        let inputs = Inputs::parse(&flow.inputs, raw).unwrap();
        Run::start(&engine, &flow, &inputs, Origin::by("test"), listener)
            .execute(
                &flow,
                &Plans {
                    tasks,
                    errors,
                    finally: Vec::new(),
                    after_execution: Vec::new(),
                },
                cancel,
            )
            .await
            .0
    }

    async fn run_tasks(tasks: Vec<PlannedTask>, errors: Vec<PlannedTask>) -> Execution {
        run_with(tasks, errors, None, &NoListener, &CancelToken::new()).await
    }

    fn states(execution: &Execution) -> Vec<(&str, State)> {
        execution
            .task_runs
            .iter()
            .map(|run| (run.task_id.as_str(), run.state))
            .collect()
    }

    #[tokio::test]
    async fn states_go_created_running_success_in_order() {
        let recorder = Recorder::default();
        let tasks = vec![task(
            "a",
            vec![Step::Log(Level::Info, "hi"), Step::Output("value", "x")],
        )];
        let execution = run_with(tasks, Vec::new(), None, &recorder, &CancelToken::new()).await;
        assert_eq!(execution.state, State::Success);
        assert_eq!(
            recorder.events(),
            [
                "execution CREATED",
                "execution RUNNING",
                "task a CREATED {}",
                "task a RUNNING {}",
                "log a INFO hi",
                r#"task a SUCCESS {"value":"x"}"#,
                "execution SUCCESS",
            ]
        );
        assert_eq!(execution.id.len(), 22);
        assert!(execution.task_runs[0].end.is_some());
    }

    #[tokio::test]
    async fn a_failed_task_fails_the_execution_and_stops_it() {
        let tasks = vec![
            task("a", vec![Step::Fail("it broke")]),
            task("b", vec![Step::Log(Level::Info, "never")]),
        ];
        let execution = run_tasks(tasks, Vec::new()).await;
        assert_eq!(execution.state, State::Failed);
        assert_eq!(states(&execution), [("a", State::Failed)]);
        assert_eq!(execution.task_runs[0].error.as_deref(), Some("it broke"));
        let last = execution.logs.last().unwrap();
        assert_eq!(
            (last.level, last.message.as_str()),
            (Level::Error, "it broke")
        );
    }

    #[tokio::test]
    async fn errors_tasks_run_after_a_failure_only() {
        let failing = vec![task("a", vec![Step::Fail("no")])];
        let errors = || vec![task("cleanup", vec![Step::Log(Level::Warn, "cleaning")])];
        let execution = run_tasks(failing, errors()).await;
        assert_eq!(execution.state, State::Failed);
        assert_eq!(
            states(&execution),
            [("a", State::Failed), ("cleanup", State::Success)]
        );
        let fine = run_tasks(vec![task("a", Vec::new())], errors()).await;
        assert_eq!(states(&fine), [("a", State::Success)]);
    }

    #[tokio::test]
    async fn allow_failure_ends_in_warning_and_goes_on() {
        let tolerated = TaskCommon {
            allow_failure: true,
            ..TaskCommon::default()
        };
        let tasks = vec![
            with(task("a", vec![Step::Fail("meh")]), tolerated),
            task("b", Vec::new()),
        ];
        let execution = run_tasks(tasks, Vec::new()).await;
        assert_eq!(execution.state, State::Warning);
        assert_eq!(
            states(&execution),
            [("a", State::Warning), ("b", State::Success)]
        );
    }

    #[tokio::test]
    async fn cancelling_kills_the_running_task_and_the_execution() {
        let cancel = CancelToken::new();
        let tasks = vec![
            task(
                "slow",
                vec![
                    Step::Log(Level::Info, "started"),
                    Step::CancelAndHang(cancel.clone()),
                ],
            ),
            task("next", Vec::new()),
        ];
        let errors = vec![task("cleanup", Vec::new())];
        let execution = run_with(tasks, errors, None, &NoListener, &cancel).await;
        assert_eq!(execution.state, State::Killed);
        assert_eq!(states(&execution), [("slow", State::Killed)]);
        assert_eq!(
            execution.logs.len(),
            1,
            "the entry logged before the kill stays"
        );
    }

    #[tokio::test]
    async fn log_level_drops_entries_below_it_but_not_the_failure() {
        let quiet = TaskCommon {
            log_level: Some(Level::Warn),
            ..TaskCommon::default()
        };
        let steps = vec![
            Step::Log(Level::Trace, "t"),
            Step::Log(Level::Info, "i"),
            Step::Log(Level::Warn, "w"),
            Step::Fail("e"),
        ];
        let execution = run_tasks(vec![with(task("a", steps), quiet)], Vec::new()).await;
        let messages: Vec<&str> = execution.logs.iter().map(|l| l.message.as_str()).collect();
        assert_eq!(messages, ["w", "e"]);
    }

    #[tokio::test]
    async fn without_log_level_every_entry_is_kept() {
        let steps = vec![Step::Log(Level::Trace, "t"), Step::Log(Level::Debug, "d")];
        let execution = run_tasks(vec![task("a", steps)], Vec::new()).await;
        assert_eq!(execution.logs.len(), 2);
    }

    #[tokio::test]
    async fn secret_inputs_are_masked_in_logs_outputs_errors_and_listeners() {
        let recorder = Recorder::default();
        let tasks = vec![task(
            "a",
            vec![
                Step::Log(Level::Info, "pw is hunter22"),
                Step::Output("token", "Bearer hunter22"),
                Step::Fail("rejected hunter22"),
            ],
        )];
        let execution = run_with(
            tasks,
            Vec::new(),
            Some("hunter22"),
            &recorder,
            &CancelToken::new(),
        )
        .await;
        let run = &execution.task_runs[0];
        assert_eq!(run.outputs["token"], "Bearer ******");
        assert_eq!(run.error.as_deref(), Some("rejected ******"));
        assert_eq!(execution.logs[0].message, "pw is ******");
        assert!(!format!("{execution:?}").contains("hunter22"));
        assert!(!recorder.events().concat().contains("hunter22"));
    }

    #[tokio::test]
    async fn a_short_secret_input_warns_by_key() {
        #[derive(Default)]
        struct Warnings(Mutex<Vec<String>>);
        impl Listener for Warnings {
            fn on_warning(&self, message: &str) {
                self.0.lock().unwrap().push(message.into());
            }
        }
        let warnings = Warnings::default();
        let tasks = vec![task("a", vec![Step::Log(Level::Info, "abc")])];
        let execution = run_with(
            tasks,
            Vec::new(),
            Some("abc"),
            &warnings,
            &CancelToken::new(),
        )
        .await;
        let warnings = warnings.0.lock().unwrap().clone();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("pw"), "{warnings:?}");
        assert!(!warnings[0].contains("abc"), "{warnings:?}");
        assert_eq!(execution.logs[0].message, "abc", "too short to mask");
    }

    #[test]
    fn kestras_falsy_texts_are_false() {
        for falsy in ["false", "0", "-0", "", "  ", " false\n"] {
            assert!(!is_truthy(falsy), "{falsy:?}");
        }
        for truthy in ["true", "1", "no", "False", "null"] {
            assert!(is_truthy(truthy), "{truthy:?}");
        }
    }

    #[test]
    fn outputs_inside_for_each_are_kept_by_value() {
        let mut outputs = Map::new();
        store_outputs(&mut outputs, "plain", &[], json!({"v": 1}));
        store_outputs(&mut outputs, "t", &["a".into()], json!({"v": 2}));
        store_outputs(&mut outputs, "t", &["b".into()], json!({"v": 3}));
        store_outputs(
            &mut outputs,
            "n",
            &["a".into(), "x".into()],
            json!({"v": 4}),
        );
        assert_eq!(
            Value::Object(outputs),
            json!({
                "plain": {"v": 1},
                "t": {"a": {"v": 2}, "b": {"v": 3}},
                "n": {"a": {"x": {"v": 4}}},
            })
        );
    }

    #[tokio::test]
    async fn together_starts_nothing_after_a_failure_and_sums_up_states() {
        let started = Arc::new(Mutex::new(Vec::new()));
        let branch = |name: &'static str, state: State| -> Branch<'static> {
            let started = Arc::clone(&started);
            Box::pin(async move {
                started.lock().unwrap().push(name);
                state
            })
        };
        let cancel = CancelToken::new();
        let branches = vec![
            branch("a", State::Warning),
            branch("b", State::Failed),
            branch("c", State::Success),
        ];
        assert_eq!(together(branches, 1, &cancel).await, State::Failed);
        assert_eq!(*started.lock().unwrap(), ["a", "b"]);

        let branches = vec![branch("d", State::Warning), branch("e", State::Skipped)];
        assert_eq!(together(branches, 0, &cancel).await, State::Warning);

        cancel.cancel();
        let branches = vec![branch("f", State::Success)];
        assert_eq!(together(branches, 0, &cancel).await, State::Killed);
        assert!(!started.lock().unwrap().contains(&"f"));
    }
}
