//! Pauses on the server: a PAUSED execution resumes through the resume route, with its
//! Pause's `onResume` inputs.

#![allow(clippy::unwrap_used)] // Test code: a failure is a failed test.

mod common;

use common::harness_with;
use serde_json::Value;

const PAUSING: &str = "id: pausing\nnamespace: team.a\ntasks:\n  - id: pause\n    type: io.kestra.plugin.core.flow.Pause\n    onResume:\n      - id: asked\n        type: STRING\n  - id: last\n    type: io.kestra.plugin.core.output.OutputValues\n    values:\n      asked: \"{{ outputs.pause.onResume.asked }}\"\n";

/// The execution once it reached `state`, polled (never a fixed wait).
async fn reached(h: &common::Harness, id: &str, state: &str) -> Value {
    for _ in 0..400 {
        let execution = h.execution(id).await;
        if execution["state"]["current"] == state {
            return execution;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("execution {id} never reached {state}");
}

/// PauseTest: runOnResume, runOnResumeMissingInputs (with a STRING for Kestra's FILE).
#[tokio::test]
async fn a_paused_execution_resumes_through_the_api_with_its_on_resume_inputs() {
    use axum::http::{Method, StatusCode};
    let h = harness_with(|_| {}).await;
    h.flow(PAUSING).await;
    let created = h
        .send(
            Method::POST,
            "/api/v1/main/executions/team.a/pausing",
            common::Who::Admin,
            None,
        )
        .await
        .json();
    let id = created["id"].as_str().unwrap();
    let paused = reached(&h, id, "PAUSED").await;
    let runs = paused["taskRunList"].as_array().unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["state"]["current"], "PAUSED");

    let path = format!("/api/v1/main/executions/{id}/resume");
    let missing = h
        .json(
            Method::POST,
            &path,
            common::Who::Admin,
            &serde_json::json!({}),
        )
        .await;
    assert_eq!(
        missing.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        missing.text
    );
    assert!(missing.text.contains("asked"), "{}", missing.text);
    assert_eq!(h.execution(id).await["state"]["current"], "PAUSED");

    let body = serde_json::json!({"asked": "restarted"});
    let resumed = h.json(Method::POST, &path, common::Who::Admin, &body).await;
    assert_eq!(resumed.status, StatusCode::NO_CONTENT, "{}", resumed.text);
    let done = h.ended(id).await;
    assert_eq!(done["state"]["current"], "SUCCESS", "{done}");
    let last = &done["taskRunList"][1];
    assert_eq!(last["outputs"]["values"]["asked"], "restarted");

    let again = h.json(Method::POST, &path, common::Who::Admin, &body).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.text);
}

/// ResumeTest: resume. An `execution.Resume` task of another execution resumes the paused one
/// (Kestra's `pause` and `resume-execution` flows).
#[tokio::test]
async fn a_resume_task_resumes_a_paused_execution_of_its_namespace() {
    use axum::http::Method;
    let h = harness_with(|_| {}).await;
    h.flow(include_str!("../../kestrel/tests/kestra/flows/pause.yaml"))
        .await;
    h.flow(include_str!(
        "../../kestrel/tests/kestra/flows/resume-execution.yaml"
    ))
    .await;
    let created = h
        .send(
            Method::POST,
            "/api/v1/main/executions/io.kestra.tests/pause",
            common::Who::Admin,
            None,
        )
        .await
        .json();
    let paused = created["id"].as_str().unwrap();
    reached(&h, paused, "PAUSED").await;
    let resume = h
        .json(
            Method::POST,
            "/api/v1/main/executions/io.kestra.tests/resume-execution",
            common::Who::Admin,
            &serde_json::json!({"executionId": paused}),
        )
        .await
        .json();
    let resumed = h.ended(resume["id"].as_str().unwrap()).await;
    assert_eq!(resumed["state"]["current"], "SUCCESS", "{resumed}");
    let done = reached(&h, paused, "SUCCESS").await;
    assert_eq!(done["taskRunList"].as_array().unwrap().len(), 3, "{done}");
}

/// A flow limited to one execution at a time, whose executions pause until resumed: a
/// running one holds the limit for as long as the test wants, without timing.
fn limited(behavior: &str) -> String {
    format!(
        "id: limited\nnamespace: team.a\nconcurrency:\n  limit: 1\n  behavior: {behavior}\ntasks:\n  - id: pause\n    type: io.kestra.plugin.core.flow.Pause\n"
    )
}

/// Starts an execution of `limited` (waiting for its end when `wait`): the API's answer.
async fn start_limited(h: &common::Harness, wait: bool) -> Value {
    use axum::http::Method;
    let path = format!("/api/v1/main/executions/team.a/limited?wait={wait}");
    h.send(Method::POST, &path, common::Who::Admin, None)
        .await
        .json()
}

/// The id of a new execution of `limited`, not waited for.
async fn queued_or_running(h: &common::Harness) -> String {
    let created = start_limited(h, false).await;
    created["id"].as_str().unwrap().to_owned()
}

async fn resume(h: &common::Harness, id: &str) {
    use axum::http::{Method, StatusCode};
    let path = format!("/api/v1/main/executions/{id}/resume");
    let resumed = h
        .json(
            Method::POST,
            &path,
            common::Who::Admin,
            &serde_json::json!({}),
        )
        .await;
    assert_eq!(resumed.status, StatusCode::NO_CONTENT, "{}", resumed.text);
}

fn states(execution: &Value) -> Vec<&str> {
    execution["state"]["histories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["state"].as_str().unwrap())
        .collect()
}

/// FlowConcurrencyCaseTest: flowConcurrencyQueue. The second execution waits QUEUED while
/// the first runs, and runs once it ended.
#[tokio::test]
async fn a_queued_execution_runs_once_its_flow_is_under_its_limit() {
    let h = harness_with(|_| {}).await;
    h.flow(&limited("QUEUE")).await;
    let first = queued_or_running(&h).await;
    reached(&h, &first, "PAUSED").await;
    let second = queued_or_running(&h).await;
    reached(&h, &second, "QUEUED").await;
    // A queued execution can be killed like a created one.
    let third = queued_or_running(&h).await;
    reached(&h, &third, "QUEUED").await;
    let kill = format!("/api/v1/main/executions/{third}/kill");
    let killed = h
        .send(axum::http::Method::DELETE, &kill, common::Who::Admin, None)
        .await;
    assert_eq!(
        killed.status,
        axum::http::StatusCode::ACCEPTED,
        "{}",
        killed.text
    );
    reached(&h, &third, "KILLED").await;
    resume(&h, &first).await;
    reached(&h, &first, "SUCCESS").await;
    reached(&h, &second, "PAUSED").await;
    resume(&h, &second).await;
    let done = reached(&h, &second, "SUCCESS").await;
    assert_eq!(
        states(&done),
        [
            "CREATED", "QUEUED", "RUNNING", "PAUSED", "RUNNING", "SUCCESS"
        ]
    );
}

/// FlowConcurrencyCaseTest: flowConcurrencyCancel and flowConcurrencyFail. Beyond the limit,
/// an execution ends at once, CANCELLED or FAILED, and the first runs on.
#[tokio::test]
async fn beyond_its_limit_an_execution_is_cancelled_or_failed() {
    for (behavior, end) in [("CANCEL", "CANCELLED"), ("FAIL", "FAILED")] {
        let h = harness_with(|_| {}).await;
        h.flow(&limited(behavior)).await;
        let first = queued_or_running(&h).await;
        reached(&h, &first, "PAUSED").await;
        let second = start_limited(&h, true).await;
        assert_eq!(second["state"]["current"], end, "{second}");
        assert_eq!(h.execution(&first).await["state"]["current"], "PAUSED");
        resume(&h, &first).await;
        reached(&h, &first, "SUCCESS").await;
    }
}

/// Kestra's flows (see crates/kestrel/tests/kestra/NOTICE: their pause waits PT1H instead of
/// PT1S, and the test resumes it, so that no timing decides what the second execution sees).
macro_rules! kestra_flow {
    ($name:literal) => {
        include_str!(concat!("../../kestrel/tests/kestra/flows/", $name))
    };
}

/// Starts an execution of Kestra's flow `flow_id` without waiting: its id.
async fn start_kestras(h: &common::Harness, flow_id: &str) -> String {
    let path = format!("/api/v1/main/executions/io.kestra.tests/{flow_id}");
    let created = h
        .send(axum::http::Method::POST, &path, common::Who::Admin, None)
        .await
        .json();
    created["id"].as_str().unwrap().to_owned()
}

/// FlowConcurrencyCaseTest.flowConcurrencyQueuePause: while the first execution is paused,
/// the second waits QUEUED; once the first succeeded, it runs (CREATED, QUEUED, RUNNING) and
/// succeeds.
#[tokio::test]
async fn kestras_queue_pause_flow_queues_behind_a_paused_execution() {
    let h = harness_with(|_| {}).await;
    h.flow(kestra_flow!("flow-concurrency-queue-pause.yml"))
        .await;
    let first = start_kestras(&h, "flow-concurrency-queue-pause").await;
    reached(&h, &first, "PAUSED").await;
    let second = start_kestras(&h, "flow-concurrency-queue-pause").await;
    reached(&h, &second, "QUEUED").await;
    resume(&h, &first).await;
    reached(&h, &first, "SUCCESS").await;
    reached(&h, &second, "PAUSED").await;
    resume(&h, &second).await;
    let done = reached(&h, &second, "SUCCESS").await;
    assert_eq!(states(&done)[..3], ["CREATED", "QUEUED", "RUNNING"]);
}

/// FlowConcurrencyCaseTest.flowConcurrencyCancelPause: while the first execution is paused,
/// the second ends CANCELLED at once (CREATED, CANCELLED); the first then succeeds.
#[tokio::test]
async fn kestras_cancel_pause_flow_cancels_beside_a_paused_execution() {
    let h = harness_with(|_| {}).await;
    h.flow(kestra_flow!("flow-concurrency-cancel-pause.yml"))
        .await;
    let first = start_kestras(&h, "flow-concurrency-cancel-pause").await;
    reached(&h, &first, "PAUSED").await;
    let second = start_kestras(&h, "flow-concurrency-cancel-pause").await;
    let cancelled = reached(&h, &second, "CANCELLED").await;
    assert_eq!(states(&cancelled), ["CREATED", "CANCELLED"]);
    resume(&h, &first).await;
    reached(&h, &first, "SUCCESS").await;
}
