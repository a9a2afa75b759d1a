//! `kestrel render 'TEMPLATE'`: one expression rendered the way a task would, masked.

use crate::error::CliError;
use crate::output::{Quiet, escape_controls};
use crate::settings::Settings;
use crate::sources::load_engine;
use crate::store::operator;
use clap::Args;
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub(crate) struct RenderArgs {
    /// The template, e.g. "{{ 'password' | base64encode }}".
    template: String,
    /// The namespace `secret()` looks in, as if a flow of that namespace rendered it.
    #[arg(long, default_value = "default")]
    namespace: String,
    /// A dotenv file of SECRET_* values and plain variables (overrides `secret.env-file`).
    #[arg(long, value_name = "FILE")]
    env_file: Option<PathBuf>,
}

/// Prints the masked result, control characters escaped as in `kestrel run`'s logs; exit 1
/// with the (masked) error when rendering fails.
pub(crate) fn run(args: &RenderArgs, settings: &Settings) -> Result<u8, CliError> {
    let engine = load_engine(settings, args.env_file.as_deref())?;
    let text = engine
        .render_once(
            &args.template,
            &args.namespace,
            operator(&settings.env),
            &Quiet,
        )
        .map_err(|error| CliError::failed(error.to_string()))?;
    let text = escape_controls(&text);
    let _ = writeln!(std::io::stdout().lock(), "{text}");
    Ok(0)
}
