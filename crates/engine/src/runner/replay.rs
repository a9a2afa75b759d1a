//! Kestra's replay: a new execution of an ended one, run again from one of its task runs.
//! [`plan_replay`] says which task runs the new execution starts with; the runner then treats
//! them as a restart's ([`crate::Origin::restarted`]): those kept are not run again, the one
//! replayed and the flowable task runs around it run again, and every task after it runs as
//! new.

use super::restart::{Kind, has_ancestor_in, task_kind};
use crate::{State, TaskRun};
use kestrel_flow::{Flow, Task, TaskKind};
use std::collections::{HashMap, HashSet};

/// The task runs of a replay of an execution from its task run `from` (from the start when
/// `None`: none), under new ids. Kept as they ended: the task runs of the tasks the flow
/// declares before `from`'s (outside it). `from`'s own task run is RESTARTED, the task runs
/// around it RUNNING, and the rest left out, to run as new. A task run inside a
/// WorkingDirectory replays the whole WorkingDirectory (its files are gone).
/// Err when the execution has no task run `from`.
pub fn plan_replay(
    flow: &Flow,
    task_runs: Vec<TaskRun>,
    from: Option<&str>,
) -> Result<Vec<TaskRun>, String> {
    let Some(from) = from else {
        return Ok(Vec::new());
    };
    let parents: HashMap<String, Option<String>> = task_runs
        .iter()
        .map(|run| (run.id.clone(), run.parent_task_run_id.clone()))
        .collect();
    let task_of: HashMap<&str, &str> = task_runs
        .iter()
        .map(|run| (run.id.as_str(), run.task_id.as_str()))
        .collect();
    if !task_of.contains_key(from) {
        return Err(format!("The execution has no task run '{from}'"));
    }
    let chain = enclosing(from, &parents);
    let target = chain
        .iter()
        .rev()
        .find(|id| task_kind(flow, task_of[id.as_str()]) == Kind::WorkingDirectory)
        .cloned()
        .unwrap_or_else(|| from.to_owned());
    let around: HashSet<String> = enclosing(&target, &parents).into_iter().skip(1).collect();
    let order = declared_order(flow);
    let rank = |task_id: &str| order.get(task_id).copied();
    let target_rank = rank(task_of[target.as_str()]);
    let inside = HashSet::from([target.clone()]);
    let mut kept: Vec<TaskRun> = task_runs
        .into_iter()
        .filter_map(|mut run| {
            if run.id == target || around.contains(&run.id) {
                run.state = if run.id == target {
                    State::Restarted
                } else {
                    State::Running
                };
                run.end = None;
                return Some(run);
            }
            let before = matches!((rank(&run.task_id), target_rank), (Some(a), Some(b)) if a < b);
            (before && !has_ancestor_in(&run, &inside, &parents)).then_some(run)
        })
        .collect();
    renumber(&mut kept);
    Ok(kept)
}

/// `id` and the task runs enclosing it, closest first.
fn enclosing(id: &str, parents: &HashMap<String, Option<String>>) -> Vec<String> {
    let mut chain = vec![id.to_owned()];
    while let Some(Some(parent)) = chain.last().and_then(|last| parents.get(last)) {
        chain.push(parent.clone());
    }
    chain
}

/// Each task's place in the flow as written: its tasks depth first (a flowable's children,
/// then its `errors`), then `errors`, `finally` and `afterExecution`.
fn declared_order(flow: &Flow) -> HashMap<&str, usize> {
    let mut order = HashMap::new();
    let mut pending: Vec<&Task> = flow
        .tasks
        .iter()
        .chain(&flow.errors)
        .chain(&flow.finally)
        .chain(&flow.after_execution)
        .rev()
        .collect();
    while let Some(task) = pending.pop() {
        let next = order.len();
        order.insert(task.id.as_str(), next);
        if let TaskKind::Flowable(flowable) = &task.kind {
            let below: Vec<&Task> = flowable.children().chain(&flowable.errors).collect();
            pending.extend(below.into_iter().rev());
        }
    }
    order
}

/// New ids for task runs of a new execution, their parents' ids following.
fn renumber(runs: &mut [TaskRun]) {
    let new_ids: HashMap<String, String> = runs
        .iter()
        .map(|run| (run.id.clone(), crate::new_id()))
        .collect();
    for run in runs {
        run.id = new_ids[&run.id].clone();
        run.parent_task_run_id = run
            .parent_task_run_id
            .as_ref()
            .and_then(|parent| new_ids.get(parent).cloned());
    }
}
