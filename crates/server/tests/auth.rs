//! Authentication and authorization on every route, table-driven from the OpenAPI document
//! (itself generated from the route table): 401 without or with wrong credentials, 403
//! outside the caller's namespaces or secret access, 429 after too many failures.

#![allow(clippy::unwrap_used)] // Test code: a failure is a failed test.

mod common;

use axum::http::{Method, StatusCode};
use common::{Harness, Who, harness, harness_with, logging_flow};
use kestrel_server::FailureLimit;
use serde_json::Value;
use std::time::Duration;

/// Every (method, path template, public) of the API.
async fn routes(h: &Harness) -> Vec<(Method, String, bool)> {
    let doc = h.get("/api/openapi.json", Who::Admin).await.json();
    let mut routes = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let public = op["security"] == serde_json::json!([]);
            routes.push((method.to_uppercase().parse().unwrap(), path.clone(), public));
        }
    }
    assert!(routes.len() >= 24, "{routes:?}");
    routes
}

/// The path with its parameters filled for namespace `ns` and execution `execution`.
fn fill(template: &str, ns: &str, execution: &str) -> String {
    template
        .replace("{namespace}", ns)
        .replace("{flowId}", "report")
        .replace("{id}", "report")
        .replace("{executionId}", execution)
        .replace("{key}", "DB_PASSWORD")
}

/// A body that the route reads, so that the answer is about credentials, not the body.
fn body(method: &Method, path: &str, ns: &str) -> Option<(&'static str, Vec<u8>)> {
    if path.contains("/secrets") && *method == Method::PUT {
        return Some((
            "application/json",
            br#"{"key":"K","value":"v1234"}"#.to_vec(),
        ));
    }
    if path.contains("/secrets/") && *method == Method::PATCH {
        return Some(("application/json", br#"{"description":"d"}"#.to_vec()));
    }
    if path.contains("/flows") && [Method::POST, Method::PUT].contains(method) {
        return Some((
            "application/x-yaml",
            logging_flow(ns, "report", "K").into_bytes(),
        ));
    }
    None
}

#[tokio::test]
async fn every_protected_route_answers_401_without_or_with_wrong_credentials() {
    // So many failures from one client would be limited (429) long before the end.
    let h = harness_with(|o| o.failure_limit.max_failures = 10_000).await;
    let mut checked = 0;
    for (method, template, public) in routes(&h).await {
        let path = fill(&template, "team", "some-execution");
        for who in [Who::Nobody, Who::Forged, Who::WrongPassword] {
            let answer = h
                .send(method.clone(), &path, who, body(&method, &template, "team"))
                .await;
            if public {
                assert_ne!(answer.status, StatusCode::UNAUTHORIZED, "{method} {path}");
                continue;
            }
            assert_eq!(
                answer.status,
                StatusCode::UNAUTHORIZED,
                "{who:?} {method} {path}"
            );
            assert!(answer.json()["message"].is_string());
            assert!(answer.headers.contains_key("www-authenticate"));
            checked += 1;
        }
    }
    assert!(checked >= 60, "{checked}");
}

/// Routes that do not name a namespace: they list what the caller reaches instead of
/// refusing.
const FILTERED: &[&str] = &[
    "/api/openapi.json",
    "/api/v1/main/flows/validate",
    "/api/v1/main/namespaces/search",
];

#[tokio::test]
async fn every_route_answers_403_outside_the_callers_namespaces() {
    let h = harness().await;
    h.secret("other", "DB_PASSWORD", "a-value-of-other").await;
    h.flow(&logging_flow("other", "report", "DB_PASSWORD"))
        .await;
    let execution = h.run("other", "report").await;
    let execution = execution["id"].as_str().unwrap();
    let mut refused = 0;
    for (method, template, public) in routes(&h).await {
        if public || FILTERED.contains(&template.as_str()) {
            continue;
        }
        let mut path = fill(&template, "other", execution);
        if template.ends_with("/search") {
            path.push_str("?namespace=other");
        }
        if template == "/api/v1/main/secrets" {
            path.push_str("?filters[namespace][EQUALS]=other");
        }
        let answer = h
            .send(
                method.clone(),
                &path,
                Who::Team,
                body(&method, &template, "other"),
            )
            .await;
        assert_eq!(
            answer.status,
            StatusCode::FORBIDDEN,
            "{method} {path}: {}",
            answer.text
        );
        refused += 1;
    }
    assert!(refused >= 18, "{refused}");
    // The same caller inside its namespace is served.
    h.flow(&logging_flow("team.data", "report", "DB_PASSWORD"))
        .await;
    let inside = h
        .get("/api/v1/main/flows/team.data/report", Who::Team)
        .await;
    assert_eq!(inside.status, StatusCode::OK);
}

#[tokio::test]
async fn secret_routes_answer_403_without_the_secret_access_they_need() {
    let h = harness().await;
    h.secret("team", "DB_PASSWORD", "a-value-1234").await;
    let list = "/api/v1/main/namespaces/team/secrets";
    for path in [
        list,
        "/api/v1/main/secrets",
        "/api/v1/main/namespaces/team/inherited-secrets",
    ] {
        assert_eq!(
            h.get(path, Who::NoSecrets).await.status,
            StatusCode::FORBIDDEN,
            "{path}"
        );
        assert_eq!(
            h.get(path, Who::Reader).await.status,
            StatusCode::OK,
            "{path}"
        );
    }
    let put = serde_json::json!({"key": "K", "value": "v1234"});
    let answer = h.json(Method::PUT, list, Who::Reader, &put).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert!(
        answer.json()["message"]
            .as_str()
            .unwrap()
            .contains("may not change secrets")
    );
    let patch = serde_json::json!({"description": "d"});
    let key = format!("{list}/DB_PASSWORD");
    assert_eq!(
        h.json(Method::PATCH, &key, Who::Reader, &patch)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        h.delete(&key, Who::Reader).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        h.delete(&key, Who::Ada).await.status,
        StatusCode::NO_CONTENT,
        "a user by Basic"
    );
}

#[tokio::test]
async fn failed_sign_ins_are_limited_per_client() {
    let h = harness_with(|o| {
        o.failure_limit = FailureLimit {
            max_failures: 3,
            window: Duration::from_secs(600),
        }
    })
    .await;
    for _ in 0..3 {
        let answer = h.get("/api/v1/main/flows/search", Who::Forged).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    }
    let limited = h.get("/api/v1/main/flows/search", Who::Forged).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.headers.contains_key("retry-after"));
    // Only failures wait: a right token from the same client passes.
    let admin = h.get("/api/v1/main/flows/search", Who::Admin).await;
    assert_eq!(admin.status, StatusCode::OK);
}

#[tokio::test]
async fn a_user_whose_password_is_guessed_too_often_waits() {
    let h = harness_with(|o| {
        o.failure_limit = FailureLimit {
            max_failures: 2,
            window: Duration::from_secs(600),
        }
    })
    .await;
    assert_eq!(
        h.get("/api/v1/main/flows/search", Who::Ada).await.status,
        StatusCode::OK
    );
    for _ in 0..2 {
        let answer = h.get("/api/v1/main/flows/search", Who::WrongPassword).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    }
    let answer = h.get("/api/v1/main/flows/search", Who::WrongPassword).await;
    assert_eq!(answer.status, StatusCode::TOO_MANY_REQUESTS);
    // The right password is never refused.
    let answer = h.get("/api/v1/main/flows/search", Who::Ada).await;
    assert_eq!(answer.status, StatusCode::OK);
}

#[tokio::test]
async fn configured_tokens_and_users_sign_in_and_auth_can_be_off() {
    let token = "kst_configured-token-for-tests";
    let h = harness_with(|o| {
        o.auth.tokens.push(kestrel_server::ConfiguredToken::new(
            "from-config",
            &kestrel_server::token_hash(token),
            vec!["team".into()],
            kestrel_store::SecretAccess::Read,
        ));
    })
    .await;
    let request = axum::http::Request::get("/api/v1/main/flows/search?namespace=team")
        .header("authorization", format!("Bearer {token}"))
        .body(axum::body::Body::empty())
        .unwrap();
    assert_eq!(h.call(request).await.status, StatusCode::OK);
    let request = axum::http::Request::get("/api/v1/main/flows/search?namespace=other")
        .header("authorization", format!("Bearer {token}"))
        .body(axum::body::Body::empty())
        .unwrap();
    assert_eq!(h.call(request).await.status, StatusCode::FORBIDDEN);

    let open = harness_with(|o| o.auth.enabled = false).await;
    let answer = open.get("/api/v1/main/flows/search", Who::Nobody).await;
    assert_eq!(answer.status, StatusCode::OK);
}

#[tokio::test]
async fn health_is_public_and_checks_the_database() {
    let h = harness().await;
    let health = h.get("/health", Who::Nobody).await;
    assert_eq!(health.status, StatusCode::OK);
    let body: Value = health.json();
    assert_eq!(body["status"], "UP");
    assert_eq!(body["checks"]["database"]["status"], "UP");
    let sandbox = body["checks"]["tasks"]["details"]["sandbox"].as_str();
    assert!(
        sandbox.is_some_and(|s| s.starts_with("on") || s.starts_with("unavailable: ")),
        "the task sandbox is told: {body}"
    );
    let unknown = h.get("/api/v1/main/nothing-here", Who::Admin).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(unknown.json()["message"].is_string());
}
