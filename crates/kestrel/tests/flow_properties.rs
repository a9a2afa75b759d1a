//! The flow properties around its tasks, through `kestrel run`: `finally` runs after `tasks`
//! and `errors` whatever happened, `afterExecution` once the state is final, which it does not
//! change. Kestra's test flows at the snapshot the fixtures come from have neither, so these
//! follow the semantics Kestra documents (docs/compatibility.md).

#![allow(clippy::unwrap_used)] // Test code: a failure is a failed test.

mod util;

use serde_json::Value;
use util::Sandbox;

const LOG: &str = "io.kestra.plugin.core.log.Log";
const FAIL: &str = "io.kestra.plugin.core.execution.Fail";

/// The JSON document of a run of a flow whose task lists are `lists` (YAML lines).
fn run(lists: &str) -> Value {
    let yaml = format!("id: props\nnamespace: dev\n{lists}");
    Sandbox::new().run_json(&yaml, &[]).json()
}

/// A task list `key` of one task per `(id, type)`, a Log logging its id.
fn list(key: &str, tasks: &[(&str, &str)]) -> String {
    let mut yaml = format!("{key}:\n");
    for (id, kind) in tasks {
        yaml.push_str(&format!("  - id: {id}\n    type: {kind}\n"));
        if *kind == LOG {
            yaml.push_str(&format!("    message: {id}\n"));
        }
    }
    yaml
}

/// Each task run as `id STATE`, in order.
fn runs(document: &Value) -> Vec<String> {
    document["taskRuns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|run| {
            format!(
                "{} {}",
                run["taskId"].as_str().unwrap(),
                run["state"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn finally_runs_after_tasks_that_succeed() {
    let document = run(&[
        list("tasks", &[("a", LOG)]),
        list("finally", &[("cleanup", LOG)]),
    ]
    .concat());
    assert_eq!(document["state"], "SUCCESS");
    assert_eq!(runs(&document), ["a SUCCESS", "cleanup SUCCESS"]);
}

#[test]
fn finally_runs_after_errors_and_the_failure_stays() {
    let document = run(&[
        list("tasks", &[("fail", FAIL), ("never", LOG)]),
        list("errors", &[("alert", LOG)]),
        list("finally", &[("cleanup", LOG)]),
    ]
    .concat());
    assert_eq!(document["state"], "FAILED");
    assert_eq!(
        runs(&document),
        ["fail FAILED", "alert SUCCESS", "cleanup SUCCESS"]
    );
}

#[test]
fn a_failure_in_finally_fails_the_execution() {
    let document = run(&[
        list("tasks", &[("a", LOG)]),
        list("finally", &[("broken", FAIL), ("next", LOG)]),
    ]
    .concat());
    assert_eq!(document["state"], "FAILED");
    assert_eq!(runs(&document), ["a SUCCESS", "broken FAILED"]);
}

#[test]
fn after_execution_sees_the_final_state_and_cannot_change_it() {
    let after = concat!(
        "afterExecution:\n",
        "  - id: onSuccess\n    type: io.kestra.plugin.core.log.Log\n",
        "    runIf: \"{{ execution.state == 'SUCCESS' }}\"\n    message: ok\n",
        "  - id: onFailure\n    type: io.kestra.plugin.core.log.Log\n",
        "    runIf: \"{{ execution.state == 'FAILED' }}\"\n    message: \"{{ execution.state }}\"\n",
        "  - id: broken\n    type: io.kestra.plugin.core.execution.Fail\n",
    );
    let succeeded = run(&[list("tasks", &[("a", LOG)]), after.to_owned()].concat());
    assert_eq!(succeeded["state"], "SUCCESS");
    assert_eq!(
        runs(&succeeded),
        [
            "a SUCCESS",
            "onSuccess SUCCESS",
            "onFailure SKIPPED",
            "broken FAILED"
        ]
    );

    let failed = run(&[list("tasks", &[("fail", FAIL)]), after.to_owned()].concat());
    assert_eq!(failed["state"], "FAILED");
    assert_eq!(
        runs(&failed),
        [
            "fail FAILED",
            "onSuccess SKIPPED",
            "onFailure SUCCESS",
            "broken FAILED"
        ]
    );
    let logs = failed["logs"].to_string();
    assert!(
        logs.contains(r#""taskId":"onFailure","level":"INFO","message":"FAILED""#),
        "{logs}"
    );
}
