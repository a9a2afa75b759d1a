//! What the API answers to bodies it refuses: never the value a body held (leak 11), 413 as
//! JSON past a limit, and the small deviations of issue 9 (CREATED, names with empty parts).

#![allow(clippy::unwrap_used)] // Test code: a failure is a failed test.

mod common;

use axum::http::{Method, StatusCode};
use common::{Who, harness};
use serde_json::{Value, json};

const SECRETS: &str = "/api/v1/main/namespaces/team.data/secrets";

#[tokio::test]
async fn leak_11_the_secrets_api_never_echoes_a_non_string_value() {
    let h = harness().await;
    for value in [
        json!(87654321),
        json!(true),
        json!(876543.21),
        json!(["s3cr3t-in-a-list"]),
        json!({"pin": "s3cr3t-in-a-map"}),
    ] {
        let body = json!({"key": "PIN", "value": value});
        let answer = h.json(Method::PUT, SECRETS, Who::Admin, &body).await;
        assert_eq!(
            answer.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            answer.text
        );
        let message = answer.json()["message"].as_str().unwrap().to_owned();
        assert!(
            message.contains("value: wrong type, expected a string"),
            "{message}"
        );
    }
    let patch = format!("{SECRETS}/PIN");
    let description = json!({"description": 87654321});
    let answer = h
        .json(Method::PATCH, &patch, Who::Admin, &description)
        .await;
    assert_eq!(
        answer.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        answer.text
    );
    assert!(answer.text.contains("description"), "{}", answer.text);
    let tags = json!({"tags": [{"key": "env", "value": 87654321}]});
    let answer = h.json(Method::PATCH, &patch, Who::Admin, &tags).await;
    assert!(answer.text.contains("tags[0].value"), "{}", answer.text);
    h.assert_never_answered(&["87654321", "876543.21", "true", "s3cr3t"]);
}

#[tokio::test]
async fn leak_11_execution_inputs_that_are_not_an_object_are_not_echoed() {
    let h = harness().await;
    h.flow("id: f\nnamespace: team\ntasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n")
        .await;
    let path = "/api/v1/main/executions/team/f";
    for body in ["87654321", r#"["s3cr3t-input"]"#, r#""s3cr3t-input""#] {
        let body = Some(("application/json", body.as_bytes().to_vec()));
        let answer = h.send(Method::POST, path, Who::Admin, body).await;
        assert_eq!(
            answer.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            answer.text
        );
        assert!(answer.text.contains("expected a map"), "{}", answer.text);
    }
    h.assert_never_answered(&["87654321", "s3cr3t"]);
}

#[tokio::test]
async fn leak_11_an_input_of_the_wrong_type_is_refused_without_its_value() {
    let h = harness().await;
    h.flow("id: f\nnamespace: team\ninputs:\n  - id: pin\n    type: INT\ntasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n")
        .await;
    let path = "/api/v1/main/executions/team/f";
    let body = json!({"pin": "87654321x"});
    let answer = h.json(Method::POST, path, Who::Admin, &body).await;
    assert_eq!(
        answer.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        answer.text
    );
    assert_eq!(
        answer.json()["message"],
        "invalid input 'pin': expected an INT"
    );
    h.assert_never_answered(&["87654321"]);
}

fn is_json_error(text: &str) -> bool {
    serde_json::from_str::<Value>(text).is_ok_and(|v| v["message"].is_string())
}

#[tokio::test]
async fn issue_9_9_an_oversized_flow_answers_a_json_413() {
    let h = harness().await;
    let huge = format!(
        "id: f\nnamespace: team\ndescription: {}\ntasks: []\n",
        "x".repeat(3 * 1024 * 1024)
    );
    for path in ["/api/v1/main/flows", "/api/v1/main/flows/validate"] {
        let answer = h.post_yaml(path, Who::Admin, &huge).await;
        assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE, "{path}");
        assert!(is_json_error(&answer.text), "{path}: {}", answer.text);
    }
}

#[tokio::test]
async fn issue_9_9_an_oversized_secret_answers_a_json_413() {
    let h = harness().await;
    let just_over = "v".repeat(64 * 1024 + 1);
    let past_the_body_limit = "v".repeat(3 * 1024 * 1024);
    for value in [&just_over, &past_the_body_limit] {
        let body = json!({"key": "BIG", "value": value});
        let answer = h.json(Method::PUT, SECRETS, Who::Admin, &body).await;
        assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(is_json_error(&answer.text), "{}", answer.text);
    }
    let at_the_limit = json!({"key": "BIG", "value": "v".repeat(64 * 1024)});
    let answer = h
        .json(Method::PUT, SECRETS, Who::Admin, &at_the_limit)
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
}

#[tokio::test]
async fn issue_9_9_wait_false_answers_created() {
    let h = harness().await;
    h.flow("id: f\nnamespace: team\ntasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n")
        .await;
    for path in [
        "/api/v1/main/executions/team/f",
        "/api/v1/main/executions/team/f?wait=false",
    ] {
        let answer = h.send(Method::POST, path, Who::Admin, None).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
        let execution = answer.json();
        assert_eq!(execution["state"]["current"], "CREATED", "{path}");
        assert_eq!(execution["taskRunList"], json!([]), "{path}");
        h.ended(execution["id"].as_str().unwrap()).await;
    }
}

#[tokio::test]
async fn issue_9_9_namespaces_with_an_empty_part_and_dot_keys_are_refused() {
    let h = harness().await;
    for namespace in ["a..b", "m.ns."] {
        let path = format!("/api/v1/main/namespaces/{namespace}/secrets");
        let body = json!({"key": "K", "value": "v"});
        let answer = h.json(Method::PUT, &path, Who::Admin, &body).await;
        assert_eq!(
            answer.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{namespace}"
        );
    }
    for key in ["..", "."] {
        let body = json!({"key": key, "value": "v"});
        let answer = h.json(Method::PUT, SECRETS, Who::Admin, &body).await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{key}");
    }
    let flow = "id: f\nnamespace: a..b\ntasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n";
    let answer = h.post_yaml("/api/v1/main/flows", Who::Admin, flow).await;
    assert_eq!(
        answer.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        answer.text
    );
}
