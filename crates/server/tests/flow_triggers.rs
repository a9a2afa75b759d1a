//! Flow triggers in a running server: an execution's end starts the executions of the flows
//! listening to it, with their inputs rendered from it and its `trigger` variables; conditions
//! and multiple conditions decide which. A triggered execution exists before the end that
//! triggered it can be seen, so counts are exact once the executions seen have ended.

#![allow(clippy::unwrap_used)] // Test code: a failure is a failed test.

mod common;

use common::{Harness, Who, harness};
use serde_json::Value;

/// Kestra's test flows (see crates/kestrel/tests/kestra/NOTICE).
macro_rules! kestra_flow {
    ($name:literal) => {
        include_str!(concat!("../../kestrel/tests/kestra/flows/", $name))
    };
}

/// The executions of `namespace`.`flow_id`, newest first.
async fn executions(h: &Harness, namespace: &str, flow_id: &str) -> Vec<Value> {
    let path =
        format!("/api/v1/main/executions/search?namespace={namespace}&flowId={flow_id}&size=100");
    let found = h.get(&path, Who::Admin).await.json();
    found["results"].as_array().unwrap().clone()
}

/// The executions of a flow, each once it ended.
async fn ended_executions(h: &Harness, namespace: &str, flow_id: &str) -> Vec<Value> {
    let mut ended = Vec::new();
    for execution in executions(h, namespace, flow_id).await {
        ended.push(h.ended(execution["id"].as_str().unwrap()).await);
    }
    ended
}

/// A server with `flows` stored.
async fn harness_with_flows(flows: &[&str]) -> Harness {
    let h = harness().await;
    for flow in flows {
        h.flow(flow).await;
    }
    h
}

/// Runs the flows `before` of `namespace`, checks `listener` did not fire, runs `last` and
/// answers the one ended execution of `listener` that it fired.
async fn fired_by_the_last(
    h: &Harness,
    namespace: &str,
    listener: &str,
    before: &[&str],
    last: &str,
) -> Value {
    for flow in before {
        h.run(namespace, flow).await;
    }
    assert!(executions(h, namespace, listener).await.is_empty());
    h.run(namespace, last).await;
    let fired = ended_executions(h, namespace, listener).await;
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(fired[0]["state"]["current"], "SUCCESS");
    fired[0].clone()
}

/// The output `value` of the execution's first task run.
fn first_value(execution: &Value) -> &Value {
    &execution["taskRunList"][0]["outputs"]["value"]
}

/// FlowTriggerCaseTest.trigger: the listener gets the parent's output as its input.
#[tokio::test]
async fn kestras_listeners_run_with_the_parents_output_and_trigger_variables() {
    let h = harness_with_flows(&[
        kestra_flow!("trigger-flow.yaml"),
        kestra_flow!("trigger-flow-listener.yaml"),
        kestra_flow!("trigger-flow-listener-no-inputs.yaml"),
        kestra_flow!("trigger-flow-listener-invalid.yaml"),
        kestra_flow!("trigger-flow-listener-namespace-condition.yaml"),
    ])
    .await;
    let parent = h.run("io.kestra.tests.trigger", "trigger-flow").await;
    assert_eq!(parent["state"]["current"], "SUCCESS", "{parent}");
    let parent_id = parent["id"].as_str().unwrap();
    let ns = "io.kestra.tests.trigger";

    let listener = ended_executions(&h, ns, "trigger-flow-listener").await;
    assert_eq!(listener.len(), 1, "one end, one execution: {listener:?}");
    let listener = &listener[0];
    assert_eq!(listener["state"]["current"], "SUCCESS", "{listener}");
    assert_eq!(
        *first_value(listener),
        format!("childs: from parents: {parent_id}")
    );
    assert_eq!(
        listener["inputs"]["from-parent"],
        format!("from parents: {parent_id}")
    );

    // Its task returns `trigger.executionId` (the API does not show the trigger variables).
    let no_inputs = ended_executions(&h, ns, "trigger-flow-listener-no-inputs").await;
    assert_eq!(no_inputs.len(), 1);
    assert_eq!(no_inputs[0]["state"]["current"], "SUCCESS");
    assert_eq!(*first_value(&no_inputs[0]), format!("v1: {parent_id}"));

    // `outputs.invalid` does not exist: its inputs do not render, nothing starts (as in Kestra).
    assert!(
        executions(&h, ns, "trigger-flow-listener-invalid")
            .await
            .is_empty()
    );
    // Every SUCCESS end in its namespace but its own fires it: trigger-flow's and both
    // listeners' (ended above). Its required input `from-parent`, which its trigger does not
    // give, is null, as in Kestra.
    let by_namespace = ended_executions(&h, ns, "trigger-flow-listener-namespace-condition").await;
    assert_eq!(by_namespace.len(), 3, "{by_namespace:?}");
    for execution in &by_namespace {
        assert_eq!(execution["state"]["current"], "SUCCESS", "{execution}");
        assert_eq!(execution["inputs"]["from-parent"], Value::Null);
    }
}

const UPSTREAM_OK: &str = "id: up\nnamespace: team.sub\ntasks:\n  - id: only\n    type: io.kestra.plugin.core.debug.Return\n    format: ok\n";

const UPSTREAM_FAILS: &str = "id: down\nnamespace: team\ntasks:\n  - id: fail\n    type: io.kestra.plugin.core.execution.Fail\n";

const ELSEWHERE: &str = "id: other\nnamespace: elsewhere\ntasks:\n  - id: only\n    type: io.kestra.plugin.core.debug.Return\n    format: ok\n";

/// A listener in `watch` whose trigger has `conditions` (YAML, indented by six).
fn listener(id: &str, conditions: &str) -> String {
    format!(
        "id: {id}\nnamespace: watch\ntasks:\n  - id: said\n    type: io.kestra.plugin.core.debug.Return\n    format: \"{{{{ trigger.flowId }}}} {{{{ trigger.state }}}} {{{{ trigger.executionId }}}}\"\ntriggers:\n  - id: listen\n    type: io.kestra.plugin.core.trigger.Flow\n    conditions:\n{conditions}"
    )
}

#[tokio::test]
async fn namespace_and_status_conditions_choose_the_executions_that_fire() {
    let h = harness_with_flows(&[UPSTREAM_OK, UPSTREAM_FAILS, ELSEWHERE]).await;
    h.flow(&listener(
        "team-ok",
        "      - type: io.kestra.plugin.core.condition.ExecutionNamespace\n        namespace: team\n        comparison: PREFIX\n      - type: io.kestra.plugin.core.condition.ExecutionStatus\n        notIn: [FAILED]\n",
    ))
    .await;
    let up = h.run("team.sub", "up").await;
    for (namespace, flow) in [("team", "down"), ("elsewhere", "other")] {
        h.run(namespace, flow).await;
    }
    let fired = ended_executions(&h, "watch", "team-ok").await;
    assert_eq!(fired.len(), 1, "only team.sub.up fires: {fired:?}");
    let said = format!("up SUCCESS {}", up["id"].as_str().unwrap());
    assert_eq!(*first_value(&fired[0]), said);
}

#[tokio::test]
async fn a_failed_execution_does_not_fire_a_success_only_trigger() {
    let h = harness().await;
    h.flow(UPSTREAM_FAILS).await;
    let on = |state: &str| {
        format!(
            "      - type: io.kestra.plugin.core.condition.ExecutionStatus\n        in: [{state}]\n      - type: io.kestra.plugin.core.condition.ExecutionFlow\n        namespace: team\n        flowId: down\n"
        )
    };
    h.flow(&listener("on-success", &on("SUCCESS"))).await;
    h.flow(&listener("on-failure", &on("FAILED"))).await;
    let ended = h.run("team", "down").await;
    assert_eq!(ended["state"]["current"], "FAILED");
    assert!(executions(&h, "watch", "on-success").await.is_empty());
    let failure = ended_executions(&h, "watch", "on-failure").await;
    assert_eq!(failure.len(), 1);
    let said = format!("down FAILED {}", ended["id"].as_str().unwrap());
    assert_eq!(*first_value(&failure[0]), said);
}

/// MultipleConditionTriggerCaseTest.trigger: the listener fires once both flows ended within
/// the window, on the second one's end (it exists as soon as that end is seen), and not again
/// for one of them alone.
#[tokio::test]
async fn a_multiple_condition_fires_once_all_its_conditions_were_met() {
    let h = harness_with_flows(&[
        kestra_flow!("trigger-multiplecondition-flow-a.yaml"),
        kestra_flow!("trigger-multiplecondition-flow-b.yaml"),
        kestra_flow!("trigger-multiplecondition-listener.yaml"),
    ])
    .await;
    let ns = "io.kestra.tests.trigger";
    let listener = "trigger-multiplecondition-listener";
    let a = "trigger-multiplecondition-flow-a";
    fired_by_the_last(&h, ns, listener, &[a], "trigger-multiplecondition-flow-b").await;
    h.run(ns, a).await;
    assert_eq!(
        executions(&h, ns, listener).await.len(),
        1,
        "the window reset when it fired"
    );
}

/// MultipleConditionTriggerCaseTest.flowTriggerPreconditions: `flows` and `where` entries
/// (flow-a's label read by an EXPRESSION filter) met by flow-a then flow-b fire the listener.
#[tokio::test]
async fn preconditions_fire_once_their_flows_and_filters_were_met() {
    let h = harness_with_flows(&[
        kestra_flow!("flow-trigger-preconditions-flow-a.yaml"),
        kestra_flow!("flow-trigger-preconditions-flow-b.yaml"),
        kestra_flow!("flow-trigger-preconditions-flow-listen.yaml"),
    ])
    .await;
    let ns = "io.kestra.tests.trigger.preconditions";
    let listen = "flow-trigger-preconditions-flow-listen";
    let a = "flow-trigger-preconditions-flow-a";
    let b = "flow-trigger-preconditions-flow-b";
    let fired = fired_by_the_last(&h, ns, listen, &[a, a], b).await;
    assert_eq!(*first_value(&fired), "It works");
}

#[tokio::test]
async fn a_secret_in_the_upstream_output_reaches_the_listener_masked() {
    let h = harness().await;
    let secret = "s3cr3t-Upstream-Value-91";
    h.secret("team", "TOKEN", secret).await;
    h.flow("id: leaky\nnamespace: team\ntasks:\n  - id: only\n    type: io.kestra.plugin.core.debug.Return\n    format: \"{{ secret('TOKEN') }}\"\n")
        .await;
    h.flow("id: catcher\nnamespace: watch\ninputs:\n  - id: got\n    type: STRING\ntasks:\n  - id: said\n    type: io.kestra.plugin.core.debug.Return\n    format: \"{{ inputs.got }}\"\ntriggers:\n  - id: listen\n    type: io.kestra.plugin.core.trigger.Flow\n    inputs:\n      got: \"{{ outputs.only.value }}\"\n    conditions:\n      - type: io.kestra.plugin.core.condition.ExecutionFlow\n        namespace: team\n        flowId: leaky\n")
        .await;
    h.run("team", "leaky").await;
    let caught = ended_executions(&h, "watch", "catcher").await;
    assert_eq!(caught.len(), 1);
    assert_eq!(caught[0]["state"]["current"], "SUCCESS");
    let logs = h
        .get(
            &format!("/api/v1/main/logs/{}", caught[0]["id"].as_str().unwrap()),
            Who::Admin,
        )
        .await;
    assert!(!logs.text.contains(secret));
    h.assert_never_answered(&[secret]);
}

/// ExecutionControllerTest.webhookWithCondition: a call whose body fails the condition starts
/// nothing and answers 204.
#[tokio::test]
async fn a_webhook_starts_an_execution_only_when_its_condition_holds() {
    let h = harness().await;
    h.flow(kestra_flow!("webhook-with-condition.yaml")).await;
    let path = "/api/v1/main/executions/webhook/io.kestra.tests/webhook-with-condition/webhookKey";
    let call = |hello: &str| {
        Some((
            "application/json",
            format!(r#"{{"hello": "{hello}"}}"#).into_bytes(),
        ))
    };
    let started = h
        .send(axum::http::Method::POST, path, Who::Nobody, call("world"))
        .await;
    assert_eq!(
        started.status,
        axum::http::StatusCode::OK,
        "{}",
        started.text
    );
    assert!(started.json()["id"].is_string());
    let refused = h
        .send(axum::http::Method::POST, path, Who::Nobody, call("webhook"))
        .await;
    assert_eq!(refused.status, axum::http::StatusCode::NO_CONTENT);
    assert!(refused.text.is_empty());
    let all = executions(&h, "io.kestra.tests", "webhook-with-condition").await;
    assert_eq!(all.len(), 1);
}

/// MultipleConditionTriggerCaseTest.failed: the namespace listener (ExecutionNamespace and
/// ExecutionStatus SUCCESS) does not fire for flow-c, which fails with its one task run, and
/// fires once for flow-d, which succeeds.
#[tokio::test]
async fn kestras_namespace_listener_fires_for_a_success_not_for_a_failure() {
    let h = harness_with_flows(&[
        kestra_flow!("trigger-flow-listener-namespace-condition.yaml"),
        kestra_flow!("trigger-multiplecondition-flow-c.yaml"),
        kestra_flow!("trigger-multiplecondition-flow-d.yaml"),
    ])
    .await;
    let ns = "io.kestra.tests.trigger";
    let listener = "trigger-flow-listener-namespace-condition";
    let failed = h.run(ns, "trigger-multiplecondition-flow-c").await;
    assert_eq!(failed["state"]["current"], "FAILED");
    assert_eq!(failed["taskRunList"].as_array().unwrap().len(), 1);
    let fired = fired_by_the_last(&h, ns, listener, &[], "trigger-multiplecondition-flow-d").await;
    assert_eq!(fired["taskRunList"].as_array().unwrap().len(), 1);
}

/// FlowTriggerCaseTest.triggerWithPause: a listener whose `states` name RUNNING and PAUSED
/// fires as the execution enters them, not only at its end: RUNNING, PAUSED, RUNNING again
/// once the pause's delay passed, then SUCCESS; each listener execution's output `status` is
/// the state it was fired for.
#[tokio::test]
async fn kestras_listener_with_pause_fires_on_every_state_it_names() {
    let h = harness_with_flows(&[
        kestra_flow!("trigger-flow-with-pause.yaml"),
        kestra_flow!("trigger-flow-listener-with-pause.yaml"),
    ])
    .await;
    let ns = "io.kestra.tests.trigger.pause";
    let paused = h.run(ns, "trigger-flow-with-pause").await;
    assert_eq!(paused["state"]["current"], "SUCCESS");
    assert_eq!(paused["taskRunList"].as_array().unwrap().len(), 3);
    let listener = "trigger-flow-listener-with-pause";
    let mut fired = Vec::new();
    for _ in 0..400 {
        fired = ended_executions(&h, ns, listener).await;
        if fired.len() >= 4 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let mut statuses: Vec<&str> = fired
        .iter()
        .map(|execution| execution["outputs"]["status"].as_str().unwrap())
        .collect();
    statuses.sort_unstable();
    assert_eq!(statuses, ["PAUSED", "RUNNING", "RUNNING", "SUCCESS"]);
}
