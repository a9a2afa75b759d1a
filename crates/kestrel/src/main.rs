//! The `kestrel` command line: runs Kestra-style flows, validates them, renders expressions and
//! prepares secrets (the README's "Commands" table). Each subcommand lives in its own file under
//! `commands/` with its own `run`. `main` makes the process non-dumpable and reads its
//! environment once ([`environment`]) before anything else, then maps the outcome to an exit
//! status. What the command line prints for a person is masked by the engine, and escaped
//! for the terminal ([`output`]); URL credentials are hidden where it shows a URL
//! ([`redact`]).

mod aws;
mod backends;
mod cli;
mod commands;
mod config;
mod environment;
mod error;
mod output;
mod redact;
mod sandbox;
mod settings;
mod sources;
mod store;
mod terminal;
mod vault;

use environment::Environment;
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

fn main() -> ExitCode {
    // First of all, before a secret is read or a task started.
    let inspection = environment::forbid_inspection();
    let environment = Arc::new(Environment::capture());
    if let Err(error) = inspection {
        output::warn(&format!(
            "kestrel could not make itself non-dumpable ({error}): processes of this user, \
             tasks included, may read its environment and memory"
        ));
    }
    // Tasks whose crates the engine does not link, for every command that runs flows.
    kestrel_engine::register_tasks(vec![Box::new(kestrel_task_postgres::Provider)]);
    match commands::run(std::env::args_os(), environment) {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            // Nothing more can be done when stderr itself is gone.
            let report = error.report();
            let _ = writeln!(std::io::stderr(), "{}", output::escape_controls(&report));
            ExitCode::from(error.code())
        }
    }
}
