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
    #[command(after_help = "Examples:\n  kestrel secrets encode-env .env > .env_encoded")]
    EncodeEnv(encode_env::EncodeEnvArgs),
    /// Stores a new version of a secret; the value comes from stdin or --from-file.
    #[command(
        after_help = "Examples:\n  printf %s \"$DB_PASSWORD\" | kestrel secrets set company.team DB_PASSWORD\n  kestrel secrets set company.team TLS_KEY --from-file key.pem --description \"API TLS key\" --tag owner=platform\n  kestrel secrets set company.team DB_PASSWORD    (on a terminal: typed twice, hidden)"
    )]
    Set(values::SetArgs),
    /// Prints exactly the value of a secret of that namespace (audited).
    #[command(
        after_help = "Examples:\n  kestrel secrets get company.team DB_PASSWORD\n  kestrel secrets get company.team DB_PASSWORD --version 2"
    )]
    Get(values::GetArgs),
    /// Lists a namespace's keys, own and inherited, with where each comes from; never values.
    #[command(after_help = "Examples:\n  kestrel secrets list company.team.project --output json")]
    List(listing::ListArgs),
    /// Lists the versions of a secret.
    #[command(after_help = "Examples:\n  kestrel secrets versions company.team DB_PASSWORD")]
    Versions(versions::VersionsArgs),
    /// Soft-deletes the latest version of a secret (`undelete` restores it).
    #[command(after_help = "Examples:\n  kestrel secrets delete company.team DB_PASSWORD")]
    Delete(SecretArgs),
    /// Restores a soft-deleted version (default: the latest).
    #[command(
        after_help = "Examples:\n  kestrel secrets undelete company.team DB_PASSWORD --version 3"
    )]
    Undelete(versions::VersionArgs),
    /// Destroys a version's value for good (default: every version), once confirmed.
    #[command(
        after_help = "Examples:\n  kestrel secrets destroy company.team DB_PASSWORD --version 1    (asks on a terminal)\n  kestrel secrets destroy company.team OLD_TOKEN --yes"
    )]
    Destroy(versions::DestroyArgs),
    /// Lists who read or changed which secret, and when; never values. With --verify, checks the
    /// trail has not been altered.
    #[command(
        after_help = "Examples:\n  kestrel secrets audit company.team --key DB_PASSWORD --limit 20\n  kestrel secrets audit --verify    (exit 1 naming each row altered or removed)"
    )]
    Audit(listing::AuditArgs),
    /// Adds a data key and re-encrypts every stored version with it.
    #[command(after_help = "Examples:\n  kestrel secrets rotate-key")]
    RotateKey,
    /// Re-wraps the keyring under a new master key.
    #[command(
        after_help = "Examples:\n  kestrel secrets rekey --new-master-key-file /etc/kestrel/master.key.new"
    )]
    Rekey(keys::RekeyArgs),
    /// Stores every variable of a .env_encoded or plain .env file in a namespace.
    #[command(
        after_help = "Examples:\n  kestrel secrets import-env .env_encoded --namespace company.team"
    )]
    ImportEnv(import_env::ImportArgs),
    /// Reports every secret() key the flows use that their namespace's backend (its parents,
    /// the environment) lacks; exit 1 when one does. Values are never read.
    #[command(after_help = "Examples:\n  kestrel secrets check flows/*.yml")]
    Check(check::CheckArgs),
    /// Copies a namespace's own secrets to another backend; values are never printed.
    #[command(
        after_help = "Examples:\n  kestrel secrets copy --from-namespace company.team --to-backend vault --config kestrel.yml"
    )]
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

/// The closest parent namespace of `id`'s holding a readable version of its key, if any.
fn parent_holding(store: &dyn SecretStore, id: &SecretId) -> Option<String> {
    let mut namespace = id.namespace();
    while let Some((parent, _)) = namespace.rsplit_once('.') {
        let held = SecretId::main(parent, id.key())
            .ok()
            .and_then(|parent_id| wait(store.get_meta(&parent_id)).ok()?.ok()?)
            .is_some_and(|info| info.readable);
        if held {
            return Some(parent.to_owned());
        }
        namespace = parent;
    }
    None
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
        let error = store_error(id.not_found(version));
        return match version.map_or_else(|| parent_holding(store, id), |_| None) {
            Some(parent) => error.with_hint(format!(
                "namespace '{parent}' holds it, and flows of '{}' inherit it from there: \
                 `kestrel secrets get {parent} {}` reads it",
                id.namespace(),
                id.key()
            )),
            None => error,
        };
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
