//! Each node's memory of the API tokens it recently found, so that a request with a token does
//! not cost two statements (the token, its grants) on every call.
//!
//! Freshness: every change to tokens, users or grants, on any node, NOTIFYs `kestrel_auth`
//! inside its transaction, and each node's listener then forgets every token: a revoked token
//! is refused at once everywhere. An entry also lasts at most the store's freshness interval
//! (default 1 s), which bounds how long a revocation can go unseen while a listener reconnects
//! (notifications sent meanwhile are lost). Only tokens found are kept: an unknown token is always looked up, so guesses
//! cannot fill the memory or outlive a token's creation.

use kestrel_store::TokenRecord;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Tokens remembered at most; a full memory starts over.
const CAPACITY: usize = 1024;

pub(crate) struct TokenCache {
    /// The longest a token found is trusted without reading the database again.
    remembered_for: Duration,
    /// Bumped by every notification of an auth change.
    changes: AtomicU64,
    /// Token hash → when it was read, and the token.
    found: Mutex<HashMap<String, (Instant, TokenRecord)>>,
}

impl TokenCache {
    pub(crate) fn new(remembered_for: Duration) -> Self {
        Self {
            remembered_for,
            changes: AtomicU64::default(),
            found: Mutex::default(),
        }
    }

    fn found(&self) -> MutexGuard<'_, HashMap<String, (Instant, TokenRecord)>> {
        // Each entry is written whole: a panic elsewhere cannot leave one half-written.
        self.found.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// What a read must pass back to [`TokenCache::remember`]: the change count before it.
    pub(crate) fn changes(&self) -> u64 {
        self.changes.load(Ordering::SeqCst)
    }

    /// The token whose hash is `token_hash`, if read within the time it may be remembered and
    /// no change was announced since.
    pub(crate) fn lookup(&self, token_hash: &str) -> Option<TokenRecord> {
        self.found()
            .get(token_hash)
            .filter(|(at, _)| at.elapsed() < self.remembered_for)
            .map(|(_, token)| token.clone())
    }

    /// Keeps `token`, read when the change count was `changes_before`: a read that raced a
    /// change (the count moved meanwhile) may have seen the token before it was revoked, and
    /// is not kept.
    pub(crate) fn remember(&self, token_hash: &str, token: &TokenRecord, changes_before: u64) {
        let mut found = self.found();
        if self.changes() != changes_before {
            return;
        }
        if found.len() >= CAPACITY {
            found.clear();
        }
        found.insert(token_hash.to_owned(), (Instant::now(), token.clone()));
    }

    /// A change was announced (or may have been missed): forget every token.
    pub(crate) fn changed(&self) {
        let mut found = self.found();
        self.changes.fetch_add(1, Ordering::SeqCst);
        found.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;
    use kestrel_store::SecretAccess;

    fn token(name: &str) -> TokenRecord {
        TokenRecord {
            name: name.into(),
            secrets: SecretAccess::Read,
            created_at: DateTime::UNIX_EPOCH,
            revoked_at: None,
            namespaces: vec!["company".into()],
        }
    }

    #[test]
    fn a_token_read_is_remembered_until_a_change_is_announced() {
        let cache = TokenCache::new(Duration::from_secs(60));
        assert!(cache.lookup("h").is_none());
        cache.remember("h", &token("ci"), cache.changes());
        assert_eq!(cache.lookup("h").map(|t| t.name), Some("ci".into()));
        cache.changed();
        assert!(cache.lookup("h").is_none());
    }

    #[test]
    fn a_read_that_raced_a_change_is_not_remembered() {
        let cache = TokenCache::new(Duration::from_secs(60));
        let before = cache.changes();
        cache.changed();
        cache.remember("h", &token("ci"), before);
        assert!(cache.lookup("h").is_none());
    }

    #[test]
    fn a_token_is_read_again_once_its_time_is_up() {
        let cache = TokenCache::new(Duration::ZERO);
        cache.remember("h", &token("ci"), cache.changes());
        assert!(cache.lookup("h").is_none());
    }

    #[test]
    fn a_full_cache_starts_over() {
        let cache = TokenCache::new(Duration::from_secs(60));
        for i in 0..CAPACITY {
            cache.remember(&i.to_string(), &token("ci"), cache.changes());
        }
        assert!(cache.lookup("0").is_some());
        cache.remember("last", &token("ci"), cache.changes());
        assert!(cache.lookup("0").is_none());
        assert!(cache.lookup("last").is_some());
    }
}
