//! The task sandbox of the processes that run flows (`kestrel run`, the server): what tasks
//! must not see (`task.sandbox`, docs/threat-model.md) and where their working
//! directories live (`work/` in the data directory).

use crate::config::SandboxMode;
use crate::error::CliError;
use crate::output::warn;
use crate::settings::{Database, Settings};
use kestrel_sandbox::{Mode, Policy, Sandbox};
use std::path::{Path, PathBuf};

/// Installs the sandbox of `settings`, hiding `env_file` too, and, when this process will start
/// tasks' processes (`announce`), says at start what they will run without: the warning of
/// `auto` on a machine that cannot sandbox, the refusal of `required` (checking costs a probe
/// process, which a run of a flow without Commands tasks is spared). Fails when the work root
/// cannot be used.
pub(crate) fn install(
    settings: &Settings,
    env_file: Option<&Path>,
    announce: bool,
) -> Result<&'static Sandbox, CliError> {
    let policy = Policy {
        mode: match settings.config.task.sandbox.0 {
            SandboxMode::Auto => Mode::Auto,
            SandboxMode::Required => Mode::Required,
            SandboxMode::Off => Mode::Off,
        },
        hidden: hidden_paths(settings, env_file),
        work_root: settings.data_dir.join("work"),
    };
    let sandbox = kestrel_sandbox::install(policy).map_err(|error| {
        CliError::failed("cannot prepare the tasks' working directories").caused_by(error)
    })?;
    if let Some(message) = announce
        .then(|| sandbox.warning().or_else(|| sandbox.refusal()))
        .flatten()
    {
        warn(&message);
    }
    Ok(sandbox)
}

/// What holds kestrel's secrets: the data directory, the internal storage, the configuration
/// directory (the default key file's), the key file, the database with its journals, the
/// configuration file and the env file.
fn hidden_paths(settings: &Settings, env_file: Option<&Path>) -> Vec<PathBuf> {
    let env = &settings.env;
    let mut hidden = vec![settings.data_dir.clone(), settings.storage_root()];
    let key_file = kestrel_crypto::default_key_file(env.os("XDG_CONFIG_HOME"), env.os("HOME"));
    hidden.extend(
        key_file
            .as_deref()
            .and_then(Path::parent)
            .map(Path::to_owned),
    );
    hidden.extend(env.os("KESTREL_MASTER_KEY_FILE").map(PathBuf::from));
    if let Ok(Database::Sqlite(database)) = settings.database() {
        for suffix in ["-wal", "-shm", "-journal"] {
            let mut journal = database.clone().into_os_string();
            journal.push(suffix);
            hidden.push(journal.into());
        }
        hidden.push(database);
    }
    hidden.extend(settings.config_file.clone());
    hidden.extend(settings.env_file(env_file).map(Path::to_owned));
    hidden
}
