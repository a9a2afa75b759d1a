//! The edge: everything a reader sees of an execution (task runs with every field, outputs,
//! metrics, inputs, trigger variables, labels, and what listeners receive) is masked, numbers
//! included. Each test is named after the leak it pins.

#![allow(clippy::unwrap_used)] // Test code: a failure is a failed test.

mod common;

use common::{MASK, engine, runtime};
use kestrel_engine::{
    CancelToken, Execution, Inputs, Listener, LogEntry, MetricValue, Origin, Shown, State, TaskRun,
};
use kestrel_secrets::SecretValue;
use serde_json::{Map, Value, json};
use std::sync::Mutex;

/// A numeric secret.
const PIN: &str = "48213377";

/// Everything listeners were given, as one text each.
#[derive(Default)]
struct Seen(Mutex<Vec<String>>);

impl Seen {
    fn push(&self, event: String) {
        self.0.lock().unwrap().push(event);
    }

    fn text(&self) -> String {
        self.0.lock().unwrap().concat()
    }

    /// The inputs shown last.
    fn last_inputs(&self) -> Option<String> {
        let events = self.0.lock().unwrap();
        events
            .iter()
            .rev()
            .find(|e| e.starts_with("inputs"))
            .cloned()
    }
}

impl Listener for Seen {
    fn on_log(&self, entry: &Shown<LogEntry>) {
        self.push(format!("{entry:?}"));
    }
    fn on_task_state(&self, task_run: &Shown<TaskRun>) {
        self.push(format!("{task_run:?}"));
    }
    fn on_execution_state(&self, execution: &Shown<Execution>) {
        self.push(format!("{execution:?}"));
    }
    fn on_inputs(&self, inputs: &Shown<Map<String, Value>>) {
        self.push(format!("inputs {}", Value::Object((**inputs).clone())));
    }
}

/// Runs `yaml` with `secrets` and `inputs`, started by `trigger` when given.
fn run(
    yaml: &str,
    secrets: &[(&str, &str)],
    inputs: &[(&str, &str)],
    trigger: Option<Value>,
    seen: &Seen,
) -> Execution {
    let engine = engine(secrets);
    let flow = kestrel_flow::parse_flow(yaml).unwrap_or_else(|found| panic!("{found:?}"));
    let raw = inputs
        .iter()
        .map(|(id, value)| (id.to_string(), SecretValue::new(value.to_string())));
    let inputs = Inputs::parse(&flow.inputs, raw).unwrap();
    let cancel = CancelToken::new();
    let origin = Origin {
        trigger,
        ..Origin::by("test")
    };
    let execution = runtime().block_on(engine.run(&flow, inputs, origin, seen, &cancel));
    assert_eq!(execution.state, State::Success, "{execution:?}");
    execution
}

/// Asserts that no `value` shows in the execution or in what listeners received.
fn assert_hidden(execution: &Execution, seen: &Seen, values: &[&str]) {
    let readable = format!("{execution:?}{}", seen.text());
    for value in values {
        assert!(!readable.contains(value), "{value} shows in {readable}");
    }
}

const LOG: &str = "io.kestra.plugin.core.log.Log";
const SHELL: &str = "io.kestra.plugin.scripts.shell.Commands";

/// A flow whose ForEach iterates over the secret `A` split at commas, running `child` (a YAML
/// list item indented by six), then `rest` (tasks indented by two).
fn for_each_over_secret(child: &str, rest: &str) -> String {
    format!(
        "id: f\nnamespace: dev\ntasks:\n  - id: each\n    type: io.kestra.plugin.core.flow.ForEach\n    values: \"{{{{ secret('A') | split(',') }}}}\"\n    tasks:\n{child}{rest}"
    )
}

#[test]
fn leak_1_for_each_value_is_masked_in_task_runs() {
    let yaml = for_each_over_secret(
        &format!(
            "      - id: show\n        type: {LOG}\n        message: \"value {{{{ taskrun.value }}}}\"\n"
        ),
        "",
    );
    let seen = Seen::default();
    let secrets = [("A", "alpha-first,bravo-second")];
    let execution = run(&yaml, &secrets, &[], None, &seen);
    let children: Vec<&TaskRun> = execution
        .task_runs
        .iter()
        .filter(|run| run.task_id == "show")
        .collect();
    assert_eq!(children.len(), 2);
    for child in children {
        assert_eq!(child.value.as_deref(), Some(MASK));
    }
    assert_hidden(&execution, &seen, &["alpha-first", "bravo-second"]);
}

#[test]
fn leak_2_a_flow_output_of_type_int_or_json_equal_to_a_numeric_secret_is_masked() {
    let yaml = r#"id: f
namespace: dev
tasks:
  - id: noop
    type: io.kestra.plugin.core.log.Log
    message: hi
outputs:
  - id: pin
    type: INT
    value: "{{ secret('PIN') }}"
  - id: bank
    type: JSON
    value: "{{ secret('BANK') }}"
"#;
    let seen = Seen::default();
    let bank = format!(r#"{{"pin": {PIN}, "branch": "north"}}"#);
    let secrets = [("PIN", PIN), ("BANK", bank.as_str())];
    let execution = run(yaml, &secrets, &[], None, &seen);
    assert_eq!(execution.outputs["pin"], MASK);
    assert_eq!(execution.outputs["bank"]["pin"], MASK);
    assert_hidden(&execution, &seen, &[PIN]);
}

#[test]
fn leak_2_a_script_output_and_a_metric_value_equal_to_a_numeric_secret_are_masked() {
    let yaml = format!(
        r#"id: f
namespace: dev
tasks:
  - id: sh
    type: {SHELL}
    env:
      PIN: "{{{{ secret('PIN') }}}}"
    commands:
      - echo "::{{\"outputs\":{{\"pin\":$PIN}}}}::"
      - echo "::{{\"metrics\":[{{\"name\":\"m\",\"type\":\"counter\",\"value\":$PIN}},{{\"name\":\"n\",\"type\":\"counter\",\"value\":7}}]}}::"
  - id: later
    type: {LOG}
    message: "{{{{ outputs.sh.vars.pin == {PIN} }}}}"
"#
    );
    let seen = Seen::default();
    let execution = run(&yaml, &[("PIN", PIN)], &[], None, &seen);
    let sh = &execution.task_runs[0];
    assert_eq!(sh.outputs["vars"]["pin"], MASK);
    assert_eq!(sh.metrics[0].value, MetricValue::Masked);
    assert_eq!(sh.metrics[1].value, MetricValue::Number(7.0));
    assert_eq!(
        execution.logs.last().unwrap().message,
        "true",
        "later expressions see the real number"
    );
    assert_hidden(&execution, &seen, &[PIN]);
}

#[test]
fn leak_2_inputs_trigger_variables_and_labels_equal_to_a_numeric_secret_are_masked() {
    let yaml = format!(
        r#"id: f
namespace: dev
labels:
  account: "{PIN}"
inputs:
  - id: n
    type: INT
  - id: doc
    type: JSON
tasks:
  - id: use
    type: {LOG}
    message: "{{{{ secret('PIN') | length }}}}"
"#
    );
    let seen = Seen::default();
    let doc = format!(r#"{{"pin": {PIN}}}"#);
    let inputs = [("n", PIN), ("doc", doc.as_str())];
    let trigger = json!({"body": {"pin": 48_213_377}});
    let execution = run(&yaml, &[("PIN", PIN)], &inputs, Some(trigger), &seen);
    assert_eq!(execution.inputs["n"], MASK);
    assert_eq!(execution.inputs["doc"]["pin"], MASK);
    assert_eq!(execution.trigger.as_ref().unwrap()["body"]["pin"], MASK);
    assert_eq!(execution.labels[0], ("account".to_owned(), MASK.to_owned()));
    // Listeners saw them in clear before the task resolved the secret: nothing knew it then.
    assert_hidden(&execution, &Seen::default(), &[PIN]);
    let inputs = seen.last_inputs().unwrap();
    assert!(!inputs.contains(PIN), "{inputs}");
}

#[test]
fn leak_7_a_value_registered_at_start_is_masked_in_trigger_variables() {
    let yaml = format!(
        "id: f\nnamespace: dev\ntasks:\n  - id: echo\n    type: {LOG}\n    message: \"{{{{ trigger.body }}}}\"\n"
    );
    let engine = engine(&[]);
    let flow = kestrel_flow::parse_flow(&yaml).unwrap();
    let mut inputs = Inputs::parse(&flow.inputs, Vec::new()).unwrap();
    inputs.register_secret("webhook key", SecretValue::new("hook-key-Zq81xLmP".into()));
    let trigger = json!({"body": {"again": "hook-key-Zq81xLmP"}});
    let seen = Seen::default();
    let origin = Origin {
        trigger: Some(trigger),
        ..Origin::by("webhook")
    };
    let execution =
        runtime().block_on(engine.run(&flow, inputs, origin, &seen, &CancelToken::new()));
    assert_eq!(execution.state, State::Success, "{execution:?}");
    assert_hidden(&execution, &seen, &["hook-key-Zq81xLmP"]);
}

#[test]
fn leak_9_a_string_input_holding_a_secret_the_execution_resolves_is_masked() {
    let yaml = format!(
        r#"id: f
namespace: dev
inputs:
  - id: name
    type: STRING
tasks:
  - id: use
    type: {LOG}
    message: "{{{{ secret('A') | length }}}}"
"#
    );
    let seen = Seen::default();
    let value = "copied-s3cret-value";
    let execution = run(&yaml, &[("A", value)], &[("name", value)], None, &seen);
    assert_hidden(&execution, &Seen::default(), &[value]);
    assert_eq!(execution.inputs["name"], MASK);
    assert_eq!(
        seen.last_inputs().as_deref(),
        Some(r#"inputs {"name":"******"}"#),
        "listeners are shown the inputs again once the secret is registered"
    );
}

#[test]
fn later_tasks_see_real_values_while_readers_see_the_mask() {
    let yaml = for_each_over_secret(
        "      - id: out\n        type: io.kestra.plugin.core.debug.Return\n        format: \"{{ taskrun.value }}\"\n",
        &format!(
            "  - id: count\n    type: {LOG}\n    message: \"{{{{ outputs.out | keys | length }}}}\"\n"
        ),
    );
    let seen = Seen::default();
    let execution = run(
        &yaml,
        &[("A", "alpha-first,bravo-second")],
        &[],
        None,
        &seen,
    );
    assert_eq!(execution.logs.last().unwrap().message, "2");
    assert_hidden(&execution, &seen, &["alpha-first", "bravo-second"]);
}
