//! A task run of a task that does something itself: `runIf`, then attempts under `timeout`
//! until one succeeds or `retry` gives up, RETRYING in between.

use crate::runner::{Again, Frame, OpenRun, PlannedTask, Run, Unrendered};
use crate::task::ContextParts;
use crate::{CancelToken, State, Task, TaskContext};
use kestrel_flow::Level;
use serde_json::{Map, Value};
use std::time::{Duration, Instant};

/// How one attempt ended.
enum Outcome {
    Success,
    /// It succeeded, asking to end in WARNING.
    Warning,
    Failed(String),
    Killed,
}

impl Run<'_> {
    /// Runs a task run of `task` to its end: SKIPPED when `runIf` is false, else its attempts;
    /// its final state.
    pub(crate) async fn run_leaf(
        &self,
        planned: &PlannedTask,
        task: &dyn Task,
        frame: &Frame,
        cancel: &CancelToken,
    ) -> State {
        let mut open = match self.open_unless_skipped(planned, frame, cancel).await {
            Ok(open) => open,
            Err(state) => return state,
        };
        let first_start = Instant::now();
        // A restarted task run's attempts go on from those it had; its retry counts anew.
        let earlier = u32::try_from(open.run.attempts.len()).unwrap_or(u32::MAX);
        let mut number = 1;
        loop {
            self.begin_attempt(&mut open);
            let (outcome, outputs) = self
                .attempt(planned, task, &mut open, frame, earlier + number, cancel)
                .await;
            let state = match outcome {
                Outcome::Success if number > 1 && warns_on_retry(planned) => State::Warning,
                Outcome::Success => State::Success,
                Outcome::Warning => State::Warning,
                Outcome::Killed => State::Killed,
                Outcome::Failed(_) => State::Failed,
            };
            Run::end_attempt(&mut open, state);
            let Outcome::Failed(_) = outcome else {
                open.run.error = None;
                return self.close(open, state, outputs, frame);
            };
            if let Some(retry) = planned.retry.as_ref().filter(|retry| retry.new_execution) {
                let state = if self.new_execution_after(retry, random_unit()) {
                    State::Retried
                } else {
                    failed(planned)
                };
                return self.close(open, state, outputs, frame);
            }
            let retry = planned.retry.as_ref().and_then(|retry| {
                let delay = retry.delay(number, random_unit());
                retry
                    .allows(number, first_start.elapsed(), delay)
                    .then_some(delay)
            });
            let Some(delay) = retry else {
                return self.close(open, failed(planned), outputs, frame);
            };
            open.run.state = State::Retrying;
            self.update(&mut open);
            tokio::select! {
                () = tokio::time::sleep(delay) => number += 1,
                () = cancel.cancelled() => return self.close(open, State::Killed, outputs, frame),
            }
        }
    }

    /// Opens a task run of `planned` and decides its `runIf`: the run to go on with, or its
    /// final state when it ends there (SKIPPED; failed when the condition does not render;
    /// KILLED when `cancel` fires while it renders).
    pub(crate) async fn open_unless_skipped(
        &self,
        planned: &PlannedTask,
        frame: &Frame,
        cancel: &CancelToken,
    ) -> Result<OpenRun, State> {
        match self.again(planned, frame) {
            Some(Again::Runs(open)) => return Ok(*open),
            Some(Again::Kept(state)) => return Err(state),
            None => {}
        }
        let mut open = self.open(planned, frame);
        match self.run_if(planned, &open, frame, cancel).await {
            Ok(true) => Ok(open),
            Ok(false) => Err(self.close(open, State::Skipped, Map::new(), frame)),
            Err(Unrendered::Killed) => Err(self.close(open, State::Killed, Map::new(), frame)),
            Err(Unrendered::Failed(error)) => {
                self.fail_with(&mut open, &error);
                Err(self.close(open, failed(planned), Map::new(), frame))
            }
        }
    }

    /// Runs attempt `number` of the task run: its outcome and the outputs it set. Its log
    /// entries (and the ERROR entry of a failure) are kept; a failure's message becomes the
    /// task run's error.
    async fn attempt(
        &self,
        planned: &PlannedTask,
        task: &dyn Task,
        open: &mut OpenRun,
        frame: &Frame,
        number: u32,
        cancel: &CancelToken,
    ) -> (Outcome, Map<String, Value>) {
        let mut ctx = TaskContext::new(ContextParts {
            engine: self.engine,
            expressions: &self.engine.expressions,
            render: self.context(open, frame),
            registry: &self.registry,
            listener: self.listener,
            task_id: &planned.id,
            task_run_id: &open.run.id,
            task_run_value: open.run.value.as_deref(),
            min_level: planned.common.log_level,
            files: self.files.as_ref(),
            working_dir: frame.working_dir.clone(),
            logs: self,
            subflows: self.subflows(),
        })
        .with_attempt(number);
        let limit = planned.common.timeout_duration();
        let outcome = tokio::select! {
            result = within(limit, task.run(&mut ctx)) => match result {
                Ok(()) if ctx.warned() => Outcome::Warning,
                Ok(()) => Outcome::Success,
                Err(error) => Outcome::Failed(error),
            },
            () = cancel.cancelled() => Outcome::Killed,
        };
        if let Outcome::Failed(message) = &outcome {
            ctx.push_log(Level::Error, message);
            open.run.error = Some(message.clone());
        }
        open.run.metrics = ctx.take_metrics();
        if matches!(outcome, Outcome::Success | Outcome::Warning) {
            self.add_labels(ctx.take_labels());
        }
        if planned.common.log_to_file {
            let file = ctx.store_log_file().await;
            if let Some(attempt) = open.run.attempts.last_mut() {
                attempt.log_file = file;
            }
        }
        let (logs, outputs) = ctx.finish();
        self.keep_logs(logs);
        (outcome, outputs)
    }
}

/// Runs `work` for at most `limit`; past it, fails with Kestra's message.
async fn within<E: ToString>(
    limit: Option<Duration>,
    work: impl Future<Output = Result<(), E>>,
) -> Result<(), String> {
    let Some(limit) = limit else {
        return work.await.map_err(|error| error.to_string());
    };
    match tokio::time::timeout(limit, work).await {
        Ok(result) => result.map_err(|error| error.to_string()),
        Err(_) => Err(timeout_message(limit)),
    }
}

/// `Timeout after HH:MM:SS.mmm`, as Kestra words a task run that ran out of time.
pub(crate) fn timeout_message(limit: Duration) -> String {
    let millis = limit.as_millis();
    let seconds = millis / 1000;
    format!(
        "Timeout after {:02}:{:02}:{:02}.{:03}",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60,
        millis % 1000
    )
}

/// The state of a failure: WARNING under `allowFailure`.
pub(crate) fn failed(planned: &PlannedTask) -> State {
    if planned.common.allow_failure {
        State::Warning
    } else {
        State::Failed
    }
}

fn warns_on_retry(planned: &PlannedTask) -> bool {
    planned
        .retry
        .as_ref()
        .is_some_and(|retry| retry.warning_on_retry)
}

/// A number in `[0, 1)` for random retry delays, from a fresh UUID's random bits.
fn random_unit() -> f64 {
    // The low 53 bits of a UUID v4 are all random (its fixed bits are higher up); over 2^53,
    // exactly representable and below 1.
    let bits = uuid::Uuid::new_v4().as_u128() & ((1u128 << 53) - 1);
    (bits as f64) / ((1u64 << 53) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_are_worded_like_kestra() {
        assert_eq!(
            timeout_message(Duration::from_secs(60)),
            "Timeout after 00:01:00.000"
        );
        assert_eq!(
            timeout_message(Duration::from_millis(3_723_045)),
            "Timeout after 01:02:03.045"
        );
        assert_eq!(
            timeout_message(Duration::from_secs(100 * 3600)),
            "Timeout after 100:00:00.000"
        );
    }

    #[test]
    fn random_units_stay_below_one() {
        for _ in 0..1000 {
            let unit = random_unit();
            assert!((0.0..1.0).contains(&unit), "{unit}");
        }
    }
}
