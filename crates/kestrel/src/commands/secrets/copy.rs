//! `secrets copy --from-namespace NS --to-backend NAME`: a namespace's own secrets, current
//! versions with their descriptions and tags, copied from the backend that holds them to
//! another configured one (moving to Vault, say). Each value is read as an audited read and
//! written as a new version; none is ever printed.

use super::{Secrets, call};
use crate::backends::Backends;
use crate::config::SecretType;
use crate::error::CliError;
use crate::output::note;
use crate::store::store_error;
use clap::{Args, ValueEnum};
use kestrel_store::{DEFAULT_TENANT, SecretId, SecretStore, StoreError, validate_namespace};
use std::sync::Arc;

#[derive(Debug, Args)]
pub(crate) struct CopyArgs {
    /// The namespace whose own secrets are copied (its parents' are not).
    #[arg(long, value_name = "NS")]
    from_namespace: String,
    /// The backend to copy to, as the `secret` section of the configuration sets it up.
    #[arg(long, value_name = "NAME", value_enum)]
    to_backend: BackendName,
}

/// A backend kestrel can write to.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum BackendName {
    Embedded,
    Vault,
    AwsSecretManager,
}

impl BackendName {
    fn kind(self) -> SecretType {
        match self {
            Self::Embedded => SecretType::Embedded,
            Self::Vault => SecretType::Vault,
            Self::AwsSecretManager => SecretType::AwsSecretManager,
        }
    }
}

pub(crate) fn copy(args: &CopyArgs, access: &Secrets<'_>) -> Result<u8, CliError> {
    let namespace = &args.from_namespace;
    validate_namespace(namespace).map_err(store_error)?;
    let source = access.store()?;
    let target = target(args.to_backend.kind(), access)?;
    let from = source.backend_name(namespace).to_owned();
    if from == target.name() {
        return Err(CliError::usage(format!(
            "the secrets of namespace '{namespace}' are in the {from} backend already"
        )));
    }
    let actor = access.actor();
    let mut copied = Vec::new();
    for info in call(source.list(DEFAULT_TENANT, namespace))? {
        let id = SecretId::main(namespace, &info.key).map_err(store_error)?;
        let Some(current) = call(source.read(&actor, &id, None))? else {
            continue;
        };
        call(target.set(&actor, &id, &current.value, Some(&info.meta)))?;
        copied.push(info.key);
    }
    note(&format!(
        "copied {} secret(s) of namespace '{namespace}' from {from} to {}: {}",
        copied.len(),
        target.name(),
        copied.join(", ")
    ));
    Ok(0)
}

/// The backend `kind` as the `secret` section configures it; refused when that section makes
/// it read-only.
fn target(kind: SecretType, access: &Secrets<'_>) -> Result<Arc<dyn SecretStore>, CliError> {
    let home: Arc<dyn SecretStore> = access.open()?;
    let target = Backends::new(access.settings, home).store(kind, None)?;
    let secret = &access.settings.config.secret;
    if secret.read_only.0 && secret.kind.0 == kind {
        return Err(store_error(StoreError::ReadOnly {
            backend: target.name().to_owned(),
            namespace: "*".into(),
        }));
    }
    Ok(target)
}
