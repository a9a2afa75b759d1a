//! Flowable tasks end to end: Sequential, Parallel, If and ForEach run their children as task
//! runs listed under them, pass outputs along, fail together and stop together.

#![allow(clippy::unwrap_used)] // Test code: a failure is a failed test.

mod control;

use control::{MASK, TaskStates, flow, messages, most_at_once, run, run_with, states, task_run};
use kestrel_engine::{CancelToken, Listener, Shown, State, TaskRun};
use std::sync::atomic::{AtomicUsize, Ordering};

const LOG: &str = "io.kestra.plugin.core.log.Log";
const RETURN: &str = "io.kestra.plugin.core.debug.Return";
const SHELL: &str = "io.kestra.plugin.scripts.shell.Commands";

fn log(id: &str, message: &str, indent: usize) -> String {
    let pad = " ".repeat(indent);
    format!("{pad}- id: {id}\n{pad}  type: {LOG}\n{pad}  message: \"{message}\"\n")
}

fn ret(id: &str, format: &str, indent: usize) -> String {
    let pad = " ".repeat(indent);
    format!("{pad}- id: {id}\n{pad}  type: {RETURN}\n{pad}  format: \"{format}\"\n")
}

/// A shell task sleeping a little: long enough for its siblings to start meanwhile.
fn nap(id: &str, indent: usize) -> String {
    let pad = " ".repeat(indent);
    format!("{pad}- id: {id}\n{pad}  type: {SHELL}\n{pad}  commands: [\"sleep 0.3\"]\n")
}

fn ids(runs: &[TaskRun]) -> Vec<&str> {
    runs.iter().map(|run| run.task_id.as_str()).collect()
}

#[test]
fn sequential_runs_its_children_in_order_under_it() {
    let tasks = format!(
        "  - id: seq\n    type: io.kestra.plugin.core.flow.Sequential\n    tasks:\n{}{}{}",
        log("a", "first", 6),
        log("b", "second", 6),
        log("c", "third", 6),
    );
    let execution = run(
        &flow(&format!("{tasks}{}", log("after", "done", 2)), ""),
        &[],
    );
    assert_eq!(execution.state, State::Success);
    assert_eq!(ids(&execution.task_runs), ["seq", "a", "b", "c", "after"]);
    let seq = task_run(&execution, "seq");
    for child in ["a", "b", "c"] {
        assert_eq!(
            task_run(&execution, child).parent_task_run_id.as_deref(),
            Some(seq.id.as_str())
        );
    }
    assert_eq!(task_run(&execution, "after").parent_task_run_id, None);
    let logged: Vec<&str> = execution.logs.iter().map(|l| l.message.as_str()).collect();
    assert_eq!(logged, ["first", "second", "third", "done"]);
}

#[test]
fn the_old_class_names_run_too() {
    let tasks = format!(
        "  - id: seq\n    type: io.kestra.core.tasks.flows.Sequential\n    tasks:\n      - id: par\n        type: io.kestra.core.tasks.flows.Parallel\n        tasks:\n{}",
        log("a", "x", 10),
    );
    let execution = run(&flow(&tasks, ""), &[]);
    assert_eq!(ids(&execution.task_runs), ["seq", "par", "a"]);
    assert_eq!(execution.state, State::Success);
}

#[test]
fn parallel_runs_at_most_concurrent_children_at_once() {
    let children: String = ["p1", "p2", "p3", "p4", "p5"]
        .iter()
        .map(|id| nap(id, 6))
        .collect();
    let limited = format!(
        "  - id: par\n    type: io.kestra.plugin.core.flow.Parallel\n    concurrent: 2\n    tasks:\n{children}"
    );
    let execution = run(&flow(&limited, ""), &[]);
    assert_eq!(execution.state, State::Success, "{:?}", states(&execution));
    let all = ["p1", "p2", "p3", "p4", "p5"];
    assert_eq!(most_at_once(&execution, &all), 2);

    let unlimited = limited.replace("    concurrent: 2\n", "");
    let execution = run(&flow(&unlimited, ""), &[]);
    assert_eq!(most_at_once(&execution, &all), 5);
}

#[test]
fn a_failed_branch_fails_the_parallel_and_runs_its_errors() {
    let tasks = format!(
        "  - id: par\n    type: io.kestra.plugin.core.flow.Parallel\n    tasks:\n{}{}    errors:\n{}",
        log("ok", "fine", 6),
        log("bad", "{{ nope }}", 6),
        log("handler", "handling {{ task.id }}", 6),
    );
    let rest = format!("errors:\n{}", log("flow-handler", "flow handler", 2));
    let execution = run(
        &flow(&format!("{tasks}{}", log("never", "x", 2)), &rest),
        &[],
    );
    assert_eq!(execution.state, State::Failed);
    let found = states(&execution);
    assert!(found.contains(&("bad".into(), State::Failed)), "{found:?}");
    assert!(found.contains(&("par".into(), State::Failed)), "{found:?}");
    assert!(
        found.contains(&("handler".into(), State::Success)),
        "{found:?}"
    );
    assert!(
        found.contains(&("flow-handler".into(), State::Success)),
        "{found:?}"
    );
    assert!(!found.iter().any(|(id, _)| id == "never"), "{found:?}");
    let par = task_run(&execution, "par");
    assert_eq!(
        task_run(&execution, "handler")
            .parent_task_run_id
            .as_deref(),
        Some(par.id.as_str())
    );
    assert_eq!(messages(&execution, "handler"), ["handling handler"]);
}

#[test]
fn a_nested_failure_fails_every_level_and_stops_the_rest() {
    let tasks = format!(
        "  - id: outer\n    type: io.kestra.plugin.core.flow.Sequential\n    tasks:\n      - id: inner\n        type: io.kestra.plugin.core.flow.Sequential\n        tasks:\n{}{}{}{}",
        log("boom", "{{ missing.value }}", 10),
        log("skipped-inner", "x", 10),
        log("skipped-outer", "x", 6),
        log("skipped-flow", "x", 2),
    );
    let execution = run(&flow(&tasks, ""), &[]);
    assert_eq!(execution.state, State::Failed);
    assert_eq!(
        states(&execution),
        [
            ("outer".to_string(), State::Failed),
            ("inner".to_string(), State::Failed),
            ("boom".to_string(), State::Failed),
        ]
    );
    assert!(task_run(&execution, "boom").error.is_some());
}

#[test]
fn allow_failure_on_a_flowable_turns_its_failure_into_a_warning() {
    let tasks = format!(
        "  - id: tolerant\n    type: io.kestra.plugin.core.flow.Sequential\n    allowFailure: true\n    tasks:\n{}{}",
        log("bad", "{{ nope }}", 6),
        log("next", "goes on", 2),
    );
    let execution = run(&flow(&tasks, ""), &[]);
    assert_eq!(execution.state, State::Warning);
    assert_eq!(task_run(&execution, "tolerant").state, State::Warning);
    assert_eq!(task_run(&execution, "bad").state, State::Failed);
    assert_eq!(messages(&execution, "next"), ["goes on"]);
}

#[test]
fn if_runs_then_or_else_by_the_rendered_condition() {
    let tasks = format!(
        "  - id: check\n    type: io.kestra.plugin.core.flow.If\n    condition: \"{{{{ inputs.go }}}}\"\n    then:\n{}    else:\n{}",
        log("yes", "then branch", 6),
        log("no", "else branch", 6),
    );
    let yaml = flow(&tasks, "inputs:\n  - id: go\n    type: BOOLEAN\n");
    let taken = run(&yaml, &[("go", "true")]);
    assert_eq!(ids(&taken.task_runs), ["check", "yes"]);
    let other = run(&yaml, &[("go", "false")]);
    assert_eq!(ids(&other.task_runs), ["check", "no"]);
    assert_eq!(other.state, State::Success);

    let without_else = yaml.replace(&format!("    else:\n{}", log("no", "else branch", 6)), "");
    let nothing = run(&without_else, &[("go", "false")]);
    assert_eq!(states(&nothing), [("check".to_string(), State::Success)]);
}

#[test]
fn a_condition_that_does_not_render_fails_the_if() {
    let tasks = format!(
        "  - id: check\n    type: io.kestra.plugin.core.flow.If\n    condition: \"{{{{ nope }}}}\"\n    then:\n{}",
        log("yes", "x", 6),
    );
    let execution = run(&flow(&tasks, ""), &[]);
    assert_eq!(states(&execution), [("check".to_string(), State::Failed)]);
    let error = task_run(&execution, "check").error.clone().unwrap();
    assert!(error.contains("nope"), "{error}");
    assert_eq!(messages(&execution, "check"), [error]);
}

#[test]
fn for_each_runs_its_tasks_once_per_value_with_taskrun_value() {
    let tasks = format!(
        "  - id: each\n    type: io.kestra.plugin.core.flow.ForEach\n    values: [\"a\", \"b\", {{\"k\": 1}}]\n    tasks:\n{}{}",
        ret("first", "got {{ taskrun.value }}", 6),
        log(
            "second",
            "{{ outputs.first[taskrun.value].value }} with {{ parents | length }} parents",
            6
        ),
    );
    let execution = run(&flow(&tasks, ""), &[]);
    assert_eq!(execution.state, State::Success, "{:?}", execution.logs);
    let each = task_run(&execution, "each");
    let children: Vec<(&str, Option<&str>)> = execution
        .task_runs
        .iter()
        .skip(1)
        .map(|run| (run.task_id.as_str(), run.value.as_deref()))
        .collect();
    assert_eq!(
        children,
        [
            ("first", Some("a")),
            ("second", Some("a")),
            ("first", Some("b")),
            ("second", Some("b")),
            ("first", Some(r#"{"k":1}"#)),
            ("second", Some(r#"{"k":1}"#)),
        ]
    );
    assert!(
        execution.task_runs[1..]
            .iter()
            .all(|run| run.parent_task_run_id.as_deref() == Some(each.id.as_str()))
    );
    assert_eq!(
        messages(&execution, "second"),
        [
            "got a with 0 parents",
            "got b with 0 parents",
            r#"got {"k":1} with 0 parents"#
        ]
    );
}

#[test]
fn for_each_values_can_be_a_rendered_json_list() {
    let tasks = format!(
        "  - id: each\n    type: io.kestra.plugin.core.flow.ForEach\n    values: \"{{{{ inputs.list }}}}\"\n    tasks:\n{}{}",
        log("item", "{{ taskrun.value }}", 6),
        log("after", "{{ outputs.item is defined }}", 2),
    );
    let yaml = flow(&tasks, "inputs:\n  - id: list\n    type: JSON\n");
    let execution = run(&yaml, &[("list", r#"["x", 2, true]"#)]);
    assert_eq!(messages(&execution, "item"), ["x", "2", "true"]);

    let broken = run(&yaml, &[("list", r#"{"not": "a list"}"#)]);
    assert_eq!(broken.state, State::Failed);
    let error = task_run(&broken, "each").error.clone().unwrap();
    assert!(error.starts_with("values: must be a list"), "{error}");
}

#[test]
fn for_each_concurrency_limit_bounds_the_iterations_at_once() {
    let tasks = format!(
        "  - id: each\n    type: io.kestra.plugin.core.flow.ForEach\n    values: [1, 2, 3, 4]\n    concurrencyLimit: 2\n    tasks:\n{}",
        nap("sleepy", 6),
    );
    let execution = run(&flow(&tasks, ""), &[]);
    assert_eq!(execution.state, State::Success, "{:?}", states(&execution));
    assert_eq!(most_at_once(&execution, &["sleepy"]), 2);
    let one_at_a_time = run(
        &flow(
            &tasks.replace("concurrencyLimit: 2", "concurrencyLimit: 1"),
            "",
        ),
        &[],
    );
    assert_eq!(most_at_once(&one_at_a_time, &["sleepy"]), 1);
    let unlimited = run(
        &flow(
            &tasks.replace("concurrencyLimit: 2", "concurrencyLimit: 0"),
            "",
        ),
        &[],
    );
    assert_eq!(most_at_once(&unlimited, &["sleepy"]), 4);
}

#[test]
fn outputs_of_nested_tasks_reach_later_tasks() {
    let tasks = format!(
        "  - id: seq\n    type: io.kestra.plugin.core.flow.Sequential\n    tasks:\n{}{}",
        ret("inner", "deep", 6),
        log("reader", "{{ outputs.inner.value }}", 2),
    );
    let execution = run(&flow(&tasks, ""), &[]);
    assert_eq!(messages(&execution, "reader"), ["deep"]);
}

#[test]
fn secrets_in_nested_outputs_are_masked_for_readers() {
    let tasks = format!(
        "  - id: par\n    type: io.kestra.plugin.core.flow.Parallel\n    tasks:\n{}{}",
        ret("inner", "{{ inputs.pw }}", 6),
        log(
            "reader",
            "{{ outputs.inner.value | length }} {{ outputs.inner.value }}",
            2
        ),
    );
    let yaml = flow(&tasks, "inputs:\n  - id: pw\n    type: SECRET\n");
    let execution = run(&yaml, &[("pw", "hunter2-secret")]);
    assert_eq!(task_run(&execution, "inner").outputs["value"], MASK);
    assert_eq!(messages(&execution, "reader"), [format!("14 {MASK}")]);
    assert!(!format!("{execution:?}").contains("hunter2-secret"));
}

/// Cancels once `count` task runs of `task_id` are running.
struct CancelWhenRunning {
    task_id: &'static str,
    count: usize,
    running: AtomicUsize,
    cancel: CancelToken,
}

impl Listener for CancelWhenRunning {
    fn on_task_state(&self, run: &Shown<TaskRun>) {
        if run.task_id.starts_with(self.task_id) && run.state == State::Running {
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            if now == self.count {
                self.cancel.cancel();
            }
        }
    }
}

#[test]
fn cancelling_kills_every_branch() {
    let children: String = (1..=3)
        .map(|n| {
            format!(
                "      - id: long{n}\n        type: {SHELL}\n        commands: [\"sleep 30\"]\n"
            )
        })
        .collect();
    let tasks = format!(
        "  - id: par\n    type: io.kestra.plugin.core.flow.Parallel\n    tasks:\n{children}{}",
        log("never", "x", 2)
    );
    let cancel = CancelToken::new();
    let listener = CancelWhenRunning {
        task_id: "long",
        count: 3,
        running: AtomicUsize::new(0),
        cancel: cancel.clone(),
    };
    let execution = run_with(&flow(&tasks, ""), &[], &listener, &cancel);
    assert_eq!(execution.state, State::Killed);
    assert_eq!(
        states(&execution),
        [
            ("par".to_string(), State::Killed),
            ("long1".to_string(), State::Killed),
            ("long2".to_string(), State::Killed),
            ("long3".to_string(), State::Killed),
        ]
    );
}

#[test]
fn a_flowable_timeout_kills_its_children_and_fails_it() {
    let tasks = format!(
        "  - id: seq\n    type: io.kestra.plugin.core.flow.Sequential\n    timeout: PT0.2S\n    tasks:\n      - id: long\n        type: {SHELL}\n        commands: [\"sleep 30\"]\n{}{}",
        log("never", "x", 6),
        log("after", "x", 2),
    );
    let listener = TaskStates::default();
    let execution = run_with(&flow(&tasks, ""), &[], &listener, &CancelToken::new());
    assert_eq!(execution.state, State::Failed);
    assert_eq!(
        states(&execution),
        [
            ("seq".to_string(), State::Failed),
            ("long".to_string(), State::Killed),
        ]
    );
    assert_eq!(
        task_run(&execution, "seq").error.as_deref(),
        Some("Timeout after 00:00:00.200")
    );
    assert_eq!(
        listener.of("seq").last().map(String::as_str),
        Some("FAILED")
    );
}
