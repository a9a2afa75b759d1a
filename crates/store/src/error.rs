//! The store's one error type; never carries a secret value.

use kestrel_crypto::CryptoError;
use std::fmt;

/// Why a store operation failed. Names and version numbers appear in messages; values never do.
#[derive(Debug)]
#[non_exhaustive]
pub enum StoreError {
    /// A key outside `^[A-Za-z0-9_.-]{1,255}$`.
    InvalidKey(String),
    /// A namespace outside `^[a-z0-9][a-z0-9_-]*(\.[a-z0-9][a-z0-9_-]*)*$` (at most 150
    /// characters).
    InvalidNamespace(String),
    /// A tenant outside `^[a-z0-9][a-z0-9_-]*$` (at most 64 characters).
    InvalidTenant(String),
    /// The secret, or the version asked for, does not exist (or not in the state needed).
    NotFound {
        /// The namespace.
        namespace: String,
        /// The key.
        key: String,
        /// The version asked for, if one was.
        version: Option<u64>,
    },
    /// The master key does not open the keyring.
    WrongMasterKey(CryptoError),
    /// A stored version does not decrypt for its record: altered, or copied from another.
    Undecryptable {
        /// The namespace.
        namespace: String,
        /// The key.
        key: String,
        /// The version.
        version: u64,
        /// What the cipher said.
        cause: CryptoError,
    },
    /// Any other failure of keys or randomness.
    Crypto(CryptoError),
    /// The name is taken (a flow, a user, a token); the message says which.
    Conflict(String),
    /// The backend holding the namespace is configured read-only: kestrel never writes to it.
    ReadOnly {
        /// The backend (`vault`, `aws-secret-manager`, `embedded`).
        backend: String,
        /// The namespace written to.
        namespace: String,
    },
    /// The backend cannot do this (rotation of a key an external manager owns).
    Unsupported {
        /// The backend.
        backend: String,
        /// What was asked.
        what: String,
    },
    /// A failure several callers share (one fetch answered them all).
    Shared(std::sync::Arc<StoreError>),
    /// The database refused or failed; `context` says what was being done.
    Backend {
        /// What was being done.
        context: String,
        /// The database's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl StoreError {
    /// A database failure while doing `context`.
    pub fn backend(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::Backend {
            context: context.into(),
            source: source.into(),
        }
    }

    /// Maps a keyring failure: a key that does not unwrap is [`StoreError::WrongMasterKey`].
    pub fn from_keyring(cause: CryptoError) -> Self {
        match cause {
            CryptoError::WrongMasterKey { .. } => Self::WrongMasterKey(cause),
            other => Self::Crypto(other),
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidKey(key) => write!(
                f,
                "invalid secret key {key:?}: a key is 1 to 255 characters among A-Z a-z 0-9 _ . -, \
                 other than . and .."
            ),
            Self::InvalidNamespace(ns) => write!(
                f,
                "invalid namespace {ns:?}: a namespace is dot-separated segments, each starting \
                 with a-z or 0-9 and continuing with a-z 0-9 _ -, at most 150 characters in all"
            ),
            Self::InvalidTenant(t) => write!(
                f,
                "invalid tenant {t:?}: a tenant starts with a-z or 0-9, continues with a-z 0-9 _ -, \
                 and has at most 64 characters"
            ),
            Self::NotFound {
                namespace,
                key,
                version: None,
            } => write!(f, "no secret '{key}' in namespace '{namespace}'"),
            Self::NotFound {
                namespace,
                key,
                version: Some(v),
            } => write!(
                f,
                "no version {v} of secret '{key}' in namespace '{namespace}'"
            ),
            Self::WrongMasterKey(cause) => write!(f, "{cause}"),
            Self::Undecryptable {
                namespace,
                key,
                version,
                cause,
            } => write!(
                f,
                "version {version} of secret '{key}' in namespace '{namespace}' cannot be read: {cause}"
            ),
            Self::Crypto(cause) => write!(f, "{cause}"),
            Self::Conflict(what) => f.write_str(what),
            Self::ReadOnly { backend, namespace } => write!(
                f,
                "the secrets of namespace '{namespace}' live in the {backend} backend, configured \
                 read-only (secret.read-only: true): kestrel does not write to it; change them in \
                 {backend} itself"
            ),
            Self::Shared(error) => error.fmt(f),
            Self::Unsupported { backend, what } => {
                write!(f, "the {backend} backend does not support {what}")
            }
            Self::Backend { context, source } => write!(f, "{context}: {source}"),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Backend { source, .. } => Some(source.as_ref()),
            Self::Shared(error) => error.source(),
            Self::WrongMasterKey(cause) | Self::Crypto(cause) => Some(cause),
            Self::Undecryptable { cause, .. } => Some(cause),
            _ => None,
        }
    }
}
