//! The execution's files once it ended: masked in place, so that no file at rest holds a
//! value the execution registered (secrets, SECRET inputs, what derives from them), as no log
//! or output does. Readers (the API's file route, the UI) then show files as they are.
//! Tasks of the execution itself read real content while it runs; a later execution reading
//! the file (`read()`, `inputFiles`) reads the masked one.

use crate::runner::Run;
use kestrel_expr::{Context, Files};
use kestrel_storage::ExecutionFiles;
use std::io::Read;
use std::sync::Arc;

/// The execution's files as its expressions read them (`read()`, `fileSize()`...).
struct ExpressionFiles(ExecutionFiles);

impl Files for ExpressionFiles {
    fn read(&self, uri: &str, limit: usize) -> Result<Vec<u8>, String> {
        let mut content = Vec::new();
        let limit = u64::try_from(limit).unwrap_or(u64::MAX);
        self.0
            .open(uri)
            .map_err(|error| error.to_string())?
            .take(limit.saturating_add(1))
            .read_to_end(&mut content)
            .map_err(|error| format!("cannot read {uri}: {error}"))?;
        if content.len() as u64 > limit {
            return Err(format!("{uri} is larger than {limit} bytes"));
        }
        Ok(content)
    }

    fn size(&self, uri: &str) -> Result<u64, String> {
        self.0.size(uri).map_err(|error| error.to_string())
    }

    fn exists(&self, uri: &str) -> Result<bool, String> {
        self.0.exists(uri).map_err(|error| error.to_string())
    }
}

impl Run<'_> {
    /// `context` able to read the execution's files, when the engine has a storage.
    pub(crate) fn with_files(&self, context: Context) -> Context {
        match &self.files {
            Some(files) => context.with_files(Arc::new(ExpressionFiles(files.clone()))),
            None => context,
        }
    }

    /// Masks every file of the execution in place. A file that cannot be masked is not left
    /// behind: on any failure, every file of the execution is removed (and the listener told).
    pub(crate) async fn mask_files(&self) {
        let Some(files) = self.files.clone() else {
            return;
        };
        let registry = Arc::clone(&self.registry);
        let masking = tokio::task::spawn_blocking(move || {
            let masked = files.rewrite_all(|content| registry.mask_bytes(content));
            if let Err(error) = &masked
                && let Err(removal) = files.storage().delete_all(files.execution_prefix())
            {
                return Err(format!("{error}; removing them failed too: {removal}"));
            }
            masked.map(drop).map_err(|error| error.to_string())
        })
        .await;
        let failure = match masking {
            Ok(Ok(())) => return,
            Ok(Err(error)) => error,
            Err(error) => error.to_string(),
        };
        self.listener.on_warning(&format!(
            "the execution's files could not be masked, so they were removed: {failure}"
        ));
    }
}
