//! The server's people and API tokens: who may call it, in which namespaces, and what they may
//! do with secrets. Passwords and tokens are stored hashed only.

use crate::StoreError;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::fmt;

/// What a user or token may do with secrets (`--secrets read|write|none`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SecretAccess {
    /// Neither list nor change secrets.
    None,
    /// List keys and metadata.
    Read,
    /// Also create, change and delete.
    Write,
}

impl SecretAccess {
    /// `none`, `read` or `write`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Read => "read",
            Self::Write => "write",
        }
    }

    /// The access of that name, as [`SecretAccess::as_str`] writes it.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::None, Self::Read, Self::Write]
            .into_iter()
            .find(|access| access.as_str() == name)
    }
}

impl fmt::Display for SecretAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A person who signs in with a password. `Debug` leaves the hash out.
#[derive(Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// The user name.
    pub name: String,
    /// The password's argon2 hash, a PHC string.
    pub password_hash: String,
    /// The namespaces (and their children) the user reaches; empty: every namespace.
    pub namespaces: Vec<String>,
    /// What the user may do with secrets.
    pub secrets: SecretAccess,
    /// When the user was added.
    pub created_at: DateTime<Utc>,
}

impl fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserRecord")
            .field("name", &self.name)
            .field("namespaces", &self.namespaces)
            .field("secrets", &self.secrets)
            .finish_non_exhaustive()
    }
}

/// An API token, without the token (stored as its SHA-256 only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRecord {
    /// The token's name.
    pub name: String,
    /// The namespaces (and their children) it reaches; empty: every namespace.
    pub namespaces: Vec<String>,
    /// What it may do with secrets.
    pub secrets: SecretAccess,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Where users and tokens live.
///
/// Names are unique per kind; adding a name in use is [`StoreError::Conflict`] (a revoked
/// token's name may be used again). A token is found by the hex SHA-256 of its text, and only
/// while it is not revoked.
#[async_trait]
pub trait AuthStore: Send + Sync {
    /// Adds a user; [`StoreError::Conflict`] when the name is taken.
    async fn add_user(&self, user: &UserRecord) -> Result<(), StoreError>;

    /// Removes a user; `false` when there was none.
    async fn remove_user(&self, name: &str) -> Result<bool, StoreError>;

    /// One user.
    async fn user(&self, name: &str) -> Result<Option<UserRecord>, StoreError>;

    /// Every user, by name.
    async fn users(&self) -> Result<Vec<UserRecord>, StoreError>;

    /// Adds a token by the hex SHA-256 of its text; [`StoreError::Conflict`] when a live token
    /// has that name.
    async fn add_token(&self, token: &TokenRecord, token_hash: &str) -> Result<(), StoreError>;

    /// The live token whose text hashes to `token_hash`.
    async fn token_by_hash(&self, token_hash: &str) -> Result<Option<TokenRecord>, StoreError>;

    /// Every token, revoked ones too, by name.
    async fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError>;

    /// Every token not revoked with the hash it is found by, sorted by name: what an export
    /// carries so that an import accepts the same tokens.
    async fn token_hashes(&self) -> Result<Vec<(TokenRecord, String)>, StoreError>;

    /// Revokes a live token; `false` when there was none.
    async fn revoke_token(&self, name: &str) -> Result<bool, StoreError>;
}
