//! `kestrel export FILE [--force]`: the store's flows, namespaces, users, tokens and readable
//! secret versions to a new file, mode 0600, every value sealed (see [`super`]).

use super::{
    Archive, ArchiveFlow, ArchiveKeyring, ArchiveSecret, ArchiveToken, ArchiveUser, ArchiveVersion,
    FORMAT, VERSION, version_aad,
};
use crate::error::CliError;
use crate::output::note;
use crate::settings::Settings;
use crate::sources::call;
use crate::store::{Store, StoreAccess};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use clap::Args;
use kestrel_crypto::Keyring;
use kestrel_store::{Actor, DEFAULT_TENANT, SecretId};
use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};

#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// The file to write (mode 0600); refused when it exists, unless --force.
    file: PathBuf,
    /// Replace the file if it exists.
    #[arg(long)]
    force: bool,
}

pub(crate) fn run(args: &ExportArgs, settings: &Settings) -> Result<u8, CliError> {
    if !args.force && !matches!(args.file.try_exists(), Ok(false)) {
        return Err(CliError::usage(format!(
            "{} exists: give --force to replace it",
            args.file.display()
        )));
    }
    let access = StoreAccess::new(settings)?;
    let Some(store) = access.open_existing()? else {
        return Err(CliError::failed(format!(
            "no store at {} yet: there is nothing to export",
            access.shown()
        )));
    };
    let keyring = Keyring::generate().map_err(crypto_error)?;
    let wrapped =
        ArchiveKeyring::wrap(&keyring, &access.given_master_key()?).map_err(crypto_error)?;
    let archive = collect(&store, &access.actor(), &keyring, wrapped)?;
    let mut text = serde_json::to_vec_pretty(&archive)
        .map_err(|e| CliError::failed("cannot write the export").caused_by(e))?;
    text.push(b'\n');
    write_private(&args.file, &text, args.force)?;
    note(&format!(
        "exported {} flow(s), {} namespace(s), {} user(s), {} token(s) and {} secret(s) \
         ({} version(s)) to {}",
        archive.flows.len(),
        archive.namespaces.len(),
        archive.users.len(),
        archive.tokens.len(),
        archive.secrets.len(),
        archive
            .secrets
            .iter()
            .map(|s| s.versions.len())
            .sum::<usize>(),
        args.file.display()
    ));
    Ok(0)
}

/// Everything the export carries, read from `store` by `actor`, the values sealed under
/// `keyring` (wrapped as `wrapped`).
fn collect(
    store: &Store,
    actor: &Actor,
    keyring: &Keyring,
    wrapped: ArchiveKeyring,
) -> Result<Archive, CliError> {
    let flows: Vec<ArchiveFlow> = call(store.list_flows(DEFAULT_TENANT, None))?
        .into_iter()
        .filter(|flow| !flow.deleted)
        .map(|flow| ArchiveFlow {
            namespace: flow.namespace,
            id: flow.id,
            source: flow.source,
        })
        .collect();
    let secrets = secrets(store, actor, keyring)?;
    let namespaces: BTreeSet<String> = flows
        .iter()
        .map(|flow| flow.namespace.clone())
        .chain(secrets.iter().map(|secret| secret.namespace.clone()))
        .collect();
    let users = call(store.users())?
        .into_iter()
        .map(|user| ArchiveUser {
            name: user.name,
            password_hash: user.password_hash,
            namespaces: user.namespaces,
            secrets: user.secrets.as_str().to_owned(),
            created_at: user.created_at,
        })
        .collect();
    let tokens = call(store.token_hashes())?
        .into_iter()
        .map(|(token, token_hash)| ArchiveToken {
            name: token.name,
            token_hash,
            namespaces: token.namespaces,
            secrets: token.secrets.as_str().to_owned(),
            created_at: token.created_at,
        })
        .collect();
    Ok(Archive {
        format: FORMAT.to_owned(),
        version: VERSION,
        exported_at: chrono::Utc::now(),
        tenant: DEFAULT_TENANT.to_owned(),
        keyring: wrapped,
        flows,
        namespaces: namespaces.into_iter().collect(),
        users,
        tokens,
        secrets,
    })
}

/// Every secret whose latest version is readable, with each of its readable versions read
/// (audited, as `actor`) and sealed under `keyring`.
fn secrets(
    store: &Store,
    actor: &Actor,
    keyring: &Keyring,
) -> Result<Vec<ArchiveSecret>, CliError> {
    let mut secrets = Vec::new();
    for namespace in call(store.list_namespaces(DEFAULT_TENANT))? {
        for info in call(store.list(DEFAULT_TENANT, &namespace))? {
            let id = SecretId::main(&namespace, &info.key).map_err(crate::store::store_error)?;
            let mut versions = Vec::new();
            for version in call(store.versions(&id))? {
                if version.deleted_at.is_some() || version.destroyed_at.is_some() {
                    continue;
                }
                // Deleted or destroyed since it was listed: not carried, as if it were then.
                let Some(revealed) = call(store.read(actor, &id, Some(version.version)))? else {
                    continue;
                };
                let aad = version_aad(DEFAULT_TENANT, &namespace, &info.key, version.version);
                let sealed = keyring
                    .seal(&aad, revealed.value.expose_secret().as_bytes())
                    .map_err(crypto_error)?;
                versions.push(ArchiveVersion {
                    version: version.version,
                    created_at: version.created_at,
                    key_id: sealed.key_id,
                    sealed: BASE64.encode(&sealed.bytes),
                });
            }
            secrets.push(ArchiveSecret {
                namespace: namespace.clone(),
                key: info.key,
                description: info.meta.description,
                tags: info.meta.tags,
                versions,
            });
        }
    }
    Ok(secrets)
}

fn crypto_error(error: kestrel_crypto::CryptoError) -> CliError {
    CliError::failed(format!("cannot seal the export: {error}"))
}

/// Writes `bytes` to `path`, mode 0600, whole or not at all: written aside in the same
/// directory, then linked into place (refused when `path` exists) or, with `replace`, renamed
/// over it.
fn write_private(path: &Path, bytes: &[u8], replace: bool) -> Result<(), CliError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let cannot = |error: std::io::Error| {
        CliError::failed(format!("cannot write {}", path.display())).caused_by(error)
    };
    let name = path.file_name().map_or_else(
        || "export".into(),
        |name| name.to_string_lossy().into_owned(),
    );
    let aside = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&aside)
        .and_then(|mut file| {
            file.write_all(bytes)?;
            file.sync_all()
        })
        .and_then(|()| {
            if replace {
                std::fs::rename(&aside, path)
            } else {
                std::fs::hard_link(&aside, path)
            }
        });
    // Gone whether or not it was linked; after a rename there is nothing left to remove.
    let _ = std::fs::remove_file(&aside);
    match written {
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Err(CliError::usage(
            format!("{} exists: give --force to replace it", path.display()),
        )),
        other => other.map_err(cannot),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn the_file_is_private_and_replaced_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("backup.json");
        write_private(&path, b"one", false).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let error = write_private(&path, b"two", false).unwrap_err();
        assert_eq!(error.code(), 2);
        assert_eq!(std::fs::read(&path).unwrap(), b"one");
        write_private(&path, b"two", true).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "nothing is left aside");
    }
}
