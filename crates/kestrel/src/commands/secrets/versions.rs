//! `secrets versions`, `delete`, `undelete` and `destroy`: a secret's history, like Vault KV
//! v2's.

use super::{SecretArgs, Secrets, call, store_holding, version_named};
use crate::error::CliError;
use crate::output::{ListFormat, note, print_listing, timestamp};
use crate::store::store_error;
use crate::terminal;
use clap::Args;
use kestrel_store::{SecretId, VersionInfo};

#[derive(Debug, Args)]
pub(crate) struct VersionsArgs {
    #[command(flatten)]
    secret: SecretArgs,
    /// How to print the listing.
    #[arg(long, value_enum, default_value_t)]
    output: ListFormat,
}

/// A secret and, optionally, one of its versions.
#[derive(Debug, Args)]
pub(crate) struct VersionArgs {
    #[command(flatten)]
    secret: SecretArgs,
    /// One version (default: see the command): its number, or the backend's own version id
    /// or stage (AWS's VersionId, AWSPREVIOUS).
    #[arg(long, value_name = "N")]
    version: Option<String>,
}

/// Lists every kept version, oldest first; exit 1 when the secret was never set.
pub(crate) fn versions(args: &VersionsArgs, access: &Secrets<'_>) -> Result<u8, CliError> {
    let id = args.secret.id()?;
    let store = store_holding(access, &id)?;
    let versions = call(store.versions(&id))?;
    if versions.is_empty() {
        return Err(store_error(id.not_found(None)));
    }
    // A backend naming its versions itself (AWS) shows those names and stages too.
    let labelled = versions.iter().any(|v| v.label.is_some());
    let mut header = vec!["VERSION", "CREATED", "CREATED_BY", "STATE"];
    if labelled {
        header.extend(["VERSION_ID", "STAGES"]);
    }
    let rows: Vec<Vec<String>> = versions
        .iter()
        .map(|v| {
            let mut row = vec![
                v.version.to_string(),
                timestamp(&v.created_at),
                v.created_by.to_string(),
                state(v).to_owned(),
            ];
            if labelled {
                row.extend([v.label.clone().unwrap_or_default(), v.stages.join(",")]);
            }
            row
        })
        .collect();
    let json = serde_json::to_value(&versions)
        .map_err(|error| CliError::failed("cannot show the versions").caused_by(error))?;
    print_listing(args.output, &header, &rows, &json);
    Ok(0)
}

fn state(version: &VersionInfo) -> &'static str {
    if version.destroyed_at.is_some() {
        "destroyed"
    } else if version.deleted_at.is_some() {
        "deleted"
    } else {
        "readable"
    }
}

/// Soft-deletes the latest version.
pub(crate) fn delete(args: &SecretArgs, access: &Secrets<'_>) -> Result<u8, CliError> {
    let id = args.id()?;
    let store = store_holding(access, &id)?;
    let version = call(store.delete(&access.actor(), &id))?;
    note(&format!(
        "deleted version {version} of {id}; `kestrel secrets undelete {} {}` restores it",
        id.namespace(),
        id.key()
    ));
    Ok(0)
}

/// Restores a soft-deleted version (default: the latest).
pub(crate) fn undelete(args: &VersionArgs, access: &Secrets<'_>) -> Result<u8, CliError> {
    let id = args.secret.id()?;
    let store = store_holding(access, &id)?;
    let asked = version_named(store.as_ref(), &id, args.version.as_deref())?;
    let version = call(store.undelete(&access.actor(), &id, asked))?;
    note(&format!("version {version} of {id} is readable"));
    Ok(0)
}

/// `destroy`'s arguments: a secret, a version, and the confirmation.
#[derive(Debug, Args)]
pub(crate) struct DestroyArgs {
    #[command(flatten)]
    version: VersionArgs,
    /// Destroy without asking (needed when stdin is not a terminal).
    #[arg(long)]
    yes: bool,
}

/// Destroys one version's value, or every version's, for good, once confirmed: `--yes`, or
/// the key typed on a terminal.
pub(crate) fn destroy(args: &DestroyArgs, access: &Secrets<'_>) -> Result<u8, CliError> {
    let id = args.version.secret.id()?;
    let store = store_holding(access, &id)?;
    let asked = version_named(store.as_ref(), &id, args.version.version.as_deref())?;
    if !args.yes {
        confirm_destroy(&id, asked)?;
    }
    let destroyed = call(store.destroy(&access.actor(), &id, asked))?;
    let numbers: Vec<String> = destroyed.iter().map(u64::to_string).collect();
    let plural = if destroyed.len() == 1 { "" } else { "s" };
    note(&format!(
        "destroyed version{plural} {} of {id} for good",
        numbers.join(", ")
    ));
    Ok(0)
}

/// Asks on a terminal for the key of the secret about to be destroyed; exit 2 when it is not
/// typed, or when no one can be asked.
fn confirm_destroy(id: &SecretId, version: Option<u64>) -> Result<(), CliError> {
    if !terminal::interactive() {
        return Err(CliError::usage(
            "destroy erases for good and stdin is not a terminal to confirm it: pass --yes",
        ));
    }
    let which = version.map_or_else(|| "every version".to_owned(), |v| format!("version {v}"));
    let question = format!(
        "Destroy {which} of {id} for good? It cannot be undone. Type the key ({}) to confirm: ",
        id.key()
    );
    if terminal::confirm(&question, id.key())? {
        return Ok(());
    }
    Err(CliError::usage("not confirmed: nothing was destroyed"))
}
