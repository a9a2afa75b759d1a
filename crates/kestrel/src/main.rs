//! The `kestrel` command line: runs Kestra-style flows, validates them, renders expressions and
//! prepares secrets (`cli.md` is the contract). Each subcommand lives in its own file under
//! `commands/` with its own `run`; `main` only maps the outcome to an exit status.

mod cli;
mod commands;
mod config;
mod error;
mod output;
mod sandbox;
mod settings;
mod store;

use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    match commands::run(std::env::args_os()) {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            // Nothing more can be done when stderr itself is gone.
            let _ = writeln!(std::io::stderr(), "{}", error.report());
            ExitCode::from(error.code())
        }
    }
}
