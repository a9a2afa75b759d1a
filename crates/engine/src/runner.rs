//! One execution, step by step: states, task runs, the render context, and masking on the
//! way out.

use crate::id::new_id;
use crate::task::ContextParts;
use crate::tasks::task_for;
use crate::{CancelToken, Engine, Execution, Inputs, Listener, State, Task, TaskContext, TaskRun};
use chrono::{SecondsFormat, Utc};
use kestrel_expr::Context;
use kestrel_flow::{Flow, Level, TaskCommon};
use kestrel_secrets::{MaskRegistry, SecretScope};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::Duration;

/// A flow task ready to run: what the flow says about it and what runs it.
pub(crate) struct PlannedTask {
    pub(crate) id: String,
    pub(crate) type_name: String,
    pub(crate) common: TaskCommon,
    pub(crate) task: Box<dyn Task>,
}

/// The tasks to run, in order; `disabled` ones are left out (they get no task run).
pub(crate) fn plan(tasks: &[kestrel_flow::Task]) -> Vec<PlannedTask> {
    tasks
        .iter()
        .filter(|task| !task.common.disabled)
        .map(|task| PlannedTask {
            id: task.id.clone(),
            type_name: task.type_name.clone(),
            common: task.common.clone(),
            task: task_for(&task.kind),
        })
        .collect()
}

/// The state of one execution while it runs.
pub(crate) struct Run<'a> {
    engine: &'a Engine,
    listener: &'a dyn Listener,
    cancel: &'a CancelToken,
    registry: Arc<MaskRegistry>,
    scope: Arc<SecretScope>,
    /// What every task's render sees, but `task` and `outputs`.
    base_vars: Map<String, Value>,
    /// Real output values, by task id: only expressions see them.
    outputs: Map<String, Value>,
    execution: Execution,
}

impl<'a> Run<'a> {
    /// A new execution of `flow`, CREATED, with its SECRET inputs registered for masking.
    pub(crate) fn start(
        engine: &'a Engine,
        flow: &Flow,
        inputs: &Inputs,
        listener: &'a dyn Listener,
        cancel: &'a CancelToken,
    ) -> Self {
        let registry = Arc::new(MaskRegistry::new(engine.config.mask_min_length));
        for (id, value) in inputs.secrets() {
            registry.register(id, value.expose_secret());
        }
        let id = new_id();
        let scope = Arc::new(SecretScope::new(
            engine.resolver_for(&id),
            &engine.config.tenant,
            &flow.namespace,
            Arc::clone(&registry),
        ));
        let start = Utc::now();
        let execution = Execution {
            id,
            namespace: flow.namespace.clone(),
            flow_id: flow.id.clone(),
            state: State::Created,
            task_runs: Vec::new(),
            logs: Vec::new(),
            start,
            duration: Duration::ZERO,
        };
        let base_vars = base_vars(engine, flow, inputs, &execution);
        let run = Self {
            engine,
            listener,
            cancel,
            registry,
            scope,
            base_vars,
            outputs: Map::new(),
            execution,
        };
        run.flush_warnings();
        run.listener.on_execution_state(&run.execution);
        run
    }

    /// Runs `tasks`, then `errors` if a task failed, and returns the ended execution.
    pub(crate) async fn execute(
        mut self,
        tasks: &[PlannedTask],
        errors: &[PlannedTask],
    ) -> Execution {
        self.set_state(State::Running);
        let mut state = self.run_all(tasks).await;
        if state == State::Failed && self.run_all(errors).await == State::Killed {
            state = State::Killed;
        }
        self.finish(state)
    }

    /// Runs tasks in order until one fails or the execution is cancelled; the execution's
    /// state so far: SUCCESS, WARNING, FAILED or KILLED.
    async fn run_all(&mut self, tasks: &[PlannedTask]) -> State {
        let mut state = State::Success;
        for task in tasks {
            if self.cancel.is_cancelled() {
                return State::Killed;
            }
            match self.run_task(task).await {
                ended @ (State::Failed | State::Killed) => return ended,
                State::Warning => state = State::Warning,
                _ => {}
            }
        }
        state
    }

    /// Runs one task run to its end and records it; its final state.
    async fn run_task(&mut self, planned: &PlannedTask) -> State {
        let mut task_run = TaskRun {
            id: new_id(),
            task_id: planned.id.clone(),
            task_type: planned.type_name.clone(),
            state: State::Created,
            outputs: Map::new(),
            error: None,
            start: Utc::now(),
            end: None,
        };
        self.listener.on_task_state(&task_run);
        task_run.state = State::Running;
        self.listener.on_task_state(&task_run);

        let mut ctx = TaskContext::new(ContextParts {
            expressions: &self.engine.expressions,
            render: Context::new(self.render_vars(planned), Some(Arc::clone(&self.scope))),
            registry: &self.registry,
            listener: self.listener,
            task_id: &planned.id,
            task_run_id: &task_run.id,
            min_level: planned.common.log_level,
        });
        let result = tokio::select! {
            result = planned.task.run(&mut ctx) => Some(result),
            () = self.cancel.cancelled() => None,
        };
        let state = match result {
            Some(Ok(())) => State::Success,
            None => State::Killed,
            Some(Err(error)) => {
                let message = self.registry.mask(&error.to_string()).into_owned();
                ctx.push_log(Level::Error, &message);
                task_run.error = Some(message);
                if planned.common.allow_failure {
                    State::Warning
                } else {
                    State::Failed
                }
            }
        };
        let (logs, outputs) = ctx.finish();
        task_run.outputs = outputs.clone();
        self.outputs
            .insert(planned.id.clone(), Value::Object(outputs));
        task_run.remask(&self.registry);
        task_run.state = state;
        task_run.end = Some(Utc::now());
        self.flush_warnings();
        self.listener.on_task_state(&task_run);
        self.execution.logs.extend(logs);
        self.execution.task_runs.push(task_run);
        state
    }

    /// The render context of one task run: the execution's, plus `task` and the real
    /// `outputs` of the tasks before it.
    fn render_vars(&self, planned: &PlannedTask) -> Value {
        let mut vars = self.base_vars.clone();
        vars.insert(
            "task".into(),
            json!({"id": planned.id, "type": planned.type_name}),
        );
        vars.insert("outputs".into(), Value::Object(self.outputs.clone()));
        Value::Object(vars)
    }

    fn set_state(&mut self, state: State) {
        self.execution.state = state;
        self.listener.on_execution_state(&self.execution);
    }

    /// Ends the execution in `state`, masked once more with everything it registered.
    fn finish(mut self, state: State) -> Execution {
        self.execution.remask(&self.registry);
        self.execution.duration = (Utc::now() - self.execution.start)
            .to_std()
            .unwrap_or_default();
        self.set_state(state);
        self.flush_warnings();
        self.execution
    }

    /// Hands the registry's warnings (values too short to mask, by key) to the listener.
    fn flush_warnings(&self) {
        for warning in self.registry.take_warnings() {
            self.listener.on_warning(&warning);
        }
    }
}

/// What every task run of the execution sees: `flow`, `execution`, `inputs`, `labels`, `vars`
/// (unrendered) and `envs`.
fn base_vars(
    engine: &Engine,
    flow: &Flow,
    inputs: &Inputs,
    execution: &Execution,
) -> Map<String, Value> {
    let labels: Map<String, Value> = flow
        .labels
        .iter()
        .map(|(key, value)| (key.clone(), Value::String(value.clone())))
        .collect();
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
    vars.insert("inputs".into(), Value::Object(inputs.values().clone()));
    vars.insert("labels".into(), Value::Object(labels));
    vars.insert("vars".into(), Value::Object(flow.variables.clone()));
    vars.insert("envs".into(), json!(engine.envs));
    vars
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EngineConfig, TaskError, listener::NoListener};
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
            task: Box::new(Script(steps)),
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
            Arc::new(Resolver::new(Vec::new())),
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
        fn on_log(&self, entry: &crate::LogEntry) {
            self.push(format!(
                "log {} {} {}",
                entry.task_id, entry.level, entry.message
            ));
        }
        fn on_task_state(&self, run: &TaskRun) {
            let outputs = Value::Object(run.outputs.clone());
            self.push(format!("task {} {} {outputs}", run.task_id, run.state));
        }
        fn on_execution_state(&self, execution: &Execution) {
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
        Run::start(&engine, &flow, &inputs, listener, cancel)
            .execute(&tasks, &errors)
            .await
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
}
