//! The command line's grammar (clap derive). Each subcommand's arguments live beside its `run`.

use crate::commands::archive::{export, import};
use crate::commands::{render, run, secrets, server, show_config, tokens, users, validate, worker};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Runs Kestra-style YAML flows and gets secrets right.
#[derive(Debug, Parser)]
#[command(name = "kestrel", version, about)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: GlobalArgs,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Options every command takes, before or after its name. Precedence: flag, then environment
/// variable, then configuration file, then default.
#[derive(Debug, Args)]
pub(crate) struct GlobalArgs {
    /// Configuration file (YAML, keys as in Kestra's configuration).
    #[arg(long, global = true, env = "KESTREL_CONFIG", value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Where kestrel keeps its data (default: the user's data directory).
    #[arg(long, global = true, env = "KESTREL_DATA_DIR", value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// Database: sqlite, sqlite:///path/file.db or postgres://user:pass@host:port/db.
    // Its value may hold a password: never shown in the help.
    #[arg(
        long,
        global = true,
        env = "KESTREL_DATABASE",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub(crate) database: Option<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Runs one execution of a flow in this process and prints its logs or its JSON.
    Run(run::RunArgs),
    /// Checks flows; prints each violation as FILE:LINE:COL: message.
    Validate(validate::ValidateArgs),
    /// Renders one expression the way a task would (secrets masked).
    Render(render::RenderArgs),
    /// Prepares and manages secrets.
    #[command(subcommand)]
    Secrets(secrets::SecretsCommand),
    /// Prints the configuration in effect (credentials hidden).
    Config(show_config::ConfigArgs),
    /// Serves the REST API and runs executions for a team (Kestra's REST API), until Ctrl-C or SIGTERM.
    Server(server::ServerArgs),
    /// Runs executions from the queue of the database other kestrel nodes share, and nothing else, until Ctrl-C or SIGTERM.
    Worker(worker::WorkerArgs),
    /// Manages the people who sign in to the server.
    #[command(subcommand)]
    Users(users::UsersCommand),
    /// Manages the server's API tokens.
    #[command(subcommand)]
    Tokens(tokens::TokensCommand),
    /// Writes flows, namespaces, users, tokens and secrets (sealed, with the keyring wrapped by
    /// the master key) to a new file, mode 0600.
    Export(export::ExportArgs),
    /// Reads an export into the store: flows created or updated, users, tokens, and each
    /// secret's versions oldest first. Needs the master key the export was made with.
    Import(import::ImportArgs),
}
