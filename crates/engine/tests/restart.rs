//! Kestra's restart: an ended execution runs again in place, its failed task runs again under
//! their ids, the others kept as they ended.

#![allow(clippy::unwrap_used)] // Test code: a failure is a failed test.

mod control;

use control::{engine, flow, run, runtime, states, task_run};
use kestrel_engine::{
    CancelToken, Execution, Inputs, NOTHING_TO_RESTART, NoListener, Origin, State,
};

const LOG: &str = "io.kestra.plugin.core.log.Log";

/// A Log task that fails on the first attempt of its task run and logs `ok` on the next.
fn fails_once(id: &str) -> String {
    format!(
        "  - id: {id}\n    type: {LOG}\n    message: \"{{{{ taskrun.attemptsCount == 1 ? 'ok' : ko }}}}\"\n"
    )
}

fn log(id: &str, message: &str) -> String {
    format!("  - id: {id}\n    type: {LOG}\n    message: \"{message}\"\n")
}

/// Restarts `ended`, an execution of `yaml`, and runs it to its end.
fn restart(yaml: &str, ended: &Execution) -> Execution {
    let flow = kestrel_flow::parse_flow(yaml).unwrap();
    let planned = kestrel_engine::plan_restart(&flow, ended.task_runs.clone()).unwrap();
    let origin = Origin {
        id: Some(ended.id.clone()),
        restarted: planned,
        ..Origin::by("test")
    };
    let inputs = Inputs::parse(&flow.inputs, Vec::new()).unwrap();
    runtime().block_on(engine().run(&flow, inputs, origin, &NoListener, &CancelToken::new()))
}

#[test]
fn the_failed_task_run_runs_again_under_its_id_and_the_others_are_kept() {
    let tasks = format!(
        "  - id: a\n    type: io.kestra.plugin.core.debug.Return\n    format: first\n{}{}",
        fails_once("c"),
        log("d", "{{ outputs.a.value }} then d")
    );
    let yaml = flow(&tasks, "");
    let first = run(&yaml, &[]);
    assert_eq!(first.state, State::Failed);
    assert_eq!(first.task_runs.len(), 2);

    let again = restart(&yaml, &first);
    assert_eq!(again.state, State::Success);
    assert_eq!(again.id, first.id);
    assert_eq!(
        states(&again),
        [
            ("a".to_string(), State::Success),
            ("c".to_string(), State::Success),
            ("d".to_string(), State::Success)
        ]
    );
    for task_id in ["a", "c"] {
        assert_eq!(
            task_run(&again, task_id).id,
            task_run(&first, task_id).id,
            "{task_id} keeps its id"
        );
    }
    assert_eq!(
        task_run(&again, "a").attempts.len(),
        1,
        "a did not run again"
    );
    assert_eq!(task_run(&again, "c").attempts.len(), 2);
    assert_eq!(task_run(&again, "c").attempts[0].state, State::Failed);
    let d_logs: Vec<_> = again.logs.iter().filter(|l| l.task_id == "d").collect();
    assert_eq!(d_logs[0].message, "first then d", "a kept output is read");
    let c_log = again.logs.iter().find(|l| l.task_id == "c").unwrap();
    assert_eq!(c_log.attempt_number, 2);
}

#[test]
fn error_handlers_run_again_when_the_restart_fails_again() {
    let tasks = format!(
        "{}  - id: seq\n    type: io.kestra.plugin.core.flow.Sequential\n    tasks:\n      - id: fail\n        type: io.kestra.plugin.core.execution.Fail\n    errors:\n      - id: handler\n        type: {LOG}\n        message: handled\n",
        log("before", "before")
    );
    let yaml = flow(&tasks, "");
    let first = run(&yaml, &[]);
    assert_eq!(first.task_runs.len(), 4);

    let flow_model = kestrel_flow::parse_flow(&yaml).unwrap();
    let planned = kestrel_engine::plan_restart(&flow_model, first.task_runs.clone()).unwrap();
    assert_eq!(
        planned
            .iter()
            .map(|r| (r.task_id.as_str(), r.state))
            .collect::<Vec<_>>(),
        [
            ("before", State::Success),
            ("seq", State::Running),
            ("fail", State::Restarted)
        ],
        "the handler's run is dropped, the failed run and the flowable around it run again"
    );

    let again = restart(&yaml, &first);
    assert_eq!(again.state, State::Failed);
    assert_eq!(again.task_runs.len(), 4);
    assert_eq!(task_run(&again, "fail").attempts.len(), 2);
    assert_eq!(task_run(&again, "handler").state, State::Success);
    assert_ne!(
        task_run(&again, "handler").id,
        task_run(&first, "handler").id
    );
}

#[test]
fn only_the_failed_iteration_of_a_for_each_runs_again() {
    let tasks = format!(
        "  - id: each\n    type: io.kestra.plugin.core.flow.ForEach\n    values: [\"a\", \"b\"]\n    tasks:\n      - id: item\n        type: {LOG}\n        message: \"{{{{ taskrun.value == 'b' and taskrun.attemptsCount == 0 ? ko : taskrun.value }}}}\"\n"
    );
    let yaml = flow(&tasks, "");
    let first = run(&yaml, &[]);
    assert_eq!(first.state, State::Failed);

    let again = restart(&yaml, &first);
    assert_eq!(again.state, State::Success);
    let items: Vec<_> = again
        .task_runs
        .iter()
        .filter(|r| r.task_id == "item")
        .map(|r| (r.value.clone().unwrap(), r.attempts.len()))
        .collect();
    assert_eq!(items, [("a".to_string(), 1), ("b".to_string(), 2)]);
    let logged: Vec<_> = again.logs.iter().map(|l| l.message.as_str()).collect();
    assert_eq!(logged, ["b"], "a, kept, did not log again");
}

#[test]
fn an_execution_without_a_failed_task_run_cannot_be_restarted() {
    let yaml = flow(&log("a", "fine"), "");
    let ended = run(&yaml, &[]);
    let flow_model = kestrel_flow::parse_flow(&yaml).unwrap();
    let refused = kestrel_engine::plan_restart(&flow_model, ended.task_runs).unwrap_err();
    assert_eq!(refused, NOTHING_TO_RESTART);
}
