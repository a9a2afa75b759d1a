//! Kestra's replay through the API (`POST /api/v1/main/executions/{id}/replay?taskRunId=`): a
//! new execution of an ended one, run again from one of its task runs. The task runs before
//! it are kept with their outputs, the one chosen and every later one run again.

#![allow(clippy::unwrap_used)] // Test code: a failure is a failed test.

mod common;

use axum::http::{Method, StatusCode};
use common::{Harness, Who, harness_with};
use serde_json::Value;

const FLOW: &str = "id: replayed
namespace: team
tasks:
  - id: first
    type: io.kestra.plugin.core.debug.Return
    format: \"{{ execution.id }}\"
  - id: second
    type: io.kestra.plugin.core.debug.Return
    format: \"from {{ outputs.first.value }}\"
  - id: third
    type: io.kestra.plugin.core.log.Log
    message: \"{{ outputs.second.value }}\"
";

/// The execution once it reached a final state, polled (never a fixed wait).
async fn settled(h: &Harness, id: &str) -> Value {
    for _ in 0..400 {
        let execution = h.execution(id).await;
        let state = execution["state"]["current"].as_str().unwrap().to_owned();
        if !["CREATED", "RUNNING", "RESTARTED"].contains(&state.as_str()) {
            return execution;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("execution {id} did not end");
}

async fn replay(h: &Harness, id: &str, task_run: Option<&str>) -> common::Answer {
    let query = task_run.map_or(String::new(), |run| format!("?taskRunId={run}"));
    let path = format!("/api/v1/main/executions/{id}/replay{query}");
    h.send(Method::POST, &path, Who::Admin, None).await
}

fn run_of<'e>(execution: &'e Value, task_id: &str) -> &'e Value {
    execution["taskRunList"]
        .as_array()
        .unwrap()
        .iter()
        .find(|run| run["taskId"] == task_id)
        .unwrap_or_else(|| panic!("no task run of {task_id} in {execution}"))
}

#[tokio::test]
async fn a_replay_from_a_task_keeps_what_ran_before_it_and_runs_the_rest_anew() {
    let h = harness_with(|_| {}).await;
    h.flow(FLOW).await;
    let first = h.run("team", "replayed").await;
    assert_eq!(first["state"]["current"], "SUCCESS", "{first}");
    let original = first["id"].as_str().unwrap();
    let second_run = run_of(&first, "second")["id"].as_str().unwrap();

    let answer = replay(&h, original, Some(second_run)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let created = answer.json();
    let replayed = created["id"].as_str().unwrap();
    assert_ne!(replayed, original, "a replay is a new execution");
    assert_eq!(created["state"]["current"], "RESTARTED", "{created}");

    let done = settled(&h, replayed).await;
    assert_eq!(done["state"]["current"], "SUCCESS", "{done}");
    let kept = run_of(&done, "first");
    assert_eq!(
        kept["outputs"]["value"], original,
        "first is kept as it ran in the original: {done}"
    );
    assert_ne!(kept["id"], run_of(&first, "first")["id"], "under a new id");
    assert_eq!(
        run_of(&done, "second")["outputs"]["value"],
        format!("from {original}"),
        "second ran again, reading the kept output"
    );
    assert_eq!(done["taskRunList"].as_array().unwrap().len(), 3);
    let logs = h
        .get(&format!("/api/v1/main/logs/{replayed}"), Who::Admin)
        .await
        .json();
    assert!(
        logs.as_array()
            .unwrap()
            .iter()
            .all(|entry| entry["taskId"] != "first"),
        "first did not run again: {logs}"
    );
    let unchanged = h.execution(original).await;
    assert_eq!(unchanged["state"]["current"], "SUCCESS");
}

#[tokio::test]
async fn a_replay_without_a_task_run_runs_everything_again() {
    let h = harness_with(|_| {}).await;
    h.flow(FLOW).await;
    let first = h.run("team", "replayed").await;
    let original = first["id"].as_str().unwrap();
    let answer = replay(&h, original, None).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let replayed = answer.json()["id"].as_str().unwrap().to_owned();
    let done = settled(&h, &replayed).await;
    assert_eq!(done["state"]["current"], "SUCCESS", "{done}");
    assert_eq!(
        run_of(&done, "first")["outputs"]["value"],
        replayed,
        "first ran again, in the new execution"
    );
}

#[tokio::test]
async fn a_replay_names_what_it_refuses() {
    let h = harness_with(|_| {}).await;
    h.flow(FLOW).await;
    let first = h.run("team", "replayed").await;
    let original = first["id"].as_str().unwrap();
    let unknown = replay(&h, original, Some("nope")).await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        unknown.text.contains("no task run 'nope'"),
        "{}",
        unknown.text
    );
    let missing = replay(&h, "missing", None).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}
