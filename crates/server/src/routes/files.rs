//! `/api/v1/main/executions/{executionId}/file` and `/file/metas`: a file of an ended
//! execution's internal storage, by its `kestra://` URI (`?path=`), as Kestra serves it (see
//! `crate::files`).

use super::executions::find;
use crate::auth::Caller;
use crate::error::AppError;
use crate::extract::{Params, Path, Query};
use crate::files::{attachment, located, served};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::response::Response;
use serde_json::{Value, json};

pub(super) async fn file(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(params): Query<Params>,
) -> Result<Response, AppError> {
    let (record, _) = find(&state, &caller, &id).await?;
    let (files, uri) = located(&state, &record, params.get("path"))?;
    attachment(&files, &uri)
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
