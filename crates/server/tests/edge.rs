//! What the server stores and answers of an execution comes from the engine's edge: ForEach
//! values, inputs and trigger variables are masked in the API and the store. Each test is
//! named after the leak it pins.

#![allow(clippy::unwrap_used)] // Test code: a failure is a failed test.

mod common;

use axum::http::{Method, StatusCode};
use common::{Harness, Who, harness};
use serde_json::{Value, json};

const MASK: &str = "******";

/// The execution's task runs as the API lists them.
fn task_runs(execution: &Value) -> Vec<Value> {
    execution["taskRunList"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The log messages of execution `id`.
async fn messages(h: &Harness, id: &str) -> Vec<String> {
    let logs = h.get(&format!("/api/v1/main/logs/{id}"), Who::Admin).await;
    logs.json()
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["message"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Every execution row the store holds, as text.
async fn stored(h: &Harness, id: &str) -> String {
    use kestrel_store::ExecutionStore as _;
    let record = h.store.get_execution("main", id).await.unwrap();
    format!("{record:?}")
}

#[tokio::test]
async fn leak_1_for_each_value_is_masked_in_the_api_and_the_store() {
    let h = harness().await;
    h.secret("team", "PAIR", "alpha-first,bravo-second").await;
    h.flow(concat!(
        "id: each\nnamespace: team\ntasks:\n",
        "  - id: loop\n    type: io.kestra.plugin.core.flow.ForEach\n",
        "    values: \"{{ secret('PAIR') | split(',') }}\"\n    tasks:\n",
        "      - id: show\n        type: io.kestra.plugin.core.log.Log\n",
        "        message: \"{{ taskrun.value }}\"\n",
    ))
    .await;
    let execution = h.run("team", "each").await;
    let id = execution["id"].as_str().unwrap().to_owned();
    let ended = h.ended(&id).await;
    assert_eq!(ended["state"]["current"], "SUCCESS", "{ended}");
    let values: Vec<Value> = task_runs(&ended)
        .iter()
        .filter(|run| run["taskId"] == "show")
        .map(|run| run["value"].clone())
        .collect();
    assert_eq!(values, [json!(MASK), json!(MASK)]);
    let rows = stored(&h, &id).await;
    for value in ["alpha-first", "bravo-second"] {
        assert!(!rows.contains(value), "{rows}");
    }
    h.assert_never_answered(&["alpha-first", "bravo-second"]);
}

const KEY: &str = "hook-key-Zq81xLmP";

#[tokio::test]
async fn leak_7_a_webhook_key_sent_again_is_masked_in_the_trigger_variable() {
    let h = harness().await;
    h.secret("team", "WEBHOOK_KEY", KEY).await;
    h.flow(concat!(
        "id: hooked\nnamespace: team\ntasks:\n",
        "  - id: log\n    type: io.kestra.plugin.core.log.Log\n",
        "    message: \"{{ trigger.body }} {{ trigger.headers['x-echo'] }} {{ trigger.parameters }}\"\n",
        "triggers:\n  - id: webhook\n    type: io.kestra.plugin.core.trigger.Webhook\n",
        "    key: \"{{ secret('WEBHOOK_KEY') }}\"\n",
    ))
    .await;
    let path = format!("/api/v1/main/executions/webhook/team/hooked/{KEY}?again={KEY}");
    let request = axum::http::Request::builder()
        .method(Method::POST)
        .uri(&path)
        .header("content-type", "application/json")
        .header("x-echo", KEY)
        .body(axum::body::Body::from(format!(r#"{{"again": "{KEY}"}}"#)))
        .unwrap();
    let answer = h.call(request).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let id = answer.json()["id"].as_str().unwrap().to_owned();
    let ended = h.ended(&id).await;
    assert_eq!(ended["state"]["current"], "SUCCESS", "{ended}");
    let logged = messages(&h, &id).await;
    assert_eq!(logged.len(), 1, "{logged:?}");
    assert!(!logged[0].contains(KEY), "{logged:?}");
    assert!(logged[0].contains(MASK), "{logged:?}");
    h.assert_never_answered(&[KEY]);
}

#[tokio::test]
async fn leak_9_a_string_input_holding_a_secret_is_masked_in_the_execution_record() {
    let h = harness().await;
    let value = "copied-s3cret-value";
    h.secret("team", "TOKEN", value).await;
    h.flow(concat!(
        "id: copy\nnamespace: team\ninputs:\n  - id: name\n    type: STRING\ntasks:\n",
        "  - id: use\n    type: io.kestra.plugin.core.log.Log\n",
        "    message: \"{{ secret('TOKEN') | length }}\"\n",
    ))
    .await;
    let path = "/api/v1/main/executions/team/copy?wait=true";
    let answer = h
        .json(Method::POST, path, Who::Admin, &json!({"name": value}))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let id = answer.json()["id"].as_str().unwrap().to_owned();
    let ended = h.ended(&id).await;
    assert_eq!(ended["state"]["current"], "SUCCESS", "{ended}");
    assert_eq!(ended["inputs"]["name"], MASK, "{ended}");
    let rows = stored(&h, &id).await;
    assert!(!rows.contains(value), "{rows}");
}
