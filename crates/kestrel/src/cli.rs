//! The command line's grammar (clap derive). Each subcommand's arguments live beside its `run`.

use crate::commands::archive::{export, import};
use crate::commands::{
    health, reference, render, run, secrets, server, show_config, tokens, users, validate, worker,
};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// What `kestrel --version` says: the version, the commit, and what this build can use.
const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("KESTREL_COMMIT"),
    ")\nsecret backends: embedded, environment, vault (and OpenBao), aws (Secrets Manager)",
    "\ndatabases: sqlite, postgres"
);

/// Runs Kestra-style YAML flows and gets secrets right.
#[derive(Debug, Parser)]
#[command(name = "kestrel", version, long_version = LONG_VERSION)]
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
    #[command(
        after_help = "Examples:\n  kestrel run examples/hello-secret.yml --env-file examples/.env_encoded\n  kestrel run flow.yml --input name=Ada --input token=@token.txt --output json"
    )]
    Run(run::RunArgs),
    /// Checks flows; prints each violation as FILE:LINE:COL: message.
    #[command(after_help = "Examples:\n  kestrel validate flows/*.yml")]
    Validate(validate::ValidateArgs),
    /// Renders one expression the way a task would (secrets masked).
    #[command(
        after_help = "Examples:\n  kestrel render \"{{ secret('API_TOKEN') | base64encode }}\" --namespace company.team"
    )]
    Render(render::RenderArgs),
    /// Prepares and manages secrets.
    #[command(subcommand)]
    #[command(
        after_help = "Examples:\n  printf %s \"$DB_PASSWORD\" | kestrel secrets set company.team DB_PASSWORD\n  kestrel secrets list company.team.project"
    )]
    Secrets(secrets::SecretsCommand),
    /// Prints the configuration in effect (credentials hidden).
    #[command(after_help = "Examples:\n  kestrel config --config kestrel.yml")]
    Config(show_config::ConfigArgs),
    /// Serves the REST API and runs executions for a team (Kestra's REST API), until Ctrl-C or SIGTERM.
    #[command(
        after_help = "Examples:\n  kestrel server --bind 127.0.0.1:8080 --env-file .env_encoded"
    )]
    Server(server::ServerArgs),
    /// Runs executions from the queue of the database other kestrel nodes share, and nothing else, until Ctrl-C or SIGTERM.
    #[command(
        after_help = "Examples:\n  kestrel worker --database postgres://kestrel@db.internal:5432/kestrel"
    )]
    Worker(worker::WorkerArgs),
    /// Manages the people who sign in to the server.
    #[command(subcommand)]
    #[command(after_help = "Examples:\n  kestrel users add alice\n  kestrel users list")]
    Users(users::UsersCommand),
    /// Manages the server's API tokens.
    #[command(subcommand)]
    #[command(
        after_help = "Examples:\n  kestrel tokens create ci --namespace company.team --secrets read\n  kestrel tokens list"
    )]
    Tokens(tokens::TokensCommand),
    /// Writes flows, namespaces, users, tokens and secrets (sealed, with the keyring wrapped by
    /// the master key) to a new file, mode 0600.
    #[command(after_help = "Examples:\n  kestrel export backup.kestrel")]
    Export(export::ExportArgs),
    /// Reads an export into the store: flows created or updated, users, tokens, and each
    /// secret's versions oldest first. Needs the master key the export was made with.
    #[command(
        after_help = "Examples:\n  kestrel import backup.kestrel --database postgres://kestrel@db.internal:5432/kestrel"
    )]
    Import(import::ImportArgs),
    /// Exits 0 when a kestrel server's health route answers 200 within 2 s (a container's
    /// or a service manager's health check).
    #[command(
        after_help = "Examples:\n  kestrel health\n  kestrel health http://kestrel:8080/health"
    )]
    Health(health::HealthArgs),
    /// Prints a shell's completion script: `source <(kestrel completions bash)`.
    #[command(
        after_help = "Examples:\n  source <(kestrel completions bash)\n  kestrel completions fish > ~/.config/fish/completions/kestrel.fish"
    )]
    Completions(reference::CompletionsArgs),
    /// Prints kestrel's manual page (roff), as docs/man/kestrel.1 holds it:
    /// `kestrel man | man -l -`.
    #[command(after_help = "Examples:\n  kestrel man | man -l -")]
    Man,
    /// Prints the command-line reference in Markdown, as docs/cli.md holds it.
    #[command(hide = true)]
    CliReference,
    /// Prints the REST API reference in Markdown, as docs/api.md holds it.
    #[command(hide = true)]
    ApiReference,
}
