//! Kestra's restart: an execution that ended with failed task runs runs again in place, under
//! its own id. [`plan_restart`] says which task runs run again; the runner then keeps the
//! others as they ended, and runs the planned ones again under their ids, their attempts
//! continued.
//!
//! A kept task run's outputs are those readers saw, masked: the secrets the first run
//! registered are not registered again, so a kept value never carries one back in clear. A
//! later task reading a kept output that held a secret reads the mask.

use super::{Frame, OpenRun, PlannedTask, Run, store_outputs};
use crate::held::HeldRun;
use crate::{Metric, MetricValue, State, TaskRun};
use kestrel_flow::{Flow, FlowableKind, Task, TaskKind};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, PoisonError};

/// Why an execution with no failed task run cannot be restarted (Kestra's words).
pub const NOTHING_TO_RESTART: &str = "No task found to restart execution from!";

/// The task runs of an ended execution as a restart shows them before it runs, and as the
/// runner is given them ([`crate::Origin::restarted`]): each failed (or killed, or paused) task
/// run RESTARTED, the flowable task runs around it RUNNING, the others as they ended. Left out:
/// the task runs of `errors`, `finally` and `afterExecution` tasks (they run again when their
/// turn comes), and those under a WorkingDirectory that runs again (its files are gone, so it
/// runs whole, as in Kestra). Err ([`NOTHING_TO_RESTART`]) when no task run failed.
pub fn plan_restart(flow: &Flow, task_runs: Vec<TaskRun>) -> Result<Vec<TaskRun>, String> {
    let run_after_failure = tasks_run_after_failure(flow);
    let mut runs: Vec<TaskRun> = task_runs
        .into_iter()
        .filter(|run| !run_after_failure.contains(run.task_id.as_str()))
        .collect();
    let parents: HashMap<String, Option<String>> = runs
        .iter()
        .map(|run| (run.id.clone(), run.parent_task_run_id.clone()))
        .collect();
    let mut again: HashSet<String> = HashSet::new();
    for run in runs.iter().filter(|run| failed(run.state)) {
        let mut next = Some(run.id.clone());
        while let Some(id) = next {
            next = parents.get(&id).cloned().flatten();
            again.insert(id);
        }
    }
    if again.is_empty() {
        return Err(NOTHING_TO_RESTART.to_owned());
    }
    let kind = |task_id: &str| task_kind(flow, task_id);
    let whole: HashSet<String> = runs
        .iter()
        .filter(|run| again.contains(&run.id) && kind(&run.task_id) == Kind::WorkingDirectory)
        .map(|run| run.id.clone())
        .collect();
    runs.retain(|run| !has_ancestor_in(run, &whole, &parents));
    for run in runs.iter_mut().filter(|run| again.contains(&run.id)) {
        run.state = match kind(&run.task_id) {
            Kind::Flowable => State::Running,
            Kind::WorkingDirectory | Kind::Leaf => State::Restarted,
        };
        run.end = None;
    }
    Ok(runs)
}

/// Whether a task run with this end state runs again on a restart.
fn failed(state: State) -> bool {
    matches!(state, State::Failed | State::Killed | State::Paused)
}

/// What a task is, for a restart.
#[derive(PartialEq, Eq)]
pub(super) enum Kind {
    /// A flowable task whose children are restarted one by one.
    Flowable,
    /// A WorkingDirectory: it runs again whole.
    WorkingDirectory,
    /// A task that does something itself (or one the flow no longer has).
    Leaf,
}

pub(super) fn task_kind(flow: &Flow, task_id: &str) -> Kind {
    match flow
        .find_task(|task| task.id == task_id)
        .map(|task| &task.kind)
    {
        Some(TaskKind::Flowable(flowable)) => match flowable.kind {
            FlowableKind::WorkingDirectory(_) => Kind::WorkingDirectory,
            _ => Kind::Flowable,
        },
        _ => Kind::Leaf,
    }
}

/// Whether an enclosing task run of `run` is in `set`.
pub(super) fn has_ancestor_in(
    run: &TaskRun,
    set: &HashSet<String>,
    parents: &HashMap<String, Option<String>>,
) -> bool {
    let mut next = run.parent_task_run_id.clone();
    while let Some(id) = next {
        if set.contains(&id) {
            return true;
        }
        next = parents.get(&id).cloned().flatten();
    }
    false
}

/// The ids of the tasks that run after a failure or at the end: `errors` (the flow's and every
/// flowable's), `finally` and `afterExecution`, with their children.
fn tasks_run_after_failure(flow: &Flow) -> HashSet<&str> {
    let mut pending: Vec<&Task> = flow
        .errors
        .iter()
        .chain(&flow.finally)
        .chain(&flow.after_execution)
        .collect();
    let mut walk: Vec<&Task> = flow.tasks.iter().collect();
    while let Some(task) = walk.pop() {
        if let TaskKind::Flowable(flowable) = &task.kind {
            pending.extend(&flowable.errors);
            walk.extend(flowable.children());
        }
    }
    let mut ids = HashSet::new();
    while let Some(task) = pending.pop() {
        ids.insert(task.id.as_str());
        if let TaskKind::Flowable(flowable) = &task.kind {
            pending.extend(flowable.children());
        }
    }
    ids
}

/// The task runs a restarted execution was given, each taken once, when the runner reaches
/// its task at its place (the same task, under the same enclosing task run, for the same
/// ForEach value).
pub(crate) struct Prior {
    runs: Mutex<Vec<Option<TaskRun>>>,
    at: HashMap<(String, Option<String>, Option<String>), usize>,
    children: HashMap<String, Vec<usize>>,
}

impl Prior {
    /// The index of `runs`; none when there are none (an execution that starts afresh).
    pub(crate) fn new(runs: Vec<TaskRun>) -> Option<Self> {
        if runs.is_empty() {
            return None;
        }
        let mut at = HashMap::new();
        let mut children: HashMap<String, Vec<usize>> = HashMap::new();
        for (index, run) in runs.iter().enumerate() {
            let place = (
                run.task_id.clone(),
                run.parent_task_run_id.clone(),
                run.value.clone(),
            );
            at.insert(place, index);
            if let Some(parent) = &run.parent_task_run_id {
                children.entry(parent.clone()).or_default().push(index);
            }
        }
        Some(Self {
            runs: Mutex::new(runs.into_iter().map(Some).collect()),
            at,
            children,
        })
    }

    /// The task run of `task_id` in `frame`, if the execution had one there not taken yet.
    fn take(&self, task_id: &str, frame: &Frame) -> Option<TaskRun> {
        let place = (
            task_id.to_owned(),
            frame.parent_id.clone(),
            frame.value.clone(),
        );
        let index = *self.at.get(&place)?;
        self.lock().get_mut(index)?.take()
    }

    /// The task runs under `id`, at any depth, taken, in the order they ran.
    fn take_descendants(&self, id: &str) -> Vec<TaskRun> {
        let mut indexes = Vec::new();
        let mut pending = vec![id.to_owned()];
        while let Some(parent) = pending.pop() {
            for &index in self.children.get(&parent).into_iter().flatten() {
                indexes.push(index);
                if let Some(Some(run)) = self.lock().get(index) {
                    pending.push(run.id.clone());
                }
            }
        }
        indexes.sort_unstable();
        let mut runs = self.lock();
        indexes
            .into_iter()
            .filter_map(|index| runs.get_mut(index)?.take())
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Option<TaskRun>>> {
        // Each change is one `take`: a panic cannot leave the list half-changed.
        self.runs.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What a restarted execution does with a task it reaches.
pub(crate) enum Again {
    /// The task run runs again, under its id.
    Runs(Box<OpenRun>),
    /// The task run (and those under it) ended as it is kept: its state.
    Kept(State),
}

impl Run<'_> {
    /// For a restarted execution, what becomes of `planned`'s task run in `frame`: none when
    /// the execution had none there (it runs as new).
    pub(crate) fn again(&self, planned: &PlannedTask, frame: &Frame) -> Option<Again> {
        let prior = self.prior.as_ref()?.take(&planned.id, frame)?;
        if matches!(prior.state, State::Restarted | State::Running) {
            return Some(Again::Runs(Box::new(self.reopen(planned, prior))));
        }
        Some(Again::Kept(self.keep(prior, frame)))
    }

    /// Lists `prior` again, to run under its id with its attempts so far.
    fn reopen(&self, planned: &PlannedTask, prior: TaskRun) -> OpenRun {
        let mut run = held(prior);
        run.state = State::Created;
        run.error = None;
        let mut open = self.list(planned, run);
        open.restarted = true;
        open
    }

    /// Lists `prior` and the task runs under it as they ended, their outputs kept for later
    /// expressions; `prior`'s state.
    fn keep(&self, prior: TaskRun, frame: &Frame) -> State {
        let state = prior.state;
        let under = self
            .prior
            .as_ref()
            .map(|all| all.take_descendants(&prior.id))
            .unwrap_or_default();
        let mut values: HashMap<String, (Vec<String>, Option<String>)> = HashMap::new();
        values.insert(
            prior.id.clone(),
            (frame.values.clone(), frame.value.clone()),
        );
        for run in std::iter::once(prior).chain(under) {
            let place = run
                .parent_task_run_id
                .as_ref()
                .and_then(|parent| values.get(parent))
                .map(|(path, value)| extended(path, value.as_ref(), run.value.as_ref()))
                .or_else(|| values.get(&run.id).map(|(path, _)| path.clone()))
                .unwrap_or_default();
            values.insert(run.id.clone(), (place.clone(), run.value.clone()));
            let held = held(run);
            store_outputs(
                &mut self.lock().outputs,
                &held.task_id,
                &place,
                Value::Object(held.outputs.clone()),
            );
            self.listener.on_task_state(&self.edge().task_run(&held));
            self.lock().execution.task_runs.push(held);
        }
        state
    }
}

/// The ForEach values a task run's outputs are kept under: its parent's, and its own value
/// when it differs from its parent's (it runs in an iteration of a ForEach under the parent).
fn extended(path: &[String], parents: Option<&String>, own: Option<&String>) -> Vec<String> {
    let mut path = path.to_vec();
    if let Some(own) = own
        && parents != Some(own)
    {
        path.push(own.clone());
    }
    path
}

/// A kept task run as the runner holds one: its values are those readers saw.
fn held(run: TaskRun) -> HeldRun {
    let metrics = run
        .metrics
        .into_iter()
        .filter_map(|metric| match metric.value {
            MetricValue::Number(value) => Some(Metric {
                name: metric.name,
                kind: metric.kind,
                value,
                tags: metric.tags,
            }),
            MetricValue::Masked => None,
        })
        .collect();
    HeldRun {
        id: run.id,
        task_id: run.task_id,
        task_type: run.task_type,
        state: run.state,
        outputs: run.outputs,
        error: run.error,
        metrics,
        start: run.start,
        end: run.end,
        attempts: run.attempts,
        parent_task_run_id: run.parent_task_run_id,
        value: run.value,
    }
}
