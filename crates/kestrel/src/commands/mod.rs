//! The subcommands, one file each with its own `run`, and what several of them share.

pub(crate) mod archive;
pub(crate) mod health;
mod leftovers;
mod principals;
pub(crate) mod reference;
pub(crate) mod render;
pub(crate) mod run;
pub(crate) mod secrets;
pub(crate) mod server;
pub(crate) mod show_config;
mod subflows;
pub(crate) mod tokens;
pub(crate) mod users;
pub(crate) mod validate;
pub(crate) mod worker;

use crate::cli::{Cli, Command};
use crate::environment::Environment;
use crate::error::{CliError, EXIT_USAGE};
use crate::settings::Settings;
use clap::Parser;
use kestrel_flow::{Flow, Violation};
use std::ffi::OsString;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

/// Parses the command line and runs the command in `environment` (the process's, read at
/// start); the exit status on success.
pub(crate) fn run(
    args: impl IntoIterator<Item = OsString>,
    environment: Arc<Environment>,
) -> Result<u8, CliError> {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(error) => {
            // Help and version go to stdout with status 0; usage errors to stderr with 2.
            let _ = error.print();
            return Ok(u8::try_from(error.exit_code()).unwrap_or(EXIT_USAGE));
        }
    };
    // Read by the commands that need them: completions, the manual and the health check work
    // whatever the configuration says.
    let settings = || Settings::resolve(&cli.global, Arc::clone(&environment));
    match &cli.command {
        Command::Run(args) => run::run(args, &settings()?),
        Command::Validate(args) => settings().and_then(|_| validate::run(args)),
        Command::Render(args) => render::run(args, &settings()?),
        Command::Secrets(command) => secrets::run(command, &settings()?),
        Command::Config(args) => show_config::run(args, &settings()?),
        Command::Server(args) => server::run(args, &settings()?),
        Command::Users(command) => users::run(command, &settings()?),
        Command::Tokens(command) => tokens::run(command, &settings()?),
        Command::Export(args) => archive::export::run(args, &settings()?),
        Command::Import(args) => archive::import::run(args, &settings()?),
        Command::Worker(args) => worker::run(args, &settings()?),
        Command::Health(args) => health::run(args),
        Command::Completions(args) => Ok(reference::completions(args)),
        Command::Man => Ok(reference::man()),
        Command::CliReference => Ok(reference::markdown()),
        Command::ApiReference => Ok(reference::api()),
    }
}

/// Shuts `runtime` down: its tasks are dropped, a task's process group and working directory
/// with them. A render abandoned past `expression.render-timeout` (or by a kill) is waited for
/// a second at most: its thread ends with the process.
pub(crate) fn shut_down(runtime: tokio::runtime::Runtime) {
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
}

/// A flow file, parsed and validated; its violations as `FILE:LINE:COL: message` lines.
pub(crate) fn read_flow(path: &Path) -> Result<Flow, CliError> {
    let source = read_text(path)?;
    kestrel_engine::check_flow(&source)
        .map_err(|violations| CliError::usage_lines(violation_lines(path, &violations)))
}

/// Each violation prefixed with the file and, where known, its line and column.
pub(crate) fn violation_lines(path: &Path, violations: &[Violation]) -> Vec<String> {
    let file = path.display();
    violations
        .iter()
        .map(|violation| match (violation.line, violation.column) {
            (Some(line), Some(column)) => format!("{file}:{line}:{column}: {}", violation.message),
            (Some(line), None) => format!("{file}:{line}: {}", violation.message),
            _ => format!("{file}: {}", violation.message),
        })
        .collect()
}

/// A text file's content, or `-` for stdin; exit 2 when it cannot be read.
pub(crate) fn read_text(path: &Path) -> Result<String, CliError> {
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|error| CliError::usage("cannot read standard input").caused_by(error))?;
        return Ok(text);
    }
    std::fs::read_to_string(path).map_err(|error| {
        CliError::usage(format!("cannot read {}", path.display())).caused_by(error)
    })
}
