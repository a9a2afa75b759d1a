//! Subflows on the server: a Subflow task starts a stored flow as a stored execution of its
//! own, in its own namespace, and takes its state and outputs masked.

#![allow(clippy::unwrap_used)] // Test code: a failure is a failed test.

mod common;

use common::harness_with;
use serde_json::Value;

const SECRET: &str = "team-b-only-secret-5521";

const CHILD: &str = "id: child\nnamespace: team.b\ninputs:\n  - id: who\n    type: STRING\ntasks:\n  - id: hello\n    type: io.kestra.plugin.core.log.Log\n    message: \"hello {{ inputs.who }}, {{ secret('B') }}\"\noutputs:\n  - id: leak\n    type: STRING\n    value: \"{{ secret('B') }}\"\n";

const PARENT: &str = "id: parent\nnamespace: team.a\ntasks:\n  - id: launch\n    type: io.kestra.plugin.core.flow.Subflow\n    namespace: team.b\n    flowId: child\n    inputs:\n      who: ada\n  - id: show\n    type: io.kestra.plugin.core.debug.Return\n    format: \"{{ outputs.launch.outputs.leak }}\"\n";

fn labels(execution: &Value) -> Vec<String> {
    let mut labels: Vec<String> = execution["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            format!(
                "{}={}",
                l["key"].as_str().unwrap(),
                l["value"].as_str().unwrap()
            )
        })
        .collect();
    labels.sort();
    labels
}

/// One worker slot: the parent holds it while it waits, and the child runs in it.
#[tokio::test]
async fn a_subflow_is_a_stored_execution_of_its_own_flow_and_namespace() {
    let h = harness_with(|options| options.worker_threads = 1).await;
    h.secret("team.b", "B", SECRET).await;
    h.flow(CHILD).await;
    h.flow(PARENT).await;
    let parent = h.run("team.a", "parent").await;
    assert_eq!(parent["state"]["current"], "SUCCESS", "{parent}");
    let runs = parent["taskRunList"].as_array().unwrap();
    let launch = &runs[0]["outputs"];
    assert_eq!(launch["state"], "SUCCESS");
    assert_eq!(launch["outputs"]["leak"], "******");
    assert_eq!(runs[1]["outputs"]["value"], "******");

    let child = h.execution(launch["executionId"].as_str().unwrap()).await;
    assert_eq!(
        (
            &child["namespace"],
            &child["flowId"],
            &child["state"]["current"]
        ),
        (&"team.b".into(), &"child".into(), &"SUCCESS".into())
    );
    let parent_id = parent["id"].as_str().unwrap();
    assert_eq!(
        labels(&child),
        [format!("system.correlationId={parent_id}")]
    );
    let logs = h
        .get(
            &format!("/api/v1/main/logs/{}", child["id"].as_str().unwrap()),
            common::Who::Admin,
        )
        .await
        .json();
    assert_eq!(logs[0]["message"], "hello ada, ******");
    h.assert_never_answered(&[SECRET]);
}

#[tokio::test]
async fn a_missing_subflow_fails_the_task_naming_the_flow() {
    let h = harness_with(|_| {}).await;
    h.flow(PARENT).await;
    let parent = h.run("team.a", "parent").await;
    assert_eq!(parent["state"]["current"], "FAILED");
    let error = parent["taskRunList"][0]["error"].as_str().unwrap();
    assert_eq!(
        error,
        "Unable to find flow 'team.b'.'child' with revision '0'"
    );
}
