//! `kestrel config`: the configuration in effect, as YAML, credentials hidden.

use crate::config::Config;
use crate::error::CliError;
use crate::settings::Settings;
use clap::Args;
use serde::Serialize;
use std::io::Write;
use std::path::Path;

#[derive(Debug, Args)]
pub(crate) struct ConfigArgs {}

/// What is shown: `data-dir` and `database` as flags and environment variables settle them,
/// then every key of the file with its value or default.
#[derive(Serialize)]
struct Shown<'a> {
    #[serde(rename = "data-dir")]
    data_dir: &'a Path,
    database: String,
    #[serde(flatten)]
    config: &'a Config,
}

pub(crate) fn run(_args: &ConfigArgs, settings: &Settings) -> Result<u8, CliError> {
    let shown = Shown {
        data_dir: &settings.data_dir,
        database: settings.database_shown(),
        config: &settings.config,
    };
    let text = serde_yaml_ng::to_string(&shown)
        .map_err(|error| CliError::failed("cannot show the configuration").caused_by(error))?;
    let mut stdout = std::io::stdout().lock();
    if let Some(file) = &settings.config_file {
        let _ = writeln!(stdout, "# from {}", file.display());
    }
    let _ = write!(stdout, "{text}");
    Ok(0)
}
