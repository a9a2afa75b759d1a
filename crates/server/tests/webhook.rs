//! Webhook triggers: public, keyed by a secret, 404 for a wrong key, limited when guessed.

#![allow(clippy::unwrap_used)] // Test code: a failure is a failed test.

mod common;

use axum::http::{Method, StatusCode};
use common::{Harness, Who, harness, harness_with};
use kestrel_server::FailureLimit;
use std::time::Duration;

const KEY: &str = "hook-key-Zq81xLmP";

const HOOKED: &str = "id: hooked\nnamespace: team\ntasks:\n  - id: log\n    type: io.kestra.plugin.core.log.Log\n    message: \"got {{ trigger.body.order }} with {{ trigger.parameters.source[0] }}\"\ntriggers:\n  - id: webhook\n    type: io.kestra.plugin.core.trigger.Webhook\n    key: \"{{ secret('WEBHOOK_KEY') }}\"\n";

async fn hooked(h: &Harness) {
    h.secret("team", "WEBHOOK_KEY", KEY).await;
    h.flow(HOOKED).await;
}

#[tokio::test]
async fn the_secret_key_triggers_the_flow_without_credentials() {
    let h = harness().await;
    hooked(&h).await;
    let path = format!("/api/v1/main/executions/webhook/team/hooked/{KEY}?source=shop");
    let body = Some(("application/json", br#"{"order": 42}"#.to_vec()));
    let answer = h.send(Method::POST, &path, Who::Nobody, body).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let id = answer.json()["id"].as_str().unwrap().to_owned();
    let done = h.ended(&id).await;
    assert_eq!(done["state"]["current"], "SUCCESS", "{done}");
    let logs = h
        .get(&format!("/api/v1/main/logs/{id}"), Who::Admin)
        .await
        .json();
    assert_eq!(logs[0]["message"], "got 42 with shop");
    let get = h
        .get(
            &format!("/api/v1/main/executions/webhook/team/hooked/{KEY}"),
            Who::Nobody,
        )
        .await;
    assert_eq!(get.status, StatusCode::OK, "GET triggers too");
    h.assert_never_answered(&[KEY]);
}

#[tokio::test]
async fn a_wrong_key_is_not_found_and_guessing_is_limited() {
    let h = harness_with(|o| {
        o.failure_limit = FailureLimit {
            max_failures: 3,
            window: Duration::from_secs(600),
        }
    })
    .await;
    hooked(&h).await;
    for wrong in ["guess", "hook-key-Zq81xLmQ", "hook-key-Zq81xLm"] {
        let path = format!("/api/v1/main/executions/webhook/team/hooked/{wrong}");
        let answer = h.send(Method::POST, &path, Who::Nobody, None).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND);
        assert_eq!(answer.json()["message"], "Webhook not found");
    }
    let path = format!("/api/v1/main/executions/webhook/team/hooked/{KEY}");
    let limited = h.send(Method::POST, &path, Who::Nobody, None).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    let executions = h
        .get("/api/v1/main/executions/search", Who::Admin)
        .await
        .json();
    assert_eq!(executions["total"], 0, "no guess started anything");
}

#[tokio::test]
async fn unknown_flows_and_flows_without_webhooks_are_not_found() {
    let h = harness().await;
    hooked(&h).await;
    h.flow("id: plain\nnamespace: team\ntasks:\n  - id: log\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n")
        .await;
    for path in [
        format!("/api/v1/main/executions/webhook/team/nope/{KEY}"),
        format!("/api/v1/main/executions/webhook/team/plain/{KEY}"),
        format!("/api/v1/main/executions/webhook/Bad_NS/hooked/{KEY}"),
    ] {
        let answer = h.send(Method::POST, &path, Who::Nobody, None).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{path}");
    }
}

/// Kestra's flows, kept as Kestra wrote them (see crates/kestrel/tests/kestra/NOTICE).
macro_rules! kestra_flow {
    ($name:literal) => {
        include_str!(concat!("../../kestrel/tests/kestra/flows/", $name))
    };
}

/// Calls Kestra's webhook flow `flow_id` with `key` and `body`, waits for the execution's end
/// and reads the trigger its `out` task returned as JSON.
async fn hooked_trigger(
    h: &Harness,
    method: Method,
    flow_id: &str,
    key: &str,
    body: Option<(&str, Vec<u8>)>,
) -> (serde_json::Value, serde_json::Value) {
    let path = format!("/api/v1/main/executions/webhook/io.kestra.tests/{flow_id}/{key}");
    let answer = h.send(method, &path, Who::Nobody, body).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let done = h.ended(answer.json()["id"].as_str().unwrap()).await;
    assert_eq!(done["state"]["current"], "SUCCESS", "{done}");
    let returned = done["taskRunList"][0]["outputs"]["value"].as_str().unwrap();
    (done.clone(), serde_json::from_str(returned).unwrap())
}

/// ExecutionControllerTest.webhook: the body (JSON object, JSON list, text, none) and the
/// query's parameters reach the `trigger` variable; the flow's labels are the execution's.
#[tokio::test]
async fn kestras_webhook_flow_gets_the_request_as_its_trigger() {
    let h = harness().await;
    h.flow(kestra_flow!("webhook.yaml")).await;
    let json = |text: &str| Some(("application/json", text.as_bytes().to_vec()));
    let (done, trigger) = hooked_trigger(
        &h,
        Method::POST,
        "webhook",
        "a-secret-key?name=john&age=12&age=13",
        json(r#"{"a": 1, "b": true}"#),
    )
    .await;
    assert_eq!(trigger["body"], serde_json::json!({"a": 1, "b": true}));
    assert_eq!(trigger["parameters"]["name"], serde_json::json!(["john"]));
    assert_eq!(
        trigger["parameters"]["age"],
        serde_json::json!(["12", "13"])
    );
    let labels = done["labels"].as_array().unwrap();
    assert_eq!(
        labels[0],
        serde_json::json!({"key": "flow-label-1", "value": "flow-label-1"})
    );
    assert_eq!(
        labels[1],
        serde_json::json!({"key": "flow-label-2", "value": "flow-label-2"})
    );

    let list = json(r#"[{"a": 1, "b": true}]"#);
    let (_, trigger) = hooked_trigger(&h, Method::PUT, "webhook", "a-secret-key", list).await;
    assert_eq!(trigger["body"][0], serde_json::json!({"a": 1, "b": true}));

    let text = Some(("text/plain", b"bla".to_vec()));
    let (_, trigger) = hooked_trigger(&h, Method::POST, "webhook", "a-secret-key", text).await;
    assert_eq!(trigger["body"], "bla");

    let (_, trigger) = hooked_trigger(&h, Method::GET, "webhook", "a-secret-key", None).await;
    assert!(trigger["body"].is_null(), "{trigger}");

    let path = "/api/v1/main/executions/webhook/not-found/webhook/not-found?name=john";
    let missing = h.send(Method::POST, path, Who::Nobody, None).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

/// ExecutionControllerTest.webhookDynamicKey and webhookDynamicKeyFromASecret: a key rendered
/// from the flow's id, and one read from a secret.
#[tokio::test]
async fn kestras_webhook_keys_render_from_the_flow_and_from_a_secret() {
    let h = harness().await;
    h.flow(kestra_flow!("webhook-dynamic-key.yaml")).await;
    h.flow(kestra_flow!("webhook-secret-key.yaml")).await;
    h.secret("io.kestra.tests", "WEBHOOK_KEY", "secretKey")
        .await;
    let (done, _) = hooked_trigger(
        &h,
        Method::GET,
        "webhook-dynamic-key",
        "webhook-dynamic-key",
        None,
    )
    .await;
    assert!(done["id"].is_string());
    let (done, _) = hooked_trigger(&h, Method::GET, "webhook-secret-key", "secretKey", None).await;
    assert!(done["id"].is_string());
}
