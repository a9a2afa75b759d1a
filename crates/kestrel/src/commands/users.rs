//! `kestrel users add|list|remove`: the people who sign in to the server (passwords stored as
//! argon2 hashes; the password comes from stdin, typed twice without echo on a terminal, never
//! from the command line).

use super::principals::{GrantArgs, ListArgs, Row, print_principals};
use crate::error::CliError;
use crate::output::note;
use crate::settings::Settings;
use crate::sources::call;
use crate::store::StoreAccess;
use clap::{Args, Subcommand};
use kestrel_store::UserRecord;
use std::io::BufRead as _;
use zeroize::Zeroizing;

#[derive(Debug, Subcommand)]
pub(crate) enum UsersCommand {
    /// Adds a user; the password is read from stdin.
    #[command(
        after_help = "Examples:\n  kestrel users add alice    (on a terminal: the password typed twice, hidden)\n  printf '%s\n' \"$PASSWORD\" | kestrel users add ci-bot --namespace company.team --secrets read"
    )]
    Add(AddArgs),
    /// Lists users: name, namespaces, secret access (never passwords).
    #[command(after_help = "Examples:\n  kestrel users list --output json")]
    List(ListArgs),
    /// Removes a user.
    #[command(after_help = "Examples:\n  kestrel users remove alice")]
    Remove(NameArgs),
}

#[derive(Debug, Args)]
pub(crate) struct AddArgs {
    /// The user's name.
    name: String,
    #[command(flatten)]
    grant: GrantArgs,
}

#[derive(Debug, Args)]
pub(crate) struct NameArgs {
    /// The user's name.
    name: String,
}

pub(crate) fn run(command: &UsersCommand, settings: &Settings) -> Result<u8, CliError> {
    let store = StoreAccess::new(settings)?.open()?;
    match command {
        UsersCommand::Add(args) => {
            let (namespaces, secrets) = args.grant.grant(store.as_ref(), settings)?;
            let password = read_password()?;
            let password_hash =
                kestrel_server::hash_password(&password).map_err(CliError::failed)?;
            let user = UserRecord {
                name: args.name.clone(),
                password_hash,
                namespaces,
                secrets,
                created_at: chrono::Utc::now(),
            };
            call(store.add_user(&user))?;
            note(&format!(
                "user '{}' added (namespaces: {}, secrets: {secrets})",
                user.name,
                super::principals::reach(&user.namespaces)
            ));
            Ok(0)
        }
        UsersCommand::List(args) => {
            let rows = call(store.users())?
                .iter()
                .map(|u| Row::new(&u.name, &u.namespaces, u.secrets, &u.created_at))
                .collect();
            print_principals(args, &["NAME", "NAMESPACES", "SECRETS", "CREATED"], rows);
            Ok(0)
        }
        UsersCommand::Remove(args) => {
            if !call(store.remove_user(&args.name))? {
                return Err(CliError::failed(format!("no user named '{}'", args.name)));
            }
            note(&format!("user '{}' removed", args.name));
            Ok(0)
        }
    }
}

/// The password: typed twice without echo on a terminal, else the first line of stdin (its
/// line break dropped); exit 2 when it is empty.
fn read_password() -> Result<Zeroizing<String>, CliError> {
    if crate::terminal::interactive() {
        return crate::terminal::read_hidden_twice("password");
    }
    let mut line = Zeroizing::new(String::new());
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| CliError::usage("cannot read the password from stdin").caused_by(e))?;
    let password = line.strip_suffix('\n').unwrap_or(&line);
    let password = password.strip_suffix('\r').unwrap_or(password);
    if password.is_empty() {
        return Err(CliError::usage(
            "no password on stdin: e.g. `printf '%s' \"$PASSWORD\" | kestrel users add NAME`",
        ));
    }
    Ok(Zeroizing::new(password.to_owned()))
}
