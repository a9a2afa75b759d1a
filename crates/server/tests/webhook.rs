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
