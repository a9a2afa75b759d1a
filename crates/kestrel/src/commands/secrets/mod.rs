//! `kestrel secrets ...`: preparing secrets for the environment-variable backend, and keeping
//! them in the embedded store: values, versions, the audit trail, the keys.

mod check;
mod copy;
mod encode_env;
mod import_env;
mod keys;
mod listing;
mod values;
mod versions;

use crate::error::CliError;
use crate::settings::Settings;
pub(crate) use crate::sources::call;
use crate::sources::{open_secrets, wait};
use crate::store::{StoreAccess, store_error};
use clap::{Args, Subcommand};
use kestrel_store::{SecretId, SecretStore};
use std::sync::Arc;

#[derive(Debug, Subcommand)]
pub(crate) enum SecretsCommand {
    /// Reads an env file of plain values and prints SECRET_KEY=<base64> lines, in order.
    EncodeEnv(encode_env::EncodeEnvArgs),
    /// Stores a new version of a secret; the value comes from stdin or --from-file.
    Set(values::SetArgs),
    /// Prints exactly the value of a secret of that namespace (audited).
    Get(values::GetArgs),
    /// Lists a namespace's keys, own and inherited, with where each comes from; never values.
    List(listing::ListArgs),
    /// Lists the versions of a secret.
    Versions(versions::VersionsArgs),
    /// Soft-deletes the latest version of a secret (`undelete` restores it).
    Delete(SecretArgs),
    /// Restores a soft-deleted version (default: the latest).
    Undelete(versions::VersionArgs),
    /// Destroys a version's value for good (default: every version).
    Destroy(versions::VersionArgs),
    /// Lists who read or changed which secret, and when; never values.
    Audit(listing::AuditArgs),
    /// Adds a data key and re-encrypts every stored version with it.
    RotateKey,
    /// Re-wraps the keyring under a new master key.
    Rekey(keys::RekeyArgs),
    /// Stores every variable of a .env_encoded or plain .env file in a namespace.
    ImportEnv(import_env::ImportArgs),
    /// Reports every secret() key the flows use that their namespace's backend (its parents,
    /// the environment) lacks; exit 1 when one does. Values are never read.
    Check(check::CheckArgs),
    /// Copies a namespace's own secrets to another backend; values are never printed.
    Copy(copy::CopyArgs),
}

/// One secret: `NAMESPACE KEY`.
#[derive(Debug, Args)]
pub(crate) struct SecretArgs {
    /// The namespace, e.g. company.team.
    namespace: String,
    /// The key (A-Z a-z 0-9 _ . -, case-sensitive).
    key: String,
}

impl SecretArgs {
    /// The secret's address; exit 2 for a name the store cannot hold.
    fn id(&self) -> Result<SecretId, CliError> {
        SecretId::main(&self.namespace, &self.key).map_err(store_error)
    }
}

/// The store as the `secrets` commands reach it: the store of the settings, SQLite or
/// PostgreSQL, and its master key ([`StoreAccess`], which this derefs to), routed to the
/// configured backends.
pub(crate) struct Secrets<'a> {
    settings: &'a Settings,
    access: StoreAccess,
}

impl<'a> Secrets<'a> {
    fn new(settings: &'a Settings) -> Result<Self, CliError> {
        let access = StoreAccess::new(settings)?;
        Ok(Self { settings, access })
    }

    /// The store, created the first time.
    fn store(&self) -> Result<Arc<dyn SecretStore>, CliError> {
        let store = open_secrets(self.settings, &self.access, true)?;
        store.ok_or_else(|| CliError::failed("the store could not be created"))
    }

    /// The store if it exists (a store never written holds nothing), or another backend is
    /// configured.
    fn existing(&self) -> Result<Option<Arc<dyn SecretStore>>, CliError> {
        open_secrets(self.settings, &self.access, false)
    }
}

impl std::ops::Deref for Secrets<'_> {
    type Target = StoreAccess;

    fn deref(&self) -> &StoreAccess {
        &self.access
    }
}

pub(crate) fn run(command: &SecretsCommand, settings: &Settings) -> Result<u8, CliError> {
    // Every command but encode-env works on the store; its settings are checked first.
    let access = || Secrets::new(settings);
    match command {
        SecretsCommand::EncodeEnv(args) => encode_env::run(args),
        SecretsCommand::Set(args) => values::set(args, &access()?),
        SecretsCommand::Get(args) => values::get(args, &access()?),
        SecretsCommand::List(args) => listing::list(args, &access()?),
        SecretsCommand::Versions(args) => versions::versions(args, &access()?),
        SecretsCommand::Delete(args) => versions::delete(args, &access()?),
        SecretsCommand::Undelete(args) => versions::undelete(args, &access()?),
        SecretsCommand::Destroy(args) => versions::destroy(args, &access()?),
        SecretsCommand::Audit(args) => listing::audit(args, &access()?),
        SecretsCommand::RotateKey => keys::rotate(&access()?),
        SecretsCommand::Rekey(args) => keys::rekey(args, &access()?),
        SecretsCommand::ImportEnv(args) => import_env::run(args, &access()?),
        SecretsCommand::Check(args) => check::check(args, &access()?),
        SecretsCommand::Copy(args) => copy::copy(args, &access()?),
    }
}

/// The existing store, or the error `id` is not found (a store never written holds nothing).
fn store_holding(access: &Secrets<'_>, id: &SecretId) -> Result<Arc<dyn SecretStore>, CliError> {
    access
        .existing()?
        .ok_or_else(|| store_error(id.not_found(None)))
}

/// The number of the version `name` designates (a number, or the backend's own id or stage);
/// exit 1 when no version has that name.
fn version_named(
    store: &dyn SecretStore,
    id: &SecretId,
    name: Option<&str>,
) -> Result<Option<u64>, CliError> {
    let Some(name) = name else { return Ok(None) };
    match call(store.version_named(id, name))? {
        Some(number) => Ok(Some(number)),
        None => Err(CliError::failed(format!(
            "no version '{name}' of secret '{}' in namespace '{}'",
            id.key(),
            id.namespace()
        ))),
    }
}

/// Why `id` (at `version`) has no value to give: absent, deleted or destroyed.
fn absent(store: &dyn SecretStore, id: &SecretId, version: Option<u64>) -> CliError {
    let versions = wait(store.versions(id))
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    let wanted = match version {
        Some(number) => versions.iter().find(|v| v.version == number),
        None => versions.last(),
    };
    let Some(found) = wanted else {
        return store_error(id.not_found(version));
    };
    let which = format!(
        "version {} of secret '{}' in namespace '{}'",
        found.version,
        id.key(),
        id.namespace()
    );
    let message = if found.destroyed_at.is_some() {
        format!("{which} was destroyed")
    } else {
        format!(
            "{which} is deleted; `kestrel secrets undelete {} {} --version {}` restores it",
            id.namespace(),
            id.key(),
            found.version
        )
    };
    CliError::failed(message)
}
