//! `kestrel config`: the configuration in effect, as YAML, credentials hidden.

use crate::config::Config;
use crate::error::CliError;
use crate::redact::hide_url_credentials;
use crate::settings::Settings;
use clap::Args;
use serde::Serialize;
use serde_yaml_ng::Value;
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
    let cannot = |error| CliError::failed("cannot show the configuration").caused_by(error);
    let mut document = serde_yaml_ng::to_value(&shown).map_err(cannot)?;
    hide_credentials_in_urls(&mut document);
    let text = serde_yaml_ng::to_string(&document).map_err(cannot)?;
    let mut stdout = std::io::stdout().lock();
    if let Some(file) = &settings.config_file {
        let _ = writeln!(stdout, "# from {}", file.display());
    }
    let _ = write!(stdout, "{text}");
    let sandbox = crate::sandbox::install(settings, None, true)?;
    let _ = writeln!(stdout, "# task sandbox in effect: {}", sandbox.status());
    Ok(0)
}

/// Hides the credentials of every URL in `value`, whichever key holds it (`database`,
/// `secret.vault.address`, an endpoint, a namespace's backend...). Credentials of other kinds
/// are already shown masked ([`crate::config::Hidden`]).
fn hide_credentials_in_urls(value: &mut Value) {
    match value {
        Value::String(text) if text.contains("://") => *text = hide_url_credentials(text),
        Value::Sequence(items) => items.iter_mut().for_each(hide_credentials_in_urls),
        Value::Mapping(map) => map.values_mut().for_each(hide_credentials_in_urls),
        Value::Tagged(tagged) => hide_credentials_in_urls(&mut tagged.value),
        _ => {}
    }
}
