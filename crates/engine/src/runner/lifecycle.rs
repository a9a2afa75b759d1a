//! An execution from its start to its end, as Kestra runs one: `tasks`, then `errors` after a
//! failure, then `finally` whatever happened (the execution still RUNNING), then the flow's
//! outputs; its SLAs watched all along; and once its state is final, `afterExecution`, whose
//! task runs are listed but do not change that state. A failure under a retry with `behavior:
//! CREATE_NEW_EXECUTION` ends it RETRIED instead, and a new execution of the flow runs in its
//! place after the retry's delay, the chain bounded by the retry's attempts and duration.

use super::{Frame, PlannedTask, Run, Summary, plan};
use crate::{
    CancelToken, Engine, Execution, Host, Inputs, Listener, NewExecution, Origin, RetryChain, State,
};
use chrono::Utc;
use kestrel_flow::{Flow, Level, Retry, Sla, SlaBehavior, SlaKind, Task, TaskKind, java_duration};
use serde_json::Value;
use std::time::Duration;

/// The label every execution carries: the id of the execution that started the chain or the
/// tree of subflows it belongs to (its own, for an execution no other one started), as Kestra
/// sets it.
pub(crate) const CORRELATION_ID: &str = "system.correlationId";

/// Which execution of a chain of retries this is.
#[derive(Debug, Clone)]
pub(crate) struct Chain {
    /// Kestra's `attemptNumber`, from 1.
    number: u32,
    /// When the first execution of the chain started: `maxDuration` counts from it.
    first_start: tokio::time::Instant,
    /// The first execution's `system.correlationId` (its id, or its root's for a subflow's
    /// child), every execution's.
    correlation_id: String,
}

impl Chain {
    /// The chain an execution `id` with `labels` starts.
    pub(crate) fn first(labels: &[(String, String)], id: &str) -> Self {
        let correlation_id = labels
            .iter()
            .find(|(key, _)| key == CORRELATION_ID)
            .map_or(id, |(_, value)| value.as_str());
        Self {
            number: 1,
            first_start: tokio::time::Instant::now(),
            correlation_id: correlation_id.to_owned(),
        }
    }

    /// The chain a host's new execution continues.
    pub(crate) fn continued(chain: RetryChain) -> Self {
        let since_first = (Utc::now() - chain.first_started)
            .to_std()
            .unwrap_or_default();
        let now = tokio::time::Instant::now();
        Self {
            number: chain.number,
            first_start: now.checked_sub(since_first).unwrap_or(now),
            correlation_id: chain.correlation_id,
        }
    }

    /// The new execution that follows this one, `after` its end.
    fn next(&self, after: Duration) -> NewExecution {
        let since_first =
            chrono::Duration::from_std(self.first_start.elapsed()).unwrap_or_default();
        NewExecution {
            chain: RetryChain {
                number: self.number.saturating_add(1),
                first_started: Utc::now() - since_first,
                correlation_id: self.correlation_id.clone(),
            },
            after,
        }
    }
}

/// A flow's task lists, planned.
pub(crate) struct Plans {
    pub(crate) tasks: Vec<PlannedTask>,
    pub(crate) errors: Vec<PlannedTask>,
    pub(crate) finally: Vec<PlannedTask>,
    pub(crate) after_execution: Vec<PlannedTask>,
}

impl Plans {
    /// The plans of `flow`'s task lists; a task without a `retry` of its own takes the one of
    /// the closest flowable around it that has one, else the flow's (Kestra's order).
    pub(crate) fn of(flow: &Flow) -> Self {
        let planned = |tasks: &[Task]| plan(&with_retry(tasks, flow.retry.as_ref()));
        Self {
            tasks: planned(&flow.tasks),
            errors: planned(&flow.errors),
            finally: planned(&flow.finally),
            after_execution: planned(&flow.after_execution),
        }
    }
}

/// `tasks` with the retry they run under written in: their own, else `inherited`.
fn with_retry(tasks: &[Task], inherited: Option<&Value>) -> Vec<Task> {
    let mut tasks = tasks.to_vec();
    if inherited.is_some() || tasks.iter().any(|task| task.common.retry.is_some()) {
        give_retry(&mut tasks, inherited);
    }
    tasks
}

fn give_retry<'t>(tasks: impl IntoIterator<Item = &'t mut Task>, inherited: Option<&Value>) {
    for task in tasks {
        match &mut task.kind {
            // A flowable is not tried again itself: its children take its retry.
            TaskKind::Flowable(flowable) => {
                let retry = task.common.retry.as_ref().or(inherited);
                give_retry(flowable.children_mut(), retry);
            }
            _ => {
                if task.common.retry.is_none() {
                    task.common.retry = inherited.cloned();
                }
            }
        }
    }
}

/// How an SLA's violation ends the execution, if it does.
fn ending(behavior: SlaBehavior) -> Option<State> {
    match behavior {
        SlaBehavior::Fail => Some(State::Failed),
        SlaBehavior::Cancel => Some(State::Cancelled),
        SlaBehavior::None => None,
    }
}

impl<'a> Run<'a> {
    /// Runs an execution of `flow` to its end, and the new ones a retry with `behavior:
    /// CREATE_NEW_EXECUTION` starts in its place, each after the retry's delay (or until
    /// `cancel`); the last, ended. Each runs in `host`; the first alone waits for its resumes
    /// (one execution's own: the new ones have none).
    pub(crate) async fn chain(
        engine: &'a Engine,
        flow: &Flow,
        inputs: &Inputs,
        origin: Origin,
        listener: &'a dyn Listener,
        cancel: &CancelToken,
        host: Host<'a>,
    ) -> Execution {
        let plans = Plans::of(flow);
        let subflows = host.subflows;
        let mut run = Run::start(engine, flow, inputs, origin.clone(), listener).hosted(flow, host);
        loop {
            let (execution, again) = run.execute(flow, &plans, cancel).await;
            let Some(next) = again else {
                return execution;
            };
            tokio::select! {
                () = tokio::time::sleep(next.after) => {}
                () = cancel.cancelled() => return execution,
            }
            // A new execution: its own id.
            let origin = Origin {
                id: None,
                retry_chain: Some(next.chain),
                restarted: Vec::new(),
                ..origin.clone()
            };
            let host = Host {
                subflows,
                resumes: None,
            };
            run = Run::start(engine, flow, inputs, origin, listener).hosted(flow, host);
        }
    }

    /// Whether a failure under `retry` (`behavior: CREATE_NEW_EXECUTION`) leaves room for
    /// another execution of the chain, as Kestra counts: this execution's attempt number
    /// against `maxAttempt`, the time since the chain's first start and the delay against
    /// `maxDuration`. If so, the new execution is due after the delay (`unit` places a random
    /// one).
    pub(crate) fn new_execution_after(&self, retry: &Retry, unit: f64) -> bool {
        let delay = retry.delay(self.chain.number, unit);
        let allowed = retry.allows(self.chain.number, self.chain.first_start.elapsed(), delay);
        if allowed {
            self.lock().retry_in.get_or_insert(delay);
        }
        allowed
    }

    /// Runs the execution to its end (or until `cancel`) and returns it, ended, with the new
    /// execution to run in its place when it ended RETRIED.
    pub(crate) async fn execute(
        self,
        flow: &Flow,
        plans: &Plans,
        cancel: &CancelToken,
    ) -> (Execution, Option<NewExecution>) {
        self.set_state(State::Running);
        let mut violated = Vec::new();
        let mut state = match self.assertions(flow, &mut violated, cancel).await {
            Some(ended) => ended,
            None => self.watched(flow, plans, cancel).await,
        };
        let retry_in = self.lock().retry_in;
        if retry_in.is_some() && state != State::Killed {
            state = State::Retried;
        }
        if state.is_successful() {
            state = self.flow_outputs(flow, state).await;
        }
        if state.is_successful()
            && let Some(ended) = self.assertions(flow, &mut violated, cancel).await
        {
            state = ended;
        }
        // A paused execution has not ended: no `afterExecution` yet.
        if !matches!(state, State::Killed | State::Retried | State::Paused)
            && !plans.after_execution.is_empty()
        {
            // Its tasks see the final state as `execution.state`; readers are told it at the
            // end, so that nothing follows an ended execution.
            self.lock().execution.state = state;
            self.sequence(&plans.after_execution, &Frame::default(), cancel)
                .await;
        }
        self.mask_files().await;
        let next = retry_in
            .filter(|_| state == State::Retried)
            .map(|after| self.chain.next(after));
        (self.finish(state), next)
    }

    /// `tasks`, `errors` and `finally` under the flow's MAX_DURATION SLAs: the first violated
    /// one whose behavior ends the execution kills what still runs and decides its state.
    async fn watched(&self, flow: &Flow, plans: &Plans, cancel: &CancelToken) -> State {
        let stop = CancelToken::new();
        let body = self.body(plans, &stop);
        tokio::pin!(body);
        let mut deadlines: Vec<(&Sla, Duration)> = flow
            .sla
            .iter()
            .filter_map(|sla| match sla.kind {
                SlaKind::MaxDuration(duration) => Some((sla, duration)),
                SlaKind::ExecutionAssertion(_) => None,
            })
            .collect();
        deadlines.sort_by_key(|(_, duration)| *duration);
        let started = tokio::time::Instant::now();
        let mut ended = None;
        for (sla, duration) in deadlines {
            tokio::select! {
                state = &mut body => return state,
                () = cancel.cancelled() => {
                    stop.cancel();
                    return body.await;
                }
                () = tokio::time::sleep_until(started + duration) => {
                    let elapsed = java_duration(millis(started.elapsed()));
                    let limit = java_duration(duration);
                    let reason = format!(
                        "execution duration of {elapsed} exceed the maximum duration of {limit}."
                    );
                    ended = self.violated(sla, &reason);
                    if ended.is_some() {
                        stop.cancel();
                        break;
                    }
                }
            }
        }
        let state = tokio::select! {
            state = &mut body => state,
            () = cancel.cancelled() => {
                stop.cancel();
                body.await
            }
        };
        match (ended, state) {
            (Some(ended), _) => ended,
            (None, state) => state,
        }
    }

    /// `tasks`, then `errors` when one failed, then `finally` unless the execution was
    /// killed or stays paused; their state together. Nothing runs after `tasks` when a new execution is to
    /// run in this one's place.
    async fn body(&self, plans: &Plans, stop: &CancelToken) -> State {
        let root = Frame::default();
        let mut state = self.sequence(&plans.tasks, &root, stop).await;
        if self.lock().retry_in.is_some() {
            return state;
        }
        if state == State::Failed
            && self.sequence(&plans.errors, &root, stop).await == State::Killed
        {
            state = State::Killed;
        }
        if matches!(state, State::Killed | State::Paused) || plans.finally.is_empty() {
            return state;
        }
        let mut summary = Summary::default();
        summary.add(state);
        summary.add(self.sequence(&plans.finally, &root, stop).await);
        summary.state()
    }

    /// The flow's EXECUTION_ASSERTION SLAs not `violated` yet, each rendered now; as in
    /// Kestra, every violation is logged and the first one alone acts: its labels, and the
    /// state it ends the execution in, if its behavior ends it. A render that fails is logged
    /// and the SLA ignored. Each SLA is judged when the execution starts and when its tasks
    /// are done; one violated is not judged again.
    async fn assertions(
        &self,
        flow: &Flow,
        violated: &mut Vec<usize>,
        cancel: &CancelToken,
    ) -> Option<State> {
        let mut first = true;
        let mut ended = None;
        for (index, sla) in flow.sla.iter().enumerate() {
            let SlaKind::ExecutionAssertion(template) = &sla.kind else {
                continue;
            };
            if violated.contains(&index) {
                continue;
            }
            let ctx = self.output_context();
            match self.render(template, &ctx, cancel).await {
                Ok(text) if super::is_truthy(&text) => {}
                Ok(_) => {
                    violated.push(index);
                    let reason = format!("assertion is false: {template}.");
                    if first {
                        first = false;
                        ended = self.violated(sla, &reason);
                    } else {
                        self.log_violation(sla, &reason);
                    }
                }
                Err(super::Unrendered::Failed(error)) => self.execution_log(
                    Level::Error,
                    &format!("Ignoring SLA '{}' because of the error: {error}", sla.id),
                ),
                Err(super::Unrendered::Killed) => return Some(State::Killed),
            }
        }
        ended
    }

    /// Acts on a violated SLA as Kestra does: logs it, adds its labels the execution lacks,
    /// and gives the state it ends the execution in, if it does.
    fn violated(&self, sla: &Sla, reason: &str) -> Option<State> {
        self.log_violation(sla, reason);
        {
            let mut record = self.lock();
            let labels = &mut record.execution.labels;
            if !sla.labels.iter().all(|label| labels.contains(label)) {
                labels.extend(sla.labels.iter().cloned());
            }
        }
        let ended = ending(sla.behavior);
        if ended == Some(State::Failed) {
            self.execution_log(
                Level::Error,
                &format!(
                    "Execution failed due to SLA '{}' violated: {reason}",
                    sla.id
                ),
            );
        }
        ended
    }

    fn log_violation(&self, sla: &Sla, reason: &str) {
        self.execution_log(Level::Warn, &format!("SLA '{}' violated: {reason}", sla.id));
    }
}

/// `duration` to the millisecond, as Kestra truncates the duration it reports.
fn millis(duration: Duration) -> Duration {
    Duration::from_millis(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(yaml: &str) -> Flow {
        kestrel_flow::parse_flow(yaml).unwrap()
    }

    /// The retry each task of `tasks` (and of their children) runs under, by id.
    fn retries(tasks: &[Task]) -> Vec<(String, Option<Value>)> {
        let mut found = Vec::new();
        for task in tasks {
            found.push((task.id.clone(), task.common.retry.clone()));
            if let TaskKind::Flowable(flowable) = &task.kind {
                let children: Vec<Task> = flowable.children().cloned().collect();
                found.extend(retries(&children));
            }
        }
        found
    }

    #[test]
    fn tasks_take_their_own_retry_then_their_flowables_then_the_flows() {
        let flow = flow(concat!(
            "id: f\nnamespace: dev\n",
            "retry:\n  type: constant\n  interval: PT1S\n  maxAttempt: 4\n",
            "tasks:\n",
            "  - id: plain\n    type: io.kestra.plugin.core.debug.Return\n",
            "  - id: own\n    type: io.kestra.plugin.core.debug.Return\n",
            "    retry:\n      type: constant\n      interval: PT1S\n      maxAttempt: 2\n",
            "  - id: seq\n    type: io.kestra.plugin.core.flow.Sequential\n",
            "    retry:\n      type: constant\n      interval: PT1S\n      maxAttempt: 3\n",
            "    tasks:\n      - id: child\n        type: io.kestra.plugin.core.debug.Return\n",
        ));
        let given = with_retry(&flow.tasks, flow.retry.as_ref());
        let attempts: Vec<(String, Option<Value>)> = retries(&given)
            .into_iter()
            .map(|(id, retry)| (id, retry.map(|r| r["maxAttempt"].clone())))
            .collect();
        assert_eq!(
            attempts,
            [
                ("plain".to_owned(), Some(4.into())),
                ("own".to_owned(), Some(2.into())),
                ("seq".to_owned(), Some(3.into())),
                ("child".to_owned(), Some(3.into())),
            ]
        );
    }

    #[test]
    fn sla_behaviors_end_executions_as_kestras() {
        assert_eq!(ending(SlaBehavior::Fail), Some(State::Failed));
        assert_eq!(ending(SlaBehavior::Cancel), Some(State::Cancelled));
        assert_eq!(ending(SlaBehavior::None), None);
    }
}
