//! `/health` and `/api/openapi.json`.

use crate::error::AppError;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
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
    let body = json!({
        "status": if up { "UP" } else { "DOWN" },
        "checks": {
            "database": database,
            "secrets": {"status": "UP", "details": {"backends": [store.name(), "environment"]}},
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

pub(super) async fn openapi(_caller: crate::auth::Caller) -> Result<Json<Value>, AppError> {
    Ok(Json(crate::openapi::document()))
}
