//! Passwords and API tokens: argon2 hashes for passwords, SHA-256 for tokens (random 32 bytes,
//! so a fast hash is enough), constant-time comparisons for both.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use base64::Engine as _;
use sha2::{Digest as _, Sha256};
use std::fmt;
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

/// The prefix of kestrel's API tokens, so that a scanner can tell one in a leaked file.
pub const TOKEN_PREFIX: &str = "kst_";

/// The argon2id PHC string of `password` (random salt, the crate's recommended parameters).
pub fn hash_password(password: &str) -> Result<String, String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| format!("cannot hash the password: {e}"))
}

/// Whether `password` matches the PHC string `phc` (an unreadable hash matches nothing).
/// The comparison inside is constant-time.
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|hash| {
        Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok()
    })
}

/// Whether `phc` is a password hash kestrel can check.
pub fn is_password_hash(phc: &str) -> bool {
    PasswordHash::new(phc).is_ok()
}

/// The hex SHA-256 of a token's text: what is stored.
pub fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether two hashes are equal, in time that does not depend on where they differ.
pub(crate) fn same_hash(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// A token just made: shown once, then only its hash is kept. `Debug` hides it.
pub struct NewToken {
    text: Zeroizing<String>,
}

impl fmt::Debug for NewToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NewToken(******)")
    }
}

impl NewToken {
    /// 32 random bytes, URL-safe base64, behind [`TOKEN_PREFIX`].
    pub fn generate() -> Result<Self, String> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        getrandom::fill(bytes.as_mut())
            .map_err(|e| format!("cannot draw random bytes for a token: {e}"))?;
        let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes.as_ref());
        Ok(Self {
            text: Zeroizing::new(format!("{TOKEN_PREFIX}{encoded}")),
        })
    }

    /// The token's text: to print once, to the person who asked for it.
    pub fn expose_secret(&self) -> &str {
        &self.text
    }

    /// What is stored.
    pub fn hash(&self) -> String {
        token_hash(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_matches_its_hash_only() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("correct horse!", &hash));
        assert!(!verify_password("correct horse", "not a hash"));
        assert!(is_password_hash(&hash) && !is_password_hash("plain"));
    }

    #[test]
    fn tokens_are_random_and_stored_as_their_hash() {
        let a = NewToken::generate().unwrap();
        let b = NewToken::generate().unwrap();
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert!(a.expose_secret().starts_with(TOKEN_PREFIX));
        assert_eq!(a.expose_secret().len(), TOKEN_PREFIX.len() + 43);
        assert_eq!(a.hash(), token_hash(a.expose_secret()));
        assert_eq!(a.hash().len(), 64);
        assert_eq!(format!("{a:?}"), "NewToken(******)");
        assert!(same_hash(&a.hash(), &token_hash(a.expose_secret())));
        assert!(!same_hash(&a.hash(), &b.hash()));
    }
}
