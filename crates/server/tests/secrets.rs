//! The secrets API the README describes: create or update, list (own, across namespaces, inherited),
//! change metadata, delete; values never answered; every change audited with its caller.

#![allow(clippy::unwrap_used)] // Test code: a failure is a failed test.

mod common;

use axum::http::{Method, StatusCode};
use common::{Who, harness, harness_read_only};
use kestrel_store::{AuditAction, AuditFilter, SecretStore};
use serde_json::json;

const VALUE: &str = "p4ssw0rd-never-shown";

#[tokio::test]
async fn a_secret_is_set_listed_patched_and_deleted_without_its_value() {
    let h = harness().await;
    let path = "/api/v1/main/namespaces/team.data/secrets";
    let body = json!({
        "key": "DB_PASSWORD",
        "value": VALUE,
        "description": "the warehouse",
        "tags": [{"key": "env", "value": "prod"}],
    });
    let put = h.json(Method::PUT, path, Who::Admin, &body).await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text);
    assert_eq!(
        put.json(),
        json!([{"key": "DB_PASSWORD", "namespace": "team.data", "description": "the warehouse",
                "tags": [{"key": "env", "value": "prod"}]}])
    );
    let bare = json!({"key": "API_KEY", "value": "another-value-1234"});
    h.json(Method::PUT, path, Who::Admin, &bare).await;
    let listed = h.get(path, Who::Reader).await.json();
    assert_eq!(listed["readOnly"], false);
    assert_eq!(listed["total"], 2);
    assert_eq!(listed["results"][0]["key"], "API_KEY");
    assert_eq!(
        listed["results"][0]["tags"],
        json!([]),
        "tags are always a list"
    );
    let paged = h
        .get(&format!("{path}?page=2&size=1"), Who::Reader)
        .await
        .json();
    assert_eq!(paged["results"][0]["key"], "DB_PASSWORD");

    let patch_path = format!("{path}/DB_PASSWORD");
    let meta = json!({"description": "moved", "tags": []});
    let patched = h.json(Method::PATCH, &patch_path, Who::Admin, &meta).await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    assert_eq!(patched.json()[0]["description"], "moved");
    let with_value = json!({"description": "x", "value": "sneaky"});
    let refused = h
        .json(Method::PATCH, &patch_path, Who::Admin, &with_value)
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);

    assert_eq!(
        h.delete(&patch_path, Who::Admin).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        h.delete(&patch_path, Who::Admin).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(h.get(path, Who::Reader).await.json()["total"], 1);
    h.assert_never_answered(&[VALUE, "another-value-1234", "sneaky"]);
}

#[tokio::test]
async fn every_change_is_audited_with_the_caller_as_actor() {
    let h = harness().await;
    let path = "/api/v1/main/namespaces/audited/secrets";
    h.json(
        Method::PUT,
        path,
        Who::Ada,
        &json!({"key": "K", "value": VALUE}),
    )
    .await;
    let meta = json!({"description": "d"});
    h.json(Method::PATCH, &format!("{path}/K"), Who::Admin, &meta)
        .await;
    h.delete(&format!("{path}/K"), Who::Ada).await;
    let filter = AuditFilter {
        namespace: Some("audited".into()),
        ..AuditFilter::default()
    };
    let trail = h.store.audit(&filter).await.unwrap();
    let seen: Vec<(AuditAction, String)> = trail
        .iter()
        .rev()
        .map(|e| (e.action, e.actor.to_string()))
        .collect();
    assert_eq!(seen[0], (AuditAction::Set, "user:ada".to_owned()));
    assert_eq!(seen[1].0, AuditAction::UpdateMeta);
    assert!(seen[1].1.starts_with("token:Admin-"), "{seen:?}");
    assert_eq!(seen[2], (AuditAction::Delete, "user:ada".to_owned()));
}

#[tokio::test]
async fn listing_across_namespaces_and_inherited_keys() {
    let h = harness().await;
    for (ns, key) in [
        ("company", "ROOT_KEY"),
        ("company.team", "TEAM_KEY"),
        ("team", "OTHER"),
    ] {
        h.secret(ns, key, VALUE).await;
    }
    let one = h
        .get(
            "/api/v1/main/secrets?filters[namespace][EQUALS]=company.team",
            Who::Reader,
        )
        .await
        .json();
    assert_eq!(one["total"], 1);
    assert_eq!(one["results"][0]["key"], "TEAM_KEY");
    let all = h.get("/api/v1/main/secrets", Who::Reader).await.json();
    assert_eq!(all["total"], 3);
    let limited = h.get("/api/v1/main/secrets", Who::Team).await.json();
    assert_eq!(
        limited["total"], 1,
        "only the namespaces the caller reaches"
    );
    let inherited = h
        .get(
            "/api/v1/main/namespaces/company.team.project/inherited-secrets",
            Who::Reader,
        )
        .await
        .json();
    assert_eq!(
        inherited,
        json!({"company.team": ["TEAM_KEY"], "company": ["ROOT_KEY"]})
    );
    h.assert_never_answered(&[VALUE]);
}

#[tokio::test]
async fn bad_keys_and_read_only_backends_are_refused() {
    let h = harness_read_only("locked").await;
    let bad = json!({"key": "has space", "value": "v"});
    let answer = h
        .json(
            Method::PUT,
            "/api/v1/main/namespaces/team/secrets",
            Who::Admin,
            &bad,
        )
        .await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    let locked = json!({"key": "K", "value": "v"});
    let answer = h
        .json(
            Method::PUT,
            "/api/v1/main/namespaces/locked.sub/secrets",
            Who::Admin,
            &locked,
        )
        .await;
    // 409 naming the backend and its mode: the request is fine, the backend's mode forbids it.
    assert_eq!(answer.status, StatusCode::CONFLICT, "{}", answer.text);
    assert!(
        answer
            .text
            .contains("embedded backend, configured read-only"),
        "{}",
        answer.text
    );
    let listed = h
        .get("/api/v1/main/namespaces/locked/secrets", Who::Admin)
        .await
        .json();
    assert_eq!(listed["readOnly"], true);
    let no_body = h
        .send(
            Method::PUT,
            "/api/v1/main/namespaces/team/secrets",
            Who::Admin,
            None,
        )
        .await;
    assert_eq!(no_body.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(no_body.json()["message"].is_string());
}

#[tokio::test]
async fn namespaces_exist_once_a_flow_or_a_secret_names_them() {
    let h = harness().await;
    h.secret("company.secrets.only", "K", VALUE).await;
    h.flow("id: f\nnamespace: team.flows\ntasks:\n  - id: l\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n")
        .await;
    let found = h
        .get("/api/v1/main/namespaces/search", Who::Admin)
        .await
        .json();
    let ids: Vec<&str> = found["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "company",
            "company.secrets",
            "company.secrets.only",
            "team",
            "team.flows"
        ]
    );
    let one = h
        .get("/api/v1/main/namespaces/company.secrets", Who::Admin)
        .await;
    assert_eq!(one.json(), json!({"id": "company.secrets"}));
    let none = h.get("/api/v1/main/namespaces/nowhere", Who::Admin).await;
    assert_eq!(none.status, StatusCode::NOT_FOUND);
    let limited = h
        .get("/api/v1/main/namespaces/search?q=flows", Who::Team)
        .await
        .json();
    assert_eq!(limited["results"], json!([{"id": "team.flows"}]));
}
