//! `/health` and `/api/openapi.json`.

use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use kestrel_store::BackendCheck;
use serde_json::{Value, json};

/// `{"status": "UP"}` with a check of the database and of the secret backends; 503 and
/// `DOWN` when the database does not answer.
pub(super) async fn health(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let store = &state.0.store;
    let database = match store.list_namespaces(&state.options().tenant).await {
        Ok(_) => json!({"status": "UP", "details": {"database": "sqlite", "store": store.name()}}),
        Err(error) => {
            crate::log::error(&format!("health: the database does not answer: {error}"));
            json!({"status": "DOWN"})
        }
    };
    let up = database["status"] == "UP";
    let secrets = secrets_check(&state).await;
    let body = json!({
        "status": if up { "UP" } else { "DOWN" },
        "checks": {
            "database": database,
            "secrets": secrets,
            "tasks": {"status": "UP", "details": {"sandbox": kestrel_sandbox::current().status().to_string()}},
        },
    });
    let status = if up {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}

/// Each secret backend's state: the server stays up when one is down (its tasks fail, naming
/// it), and says which. A backend that does not answer within two seconds is down.
async fn secrets_check(state: &AppState) -> Value {
    let checks = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        state.secrets().check_backends(),
    )
    .await
    .unwrap_or_else(|_| {
        let name = state.secrets().name();
        vec![BackendCheck::down(
            name,
            format!("{name}: no answer within 2 s"),
        )]
    });
    let all_up = checks.iter().all(|check| check.status == "UP");
    let mut backends: Vec<Value> = checks.iter().map(|check| json!(check)).collect();
    backends.push(json!(BackendCheck::up("environment")));
    json!({"status": if all_up { "UP" } else { "DOWN" }, "details": {"backends": backends}})
}

/// The API's description: public, as it holds no data (api.md).
pub(super) async fn openapi() -> Json<Value> {
    Json(crate::openapi::document())
}
