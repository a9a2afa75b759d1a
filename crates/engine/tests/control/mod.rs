//! Running flows through a real engine for the control-flow tests: a flow from YAML, its
//! inputs, a listener recording every task state, and views of the execution's task runs.

#![allow(dead_code, unreachable_pub)] // Each test file uses its own part of these helpers.
#![allow(clippy::unwrap_used)] // Test code: a failure is a failed test.

use kestrel_engine::{
    CancelToken, Engine, EngineConfig, Execution, Inputs, Listener, NoListener, Origin, Shown,
    Sources, State, TaskRun,
};
use kestrel_secrets::SecretValue;
use std::sync::Mutex;

/// The fixed mask.
pub const MASK: &str = "******";

/// An engine without secrets.
pub fn engine() -> Engine {
    {
        let (sources, _) =
            Sources::environment(&EngineConfig::default(), Vec::new(), None).expect("an engine");
        Engine::with_sources(EngineConfig::default(), sources)
    }
}

/// A flow `f` in namespace `dev` with `tasks` (YAML list items, indented by two) and `rest`
/// (more flow properties, after the tasks).
pub fn flow(tasks: &str, rest: &str) -> String {
    format!("id: f\nnamespace: dev\ntasks:\n{tasks}{rest}")
}

/// Runs the flow `yaml` with `inputs` (id, text) to its end.
pub fn run(yaml: &str, inputs: &[(&str, &str)]) -> Execution {
    run_with(yaml, inputs, &NoListener, &CancelToken::new())
}

/// Runs the flow `yaml` with `inputs`, telling `listener`, until it ends or `cancel`.
pub fn run_with(
    yaml: &str,
    inputs: &[(&str, &str)],
    listener: &dyn Listener,
    cancel: &CancelToken,
) -> Execution {
    let flow = kestrel_flow::parse_flow(yaml).unwrap_or_else(|found| panic!("{found:?}"));
    let raw = inputs
        .iter()
        .map(|(id, text)| (id.to_string(), SecretValue::new(text.to_string())));
    let inputs = Inputs::parse(&flow.inputs, raw).expect("inputs");
    runtime().block_on(engine().run(&flow, inputs, Origin::by("test"), listener, cancel))
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

/// `(task id, state)` of each task run, in the order they started.
pub fn states(execution: &Execution) -> Vec<(String, State)> {
    execution
        .task_runs
        .iter()
        .map(|run| (run.task_id.clone(), run.state))
        .collect()
}

/// The task run of `task_id` (the first one, for tasks inside a ForEach).
pub fn task_run<'e>(execution: &'e Execution, task_id: &str) -> &'e TaskRun {
    execution
        .task_runs
        .iter()
        .find(|run| run.task_id == task_id)
        .unwrap_or_else(|| panic!("no task run of {task_id}: {:?}", states(execution)))
}

/// The messages logged by `task_id`, in order.
pub fn messages(execution: &Execution, task_id: &str) -> Vec<String> {
    execution
        .logs
        .iter()
        .filter(|entry| entry.task_id == task_id)
        .map(|entry| entry.message.clone())
        .collect()
}

/// The most task runs of `task_ids` that were running at the same moment, from their start
/// and end times: how much they overlapped.
pub fn most_at_once(execution: &Execution, task_ids: &[&str]) -> usize {
    let mut edges = Vec::new();
    for run in execution
        .task_runs
        .iter()
        .filter(|run| task_ids.contains(&run.task_id.as_str()))
    {
        let end = run.end.expect("an ended task run");
        // Ends sort before starts at the same instant: touching is not overlapping.
        edges.push((run.start, 1i32));
        edges.push((end, -1));
    }
    edges.sort_by_key(|(at, delta)| (*at, *delta));
    let mut now = 0i32;
    let mut most = 0i32;
    for (_, delta) in edges {
        now += delta;
        most = most.max(now);
    }
    usize::try_from(most).unwrap_or(0)
}

/// Every task state change, as `task STATE`.
#[derive(Default)]
pub struct TaskStates(Mutex<Vec<String>>);

impl TaskStates {
    pub fn of(&self, task_id: &str) -> Vec<String> {
        let prefix = format!("{task_id} ");
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter_map(|event| event.strip_prefix(&prefix).map(str::to_owned))
            .collect()
    }

    pub fn all(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

impl Listener for TaskStates {
    fn on_task_state(&self, run: &Shown<TaskRun>) {
        let event = format!("{} {}", run.task_id, run.state);
        self.0.lock().unwrap().push(event);
    }
}
