//! A flow's inputs of every type, and its `outputs` rendered at the end.

#![allow(clippy::unwrap_used)] // Test code: a failure is a failed test.

mod control;

use control::{MASK, flow, messages, run};
use kestrel_engine::{Inputs, State};
use kestrel_secrets::SecretValue;
use serde_json::json;

const LOG: &str = "io.kestra.plugin.core.log.Log";
const RETURN: &str = "io.kestra.plugin.core.debug.Return";

const EVERY_TYPE: &str = "inputs:
  - id: s
    type: STRING
    defaults: hello
  - id: i
    type: INT
    defaults: 3
  - id: f
    type: FLOAT
    defaults: 1.5
  - id: b
    type: BOOLEAN
    defaults: false
  - id: j
    type: JSON
    defaults: {\"k\": [1, 2]}
  - id: pw
    type: SECRET
    required: false
";

fn show_inputs() -> String {
    format!(
        "  - id: show\n    type: {LOG}\n    message: \"{{{{ inputs.s }}}} {{{{ inputs.i + 1 }}}} {{{{ inputs.f * 2 }}}} {{{{ inputs.b }}}} {{{{ inputs.j.k[1] }}}} {{{{ inputs.pw }}}}\"\n"
    )
}

#[test]
fn inputs_of_every_type_take_their_defaults() {
    let execution = run(&flow(&show_inputs(), EVERY_TYPE), &[]);
    assert_eq!(execution.state, State::Success, "{:?}", execution.logs);
    assert_eq!(messages(&execution, "show"), ["hello 4 3.0 false 2 "]);
}

#[test]
fn given_inputs_are_typed_and_secret_ones_masked() {
    let given = [
        ("s", "bye"),
        ("i", "41"),
        ("f", "0.25"),
        ("b", "true"),
        ("j", r#"{"k": ["x", "y"]}"#),
        ("pw", "correct-horse"),
    ];
    let execution = run(&flow(&show_inputs(), EVERY_TYPE), &given);
    assert_eq!(
        messages(&execution, "show"),
        [format!("bye 42 0.5 true y {MASK}")]
    );
    assert!(!format!("{execution:?}").contains("correct-horse"));
}

#[test]
fn bad_inputs_are_refused_naming_the_input() {
    let parsed = kestrel_flow::parse_flow(&flow(&show_inputs(), EVERY_TYPE)).unwrap();
    let try_parse = |pairs: &[(&str, &str)]| {
        let raw = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), SecretValue::new(v.to_string())));
        Inputs::parse(&parsed.inputs, raw).unwrap_err().to_string()
    };
    assert_eq!(
        try_parse(&[("i", "4.5")]),
        "invalid input 'i': expected an INT"
    );
    assert_eq!(
        try_parse(&[("f", "x")]),
        "invalid input 'f': expected a FLOAT"
    );
    assert_eq!(
        try_parse(&[("b", "yes")]),
        "invalid input 'b': expected a BOOLEAN (true or false)"
    );
    assert!(try_parse(&[("j", "{")]).starts_with("invalid input 'j': expected JSON"));
    assert_eq!(
        try_parse(&[("nope", "1")]),
        "invalid input 'nope': the flow has no such input"
    );
    let required = kestrel_flow::parse_flow(&flow(
        &show_inputs(),
        "inputs:\n  - id: needed\n    type: STRING\n",
    ))
    .unwrap();
    let missing = Inputs::parse(&required.inputs, Vec::new()).unwrap_err();
    assert_eq!(
        missing.to_string(),
        "invalid input 'needed': missing required"
    );
}

#[test]
fn flow_outputs_are_rendered_typed_and_masked() {
    let tasks = format!(
        "  - id: first\n    type: {RETURN}\n    format: \"{{{{ inputs.n * 2 }}}}\"\n  - id: second\n    type: {RETURN}\n    format: \"token {{{{ inputs.pw }}}}\"\n"
    );
    let rest = "inputs:
  - id: n
    type: INT
  - id: pw
    type: SECRET
outputs:
  - id: doubled
    type: INT
    value: \"{{ outputs.first.value }}\"
  - id: both
    type: JSON
    value: '{\"n\": {{ outputs.first.value }}, \"label\": \"{{ flow.id }}\"}'
  - id: leaked
    type: STRING
    value: \"{{ outputs.second.value }}\"
  - id: listed
    value: [\"{{ inputs.n }}\", 1]
";
    let execution = run(&flow(&tasks, rest), &[("n", "21"), ("pw", "sesame-secret")]);
    assert_eq!(execution.state, State::Success, "{:?}", execution.logs);
    assert_eq!(
        serde_json::Value::Object(execution.outputs.clone()),
        json!({
            "doubled": 42,
            "both": {"n": 42, "label": "f"},
            "leaked": format!("token {MASK}"),
            "listed": ["21", 1],
        })
    );
}

#[test]
fn an_output_that_does_not_render_fails_the_execution() {
    let tasks = format!("  - id: t\n    type: {RETURN}\n    format: x\n");
    let rest = "outputs:\n  - id: n\n    type: INT\n    value: \"{{ outputs.t.value }}\"\n";
    let execution = run(&flow(&tasks, rest), &[]);
    assert_eq!(execution.state, State::Failed);
    assert!(execution.outputs.is_empty());
    let last = execution.logs.last().unwrap();
    assert_eq!(
        last.message,
        "Failed to render output values: output 'n': expected an INT, got 'x'"
    );
}

#[test]
fn a_failed_execution_has_no_outputs() {
    let tasks = format!("  - id: t\n    type: {LOG}\n    message: \"{{{{ nope }}}}\"\n");
    let rest = "outputs:\n  - id: o\n    type: STRING\n    value: x\n";
    let execution = run(&flow(&tasks, rest), &[]);
    assert_eq!(execution.state, State::Failed);
    assert!(execution.outputs.is_empty());
}
