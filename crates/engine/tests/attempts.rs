//! What happens around one task run: `runIf`, `allowFailure`, `retry` and `timeout`.

#![allow(clippy::unwrap_used)] // Test code: a failure is a failed test.

mod control;

use control::{TaskStates, flow, messages, run, run_with, states, task_run};
use kestrel_engine::{CancelToken, State};
use std::time::Duration;

const LOG: &str = "io.kestra.plugin.core.log.Log";

/// A Log task failing on its first `fails` attempts, then logging `attempt N`.
fn flaky(id: &str, fails: usize, retry: &str) -> String {
    format!(
        "  - id: {id}\n    type: {LOG}\n    message: \"{{{{ taskrun.attemptsCount >= {fails} ? 'attempt ' ~ (taskrun.attemptsCount + 1) : undefined_variable }}}}\"\n    retry:\n{retry}"
    )
}

fn log(id: &str, message: &str) -> String {
    format!("  - id: {id}\n    type: {LOG}\n    message: \"{message}\"\n")
}

#[test]
fn run_if_false_skips_the_task_run() {
    let tasks = format!(
        "  - id: maybe\n    type: {LOG}\n    message: ran\n    runIf: \"{{{{ inputs.go }}}}\"\n{}",
        log("next", "after")
    );
    let yaml = flow(&tasks, "inputs:\n  - id: go\n    type: STRING\n");
    for falsy in ["false", "0", "-0", "", " false "] {
        let execution = run(&yaml, &[("go", falsy)]);
        assert_eq!(execution.state, State::Success, "{falsy:?}");
        assert_eq!(
            states(&execution),
            [
                ("maybe".to_string(), State::Skipped),
                ("next".to_string(), State::Success)
            ],
            "{falsy:?}"
        );
        assert!(task_run(&execution, "maybe").attempts.is_empty());
    }
    for truthy in ["true", "yes", "1"] {
        let execution = run(&yaml, &[("go", truthy)]);
        assert_eq!(messages(&execution, "maybe"), ["ran"], "{truthy:?}");
    }
}

#[test]
fn a_run_if_that_does_not_render_fails_the_task_run() {
    let tasks = format!(
        "  - id: maybe\n    type: {LOG}\n    message: ran\n    runIf: \"{{{{ nope }}}}\"\n"
    );
    let execution = run(&flow(&tasks, ""), &[]);
    assert_eq!(states(&execution), [("maybe".to_string(), State::Failed)]);
    assert!(
        task_run(&execution, "maybe")
            .error
            .as_ref()
            .unwrap()
            .contains("nope")
    );
}

#[test]
fn allow_failure_ends_in_warning_and_the_flow_goes_on() {
    let tasks = format!(
        "  - id: bad\n    type: {LOG}\n    message: \"{{{{ nope }}}}\"\n    allowFailure: true\n{}",
        log("next", "after")
    );
    let execution = run(&flow(&tasks, ""), &[]);
    assert_eq!(execution.state, State::Warning);
    assert_eq!(task_run(&execution, "bad").state, State::Warning);
    assert_eq!(messages(&execution, "next"), ["after"]);
}

#[test]
fn constant_retry_tries_again_and_keeps_every_attempt() {
    let retry = "      type: constant\n      interval: PT0.01S\n      maxAttempts: 3\n";
    let listener = TaskStates::default();
    let execution = run_with(
        &flow(&flaky("flaky", 2, retry), ""),
        &[],
        &listener,
        &CancelToken::new(),
    );
    assert_eq!(execution.state, State::Success, "{:?}", execution.logs);
    let run = task_run(&execution, "flaky");
    let attempts: Vec<State> = run.attempts.iter().map(|a| a.state).collect();
    assert_eq!(attempts, [State::Failed, State::Failed, State::Success]);
    assert_eq!(run.state, State::Success);
    assert_eq!(run.error, None, "readers see the last attempt");
    assert_eq!(execution.task_runs.len(), 1, "one task run, three attempts");
    assert_eq!(
        listener.of("flaky"),
        [
            "CREATED", "RUNNING", "RETRYING", "RUNNING", "RETRYING", "RUNNING", "SUCCESS"
        ]
    );
    let by_attempt: Vec<(u32, &str)> = execution
        .logs
        .iter()
        .map(|entry| (entry.attempt_number, entry.level.as_str()))
        .collect();
    assert_eq!(by_attempt, [(1, "ERROR"), (2, "ERROR"), (3, "INFO")]);
    assert_eq!(messages(&execution, "flaky").last().unwrap(), "attempt 3");
}

#[test]
fn a_retry_that_runs_out_of_attempts_fails() {
    let retry = "      type: constant\n      interval: PT0.01S\n      maxAttempt: 2\n";
    let execution = run(&flow(&flaky("flaky", 5, retry), ""), &[]);
    assert_eq!(execution.state, State::Failed);
    let run = task_run(&execution, "flaky");
    assert_eq!(run.attempts.len(), 2);
    assert!(run.attempts.iter().all(|a| a.state == State::Failed));
    assert!(run.error.as_ref().unwrap().contains("undefined_variable"));
}

#[test]
fn exponential_retry_waits_longer_each_time() {
    let retry = "      type: exponential\n      interval: PT0.01S\n      maxInterval: PT0.04S\n      maxAttempts: 4\n";
    let execution = run(&flow(&flaky("flaky", 3, retry), ""), &[]);
    assert_eq!(execution.state, State::Success, "{:?}", execution.logs);
    let attempts = &task_run(&execution, "flaky").attempts;
    assert_eq!(attempts.len(), 4);
    // Each wait lasts at least its delay: 10, 20, then 40 ms.
    for (pair, least) in attempts.windows(2).zip([10, 20, 40]) {
        let waited = (pair[1].start - pair[0].end.unwrap()).to_std().unwrap();
        assert!(
            waited >= Duration::from_millis(least),
            "{waited:?} < {least} ms"
        );
    }
}

#[test]
fn warning_on_retry_marks_a_late_success() {
    let retry = "      type: constant\n      interval: PT0.01S\n      maxAttempts: 2\n      warningOnRetry: true\n";
    let execution = run(&flow(&flaky("flaky", 1, retry), ""), &[]);
    assert_eq!(task_run(&execution, "flaky").state, State::Warning);
    assert_eq!(execution.state, State::Warning);
}

#[test]
fn allow_failure_applies_after_the_last_attempt() {
    let retry = "      type: constant\n      interval: PT0.01S\n      maxAttempts: 2\n";
    let tasks =
        flaky("flaky", 5, retry).replace("    retry:\n", "    allowFailure: true\n    retry:\n");
    let execution = run(&flow(&tasks, ""), &[]);
    let run = task_run(&execution, "flaky");
    assert_eq!((run.state, run.attempts.len()), (State::Warning, 2));
}

#[test]
fn a_task_that_runs_too_long_fails_naming_its_timeout() {
    let tasks = format!(
        "  - id: slow\n    type: io.kestra.plugin.scripts.shell.Commands\n    commands: [\"sleep 30\"]\n    timeout: PT0.25S\n{}",
        log("never", "x")
    );
    let execution = run(&flow(&tasks, ""), &[]);
    assert_eq!(states(&execution), [("slow".to_string(), State::Failed)]);
    let slow = task_run(&execution, "slow");
    assert_eq!(slow.error.as_deref(), Some("Timeout after 00:00:00.250"));
    assert_eq!(
        messages(&execution, "slow").last().map(String::as_str),
        Some("Timeout after 00:00:00.250")
    );
}

#[test]
fn a_timed_out_attempt_is_retried() {
    let tasks = "  - id: slow\n    type: io.kestra.plugin.scripts.shell.Commands\n    commands: [\"sleep 30\"]\n    timeout: PT0.1S\n    retry:\n      type: constant\n      interval: PT0.01S\n      maxAttempts: 2\n";
    let execution = run(&flow(tasks, ""), &[]);
    let slow = task_run(&execution, "slow");
    assert_eq!(slow.state, State::Failed);
    assert_eq!(slow.attempts.len(), 2);
}

#[test]
fn cancelling_during_a_retry_wait_kills_the_task_run() {
    let retry = "      type: constant\n      interval: PT30S\n      maxAttempts: 2\n";
    let cancel = CancelToken::new();
    struct CancelOnRetrying(CancelToken);
    impl kestrel_engine::Listener for CancelOnRetrying {
        fn on_task_state(&self, run: &kestrel_engine::Shown<kestrel_engine::TaskRun>) {
            if run.state == State::Retrying {
                self.0.cancel();
            }
        }
    }
    let execution = run_with(
        &flow(&flaky("flaky", 5, retry), ""),
        &[],
        &CancelOnRetrying(cancel.clone()),
        &cancel,
    );
    assert_eq!(execution.state, State::Killed);
    assert_eq!(task_run(&execution, "flaky").state, State::Killed);
}
