//! A Dag's task runs: each task starts once every task it depends on ended well (SUCCESS,
//! WARNING or SKIPPED), at most `concurrent` at once; none starts after one failed, was killed
//! or stayed paused.

use crate::runner::{Frame, PlannedTask, Run, Summary, plan};
use crate::{CancelToken, State};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use std::future::Future;
use std::pin::Pin;

/// A Dag ready to run: each task (none for a disabled one, which counts as ended well), what
/// it depends on, and how many run at once (0: no limit).
pub(crate) struct PlannedDag {
    tasks: Vec<Option<PlannedTask>>,
    depends_on: Vec<Vec<usize>>,
    concurrent: usize,
}

pub(crate) fn plan_dag(
    tasks: &[kestrel_flow::Task],
    depends_on: &[Vec<usize>],
    concurrent: usize,
) -> PlannedDag {
    PlannedDag {
        tasks: tasks
            .iter()
            .map(|task| plan(std::slice::from_ref(task)).pop())
            .collect(),
        depends_on: depends_on.to_vec(),
        concurrent,
    }
}

/// A running task of the Dag: its index, then its final state.
type Running<'f> = Pin<Box<dyn Future<Output = (usize, State)> + Send + 'f>>;

impl Run<'_> {
    /// Runs a Dag's tasks in dependency order; their state together. Validation refused
    /// cycles, so every task starts once those before it ended well; each starts once.
    pub(crate) async fn dag(&self, dag: &PlannedDag, frame: &Frame, cancel: &CancelToken) -> State {
        let count = dag.tasks.len();
        let mut ended_well = vec![false; count];
        let mut started = vec![false; count];
        let mut running: FuturesUnordered<Running<'_>> = FuturesUnordered::new();
        let mut summary = Summary::default();
        loop {
            let mut progressed = true;
            while progressed && !summary.stops() {
                progressed = false;
                for index in 0..count {
                    let ready =
                        !started[index] && dag.depends_on[index].iter().all(|&dep| ended_well[dep]);
                    let room = dag.concurrent == 0 || running.len() < dag.concurrent;
                    if !ready || !room {
                        continue;
                    }
                    if cancel.is_cancelled() {
                        summary.add(State::Killed);
                        break;
                    }
                    started[index] = true;
                    match &dag.tasks[index] {
                        None => {
                            ended_well[index] = true;
                            progressed = true;
                        }
                        Some(task) => {
                            let branch = self.run_task(task, frame, cancel);
                            running.push(Box::pin(async move { (index, branch.await) }));
                        }
                    }
                }
            }
            match running.next().await {
                Some((index, state)) => {
                    ended_well[index] =
                        matches!(state, State::Success | State::Warning | State::Skipped);
                    summary.add(state);
                }
                None => break,
            }
        }
        summary.state()
    }
}
