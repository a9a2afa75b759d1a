//! `kestrel import FILE [--skip-existing]`: an export's flows, users, tokens and secrets into
//! the store of the settings. Everything is checked before anything is written: the format,
//! the master key (it must open the export's keyring), every sealed value, and the names of
//! users and tokens the store already has.

use super::{Archive, ArchiveSecret, FORMAT, VERSION, version_aad};
use crate::commands::read_text;
use crate::error::CliError;
use crate::output::note;
use crate::settings::Settings;
use crate::sources::call;
use crate::store::{Store, StoreAccess, store_error};
use clap::Args;
use kestrel_crypto::{CryptoError, Keyring};
use kestrel_secrets::SecretValue;
use kestrel_store::{
    DEFAULT_TENANT, SecretAccess, SecretId, SecretMeta, TokenRecord, UserRecord, validate_namespace,
};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    /// The export file.
    file: PathBuf,
    /// Leave users and tokens whose names the store has already as they are, instead of
    /// refusing the import.
    #[arg(long)]
    skip_existing: bool,
}

/// An export, checked and opened: ready to write.
struct Opened {
    flows: Vec<super::ArchiveFlow>,
    users: Vec<UserRecord>,
    tokens: Vec<(TokenRecord, String)>,
    secrets: Vec<OpenedSecret>,
}

/// A secret with its readable versions' values, oldest first.
struct OpenedSecret {
    id: SecretId,
    meta: SecretMeta,
    values: Vec<SecretValue>,
}

/// What was written.
#[derive(Debug, Default, PartialEq, Eq)]
struct Counts {
    flows: usize,
    users: usize,
    tokens: usize,
    skipped: usize,
    secrets: usize,
    versions: usize,
}

pub(crate) fn run(args: &ImportArgs, settings: &Settings) -> Result<u8, CliError> {
    let access = StoreAccess::new(settings)?;
    let archive = read_archive(&args.file)?;
    let keyring = unwrap_keyring(&archive, &access, &args.file)?;
    let opened = open_archive(archive, &keyring, &args.file)?;
    let store = access.open()?;
    let skipped = existing_names(&store, &opened)?;
    if !skipped.is_empty() && !args.skip_existing {
        return Err(CliError::usage(format!(
            "{} already has {}: nothing was imported; give --skip-existing to leave them as \
             they are and import the rest",
            access.shown(),
            skipped.iter().cloned().collect::<Vec<_>>().join(", ")
        )));
    }
    let counts = write(&store, &access, opened, &skipped)?;
    note(&format!(
        "imported {} flow(s), {} user(s), {} token(s) and {} secret(s) ({} version(s)) into {}{}",
        counts.flows,
        counts.users,
        counts.tokens,
        counts.secrets,
        counts.versions,
        access.shown(),
        match counts.skipped {
            0 => String::new(),
            n => format!("; {n} user(s) or token(s) existing already were left as they are"),
        }
    ));
    Ok(0)
}

/// The export in `path`; exit 2 when it is not one this kestrel reads.
fn read_archive(path: &Path) -> Result<Archive, CliError> {
    let text = read_text(path)?;
    let not_an_export =
        |why: String| CliError::usage(format!("{} is not a kestrel export: {why}", path.display()));
    // The parser's message names a position and what it expected, never a value of the file.
    let archive: Archive =
        serde_json::from_str(&text).map_err(|error| not_an_export(error.to_string()))?;
    if archive.format != FORMAT {
        return Err(not_an_export(format!("its format is not {FORMAT}")));
    }
    if archive.version != VERSION {
        return Err(not_an_export(format!(
            "it is version {} of the format; this kestrel reads version {VERSION}",
            archive.version
        )));
    }
    if archive.tenant != DEFAULT_TENANT {
        return Err(not_an_export(format!("its tenant is not {DEFAULT_TENANT}")));
    }
    for namespace in &archive.namespaces {
        validate_namespace(namespace).map_err(store_error)?;
    }
    Ok(archive)
}

/// The export's keyring, opened with the master key of the settings; exit 2 when that is
/// not the key the export was made with.
fn unwrap_keyring(
    archive: &Archive,
    access: &StoreAccess,
    path: &Path,
) -> Result<Keyring, CliError> {
    let master = access.given_master_key()?;
    match archive.keyring.unwrap(&master) {
        Some(Ok(keyring)) => Ok(keyring),
        Some(Err(CryptoError::WrongMasterKey { .. })) => Err(CliError::usage(format!(
            "the master key given does not open the keyring of {}: import with the master key \
             of the store the export was made from (KESTREL_MASTER_KEY or \
             KESTREL_MASTER_KEY_FILE); nothing was imported",
            path.display()
        ))),
        Some(Err(error)) => Err(damaged(path, &error.to_string())),
        None => Err(damaged(path, "a wrapped key is not base64")),
    }
}

fn damaged(path: &Path, why: &str) -> CliError {
    CliError::usage(format!(
        "{} is damaged ({why}); nothing was imported",
        path.display()
    ))
}

/// Every record of the export checked and every sealed value opened, before anything is
/// written.
fn open_archive(archive: Archive, keyring: &Keyring, path: &Path) -> Result<Opened, CliError> {
    let access = |name: &str, written: &str| {
        SecretAccess::parse(written).ok_or_else(|| {
            damaged(
                path,
                &format!("{name} has secret access '{written}', not read, write or none"),
            )
        })
    };
    let mut users = Vec::new();
    for user in archive.users {
        users.push(UserRecord {
            secrets: access(&user.name, &user.secrets)?,
            name: user.name,
            password_hash: user.password_hash,
            namespaces: user.namespaces,
            created_at: user.created_at,
        });
    }
    let mut tokens = Vec::new();
    for token in archive.tokens {
        let record = TokenRecord {
            secrets: access(&token.name, &token.secrets)?,
            name: token.name,
            namespaces: token.namespaces,
            created_at: token.created_at,
            revoked_at: None,
        };
        tokens.push((record, token.token_hash));
    }
    let secrets = archive
        .secrets
        .into_iter()
        .map(|secret| open_secret(&archive.tenant, secret, keyring, path))
        .collect::<Result<_, _>>()?;
    Ok(Opened {
        flows: archive.flows,
        users,
        tokens,
        secrets,
    })
}

fn open_secret(
    tenant: &str,
    secret: ArchiveSecret,
    keyring: &Keyring,
    path: &Path,
) -> Result<OpenedSecret, CliError> {
    let id = SecretId::main(&secret.namespace, &secret.key).map_err(store_error)?;
    let mut values = Vec::with_capacity(secret.versions.len());
    let mut previous = 0;
    for version in &secret.versions {
        let which = format!("version {} of {id}", version.version);
        if version.version <= previous {
            return Err(damaged(path, &format!("{which} is out of order")));
        }
        previous = version.version;
        let sealed = version
            .sealed()
            .ok_or_else(|| damaged(path, &format!("{which} is not base64")))?;
        let aad = version_aad(tenant, &secret.namespace, &secret.key, version.version);
        let opened = keyring
            .open(&aad, &sealed)
            .map_err(|error| damaged(path, &format!("{which}: {error}")))?;
        let text = String::from_utf8(opened.to_vec())
            .map_err(|_| damaged(path, &format!("{which} is not UTF-8 text")))?;
        values.push(SecretValue::new(text));
    }
    Ok(OpenedSecret {
        id,
        meta: SecretMeta {
            description: secret.description,
            tags: secret.tags,
        },
        values,
    })
}

/// The users and live tokens of the export whose names `store` has already, as
/// `user NAME` and `token NAME`.
fn existing_names(store: &Store, opened: &Opened) -> Result<BTreeSet<String>, CliError> {
    let users: BTreeSet<String> = call(store.users())?.into_iter().map(|u| u.name).collect();
    let tokens: BTreeSet<String> = call(store.tokens())?
        .into_iter()
        .filter(|t| t.revoked_at.is_none())
        .map(|t| t.name)
        .collect();
    let users = opened
        .users
        .iter()
        .filter(|user| users.contains(&user.name))
        .map(|user| format!("user {}", user.name));
    let tokens = opened
        .tokens
        .iter()
        .filter(|(token, _)| tokens.contains(&token.name))
        .map(|(token, _)| format!("token {}", token.name));
    Ok(users.chain(tokens).collect())
}

/// Writes the export into `store`, leaving the users and tokens named in `skipped` out.
fn write(
    store: &Store,
    access: &StoreAccess,
    opened: Opened,
    skipped: &BTreeSet<String>,
) -> Result<Counts, CliError> {
    let mut counts = Counts {
        skipped: skipped.len(),
        ..Counts::default()
    };
    for flow in &opened.flows {
        let (namespace, id, source) = (&flow.namespace, &flow.id, &flow.source);
        if call(store.get_flow(DEFAULT_TENANT, namespace, id, None))?.is_some() {
            call(store.update_flow(DEFAULT_TENANT, namespace, id, source))?;
        } else {
            call(store.create_flow(DEFAULT_TENANT, namespace, id, source))?;
        }
        counts.flows += 1;
    }
    for user in &opened.users {
        if !skipped.contains(&format!("user {}", user.name)) {
            call(store.add_user(user))?;
            counts.users += 1;
        }
    }
    for (token, hash) in &opened.tokens {
        if !skipped.contains(&format!("token {}", token.name)) {
            call(store.add_token(token, hash))?;
            counts.tokens += 1;
        }
    }
    let actor = access.actor();
    for secret in &opened.secrets {
        for value in &secret.values {
            call(store.set(&actor, &secret.id, value, Some(&secret.meta)))?;
            counts.versions += 1;
        }
        counts.secrets += usize::from(!secret.values.is_empty());
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::archive::{ArchiveKeyring, ArchiveVersion};
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD as BASE64;
    use kestrel_crypto::MasterKey;

    /// An empty export's JSON, sealed under a new keyring wrapped by `master`.
    fn empty_export(master: &MasterKey) -> serde_json::Value {
        let keyring = Keyring::generate().unwrap();
        let archive = Archive {
            format: FORMAT.into(),
            version: VERSION,
            exported_at: chrono::Utc::now(),
            tenant: DEFAULT_TENANT.into(),
            keyring: ArchiveKeyring::wrap(&keyring, master).unwrap(),
            flows: Vec::new(),
            namespaces: vec!["dev".into()],
            users: Vec::new(),
            tokens: Vec::new(),
            secrets: Vec::new(),
        };
        serde_json::to_value(&archive).unwrap()
    }

    #[test]
    fn only_an_export_of_this_format_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("export.json");
        let master = MasterKey::generate().unwrap();
        let good = empty_export(&master);
        std::fs::write(&path, good.to_string()).unwrap();
        assert!(read_archive(&path).is_ok());
        for (field, value) in [
            ("format", serde_json::json!("other")),
            ("version", serde_json::json!(2)),
            ("tenant", serde_json::json!("acme")),
            ("namespaces", serde_json::json!(["Not A Namespace"])),
        ] {
            let mut bad = good.clone();
            bad[field] = value;
            std::fs::write(&path, bad.to_string()).unwrap();
            assert_eq!(read_archive(&path).unwrap_err().code(), 2, "{field}");
        }
        std::fs::write(&path, "{\"format\": \"kestrel-export\"}").unwrap();
        let error = read_archive(&path).unwrap_err();
        assert_eq!(error.code(), 2);
        assert!(
            error.to_string().contains("not a kestrel export"),
            "{error}"
        );
    }

    #[test]
    fn a_version_sealed_for_another_place_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("export.json");
        let keyring = Keyring::generate().unwrap();
        let sealed = keyring
            .seal(&version_aad("main", "dev", "OTHER", 1), b"value")
            .unwrap();
        let secret = |key: &str| ArchiveSecret {
            namespace: "dev".into(),
            key: key.into(),
            description: None,
            tags: Vec::new(),
            versions: vec![ArchiveVersion {
                version: 1,
                created_at: chrono::Utc::now(),
                key_id: sealed.key_id,
                sealed: BASE64.encode(&sealed.bytes),
            }],
        };
        let opened = open_secret("main", secret("OTHER"), &keyring, &path).unwrap();
        assert_eq!(opened.values[0].expose_secret(), "value");
        let error = open_secret("main", secret("K"), &keyring, &path)
            .err()
            .unwrap();
        assert_eq!(error.code(), 2);
        assert!(error.to_string().contains("damaged"), "{error}");
    }
}
