//! `/api/v1/main/flows`: create and update from YAML, get, delete, search, validate.

use crate::auth::Caller;
use crate::error::AppError;
use crate::extract::{Paging, Params, Path, Query, RawBody};
use crate::flows::{self, flow_json, source_json};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

/// A body as text (YAML); 400 when it is not UTF-8.
pub(super) fn text(RawBody(body): &RawBody) -> Result<&str, AppError> {
    std::str::from_utf8(body).map_err(|_| AppError::BadRequest("The body is not UTF-8 text".into()))
}

fn not_found(namespace: &str, id: &str) -> AppError {
    AppError::NotFound(format!("Flow {namespace}.{id} not found"))
}

pub(super) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    body: RawBody,
) -> Result<Json<Value>, AppError> {
    let source = text(&body)?;
    let flow = flows::check(source).await.map_err(|v| flows::invalid(&v))?;
    caller.require_namespace(&flow.namespace)?;
    let tenant = &state.options().tenant;
    let record = state
        .0
        .store
        .create_flow(tenant, &flow.namespace, &flow.id, source)
        .await?;
    state.0.flows.forget(&flow.namespace, &flow.id);
    Ok(Json(flow_json(&record)))
}

pub(super) async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path((namespace, id)): Path<(String, String)>,
    body: RawBody,
) -> Result<Json<Value>, AppError> {
    caller.require_namespace(&namespace)?;
    let source = text(&body)?;
    let flow = flows::check(source).await.map_err(|v| flows::invalid(&v))?;
    if (flow.namespace.as_str(), flow.id.as_str()) != (namespace.as_str(), id.as_str()) {
        return Err(AppError::invalid(format!(
            "Illegal flow update: the YAML names {}.{}, the path {namespace}.{id}",
            flow.namespace, flow.id
        )));
    }
    let tenant = &state.options().tenant;
    let record = state
        .0
        .store
        .update_flow(tenant, &namespace, &id, source)
        .await?
        .ok_or_else(|| not_found(&namespace, &id))?;
    state.0.flows.forget(&namespace, &id);
    Ok(Json(flow_json(&record)))
}

pub(super) async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path((namespace, id)): Path<(String, String)>,
) -> Result<Json<Value>, AppError> {
    caller.require_namespace(&namespace)?;
    let tenant = &state.options().tenant;
    let record = state
        .0
        .store
        .get_flow(tenant, &namespace, &id, None)
        .await?
        .ok_or_else(|| not_found(&namespace, &id))?;
    Ok(Json(flow_json(&record)))
}

pub(super) async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path((namespace, id)): Path<(String, String)>,
) -> Result<StatusCode, AppError> {
    caller.require_namespace(&namespace)?;
    let tenant = &state.options().tenant;
    let deleted = state.0.store.delete_flow(tenant, &namespace, &id).await?;
    state.0.flows.forget(&namespace, &id);
    if deleted {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found(&namespace, &id))
    }
}

pub(super) async fn search(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<Params>,
) -> Result<Json<Value>, AppError> {
    let paging = Paging::from_params(&params)?;
    let namespace = params.get("namespace").filter(|ns| !ns.is_empty());
    if let Some(ns) = namespace {
        caller.require_namespace(ns)?;
    }
    let query = params.get("q").map(|q| q.to_lowercase());
    let tenant = &state.options().tenant;
    let found: Vec<_> = state
        .0
        .store
        .list_flows(tenant, namespace.map(String::as_str))
        .await?
        .into_iter()
        .filter(|f| caller.reaches(&f.namespace))
        .filter(|f| {
            query
                .as_ref()
                .is_none_or(|q| f.id.to_lowercase().contains(q))
        })
        .collect();
    let total = found.len();
    let results: Vec<Value> = paging.slice(found).iter().map(flow_json).collect();
    Ok(Json(json!({"results": results, "total": total})))
}

/// Each YAML document of the body checked: Kestra's `constraints` (null when valid), and the
/// violations with their lines.
pub(super) async fn validate(_caller: Caller, body: RawBody) -> Result<Json<Value>, AppError> {
    let source = text(&body)?;
    let documents = documents(source);
    let checked = flows::check_all(documents.clone()).await;
    let results: Vec<Value> = documents
        .iter()
        .zip(checked)
        .enumerate()
        .map(|(index, (document, checked))| {
            let written = source_json(document);
            let violations = checked.err().unwrap_or_default();
            let constraints = (!violations.is_empty()).then(|| {
                violations
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n")
            });
            json!({
                "index": index,
                "flow": written.get("id"),
                "namespace": written.get("namespace"),
                "constraints": constraints,
                "outdated": false,
                "deprecationPaths": [],
                "warnings": [],
                "infos": [],
                "violations": violations.iter().map(flows::violation_json).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(Json(Value::Array(results)))
}

/// The YAML documents of a text, split at `---` lines (blank ones left out).
fn documents(source: &str) -> Vec<String> {
    let mut documents = vec![String::new()];
    for line in source.split_inclusive('\n') {
        if line.trim_end() == "---" {
            documents.push(String::new());
        } else if let Some(current) = documents.last_mut() {
            current.push_str(line);
        }
    }
    documents.retain(|d| !d.trim().is_empty());
    documents
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_split_at_separator_lines() {
        let docs = documents("---\nid: a\n---\nid: b\nmessage: '---'\n---\n");
        assert_eq!(docs, ["id: a\n", "id: b\nmessage: '---'\n"]);
    }
}
