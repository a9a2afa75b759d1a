//! `kestrel export FILE` and `kestrel import FILE`: flows, namespaces, users, tokens and
//! secrets, from the store of the settings to a file and from a file to the store of the
//! settings, whichever the databases (docs/export-import.md). This module owns the file's
//! format; [`export`] and [`import`] own the two commands.
//!
//! The file never holds a value in clear: each readable version is sealed under a keyring made
//! for the export, bound to its tenant, namespace, key and version, and that keyring is kept
//! wrapped by the store's master key. Tokens are kept as their SHA-256, passwords as their
//! argon2 hashes, as the store keeps them.

pub(crate) mod export;
pub(crate) mod import;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use kestrel_crypto::{Aad, KeyId, Keyring, MasterKey, Sealed, WrappedKey};
use kestrel_store::Tag;
use serde::{Deserialize, Serialize};

/// The `format` of an export file.
const FORMAT: &str = "kestrel-export";
/// The layout this kestrel writes and reads.
const VERSION: u32 = 1;

/// An export file.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Archive {
    format: String,
    version: u32,
    exported_at: DateTime<Utc>,
    tenant: String,
    keyring: ArchiveKeyring,
    flows: Vec<ArchiveFlow>,
    /// The namespaces of the flows and secrets, sorted.
    namespaces: Vec<String>,
    users: Vec<ArchiveUser>,
    tokens: Vec<ArchiveToken>,
    secrets: Vec<ArchiveSecret>,
}

/// The export's keyring, each key wrapped by the master key.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ArchiveKeyring {
    current: KeyId,
    keys: Vec<ArchiveKey>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ArchiveKey {
    id: KeyId,
    /// Base64 of the wrapped key.
    wrapped: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ArchiveFlow {
    namespace: String,
    id: String,
    source: String,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ArchiveUser {
    name: String,
    password_hash: String,
    namespaces: Vec<String>,
    /// `read`, `write` or `none`.
    secrets: String,
    created_at: DateTime<Utc>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ArchiveToken {
    name: String,
    /// The hex SHA-256 of the token.
    token_hash: String,
    namespaces: Vec<String>,
    /// `read`, `write` or `none`.
    secrets: String,
    created_at: DateTime<Utc>,
}

// Hashes are not secrets, yet a debug print has no use for them.
impl std::fmt::Debug for ArchiveUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArchiveUser")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for ArchiveToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArchiveToken")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ArchiveSecret {
    namespace: String,
    key: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    tags: Vec<Tag>,
    /// The readable versions, oldest first.
    versions: Vec<ArchiveVersion>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ArchiveVersion {
    version: u64,
    created_at: DateTime<Utc>,
    key_id: KeyId,
    /// Base64 of the value sealed under the export's keyring.
    sealed: String,
}

/// What a sealed version of the export is bound to: a value sealed for one secret's version
/// does not open as another's, nor as a stored value.
fn version_aad(tenant: &str, namespace: &str, key: &str, version: u64) -> Aad {
    Aad::new("kestrel-export-v1")
        .with_str(tenant)
        .with_str(namespace)
        .with_str(key)
        .with_u64(version)
}

impl ArchiveKeyring {
    /// `keyring` wrapped by `master`.
    fn wrap(keyring: &Keyring, master: &MasterKey) -> Result<Self, kestrel_crypto::CryptoError> {
        let keys = keyring
            .wrap_all(master)?
            .into_iter()
            .map(|wrapped| ArchiveKey {
                id: wrapped.id,
                wrapped: BASE64.encode(wrapped.bytes),
            })
            .collect();
        Ok(Self {
            current: keyring.current(),
            keys,
        })
    }

    /// The keyring, unwrapped by `master`; `None` when a wrapped key is not base64.
    fn unwrap(&self, master: &MasterKey) -> Option<Result<Keyring, kestrel_crypto::CryptoError>> {
        let wrapped: Option<Vec<WrappedKey>> = self
            .keys
            .iter()
            .map(|key| {
                Some(WrappedKey {
                    id: key.id,
                    bytes: BASE64.decode(&key.wrapped).ok()?,
                })
            })
            .collect();
        Some(Keyring::unwrap(master, &wrapped?, self.current))
    }
}

impl ArchiveVersion {
    /// The sealed value as the keyring opens it; `None` when it is not base64.
    fn sealed(&self) -> Option<Sealed> {
        Some(Sealed {
            key_id: self.key_id,
            bytes: BASE64.decode(&self.sealed).ok()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kestrel_crypto::CryptoError;

    #[test]
    fn the_keyring_opens_with_its_master_key_only() {
        let master = MasterKey::generate().unwrap();
        let keyring = Keyring::generate().unwrap();
        let wrapped = ArchiveKeyring::wrap(&keyring, &master).unwrap();
        let sealed = keyring
            .seal(&version_aad("main", "a", "K", 1), b"v")
            .unwrap();
        let unwrapped = wrapped.unwrap(&master).unwrap().unwrap();
        let opened = unwrapped
            .open(&version_aad("main", "a", "K", 1), &sealed)
            .unwrap();
        assert_eq!(&opened[..], b"v");
        let other = MasterKey::generate().unwrap();
        assert!(matches!(
            wrapped.unwrap(&other),
            Some(Err(CryptoError::WrongMasterKey { .. }))
        ));
        let garbled = ArchiveKeyring {
            current: 1,
            keys: vec![ArchiveKey {
                id: 1,
                wrapped: "not base64!".into(),
            }],
        };
        assert!(garbled.unwrap(&master).is_none());
    }

    #[test]
    fn a_sealed_version_opens_in_its_own_place_only() {
        let keyring = Keyring::generate().unwrap();
        let sealed = keyring
            .seal(&version_aad("main", "a", "K", 2), b"v")
            .unwrap();
        for elsewhere in [
            version_aad("main", "a", "K", 1),
            version_aad("main", "a", "L", 2),
            version_aad("main", "b", "K", 2),
            Aad::secret("main", "a", "K", 2),
        ] {
            assert!(keyring.open(&elsewhere, &sealed).is_err(), "{elsewhere:?}");
        }
    }
}
