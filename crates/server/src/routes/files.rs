//! `/api/v1/main/executions/{executionId}/file` and `/file/metas`: a file of an ended
//! execution's internal storage, by its `kestra://` URI (`?path=`), as Kestra serves it (see
//! `crate::files`).

use super::executions::find;
use crate::auth::Caller;
use crate::error::AppError;
use crate::extract::{Params, Path, Query};
use crate::files::{attachment, chunks, located, served};
use crate::state::AppState;
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

pub(super) async fn file(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(params): Query<Params>,
) -> Result<Response, AppError> {
    let (record, _) = find(&state, &caller, &id).await?;
    let (files, uri) = located(&state, &record, params.get("path"))?;
    let content = files.storage().open(&uri).map_err(served)?;
    let headers = [
        (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
        (header::CONTENT_DISPOSITION, attachment(&uri)),
    ];
    Ok((headers, Body::from_stream(chunks(content))).into_response())
}

pub(super) async fn metas(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(params): Query<Params>,
) -> Result<Json<Value>, AppError> {
    let (record, _) = find(&state, &caller, &id).await?;
    let (files, uri) = located(&state, &record, params.get("path"))?;
    let size = files.storage().size(&uri).map_err(served)?;
    Ok(Json(json!({"size": size})))
}
