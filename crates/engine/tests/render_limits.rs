//! Issue 9 item 1: a render that runs on (a long loop that fuel stops only much later) no
//! longer holds the runtime's threads: the task's `timeout`, a kill and
//! `expression.render-timeout` end the task mid-render.
//!
//! Each test's runtime is shut down without waiting: the abandoned render goes on until its
//! fuel runs out, and the test process does not wait for it.

mod common;

use common::flow;
use kestrel_engine::{
    CancelToken, Engine, EngineConfig, Execution, Inputs, Listener, NoListener, Origin, Shown,
    Sources, State, TaskRun,
};
use kestrel_expr::ExpressionLimits;
use std::time::{Duration, Instant};

/// A render that fuel of [`FUEL`] stops only after about a minute on a debug build.
const ENDLESS: &str =
    "{% for i in range(0, 90000) %}{% for j in range(0, 90000) %}{% endfor %}{% endfor %}done";

/// Fuel for a thousand million instructions: far more than a second of rendering.
const FUEL: u64 = 1_000_000_000;

/// Generous: the task ends about a second in; only a render holding a thread takes longer.
const PROMPT: Duration = Duration::from_secs(20);

fn engine(render_timeout: Duration) -> Engine {
    let limits = ExpressionLimits {
        fuel: FUEL,
        render_timeout,
        ..ExpressionLimits::default()
    };
    let config = EngineConfig {
        limits,
        ..EngineConfig::default()
    };
    {
        let (sources, _) = Sources::environment(&config, Vec::new(), None).expect("an engine");
        Engine::with_sources(config, sources)
    }
}

/// Runs `yaml` on `engine` until it ends or `cancel`; the execution and how long it took.
fn run(
    engine: &Engine,
    yaml: &str,
    listener: &dyn Listener,
    cancel: &CancelToken,
) -> (Execution, Duration) {
    let flow = kestrel_flow::parse_flow(yaml).unwrap_or_else(|found| panic!("{found:?}"));
    let inputs = Inputs::parse(&flow.inputs, Vec::new()).expect("inputs");
    let runtime = common::runtime();
    let start = Instant::now();
    let execution =
        runtime.block_on(engine.run(&flow, inputs, Origin::by("test"), listener, cancel));
    let took = start.elapsed();
    runtime.shutdown_background();
    (execution, took)
}

fn busy_log(extra: &str) -> String {
    flow(&format!(
        "  - id: first\n    type: io.kestra.plugin.core.log.Log\n    message: started\n  - id: busy\n    type: io.kestra.plugin.core.log.Log\n    message: \"{ENDLESS}\"\n{extra}"
    ))
}

fn error_of(execution: &Execution, task_id: &str) -> String {
    let run = execution
        .task_runs
        .iter()
        .find(|run| run.task_id == task_id);
    run.and_then(|run| run.error.clone()).unwrap_or_default()
}

#[test]
fn issue_9_1_a_task_timeout_ends_a_render_that_runs_on() {
    let engine = engine(Duration::from_secs(600));
    let yaml = busy_log("    timeout: PT1S\n");
    let (execution, took) = run(&engine, &yaml, &NoListener, &CancelToken::new());
    assert_eq!(execution.state, State::Failed, "{execution:?}");
    let error = error_of(&execution, "busy");
    assert_eq!(error, "Timeout after 00:00:01.000");
    assert!(took < PROMPT, "took {took:?}");
}

/// Cancels its token once the task `busy` is RUNNING: its render starts right after.
struct KillWhenBusy(CancelToken);

impl Listener for KillWhenBusy {
    fn on_task_state(&self, run: &Shown<TaskRun>) {
        if run.task_id == "busy" && run.state == State::Running {
            // From another thread, as the kill route and signals do.
            let cancel = self.0.clone();
            std::thread::spawn(move || cancel.cancel());
        }
    }
}

#[test]
fn issue_9_1_a_kill_ends_a_task_mid_render_as_killed() {
    let engine = engine(Duration::from_secs(600));
    let yaml =
        busy_log("  - id: never\n    type: io.kestra.plugin.core.log.Log\n    message: never\n");
    let cancel = CancelToken::new();
    let (execution, took) = run(&engine, &yaml, &KillWhenBusy(cancel.clone()), &cancel);
    assert_eq!(execution.state, State::Killed, "{execution:?}");
    let busy = execution.task_runs.iter().find(|run| run.task_id == "busy");
    assert_eq!(busy.map(|run| run.state), Some(State::Killed));
    assert!(execution.task_runs.iter().all(|run| run.task_id != "never"));
    assert!(took < PROMPT, "took {took:?}");
}

#[test]
fn issue_9_1_a_render_past_render_timeout_fails_the_task_naming_the_limit() {
    let engine = engine(Duration::from_secs(1));
    let (execution, took) = run(&engine, &busy_log(""), &NoListener, &CancelToken::new());
    assert_eq!(execution.state, State::Failed, "{execution:?}");
    let error = error_of(&execution, "busy");
    assert!(error.contains("expression.render-timeout (1s)"), "{error}");
    assert!(took < PROMPT, "took {took:?}");
}

#[test]
fn a_short_render_is_not_held_up_by_the_backstop() {
    let engine = engine(Duration::from_secs(1));
    let yaml = flow(
        "  - id: sum\n    type: io.kestra.plugin.core.debug.Return\n    format: \"{{ 1 + 2 }}\"\n",
    );
    let (execution, _) = run(&engine, &yaml, &NoListener, &CancelToken::new());
    assert_eq!(execution.state, State::Success, "{execution:?}");
}
