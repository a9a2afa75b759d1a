//! What kestrel says about itself, generated from its definitions so that it cannot drift:
//! shell completions, the manual page (`docs/man/kestrel.1`) and the Markdown references of
//! the command line (`docs/cli.md`, from clap) and of the REST API (`docs/api.md`, from the
//! server's route table). Tests compare the committed files with what these print.

use crate::cli::Cli;
use clap::{Args, CommandFactory as _};
use clap_complete::Shell;
use std::fmt::Write as _;
use std::io::Write as _;

#[derive(Debug, Args)]
pub(crate) struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    shell: Shell,
}

/// Prints the completion script of `args.shell`.
pub(crate) fn completions(args: &CompletionsArgs) -> u8 {
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "kestrel", &mut script);
    print(&String::from_utf8_lossy(&script))
}

/// Prints the manual page, in roff.
pub(crate) fn man() -> u8 {
    // The version alone: the commit would change the page with every commit.
    let command = documented(Cli::command()).long_version(None::<&str>);
    let page = clap_mangen::Man::new(command);
    let mut roff = Vec::new();
    // Writing to memory cannot fail.
    let _ = page.render(&mut roff);
    print(&String::from_utf8_lossy(&roff))
}

/// Prints the REST API's Markdown reference.
pub(crate) fn api() -> u8 {
    print(&kestrel_server::api_reference())
}

/// Prints the Markdown reference of every command.
pub(crate) fn markdown() -> u8 {
    let mut text = String::from(
        "# Command-line reference\n\n\
         Generated from kestrel's own definitions (`kestrel cli-reference`); \
         `crates/kestrel/tests/reference.rs` keeps it current. Every command also answers \
         `--help`.\n",
    );
    let mut root = documented(Cli::command());
    root.build();
    for command in root.get_subcommands() {
        section(&mut text, "kestrel", command);
    }
    print(&text)
}

/// The section of `command` (under `parent`), then those of its subcommands.
fn section(text: &mut String, parent: &str, command: &clap::Command) {
    if command.is_hide_set() || command.get_name() == "help" {
        return;
    }
    let path = format!("{parent} {}", command.get_name());
    let mut command = command.clone().bin_name(&path);
    let help = command.render_long_help().to_string();
    // Writing to a String cannot fail.
    let _ = write!(text, "\n## `{path}`\n\n```text\n{}\n```\n", help.trim_end());
    for sub in command.get_subcommands() {
        section(text, &path, sub);
    }
}

/// `command` as the documents show it: the same whatever the environment, so no variable's
/// value (`[env: KESTREL_DATA_DIR=/home/ada/...]`) reaches them.
fn documented(command: clap::Command) -> clap::Command {
    command
        .mut_args(|arg| arg.hide_env_values(true))
        .mut_subcommands(documented)
}

fn print(text: &str) -> u8 {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => 0,
        Err(_) => crate::error::EXIT_FAILED,
    }
}
