//! The values the store contract speaks in.

use crate::{StoreError, validate};
use chrono::{DateTime, Utc};
use kestrel_crypto::KeyId;
use kestrel_secrets::SecretValue;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The tenant of the open-source edition.
pub const DEFAULT_TENANT: &str = "main";

/// Versions kept per secret unless configured otherwise (as Vault KV v2's `max_versions`).
pub const DEFAULT_VERSIONS_KEPT: u32 = 10;

/// Who acts: recorded in the audit trail with every read and change.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "lowercase")]
pub enum Actor {
    /// A person, by user name.
    User(String),
    /// An API token, by its name.
    Token(String),
    /// An execution, by its id and who triggered it (`4xRZ by user:ada`).
    Execution(String),
    /// kestrel itself on the operator's behalf (the CLI as an OS user, maintenance).
    System(String),
}

impl Actor {
    /// `user`, `token`, `execution` or `system`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::User(_) => "user",
            Self::Token(_) => "token",
            Self::Execution(_) => "execution",
            Self::System(_) => "system",
        }
    }

    /// The name or id.
    pub fn id(&self) -> &str {
        match self {
            Self::User(id) | Self::Token(id) | Self::Execution(id) | Self::System(id) => id,
        }
    }

    /// Rebuilds an actor from [`Actor::kind`] and [`Actor::id`] (as stored).
    pub fn from_parts(kind: &str, id: String) -> Option<Self> {
        match kind {
            "user" => Some(Self::User(id)),
            "token" => Some(Self::Token(id)),
            "execution" => Some(Self::Execution(id)),
            "system" => Some(Self::System(id)),
            _ => None,
        }
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind(), self.id())
    }
}

/// A secret's address: tenant, namespace and key, each checked on construction.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SecretId {
    tenant: String,
    namespace: String,
    key: String,
}

impl SecretId {
    /// Checks and builds an address (see [`validate::validate_key`] and friends).
    pub fn new(tenant: &str, namespace: &str, key: &str) -> Result<Self, StoreError> {
        validate::validate_tenant(tenant)?;
        validate::validate_namespace(namespace)?;
        validate::validate_key(key)?;
        Ok(Self {
            tenant: tenant.to_owned(),
            namespace: namespace.to_owned(),
            key: key.to_owned(),
        })
    }

    /// An address in tenant `main`.
    pub fn main(namespace: &str, key: &str) -> Result<Self, StoreError> {
        Self::new(DEFAULT_TENANT, namespace, key)
    }

    /// The tenant.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The key (case-sensitive).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// [`StoreError::NotFound`] for this secret.
    pub fn not_found(&self, version: Option<u64>) -> StoreError {
        StoreError::NotFound {
            namespace: self.namespace.clone(),
            key: self.key.clone(),
            version,
        }
    }
}

impl fmt::Display for SecretId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.key)
    }
}

/// A tag, in Kestra's shape `{"key": ..., "value": ...}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    /// The tag's name.
    pub key: String,
    /// Its value.
    pub value: String,
}

/// A secret's description and tags: metadata of the secret, not of one version.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretMeta {
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Tags, in the order given.
    #[serde(default)]
    pub tags: Vec<Tag>,
}

/// What a listing shows of a secret: never its value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretInfo {
    /// The namespace.
    pub namespace: String,
    /// The key.
    pub key: String,
    /// Description and tags.
    #[serde(flatten)]
    pub meta: SecretMeta,
    /// The latest version's number.
    pub version: u64,
    /// Whether the latest version can be read (it is neither deleted nor destroyed).
    pub readable: bool,
    /// When version 1 was set.
    pub created_at: DateTime<Utc>,
    /// When the value or metadata last changed.
    pub updated_at: DateTime<Utc>,
}

/// One version of a secret, as `versions` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionInfo {
    /// Numbered from 1.
    pub version: u64,
    /// When it was set.
    pub created_at: DateTime<Utc>,
    /// Who set it.
    pub created_by: Actor,
    /// When it was soft-deleted, if it is.
    pub deleted_at: Option<DateTime<Utc>>,
    /// When its ciphertext was destroyed, if it was (final).
    pub destroyed_at: Option<DateTime<Utc>>,
    /// The manager's own identifier of this version (AWS's `VersionId`), if it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The manager's stages on this version (AWS's `AWSCURRENT`, `AWSPREVIOUS`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<String>,
}

impl VersionInfo {
    /// Whether `get` with this version answers a value.
    pub fn is_readable(&self) -> bool {
        self.deleted_at.is_none() && self.destroyed_at.is_none()
    }
}

/// A value read from the store, with the version it is.
#[derive(Clone, Debug)]
pub struct Revealed {
    /// The version read.
    pub version: u64,
    /// The plaintext.
    pub value: SecretValue,
}

/// What an audit entry records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuditAction {
    /// A value was read by a person or an execution.
    Read,
    /// A new version was set.
    Set,
    /// Description or tags changed.
    UpdateMeta,
    /// A version was soft-deleted.
    Delete,
    /// A deleted version was restored.
    Undelete,
    /// Versions' ciphertexts were destroyed.
    Destroy,
    /// Every version was re-encrypted under a new data key.
    RotateKey,
    /// The keyring was re-wrapped under a new master key.
    Rekey,
    /// A flow asked for a namespace's secret and the read policy refused it.
    Refused,
}

impl AuditAction {
    /// Every action, for parsing.
    pub const ALL: [Self; 9] = [
        Self::Read,
        Self::Set,
        Self::UpdateMeta,
        Self::Delete,
        Self::Undelete,
        Self::Destroy,
        Self::RotateKey,
        Self::Rekey,
        Self::Refused,
    ];

    /// The name stored and printed (`read`, `update-meta`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Set => "set",
            Self::UpdateMeta => "update-meta",
            Self::Delete => "delete",
            Self::Undelete => "undelete",
            Self::Destroy => "destroy",
            Self::RotateKey => "rotate-key",
            Self::Rekey => "rekey",
            Self::Refused => "refused",
        }
    }

    /// The action named `name`, as [`AuditAction::as_str`] writes it.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == name)
    }
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One line of the audit trail: who did what to which secret, when. Never a value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    /// Increasing with time within one store.
    pub id: i64,
    /// When.
    pub at: DateTime<Utc>,
    /// Who.
    pub actor: Actor,
    /// What.
    pub action: AuditAction,
    /// The tenant; `None` for keyring actions (the keyring serves every tenant).
    pub tenant: Option<String>,
    /// The namespace; `None` for keyring actions.
    pub namespace: Option<String>,
    /// The key; `None` for keyring actions.
    pub key: Option<String>,
    /// The version concerned, where one is (for `destroy` of every version: none).
    pub version: Option<u64>,
}

impl AuditEntry {
    /// The entry a store writes as row `id`: `action` by `actor` at `at` (milliseconds), on the
    /// secret `secret` (none for keyring actions) and its `version`.
    pub fn written(
        id: i64,
        at: DateTime<Utc>,
        actor: &Actor,
        action: AuditAction,
        secret: Option<&SecretId>,
        version: Option<u64>,
    ) -> Self {
        Self {
            id,
            at,
            actor: actor.clone(),
            action,
            tenant: secret.map(|s| s.tenant().to_owned()),
            namespace: secret.map(|s| s.namespace().to_owned()),
            key: secret.map(|s| s.key().to_owned()),
            version,
        }
    }
}

/// Which audit entries to return, newest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditFilter {
    /// The tenant (keyring actions, which have none, match every tenant).
    pub tenant: String,
    /// Only this namespace's entries (keyring actions have none).
    pub namespace: Option<String>,
    /// Only this key's entries.
    pub key: Option<String>,
    /// At most this many.
    pub limit: usize,
}

impl Default for AuditFilter {
    fn default() -> Self {
        Self {
            tenant: DEFAULT_TENANT.to_owned(),
            namespace: None,
            key: None,
            limit: 100,
        }
    }
}

/// What a finished `rotate-key` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RotateReport {
    /// The data key every stored version is now sealed with.
    pub key_id: KeyId,
    /// Whether this call finished a rotation an earlier, interrupted call started.
    pub resumed: bool,
    /// Versions re-encrypted by this call.
    pub reencrypted: u64,
}

/// One backend's state, as `/health` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BackendCheck {
    /// The backend (`embedded`, `vault`, `aws-secret-manager`).
    pub backend: String,
    /// The namespace it serves with its children; `None` for the default backend.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Whether kestrel never writes to it.
    pub read_only: bool,
    /// `UP` or `DOWN`.
    pub status: &'static str,
    /// Why it is down: names the backend and the reason, never a value or a credential.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl BackendCheck {
    /// `backend`, answering.
    pub fn up(backend: &str) -> Self {
        Self {
            backend: backend.to_owned(),
            namespace: None,
            read_only: false,
            status: "UP",
            error: None,
        }
    }

    /// `backend`, failing for `error`.
    pub fn down(backend: &str, error: String) -> Self {
        Self {
            status: "DOWN",
            error: Some(error),
            ..Self::up(backend)
        }
    }
}
