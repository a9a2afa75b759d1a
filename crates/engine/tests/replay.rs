//! Kestra's replay: a new execution of an ended one, from one of its task runs. The task runs
//! the flow declares before it are kept as they ended; it and every later one run anew.

#![allow(clippy::unwrap_used)] // Test code: a failure is a failed test.

mod control;

use control::{engine, flow, run, runtime, states, task_run};
use kestrel_engine::{CancelToken, Execution, Inputs, NoListener, Origin, State};

const RETURN: &str = "io.kestra.plugin.core.debug.Return";

fn returns(id: &str, format: &str, indent: &str) -> String {
    format!("{indent}- id: {id}\n{indent}  type: {RETURN}\n{indent}  format: \"{format}\"\n")
}

/// The flow: `a`, a Sequential `seq` holding `b` and `c`, then `d`; each returns what it
/// read, so that a test sees which ran again.
fn nested() -> String {
    let inner = format!(
        "{}{}",
        returns("b", "{{ outputs.a.value }}-b", "      "),
        returns("c", "{{ outputs.b.value }}-c", "      ")
    );
    let tasks = format!(
        "{}  - id: seq\n    type: io.kestra.plugin.core.flow.Sequential\n    tasks:\n{inner}{}",
        returns("a", "{{ execution.id }}", "  "),
        returns("d", "{{ outputs.c.value }}-d", "  ")
    );
    flow(&tasks, "")
}

/// Replays `ended`, an execution of `yaml`, from the task run of `task_id`, to its end.
fn replay(yaml: &str, ended: &Execution, task_id: &str) -> Execution {
    let flow = kestrel_flow::parse_flow(yaml).unwrap();
    let from = task_run(ended, task_id).id.clone();
    let planned = kestrel_engine::plan_replay(&flow, ended.task_runs.clone(), Some(&from)).unwrap();
    let origin = Origin {
        restarted: planned,
        ..Origin::by("test")
    };
    let inputs = Inputs::parse(&flow.inputs, Vec::new()).unwrap();
    runtime().block_on(engine().run(&flow, inputs, origin, &NoListener, &CancelToken::new()))
}

fn output(execution: &Execution, task_id: &str) -> String {
    task_run(execution, task_id).outputs["value"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn a_replay_inside_a_flowable_keeps_what_came_before_and_runs_the_rest() {
    let yaml = nested();
    let first = run(&yaml, &[]);
    assert_eq!(first.state, State::Success);

    let again = replay(&yaml, &first, "c");
    assert_eq!(again.state, State::Success, "{again:?}");
    assert_ne!(again.id, first.id);
    let before = &first.id;
    assert_eq!(output(&again, "a"), *before, "a is kept from the first run");
    assert_eq!(output(&again, "b"), format!("{before}-b"), "b is kept");
    assert_eq!(
        output(&again, "d"),
        format!("{before}-b-c-d"),
        "d ran after c"
    );
    assert_ne!(
        task_run(&again, "c").id,
        task_run(&first, "c").id,
        "new ids"
    );
    assert_eq!(states(&again).len(), 5);
}

#[test]
fn a_replay_of_a_flowable_runs_its_children_again() {
    let yaml = nested();
    let first = run(&yaml, &[]);
    let again = replay(&yaml, &first, "seq");
    assert_eq!(again.state, State::Success, "{again:?}");
    assert_eq!(output(&again, "a"), first.id, "a is kept");
    assert_eq!(output(&again, "d"), format!("{}-b-c-d", first.id));
    assert_ne!(task_run(&again, "b").id, task_run(&first, "b").id);
}

#[test]
fn a_replay_from_an_unknown_task_run_is_refused() {
    let yaml = nested();
    let first = run(&yaml, &[]);
    let flow = kestrel_flow::parse_flow(&yaml).unwrap();
    let refused = kestrel_engine::plan_replay(&flow, first.task_runs.clone(), Some("nope"));
    assert_eq!(refused.unwrap_err(), "The execution has no task run 'nope'");
    let afresh = kestrel_engine::plan_replay(&flow, first.task_runs, None).unwrap();
    assert!(
        afresh.is_empty(),
        "without a task run, everything runs again"
    );
}
