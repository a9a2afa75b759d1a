//! `kestrel worker [--env-file FILE]`: runs executions from the queue of the database every
//! node shares, and nothing else (no API, no UI, no Schedule triggers), until Ctrl-C or
//! SIGTERM. It opens the store, composes the secrets and sandboxes tasks as `kestrel server`
//! does (`server::with_state`).

use super::server::{GRACE, options, with_state};
use crate::error::CliError;
use crate::output::note;
use crate::settings::Settings;
use clap::Args;
use kestrel_server::{Worker, shutdown_signal};
use std::path::PathBuf;

#[derive(Debug, Args)]
pub(crate) struct WorkerArgs {
    /// A dotenv file of SECRET_* values, reloaded on change (overrides secret.env-file).
    #[arg(long, value_name = "FILE")]
    env_file: Option<PathBuf>,
}

pub(crate) fn run(args: &WorkerArgs, settings: &Settings) -> Result<u8, CliError> {
    let options = options(settings, args.env_file.as_deref())?;
    let threads = options.worker_threads;
    with_state(
        settings,
        args.env_file.as_deref(),
        options,
        |state| async move {
            let worker = Worker::start(state).map_err(|e| CliError::failed(e.to_string()))?;
            note(&format!(
                "kestrel worker {} running executions from the queue, {threads} at once",
                worker.state().worker_id()
            ));
            worker.run(shutdown_signal(), GRACE).await;
            note("kestrel worker stopped");
            Ok(0)
        },
    )
}
