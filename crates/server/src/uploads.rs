//! FILE inputs sent as multipart file parts: each is streamed into the internal storage as it
//! arrives (never held whole in memory), bounded by `storage.max-file-size`, and the input's
//! value becomes the file's `kestra://` URI.

use crate::error::AppError;
use axum::body::Bytes;
use axum::extract::multipart::Field;
use kestrel_storage::{ExecutionFiles, StorageError};
use std::io::{self, Read};
use tokio::sync::mpsc;

/// Chunks in flight between the request and the storage's blocking write.
const CHUNKS_IN_FLIGHT: usize = 8;

/// Stores the file part `field` as FILE input `input` of the execution `files` belongs to;
/// its URI. The file keeps the last component of the name the client gave (or Kestra's
/// default, `<input>.upl`).
pub(crate) async fn store_upload(
    files: &ExecutionFiles,
    input: &str,
    mut field: Field<'_>,
) -> Result<String, AppError> {
    let name = field
        .file_name()
        .and_then(|name| name.rsplit(['/', '\\']).next())
        .filter(|name| !matches!(*name, "" | "." | ".."))
        .map_or_else(|| format!("{input}.upl"), str::to_owned);
    let uri = files
        .input_file(input, &name)
        .map_err(|error| refused(input, &error))?;
    let (sender, receiver) = mpsc::channel::<Bytes>(CHUNKS_IN_FLIGHT);
    let writing = {
        let (files, uri) = (files.clone(), uri.clone());
        tokio::task::spawn_blocking(move || files.put(&uri, &mut ChunkReader::new(receiver)))
    };
    while let Some(chunk) = field
        .chunk()
        .await
        .map_err(|error| AppError::BadRequest(error.body_text()))?
    {
        // A closed channel means the write ended early (the file is too large): its error
        // says why below.
        if sender.send(chunk).await.is_err() {
            break;
        }
    }
    drop(sender);
    match writing.await {
        Ok(Ok(_)) => Ok(uri.to_string()),
        Ok(Err(error)) => Err(refused(input, &error)),
        Err(error) => Err(AppError::internal("storing an upload", error)),
    }
}

fn refused(input: &str, error: &StorageError) -> AppError {
    match error {
        StorageError::TooLarge { .. } => {
            AppError::PayloadTooLarge(format!("Input '{input}': {error}"))
        }
        StorageError::Io(..) => AppError::internal("storing an upload", error),
        _ => AppError::invalid(format!("Input '{input}': {error}")),
    }
}

/// The chunks a request sends, read as one stream by the storage's blocking write.
struct ChunkReader {
    receiver: mpsc::Receiver<Bytes>,
    current: Bytes,
}

impl ChunkReader {
    fn new(receiver: mpsc::Receiver<Bytes>) -> Self {
        Self {
            receiver,
            current: Bytes::new(),
        }
    }
}

impl Read for ChunkReader {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.receiver.blocking_recv() {
                Some(chunk) => self.current = chunk,
                None => return Ok(0),
            }
        }
        let count = buffer.len().min(self.current.len());
        buffer[..count].copy_from_slice(&self.current.split_to(count));
        Ok(count)
    }
}
