//! The flows API: create (409 when it exists, 422 with the violations), update (revision + 1),
//! get, delete, search, validate.

#![allow(clippy::unwrap_used)] // Test code: a failure is a failed test.

mod common;

use axum::http::{Method, StatusCode};
use common::{Who, harness};
use serde_json::json;

const HELLO: &str = "id: hello\nnamespace: team.data\ntasks:\n  - id: log\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n";

#[tokio::test]
async fn a_flow_is_created_once_and_read_back_in_kestras_shape() {
    let h = harness().await;
    let created = h.flow(HELLO).await;
    for (field, value) in [
        ("id", json!("hello")),
        ("namespace", json!("team.data")),
        ("revision", json!(1)),
        ("disabled", json!(false)),
        ("draft", json!(false)),
        ("deleted", json!(false)),
        ("source", json!(HELLO)),
    ] {
        assert_eq!(created[field], value, "{field}");
    }
    assert_eq!(created["tasks"][0]["type"], "io.kestra.plugin.core.log.Log");
    let again = h.post_yaml("/api/v1/main/flows", Who::Admin, HELLO).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert!(
        again.json()["message"]
            .as_str()
            .unwrap()
            .contains("already exists")
    );
    let got = h
        .get("/api/v1/main/flows/team.data/hello", Who::Admin)
        .await;
    assert_eq!(got.json(), created);
}

#[tokio::test]
async fn an_invalid_flow_is_refused_with_each_violation_and_its_line() {
    let h = harness().await;
    let bad = "id: bad\nnamespace: team\ntasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n    message: x\n";
    let answer = h.post_yaml("/api/v1/main/flows", Who::Admin, bad).await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    let body = answer.json();
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("Duplicate task id with name [a]"),
        "{message}"
    );
    assert!(message.contains("message: must not be null"), "{message}");
    assert!(
        body["violations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["line"].is_number())
    );
    let missing = h.get("/api/v1/main/flows/team/bad", Who::Admin).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_update_makes_a_new_revision_and_a_delete_removes_the_flow() {
    let h = harness().await;
    h.flow(HELLO).await;
    let path = "/api/v1/main/flows/team.data/hello";
    let changed = HELLO.replace("message: hi", "message: hello");
    let body = Some(("application/x-yaml", changed.clone().into_bytes()));
    let updated = h.send(Method::PUT, path, Who::Admin, body).await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.text);
    assert_eq!(updated.json()["revision"], 2);
    assert_eq!(updated.json()["tasks"][0]["message"], "hello");
    let elsewhere = Some(("application/x-yaml", changed.into_bytes()));
    let wrong_path = h
        .send(
            Method::PUT,
            "/api/v1/main/flows/team.data/other",
            Who::Admin,
            elsewhere,
        )
        .await;
    assert_eq!(wrong_path.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        h.delete(path, Who::Admin).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(h.get(path, Who::Admin).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        h.delete(path, Who::Admin).await.status,
        StatusCode::NOT_FOUND
    );
    let recreated = h.flow(HELLO).await;
    assert_eq!(recreated["revision"], 4, "revisions go on after a delete");
}

#[tokio::test]
async fn search_lists_a_namespace_and_its_children_a_page_at_a_time() {
    let h = harness().await;
    for (ns, id) in [
        ("team", "a"),
        ("team.data", "b"),
        ("team.data", "c"),
        ("other", "d"),
    ] {
        h.flow(
            &HELLO
                .replace("id: hello", &format!("id: {id}"))
                .replace("team.data", ns),
        )
        .await;
    }
    let all = h
        .get("/api/v1/main/flows/search?namespace=team", Who::Admin)
        .await
        .json();
    assert_eq!(all["total"], 3);
    let page = h
        .get(
            "/api/v1/main/flows/search?namespace=team&page=2&size=2",
            Who::Admin,
        )
        .await
        .json();
    assert_eq!(page["results"].as_array().unwrap().len(), 1);
    let everything = h.get("/api/v1/main/flows/search", Who::Admin).await.json();
    assert_eq!(everything["total"], 4);
    let limited = h.get("/api/v1/main/flows/search", Who::Team).await.json();
    assert_eq!(
        limited["total"], 3,
        "a caller sees the namespaces it reaches"
    );
    let bad = h.get("/api/v1/main/flows/search?page=0", Who::Admin).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn validate_answers_constraints_per_document() {
    let h = harness().await;
    let two = format!("{HELLO}---\nid: broken\nnamespace: team\ntasks: []\n");
    let answer = h
        .post_yaml("/api/v1/main/flows/validate", Who::Admin, &two)
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    let results = answer.json();
    assert_eq!(results[0]["constraints"], serde_json::Value::Null);
    assert_eq!(results[0]["flow"], "hello");
    assert!(
        results[1]["constraints"]
            .as_str()
            .unwrap()
            .contains("tasks"),
        "{results}"
    );
    assert_eq!(results[1]["flow"], "broken");

    let typo = HELLO.replace("message: hi", "message: \"{{ foo( }}\"");
    let answer = h
        .post_yaml("/api/v1/main/flows/validate", Who::Admin, &typo)
        .await;
    let constraints = answer.json()[0]["constraints"].to_string();
    assert!(constraints.contains("tasks[0].message"), "{constraints}");
    let saved = h.post_yaml("/api/v1/main/flows", Who::Admin, &typo).await;
    assert_eq!(saved.status, StatusCode::UNPROCESSABLE_ENTITY);
}
