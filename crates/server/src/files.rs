//! An ended execution's files, as the API's file route and the UI serve them: which file a
//! `?path=` names, its content as a stream, a preview. Only an ended execution's files are
//! served: the engine masks them in place before it announces the end (see the engine's
//! `files.rs`), so what leaves here is what a person may read.

use crate::error::AppError;
use crate::state::AppState;
use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use kestrel_storage::{ExecutionFiles, StorageError, StorageUri};
use kestrel_store::ExecutionRecord;
use std::io::Read;
use tokio::sync::mpsc;

/// The size of the chunks a file is sent in.
const CHUNK: usize = 64 * 1024;

/// The files of `record`'s execution and the one `path` names in them: 409 while it runs,
/// 422 for a path outside it, 404 when the server keeps no files.
pub(crate) fn located(
    state: &AppState,
    record: &ExecutionRecord,
    path: Option<&String>,
) -> Result<(ExecutionFiles, StorageUri), AppError> {
    let files = ended_files(state, record)?;
    let path = path.ok_or_else(|| AppError::invalid("The query parameter 'path' is missing"))?;
    let uri = StorageUri::parse(path).map_err(AppError::invalid)?;
    if !uri.starts_with(files.execution_prefix()) {
        return Err(AppError::invalid(format!(
            "{uri} is not a file of execution {}",
            record.id
        )));
    }
    Ok((files, uri))
}

/// The files of `record`'s execution once it ended.
pub(crate) fn ended_files(
    state: &AppState,
    record: &ExecutionRecord,
) -> Result<ExecutionFiles, AppError> {
    // The engine masks the files before it announces the end: an end date means masked.
    if record.ended_at.is_none() {
        return Err(AppError::Conflict(format!(
            "Execution {} has not ended: its files are served once it has (they are masked then)",
            record.id
        )));
    }
    let storage = state
        .options()
        .storage
        .clone()
        .ok_or_else(|| AppError::NotFound("This server keeps no files".into()))?;
    ExecutionFiles::new(storage, &record.namespace, &record.flow_id, &record.id)
        .map_err(|error| AppError::internal("the files of an execution", error))
}

/// A storage failure as an answer: 404 for a file that is not there.
pub(crate) fn served(error: StorageError) -> AppError {
    match error {
        StorageError::NotFound(uri) => AppError::NotFound(format!("No file at {uri}")),
        other => AppError::internal("serving a file", other),
    }
}

/// The file at `uri` as an attachment (`filename` its name, quotes and backslashes
/// replaced), streamed.
pub(crate) fn attachment(files: &ExecutionFiles, uri: &StorageUri) -> Result<Response, AppError> {
    let content = files.storage().open(uri).map_err(served)?;
    let disposition = format!(
        "attachment; filename=\"{}\"",
        uri.file_name().replace(['"', '\\'], "_")
    );
    let headers = [
        (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
        (header::CONTENT_DISPOSITION, disposition),
    ];
    Ok((headers, Body::from_stream(chunks(content))).into_response())
}

/// The content, read on a blocking thread, as a stream of chunks.
fn chunks(
    mut content: Box<dyn Read + Send>,
) -> impl futures_util::Stream<Item = std::io::Result<Bytes>> {
    let (sender, receiver) = mpsc::channel::<std::io::Result<Bytes>>(4);
    tokio::task::spawn_blocking(move || {
        loop {
            let mut buffer = vec![0; CHUNK];
            let chunk = match content.read(&mut buffer) {
                Ok(0) => return,
                Ok(count) => {
                    buffer.truncate(count);
                    Ok(Bytes::from(buffer))
                }
                Err(error) => Err(error),
            };
            let failed = chunk.is_err();
            if sender.blocking_send(chunk).is_err() || failed {
                return;
            }
        }
    });
    futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|chunk| (chunk, receiver))
    })
}
