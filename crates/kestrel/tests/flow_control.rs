//! `kestrel run` of flows with inputs, flowable tasks, retries and outputs: what the JSON
//! document shows, what stays masked, and Ctrl-C stopping every branch.

#![allow(clippy::unwrap_used)] // Test code: a failure is a failed test.

mod util;

use serde_json::{Value, json};
use std::process::Stdio;
use std::time::{Duration, Instant};
use util::{MASK, Sandbox};

/// `(taskId, state)` of each task run of the JSON document, in order.
fn states(document: &Value) -> Vec<(String, String)> {
    document["taskRuns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|run| {
            let id = run["taskId"].as_str().unwrap().to_owned();
            (id, run["state"].as_str().unwrap().to_owned())
        })
        .collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

const INPUTS_FLOW: &str = "id: typed
namespace: dev
inputs:
  - id: name
    type: STRING
  - id: count
    type: INT
    defaults: 2
  - id: ratio
    type: FLOAT
    required: false
  - id: loud
    type: BOOLEAN
    defaults: false
  - id: config
    type: JSON
  - id: token
    type: SECRET
tasks:
  - id: show
    type: io.kestra.plugin.core.log.Log
    message: \"{{ inputs.name }} {{ inputs.count * 10 }} {{ inputs.ratio }} {{ inputs.loud }} {{ inputs.config.env }} {{ inputs.token }}\"
  - id: keep
    type: io.kestra.plugin.core.debug.Return
    format: \"Bearer {{ inputs.token }}\"
outputs:
  - id: header
    type: STRING
    value: \"{{ outputs.keep.value }}\"
  - id: total
    type: INT
    value: \"{{ inputs.count * 10 }}\"
";

#[test]
fn inputs_come_inline_from_files_and_stdin_and_the_flow_outputs_are_shown() {
    let sandbox = Sandbox::new();
    sandbox.write("flow.yml", INPUTS_FLOW);
    sandbox.write("config.json", r#"{"env": "prod"}"#);
    let out = sandbox
        .kestrel([
            "run",
            "flow.yml",
            "--output",
            "json",
            "--input",
            "name=Ada",
            "--input",
            "loud=true",
            "--input",
            "config=@config.json",
            "--input",
            "token=-",
        ])
        .stdin("tok-3141592653")
        .output();
    out.assert_code(0).assert_hides("tok-3141592653");
    assert_eq!(out.messages(), [format!("Ada 20  true prod {MASK}")]);
    let document = out.json();
    assert_eq!(
        document["outputs"],
        json!({"header": format!("Bearer {MASK}"), "total": 20})
    );
}

#[test]
fn a_secret_input_given_inline_runs_nothing() {
    let sandbox = Sandbox::new();
    sandbox.write("flow.yml", INPUTS_FLOW);
    let out = sandbox
        .kestrel([
            "run",
            "flow.yml",
            "--input",
            "name=Ada",
            "--input",
            "config={}",
            "--input",
            "token=tok-3141592653",
        ])
        .output();
    out.assert_code(2);
    assert_eq!(out.stdout, "");
    assert!(out.stderr.contains("'token'"), "{out:#?}");
}

#[test]
fn a_missing_or_mistyped_input_is_named_and_runs_nothing() {
    let sandbox = Sandbox::new();
    sandbox.write("flow.yml", INPUTS_FLOW);
    sandbox.write("token.txt", "tok-3141592653");
    let missing = sandbox
        .kestrel(["run", "flow.yml", "--input", "token=@token.txt"])
        .output();
    missing.assert_code(2);
    assert!(missing.stderr.contains("'name'"), "{missing:#?}");
    let mistyped = sandbox
        .kestrel([
            "run",
            "flow.yml",
            "--input",
            "token=@token.txt",
            "--input",
            "name=a",
            "--input",
            "config={}",
            "--input",
            "count=lots",
        ])
        .output();
    mistyped.assert_code(2).assert_hides("tok-3141592653");
    assert!(
        mistyped.stderr.contains("invalid input 'count'"),
        "{mistyped:#?}"
    );
    assert_eq!(mistyped.stdout, "");
}

const NESTED_FLOW: &str = "id: nested
namespace: dev
tasks:
  - id: par
    type: io.kestra.plugin.core.flow.Parallel
    concurrent: 2
    tasks:
      - id: each
        type: io.kestra.plugin.core.flow.ForEach
        values: [\"x\", \"y\"]
        tasks:
          - id: item
            type: io.kestra.plugin.core.debug.Return
            format: \"item {{ taskrun.value }}\"
      - id: check
        type: io.kestra.plugin.core.flow.If
        condition: \"{{ 1 > 2 }}\"
        then:
          - id: never
            type: io.kestra.plugin.core.log.Log
            message: no
        else:
          - id: otherwise
            type: io.kestra.plugin.core.log.Log
            message: else branch
  - id: skipped
    type: io.kestra.plugin.core.log.Log
    message: x
    runIf: \"{{ false }}\"
  - id: last
    type: io.kestra.plugin.core.log.Log
    message: \"{{ outputs.item.y.value }}\"
outputs:
  - id: items
    type: JSON
    value: '[\"{{ outputs.item.x.value }}\", \"{{ outputs.item.y.value }}\"]'
";

#[test]
fn nested_task_runs_are_listed_with_their_parent_and_value() {
    let out = Sandbox::new().run_json(NESTED_FLOW, &[]);
    out.assert_code(0);
    let document = out.json();
    let mut listed = states(&document);
    // The Parallel's branches run at once: their task runs interleave in whichever order the
    // branches' renders end, so they are compared in no particular order.
    listed[1..6].sort();
    assert_eq!(
        listed,
        pairs(&[
            ("par", "SUCCESS"),
            ("check", "SUCCESS"),
            ("each", "SUCCESS"),
            ("item", "SUCCESS"),
            ("item", "SUCCESS"),
            ("otherwise", "SUCCESS"),
            ("skipped", "SKIPPED"),
            ("last", "SUCCESS"),
        ])
    );
    let runs = document["taskRuns"].as_array().unwrap();
    let run = |task_id: &str| {
        let found = runs.iter().find(|run| run["taskId"] == task_id);
        found.unwrap_or_else(|| panic!("no task run of {task_id}"))
    };
    assert_eq!(run("each")["parentTaskRunId"], run("par")["id"]);
    assert_eq!(run("check")["parentTaskRunId"], run("par")["id"]);
    assert_eq!(run("otherwise")["parentTaskRunId"], run("check")["id"]);
    let items: Vec<&Value> = runs.iter().filter(|run| run["taskId"] == "item").collect();
    assert!(
        items
            .iter()
            .all(|item| item["parentTaskRunId"] == run("each")["id"])
    );
    let values: Vec<&Value> = items.iter().map(|item| &item["value"]).collect();
    assert_eq!(values, [&json!("x"), &json!("y")]);
    assert_eq!(run("skipped").get("parentTaskRunId"), None);
    assert_eq!(out.messages(), ["else branch", "item y"]);
    assert_eq!(document["outputs"], json!({"items": ["item x", "item y"]}));
}

#[test]
fn retried_attempts_are_kept_and_the_last_one_is_shown() {
    let flow = "id: flaky
namespace: dev
tasks:
  - id: flaky
    type: io.kestra.plugin.core.log.Log
    message: \"{{ taskrun.attemptsCount > 1 ? 'made it' : missing_variable }}\"
    retry:
      type: exponential
      interval: PT0.01S
      maxInterval: PT0.02S
      maxAttempts: 5
";
    let out = Sandbox::new().run_json(flow, &[]);
    out.assert_code(0);
    let document = out.json();
    let run = &document["taskRuns"][0];
    assert_eq!(run["state"], "SUCCESS");
    assert_eq!(run.get("error"), None);
    let attempts: Vec<&str> = run["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|attempt| attempt["state"].as_str().unwrap())
        .collect();
    assert_eq!(attempts, ["FAILED", "FAILED", "SUCCESS"]);
    let levels: Vec<&str> = document["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["level"].as_str().unwrap())
        .collect();
    assert_eq!(levels, ["ERROR", "ERROR", "INFO"]);
}

#[test]
fn a_timeout_fails_the_run_naming_the_duration() {
    let flow = "id: slow
namespace: dev
tasks:
  - id: slow
    type: io.kestra.plugin.scripts.shell.Commands
    commands: [\"sleep 30\"]
    timeout: PT0.3S
";
    let out = Sandbox::new().run_json(flow, &[]);
    out.assert_code(1);
    assert_eq!(
        out.json()["taskRuns"][0]["error"],
        "Timeout after 00:00:00.300"
    );
}

#[test]
fn a_bad_trigger_is_reported_where_it_is_written() {
    let sandbox = Sandbox::new();
    sandbox.write(
        "flow.yml",
        "id: f\nnamespace: dev\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.log.Log\n    message: x\ntriggers:\n  - id: s\n    type: io.kestra.plugin.core.trigger.Schedule\n    cron: \"0 25 * * *\"\n  - id: w\n    type: io.kestra.plugin.core.trigger.Nope\n",
    );
    let out = sandbox.kestrel(["validate", "flow.yml"]).output();
    out.assert_code(2);
    assert!(
        out.stderr.contains(
            "flow.yml:10:11: triggers[0].cron: invalid cron expression '0 25 * * *': hour field '25'"
        ),
        "{out:#?}"
    );
    assert!(
        out.stderr
            .contains("flow.yml:12:11: Invalid type: io.kestra.plugin.core.trigger.Nope"),
        "{out:#?}"
    );
}

#[cfg(unix)]
#[test]
fn ctrl_c_kills_every_parallel_branch() {
    let sandbox = Sandbox::new();
    let marks = sandbox.path("marks");
    std::fs::create_dir(&marks).unwrap();
    let branch = |n: u32| {
        format!(
            "      - id: long{n}\n        type: io.kestra.plugin.scripts.shell.Commands\n        commands: [\"touch {}/{n}; sleep 30\"]\n",
            marks.display()
        )
    };
    let flow = format!(
        "id: par\nnamespace: dev\ntasks:\n  - id: par\n    type: io.kestra.plugin.core.flow.Parallel\n    tasks:\n{}{}{}",
        branch(1),
        branch(2),
        branch(3)
    );
    sandbox.write("flow.yml", &flow);
    let mut invocation = sandbox.kestrel(["run", "flow.yml", "--output", "json"]);
    let child = invocation
        .command()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Every branch has started once each wrote its mark.
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::read_dir(&marks).unwrap().count() < 3 {
        assert!(Instant::now() < deadline, "the branches never all started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130));
    let document: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(document["state"], "KILLED");
    assert_eq!(
        states(&document),
        pairs(&[
            ("par", "KILLED"),
            ("long1", "KILLED"),
            ("long2", "KILLED"),
            ("long3", "KILLED"),
        ])
    );
}

#[test]
fn secrets_in_fail_messages_switch_values_and_output_values_stay_masked() {
    let sandbox = Sandbox::new();
    let flow = "id: core
namespace: dev
tasks:
  - id: pick
    type: io.kestra.plugin.core.flow.Switch
    value: \"{{ secret('API_TOKEN') }}\"
    cases:
      other:
        - id: never
          type: io.kestra.plugin.core.debug.Return
    defaults:
      - id: keep
        type: io.kestra.plugin.core.output.OutputValues
        values:
          token: \"{{ secret('API_TOKEN') }}\"
          nested: [\"Bearer {{ secret('API_TOKEN') }}\"]
      - id: stop
        type: io.kestra.plugin.core.execution.Fail
        errorMessage: \"refused {{ secret('API_TOKEN') }}\"
";
    let out = sandbox.run_json(
        flow,
        &[("SECRET_API_TOKEN", &util::base64("tok-2718281828"))],
    );
    out.assert_code(1).assert_hides("tok-2718281828");
    let document = out.json();
    assert_eq!(
        states(&document),
        pairs(&[("pick", "FAILED"), ("keep", "SUCCESS"), ("stop", "FAILED")])
    );
    assert_eq!(document["taskRuns"][0]["outputs"]["value"], MASK);
    assert_eq!(document["taskRuns"][1]["outputs"]["values"]["token"], MASK);
    assert!(
        out.messages()
            .iter()
            .any(|m| m == &format!("refused {MASK}"))
    );
}

const KESTRA_INPUTS_FLOW: &str = "id: kinds
namespace: dev
inputs:
  - id: env
    type: ENUM
    values: [dev, prod]
  - id: at
    type: DATETIME
    after: \"2024-01-01T00:00:00Z\"
  - id: wait
    type: DURATION
    defaults: PT90S
  - id: ports
    type: ARRAY
    itemType: INT
  - id: teams
    type: MULTISELECT
    values: [data, platform]
  - id: config
    type: YAML
    defaults: |
      retries: 3
  - id: owner
    type: EMAIL
  - id: day
    type: DATE
    required: false
tasks:
  - id: show
    type: io.kestra.plugin.core.debug.Return
    format: \"{{ inputs.env }} {{ inputs.at }} {{ inputs.wait }} {{ inputs.ports[1] + 1 }} {{ inputs.teams | join(',') }} {{ inputs.config.retries }} {{ inputs.owner }}\"
";

#[test]
fn every_kestra_input_type_but_file_is_read_and_checked() {
    let sandbox = Sandbox::new();
    sandbox.write("flow.yml", KESTRA_INPUTS_FLOW);
    let args = |env: &str| {
        vec![
            "run".to_owned(),
            "flow.yml".into(),
            "--output".into(),
            "json".into(),
            "--input".into(),
            format!("env={env}"),
            "--input".into(),
            "at=2024-05-01T12:00:00+02:00".into(),
            "--input".into(),
            "ports=[80, 443]".into(),
            "--input".into(),
            "teams=[\"data\"]".into(),
            "--input".into(),
            "owner=ada@example.com".into(),
        ]
    };
    let out = sandbox.kestrel(args("prod")).output();
    out.assert_code(0);
    let document = out.json();
    assert_eq!(
        document["taskRuns"][0]["outputs"]["value"],
        "prod 2024-05-01T10:00:00Z PT1M30S 444 data 3 ada@example.com"
    );

    let refused = sandbox.kestrel(args("tok-1618033988")).output();
    refused.assert_code(2).assert_hides("tok-1618033988");
    assert!(
        refused
            .stderr
            .contains("invalid input 'env': it must match the values `[dev, prod]`"),
        "{refused:#?}"
    );
}
