//! `/api/v1/main/executions`: trigger (no body, multipart inputs or JSON; `?wait=true`), get,
//! search, kill, resume, restart.

use crate::auth::Caller;
use crate::error::AppError;
use crate::executor::{self, Live, Submission, Submitted};
use crate::extract::{Paging, Params, Path, Query, json_body};
use crate::state::AppState;
use crate::uploads;
use crate::view::execution_json;
use axum::Json;
use axum::extract::multipart::Field;
use axum::extract::{FromRequest as _, Multipart, RawQuery, Request, State};
use axum::http::{StatusCode, header};
use chrono::{DateTime, Utc};
use kestrel_flow::{Flow, InputDef, InputType};
use kestrel_secrets::SecretValue;
use kestrel_storage::ExecutionFiles;
use kestrel_store::{ExecutionQuery, ExecutionRecord};
use serde::Deserialize;
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
    let id = kestrel_engine::new_id();
    let files = execution_files(&state, &flow.flow, &id)?;
    let inputs = read_inputs(request, &state, &flow.flow.inputs, &files).await;
    let wait = params.get("wait").is_some_and(|w| w == "true");
    let submitted = match inputs {
        Ok(inputs) => {
            let submission = Submission {
                id: Some(id),
                flow,
                inputs,
                trigger: None,
                triggered_by: caller.actor().to_string(),
            };
            executor::submit(&state, submission).await
        }
        Err(error) => Err(error),
    };
    if submitted.is_err() {
        forget_uploads(files.as_ref());
    }
    answer(&state, submitted?, wait).await
}

/// The files of execution `id` of `flow`, when the server has a storage.
fn execution_files(
    state: &AppState,
    flow: &Flow,
    id: &str,
) -> Result<Option<ExecutionFiles>, AppError> {
    let Some(storage) = state.options().storage.clone() else {
        return Ok(None);
    };
    ExecutionFiles::new(storage, &flow.namespace, &flow.id, id)
        .map(Some)
        .map_err(|error| AppError::invalid(error.to_string()))
}

/// Removes what a trigger that was refused had stored.
fn forget_uploads(files: Option<&ExecutionFiles>) {
    if let Some(files) = files
        && let Err(error) = files.storage().delete_all(files.execution_prefix())
    {
        crate::log::warn(&format!(
            "cannot remove a refused execution's uploads: {error}"
        ));
    }
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

/// The inputs of a trigger (or a resume): none (no body), multipart form-data parts (strings
/// verbatim, files as their content, but the file of a FILE input of `defs` stored in `files`),
/// or a JSON object (strings verbatim, other values JSON-encoded).
async fn read_inputs(
    request: Request,
    state: &AppState,
    defs: &[InputDef],
    files: &Option<ExecutionFiles>,
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
        return multipart_inputs(multipart, defs, files.as_ref()).await;
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

/// The parts of a multipart body: a FILE input's file part stored (up to
/// `storage.max-file-size`), every other part read as text (all of them together up to
/// [`INPUTS_LIMIT`]).
async fn multipart_inputs(
    mut multipart: Multipart,
    defs: &[InputDef],
    files: Option<&ExecutionFiles>,
) -> Result<Vec<(String, SecretValue)>, AppError> {
    let mut inputs = Vec::new();
    let mut text_bytes = 0;
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| AppError::BadRequest(e.body_text()))?
    {
        let Some(id) = field.name().map(str::to_owned) else {
            continue;
        };
        let is_file = defs
            .iter()
            .any(|def| def.id == id && def.input_type == InputType::File);
        let value = match (is_file && field.file_name().is_some(), files) {
            (true, Some(files)) => uploads::store_upload(files, &id, field).await?,
            (true, None) => {
                return Err(AppError::invalid(format!(
                    "Input '{id}': this server has no internal storage for files"
                )));
            }
            (false, _) => text_part(&id, field, &mut text_bytes).await?,
        };
        inputs.push((id, SecretValue::new(value)));
    }
    Ok(inputs)
}

/// A part read as UTF-8 text, counted in `total` against [`INPUTS_LIMIT`].
async fn text_part(id: &str, mut field: Field<'_>, total: &mut usize) -> Result<String, AppError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = field
        .chunk()
        .await
        .map_err(|e| AppError::BadRequest(e.body_text()))?
    {
        *total += chunk.len();
        if *total > INPUTS_LIMIT {
            return Err(AppError::PayloadTooLarge(format!(
                "The inputs are larger than {INPUTS_LIMIT} bytes"
            )));
        }
        bytes.extend_from_slice(&chunk);
    }
    String::from_utf8(bytes)
        .map_err(|_| AppError::invalid(format!("Input '{id}' is not UTF-8 text")))
}

pub(super) async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let (record, _) = find(&state, &caller, &id).await?;
    Ok(Json(execution_json(&record)))
}

/// Kestra's `startDate` or `endDate` of a search: an RFC 3339 instant; 400 otherwise.
fn instant(params: &Params, name: &str) -> Result<Option<DateTime<Utc>>, AppError> {
    let Some(text) = params.get(name).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    DateTime::parse_from_rfc3339(text)
        .map(|at| Some(at.with_timezone(&Utc)))
        .map_err(|_| {
            AppError::BadRequest(format!(
                "{name} must be an RFC 3339 date-time such as 2026-12-06T10:00:00Z"
            ))
        })
}

/// Every `labels=key:value` of the query string (Kestra's label filter); 400 for one without
/// a `:`.
pub(crate) fn label_filters(query: Option<&str>) -> Result<Vec<(String, String)>, AppError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.unwrap_or_default())
        .map_err(|_| AppError::BadRequest("The query string could not be read".into()))?;
    pairs
        .into_iter()
        .filter(|(name, value)| name == "labels" && !value.is_empty())
        .map(|(_, label)| match label.split_once(':') {
            Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
            _ => Err(AppError::BadRequest(format!(
                "labels must be written key:value, not '{label}'"
            ))),
        })
        .collect()
}

pub(super) async fn search(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<Params>,
    RawQuery(raw): RawQuery,
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
        created_after: instant(&params, "startDate")?,
        created_before: instant(&params, "endDate")?,
        labels: label_filters(raw.as_deref())?,
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

/// Kestra's restart: the ended execution runs its failed task runs again, under its id.
pub(super) async fn restart(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let (record, _) = find(&state, &caller, &id).await?;
    let restarted = executor::restart(&state, &record).await?;
    Ok(Json(execution_json(&restarted)))
}

/// Where a replay starts.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ReplayFrom {
    task_run_id: Option<String>,
}

/// Kestra's replay: a new execution of the ended one's flow revision, run again from a task
/// run.
pub(super) async fn replay(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(from): Query<ReplayFrom>,
) -> Result<Json<Value>, AppError> {
    let (record, _) = find(&state, &caller, &id).await?;
    let who = caller.actor().to_string();
    let from = from.task_run_id.as_deref();
    let replayed = executor::replay(&state, &record, from, &who).await?;
    Ok(Json(execution_json(&replayed)))
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
    let (defs, flow) = executor::on_resume_inputs(&state, &record).await?;
    let files = execution_files(&state, &flow.flow, &id)?;
    let inputs = read_inputs(request, &state, &defs, &files).await?;
    live.resumer
        .resume(inputs)
        .await
        .map_err(AppError::invalid)?;
    Ok(StatusCode::NO_CONTENT)
}
