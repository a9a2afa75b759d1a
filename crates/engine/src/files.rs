//! The execution's files once it ended: masked in place, so that no file at rest holds a
//! value the execution registered (secrets, SECRET inputs, what derives from them), as no log
//! or output does. Readers (the API's file route, the UI) then show files as they are.
//! Tasks of the execution itself read real content while it runs; a later execution reading
//! the file (`read()`, `inputFiles`) reads the masked one.

use crate::runner::Run;
use std::sync::Arc;

impl Run<'_> {
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
