//! `/api/v1/main/executions`: trigger (no body, multipart inputs or JSON; `?wait=true`), get,
//! search, kill, resume.

use crate::auth::Caller;
use crate::error::AppError;
use crate::executor::{self, Live, Submission, Submitted};
use crate::extract::{Paging, Params, Path, Query, json_body};
use crate::state::AppState;
use crate::view::execution_json;
use axum::Json;
use axum::extract::{FromRequest as _, Multipart, Request, State};
use axum::http::{StatusCode, header};
use kestrel_secrets::SecretValue;
use kestrel_store::{ExecutionQuery, ExecutionRecord};
use serde_json::{Value, json};
use std::sync::Arc;

/// The largest request body an execution's inputs may take.
const INPUTS_LIMIT: usize = 16 * 1024 * 1024;

/// An execution by id: from memory while it runs, else from the store; 404 when absent, 403
/// outside the caller's namespaces.
pub(super) async fn find(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<(ExecutionRecord, Option<Arc<Live>>), AppError> {
    let live = state.0.executor.get(id);
    let record = match &live {
        Some(live) => live.record(),
        None => state
            .0
            .store
            .get_execution(&state.options().tenant, id)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("Execution {id} not found")))?,
    };
    caller.require_namespace(&record.namespace)?;
    Ok((record, live))
}

pub(super) async fn trigger(
    State(state): State<AppState>,
    caller: Caller,
    Path((namespace, flow_id)): Path<(String, String)>,
    Query(params): Query<Params>,
    request: Request,
) -> Result<Json<Value>, AppError> {
    caller.require_namespace(&namespace)?;
    let flow = state
        .latest_flow(&namespace, &flow_id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("Flow {namespace}.{flow_id} not found")))?;
    let inputs = read_inputs(request, &state).await?;
    let wait = params.get("wait").is_some_and(|w| w == "true");
    let submitted = executor::submit(
        &state,
        Submission {
            flow,
            inputs,
            trigger: None,
            triggered_by: caller.actor().to_string(),
        },
    )
    .await?;
    answer(&state, submitted, wait).await
}

/// The execution once it ended (wherever it ran), or as it was created (`CREATED`, whatever
/// it reached since), as Kestra answers.
pub(super) async fn answer(
    state: &AppState,
    submitted: Submitted,
    wait: bool,
) -> Result<Json<Value>, AppError> {
    let record = if wait {
        executor::submitted_ended(state, submitted).await?
    } else {
        as_created(submitted.record)
    };
    Ok(Json(execution_json(&record)))
}

/// `record` as it stood when it was created: in `CREATED`, before any task ran.
fn as_created(mut record: ExecutionRecord) -> ExecutionRecord {
    record.histories.truncate(1);
    if let Some(created) = record.histories.first_mut() {
        created.state = CREATED.to_owned();
    }
    record.state = CREATED.to_owned();
    record.outputs = json!({});
    record.task_runs.clear();
    record.ended_at = None;
    record
}

/// The state of an execution nothing has run yet.
const CREATED: &str = "CREATED";

/// The inputs of a trigger: none (no body), multipart form-data parts (strings verbatim, files
/// as their content), or a JSON object (strings verbatim, other values JSON-encoded).
async fn read_inputs(
    request: Request,
    state: &AppState,
) -> Result<Vec<(String, SecretValue)>, AppError> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if content_type.starts_with("multipart/form-data") {
        let multipart = Multipart::from_request(request, state)
            .await
            .map_err(|e| AppError::BadRequest(e.body_text()))?;
        return multipart_inputs(multipart).await;
    }
    let body = axum::body::to_bytes(request.into_body(), INPUTS_LIMIT)
        .await
        .map_err(|_| {
            AppError::PayloadTooLarge(format!(
                "The inputs are larger than {INPUTS_LIMIT} bytes, or were cut short"
            ))
        })?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    if !content_type.starts_with("application/json") {
        return Err(AppError::UnsupportedMediaType(
            "Inputs go as multipart/form-data or as a JSON object (application/json)".into(),
        ));
    }
    let object: serde_json::Map<String, Value> = json_body(&body)?;
    Ok(object
        .into_iter()
        .map(|(id, value)| {
            let text = match value {
                Value::String(text) => text,
                other => other.to_string(),
            };
            (id, SecretValue::new(text))
        })
        .collect())
}

async fn multipart_inputs(
    mut multipart: Multipart,
) -> Result<Vec<(String, SecretValue)>, AppError> {
    let mut inputs = Vec::new();
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| AppError::BadRequest(e.body_text()))?
    {
        let Some(id) = field.name().map(str::to_owned) else {
            continue;
        };
        let bytes = field
            .bytes()
            .await
            .map_err(|e| AppError::BadRequest(e.body_text()))?;
        let text = String::from_utf8(bytes.to_vec())
            .map_err(|_| AppError::invalid(format!("Input '{id}' is not UTF-8 text")))?;
        inputs.push((id, SecretValue::new(text)));
    }
    Ok(inputs)
}

pub(super) async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let (record, _) = find(&state, &caller, &id).await?;
    Ok(Json(execution_json(&record)))
}

pub(super) async fn search(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<Params>,
) -> Result<Json<Value>, AppError> {
    let paging = Paging::from_params(&params)?;
    let text = |name: &str| params.get(name).filter(|v| !v.is_empty()).cloned();
    let namespace = text("namespace");
    if let Some(ns) = &namespace {
        caller.require_namespace(ns)?;
    }
    let query = ExecutionQuery {
        tenant: state.options().tenant.clone(),
        namespace,
        flow_id: text("flowId"),
        state: text("state"),
        within: caller.within().to_vec(),
        page: paging.page,
        size: paging.size,
    };
    let (page, total) = state.0.store.search_executions(&query).await?;
    // Executions running here are shown as they are now, not as last stored.
    let results: Vec<Value> = page
        .iter()
        .map(|stored| match state.0.executor.get(&stored.id) {
            Some(live) => execution_json(&live.record()),
            None => execution_json(stored),
        })
        .collect();
    Ok(Json(json!({"results": results, "total": total})))
}

pub(super) async fn kill(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    let (record, _) = find(&state, &caller, &id).await?;
    executor::kill(&state, &record).await?;
    Ok(StatusCode::ACCEPTED)
}

/// Resumes a PAUSED execution with its Pause's `onResume` inputs (multipart or JSON, as a
/// trigger's): 422 when they do not fit, 409 when it is not paused, or paused on another node
/// (which alone holds it: resume it there).
pub(super) async fn resume(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    request: Request,
) -> Result<StatusCode, AppError> {
    let (record, live) = find(&state, &caller, &id).await?;
    if record.state != "PAUSED" {
        return Err(AppError::Conflict(format!(
            "Execution {id} is not paused ({})",
            record.state
        )));
    }
    let Some(live) = live else {
        return Err(AppError::Conflict(format!(
            "Execution {id} is paused on another node: resume it through that node"
        )));
    };
    let inputs = read_inputs(request, &state).await?;
    live.resumer
        .resume(inputs)
        .await
        .map_err(AppError::invalid)?;
    Ok(StatusCode::NO_CONTENT)
}
