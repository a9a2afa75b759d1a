//! Kestra's restart through the API (`POST /api/v1/main/executions/{id}/restart`): an ended
//! execution runs its failed task runs again under its own id, in the queue any worker takes
//! from; what ended well is kept. Kestra's own restart flows are held to what Kestra's
//! RestartCaseTest and ExecutionControllerTest assert of them.

#![allow(clippy::unwrap_used)] // Test code: a failure is a failed test.

mod common;

use axum::http::{Method, StatusCode};
use common::{Harness, Who, harness_with};
use serde_json::Value;

/// Kestra's flows, kept as Kestra wrote them (see crates/kestrel/tests/kestra/NOTICE).
macro_rules! kestra_flow {
    ($name:literal) => {
        include_str!(concat!("../../kestrel/tests/kestra/flows/", $name))
    };
}

/// The execution once it reached a final state, polled (never a fixed wait).
async fn settled(h: &Harness, id: &str) -> Value {
    for _ in 0..400 {
        let execution = h.execution(id).await;
        let state = execution["state"]["current"].as_str().unwrap().to_owned();
        if !["CREATED", "RUNNING", "RESTARTED", "PAUSED"].contains(&state.as_str()) {
            return execution;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("execution {id} did not end");
}

async fn restart(h: &Harness, id: &str) -> common::Answer {
    let path = format!("/api/v1/main/executions/{id}/restart");
    h.send(Method::POST, &path, Who::Admin, None).await
}

/// Restarts `ended`, checks the answer is the same execution RESTARTED, and returns it.
async fn restarted(h: &Harness, ended: &Value) -> Value {
    let answer = restart(h, id_of(ended)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let restarted = answer.json();
    assert_eq!(restarted["id"], ended["id"]);
    assert_eq!(restarted["state"]["current"], "RESTARTED", "{restarted}");
    restarted
}

fn id_of(execution: &Value) -> &str {
    execution["id"].as_str().unwrap()
}

fn runs(execution: &Value) -> &Vec<Value> {
    execution["taskRunList"].as_array().unwrap()
}

fn states(execution: &Value) -> Vec<&str> {
    runs(execution)
        .iter()
        .map(|run| run["state"]["current"].as_str().unwrap())
        .collect()
}

fn attempts(run: &Value) -> usize {
    run["attempts"].as_array().map_or(0, Vec::len)
}

fn run_of<'e>(execution: &'e Value, task_id: &str) -> &'e Value {
    runs(execution)
        .iter()
        .find(|run| run["taskId"] == task_id)
        .unwrap_or_else(|| panic!("no task run of {task_id} in {execution}"))
}

/// RestartCaseTest.restartFailedThenSuccess: the failed `c` runs again (its second attempt
/// sees `taskrun.attemptsCount == 1` and succeeds), `a` and `b` are kept, `d` runs.
#[tokio::test]
async fn kestras_last_failed_flow_succeeds_once_restarted() {
    let h = harness_with(|_| {}).await;
    h.flow(kestra_flow!("restart_last_failed.yaml")).await;
    let first = h.run("io.kestra.tests", "restart_last_failed").await;
    assert_eq!(first["state"]["current"], "FAILED");
    assert_eq!(states(&first), ["SUCCESS", "SUCCESS", "FAILED"]);

    let answer = restarted(&h, &first).await;
    assert_eq!(states(&answer), ["SUCCESS", "SUCCESS", "RESTARTED"]);
    assert!(answer["parentId"].is_null());

    let done = settled(&h, id_of(&first)).await;
    assert_eq!(done["state"]["current"], "SUCCESS", "{done}");
    assert_eq!(states(&done), ["SUCCESS"; 4]);
    assert_eq!(attempts(&runs(&done)[2]), 2);
    for at in 0..3 {
        assert_eq!(runs(&done)[at]["id"], runs(&first)[at]["id"], "kept ids");
    }
    let histories: Vec<&str> = done["state"]["histories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["state"].as_str().unwrap())
        .collect();
    assert_eq!(
        histories,
        [
            "CREATED",
            "RUNNING",
            "FAILED",
            "RESTARTED",
            "RUNNING",
            "SUCCESS"
        ]
    );
    let logs = h
        .get(&format!("/api/v1/main/logs/{}", id_of(&first)), Who::Admin)
        .await
        .json();
    let a_entries = logs
        .as_array()
        .unwrap()
        .iter()
        .filter(|entry| entry["taskId"] == "a")
        .count();
    assert_eq!(a_entries, 1, "a, kept, did not log again: {logs}");
}

/// RestartCaseTest.restartFailedThenFailureWithGlobalErrors: the flow's error handler's task
/// run is dropped by the restart and runs again after the second failure.
#[tokio::test]
async fn kestras_always_failed_flow_fails_again_with_its_error_handler() {
    let h = harness_with(|_| {}).await;
    h.flow(kestra_flow!("restart_always_failed.yaml")).await;
    let first = h.run("io.kestra.tests", "restart_always_failed").await;
    assert_eq!(first["state"]["current"], "FAILED");
    assert_eq!(runs(&first).len(), 2);
    assert_eq!(runs(&first)[0]["state"]["current"], "FAILED");

    let answer = restarted(&h, &first).await;
    assert_eq!(runs(&answer).len(), 1);

    let done = settled(&h, id_of(&first)).await;
    assert_eq!(done["state"]["current"], "FAILED");
    assert_eq!(runs(&done).len(), 2);
    assert_eq!(attempts(&runs(&done)[0]), 2);
}

/// RestartCaseTest.restartFailedThenFailureWithLocalErrors: the Sequential's own error
/// handler is dropped and runs again; `failStep` gets a second attempt.
#[tokio::test]
async fn kestras_local_errors_flow_fails_again_with_its_local_handler() {
    let h = harness_with(|_| {}).await;
    h.flow(kestra_flow!("restart_local_errors.yaml")).await;
    let first = h.run("io.kestra.tests", "restart_local_errors").await;
    assert_eq!(first["state"]["current"], "FAILED");
    assert_eq!(runs(&first).len(), 5);
    assert_eq!(runs(&first)[3]["state"]["current"], "FAILED");

    let answer = restarted(&h, &first).await;
    assert_eq!(runs(&answer).len(), 4);

    let done = settled(&h, id_of(&first)).await;
    assert_eq!(done["state"]["current"], "FAILED");
    assert_eq!(runs(&done).len(), 5);
    assert_eq!(attempts(run_of(&done, "failStep")), 2);
}

/// ExecutionControllerTest.restartFromLastFailedWithPause: the Pause around the failed task
/// runs again (RUNNING, without pausing again), its failed child RESTARTED.
#[tokio::test]
async fn kestras_pause_last_failed_flow_restarts_inside_its_pause() {
    let h = harness_with(|_| {}).await;
    h.flow(kestra_flow!("restart_pause_last_failed.yaml")).await;
    let first = h.run("io.kestra.tests", "restart_pause_last_failed").await;
    assert_eq!(first["state"]["current"], "FAILED");
    assert_eq!(runs(&first)[2]["state"]["current"], "FAILED");

    let answer = restarted(&h, &first).await;
    assert_eq!(
        states(&answer),
        ["SUCCESS", "SUCCESS", "RUNNING", "RESTARTED"]
    );
    for kept in &runs(&answer)[..2] {
        assert_eq!(attempts(kept), 1);
    }
    assert_eq!(attempts(&runs(&answer)[3]), 1);

    let done = settled(&h, id_of(&first)).await;
    assert_eq!(states(&done), ["SUCCESS"; 5], "{done}");
    assert_eq!(attempts(&runs(&done)[0]), 1);
    assert_eq!(attempts(&runs(&done)[1]), 1);
    assert_eq!(attempts(&runs(&done)[3]), 2);
    assert_eq!(attempts(&runs(&done)[4]), 1);
}

/// ExecutionControllerTest.restartWithNoFailure: nothing failed, nothing to restart (422);
/// RestartCaseTest.restartMultiple: a restarted execution that fails again restarts again.
#[tokio::test]
async fn only_an_ended_execution_with_a_failed_task_run_restarts() {
    let root = tempfile::tempdir().unwrap();
    let storage = kestrel_storage::LocalStorage::new(root.path(), 1 << 20);
    let h = harness_with(|o| o.storage = Some(std::sync::Arc::new(storage))).await;
    h.flow(kestra_flow!("restart_with_inputs.yaml")).await;
    h.flow(kestra_flow!("failed-first.yaml")).await;
    let boundary = "XkestrelX";
    let part = |name: &str, value: &str| {
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        )
    };
    let body = [
        part("string", "myString"),
        part("int", "42"),
        part("float", "42.42"),
        part("instant", "2019-10-06T18:27:49Z"),
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f.txt\"\r\n\
             Content-Type: text/plain\r\n\r\nhello\r\n--{boundary}--\r\n"
        ),
    ]
    .concat();
    let content_type = format!("multipart/form-data; boundary={boundary}");
    let answer = h
        .send(
            Method::POST,
            "/api/v1/main/executions/io.kestra.tests/restart_with_inputs?wait=true",
            Who::Admin,
            Some((&content_type, body.into_bytes())),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let fine = answer.json();
    assert_eq!(fine["state"]["current"], "SUCCESS", "{fine}");
    let refused = restart(&h, id_of(&fine)).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused.text.contains("No task found to restart"),
        "{}",
        refused.text
    );

    let failed = h.run("io.kestra.tests", "failed-first").await;
    assert_eq!(failed["state"]["current"], "FAILED");
    for _ in 0..2 {
        restarted(&h, &failed).await;
        let again = settled(&h, id_of(&failed)).await;
        assert_eq!(again["state"]["current"], "FAILED");
        assert_eq!(runs(&again).len(), 1);
    }
    let missing = restart(&h, "nope").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

/// A restart runs with the inputs the execution was given, SECRET ones in clear for the tasks
/// and masked for readers; a running execution cannot be restarted.
#[tokio::test]
async fn a_restart_runs_with_the_secret_input_it_was_given_and_masks_it() {
    let h = harness_with(|_| {}).await;
    h.flow(
        "id: guarded\nnamespace: team.a\ninputs:\n  - id: token\n    type: SECRET\n  - id: wait\n    type: BOOLEAN\n    defaults: false\ntasks:\n  - id: pause\n    type: io.kestra.plugin.core.flow.Pause\n    runIf: \"{{ inputs.wait }}\"\n  - id: check\n    type: io.kestra.plugin.core.log.Log\n    message: \"{{ taskrun.attemptsCount == 1 and (inputs.token | length) == 14 ? 'token ' ~ inputs.token : ko }}\"\n",
    )
    .await;
    let body = serde_json::json!({"token": "open-sesame-42"});
    let answer = h
        .json(
            Method::POST,
            "/api/v1/main/executions/team.a/guarded?wait=true",
            Who::Admin,
            &body,
        )
        .await;
    let first = answer.json();
    assert_eq!(first["state"]["current"], "FAILED", "{first}");

    restarted(&h, &first).await;
    let done = settled(&h, id_of(&first)).await;
    assert_eq!(done["state"]["current"], "SUCCESS", "{done}");
    let logs = h
        .get(&format!("/api/v1/main/logs/{}", id_of(&first)), Who::Admin)
        .await;
    assert!(logs.text.contains(r#""attemptNumber":2"#), "{}", logs.text);
    assert!(logs.text.contains("******"), "{}", logs.text);

    let body = serde_json::json!({"token": "open-sesame-42", "wait": "true"});
    let paused = h
        .json(
            Method::POST,
            "/api/v1/main/executions/team.a/guarded",
            Who::Admin,
            &body,
        )
        .await
        .json();
    let refused = restart(&h, id_of(&paused)).await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.text);
    h.assert_never_answered(&["open-sesame-42"]);
}

/// Starts Kestra's flow `flow_id` with `inputs` (JSON) and waits for its end.
async fn run_with(h: &Harness, flow_id: &str, inputs: &Value) -> Value {
    let path = format!("/api/v1/main/executions/io.kestra.tests/{flow_id}?wait=true");
    let answer = h.json(Method::POST, &path, Who::Admin, inputs).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    answer.json()
}

/// ExecutionServiceTest.restartFlowable and restartFlowable2: the failed task runs of every
/// ForEach iteration are RESTARTED, the flowable task runs around them RUNNING; the restart's
/// history is CREATED, RUNNING, FAILED, RESTARTED.
#[tokio::test]
async fn kestras_restart_each_flow_restarts_every_failed_iteration() {
    let h = harness_with(|_| {}).await;
    h.flow(kestra_flow!("restart-each.yaml")).await;
    for failed in ["FIRST", "SECOND"] {
        let first = run_with(&h, "restart-each", &serde_json::json!({"failed": failed})).await;
        assert_eq!(first["state"]["current"], "FAILED", "{failed}: {first}");
        let answer = restarted(&h, &first).await;
        assert_eq!(answer["state"]["histories"].as_array().unwrap().len(), 4);
        let count = |state: &str| states(&answer).iter().filter(|s| **s == state).count();
        assert!(count("RESTARTED") > 1, "{failed}: {answer}");
        assert!(count("RUNNING") > 1, "{failed}: {answer}");
        assert_eq!(runs(&answer)[0]["id"], runs(&first)[0]["id"]);
        let done = settled(&h, id_of(&first)).await;
        assert_eq!(
            done["state"]["current"], "FAILED",
            "{failed}: it fails each time"
        );
    }
}

/// ExecutionServiceTest.restartDynamic: a failed WorkingDirectory runs again whole: its own
/// task run RESTARTED, those under it and its error handler's dropped.
#[tokio::test]
async fn kestras_working_directory_flow_restarts_its_working_directory_whole() {
    let h = harness_with(|_| {}).await;
    h.flow(kestra_flow!("working-directory.yaml")).await;
    let first = run_with(
        &h,
        "working-directory",
        &serde_json::json!({"failed": "true"}),
    )
    .await;
    assert_eq!(first["state"]["current"], "FAILED");
    assert_eq!(runs(&first).len(), 3);
    let answer = restarted(&h, &first).await;
    assert_eq!(answer["state"]["histories"].as_array().unwrap().len(), 4);
    assert_eq!(states(&answer), ["RESTARTED"]);
    let done = settled(&h, id_of(&first)).await;
    assert_eq!(done["state"]["current"], "FAILED");
    assert_eq!(
        runs(&done).len(),
        3,
        "worker, first and error-t1 again: {done}"
    );
    assert_eq!(attempts(&runs(&done)[0]), 2);
}
