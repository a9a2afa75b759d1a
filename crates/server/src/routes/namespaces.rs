//! `/api/v1/main/namespaces`: the namespaces that flows and secrets name (with their
//! ancestors), as far as the caller reaches.

use crate::auth::Caller;
use crate::error::AppError;
use crate::extract::{Paging, Params, Path, Query};
use crate::namespaces::known;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// Every namespace known, sorted.
async fn all(state: &AppState) -> Result<BTreeSet<String>, AppError> {
    let tenant = &state.options().tenant;
    let flows = state.0.store.list_flows(tenant, None).await?;
    let secrets = state.0.secrets.list_namespaces(tenant).await?;
    Ok(known(
        flows
            .iter()
            .map(|f| f.namespace.as_str())
            .chain(secrets.iter().map(String::as_str)),
    ))
}

pub(super) async fn search(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<Params>,
) -> Result<Json<Value>, AppError> {
    let paging = Paging::from_params(&params)?;
    let query = params.get("q").map(|q| q.to_lowercase());
    let found: Vec<String> = all(&state)
        .await?
        .into_iter()
        .filter(|ns| caller.reaches(ns))
        .filter(|ns| query.as_ref().is_none_or(|q| ns.contains(q.as_str())))
        .collect();
    let total = found.len();
    let results: Vec<Value> = paging
        .slice(found)
        .into_iter()
        .map(|id| json!({"id": id}))
        .collect();
    Ok(Json(json!({"results": results, "total": total})))
}

pub(super) async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(namespace): Path<String>,
) -> Result<Json<Value>, AppError> {
    caller.require_namespace(&namespace)?;
    if all(&state).await?.contains(&namespace) {
        Ok(Json(json!({"id": namespace})))
    } else {
        Err(AppError::NotFound(format!(
            "Namespace '{namespace}' not found"
        )))
    }
}
