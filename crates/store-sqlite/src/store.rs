//! The store's core: reads through the cache, changes in one transaction each.

use crate::StoreOptions;
use crate::cache::{Cache, Lookup};
use crate::db::Db;
use crate::keys::Keys;
use crate::secrets::{StoredVersion, aad, bump_generation, load_version};
use kestrel_crypto::{ChainKey, CryptoError, Keyring, MasterKey};
use kestrel_secrets::SecretValue;
use kestrel_store::{Revealed, SecretId, StoreError};
use rusqlite::Transaction;
use std::path::Path;
use zeroize::{Zeroize as _, Zeroizing};

pub(crate) struct Inner {
    pub(crate) db: Db,
    pub(crate) keys: Keys,
    pub(crate) cache: Cache,
    pub(crate) options: StoreOptions,
    pub(crate) signals: kestrel_store::QueueSignals,
}

impl Inner {
    pub(crate) fn open(
        path: &Path,
        master: MasterKey,
        options: StoreOptions,
    ) -> Result<Self, StoreError> {
        let db = Db::open(path, options.clone())?;
        let keys = db.with_writer(|conn| Keys::init(conn, master))?;
        let cache = Cache::new(
            options.cache_capacity,
            options.freshness_interval,
            db.generation()?,
        );
        Ok(Self {
            db,
            keys,
            cache,
            options,
            signals: kestrel_store::QueueSignals::default(),
        })
    }

    /// The latest readable version through the cache (checked for other processes' changes
    /// at most once per freshness interval), or a given version from the database.
    pub(crate) fn get(
        &self,
        id: &SecretId,
        version: Option<u64>,
    ) -> Result<Option<Revealed>, StoreError> {
        if version.is_some() {
            return self.get_uncached(id, version);
        }
        if self.cache.check_due() {
            self.cache.observe_generation(self.db.generation()?);
        }
        match self.cache.lookup(id) {
            Lookup::Hit(found) => Ok(found),
            Lookup::Miss { epoch } => {
                let found = self.get_uncached(id, None)?;
                self.cache.insert(id, epoch, found.as_ref());
                Ok(found)
            }
        }
    }

    fn get_uncached(
        &self,
        id: &SecretId,
        version: Option<u64>,
    ) -> Result<Option<Revealed>, StoreError> {
        self.db.read(|conn| {
            let Some((version, sealed)) =
                load_version(conn, id, version)?.and_then(StoredVersion::readable)
            else {
                return Ok(None);
            };
            let undecryptable = |cause| StoreError::Undecryptable {
                namespace: id.namespace().to_owned(),
                key: id.key().to_owned(),
                version,
                cause,
            };
            let ring = self.keys.holding(conn, sealed.key_id)?;
            let plain = ring
                .open(&aad(id, version), &sealed)
                .map_err(undecryptable)?;
            let value = into_value(plain).map_err(undecryptable)?;
            Ok(Some(Revealed { version, value }))
        })
    }

    /// The key the audit trail is chained under (see [`kestrel_store::chain`]): derived from
    /// the first data key, which every keyring holds, so the keyring in memory serves without
    /// asking the database whether a rotation moved on.
    pub(crate) fn chain_key(&self) -> ChainKey {
        self.keys.ring().chain_key()
    }

    /// Runs a change of `id` in one write transaction under the current keyring, bumps the
    /// change generation, and drops `id` from this process's cache.
    pub(crate) fn change<T>(
        &self,
        id: &SecretId,
        f: impl FnOnce(&Transaction<'_>, &Keyring) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let (out, generation) = self.db.write(|tx| {
            let ring = self.keys.current(tx)?;
            let out = f(tx, &ring)?;
            Ok((out, bump_generation(tx)?))
        })?;
        self.cache.changed(id, generation);
        Ok(out)
    }
}

/// A decrypted value as text; values are stored from text, so anything else is corruption.
fn into_value(mut plain: Zeroizing<Vec<u8>>) -> Result<SecretValue, CryptoError> {
    match String::from_utf8(std::mem::take(&mut *plain)) {
        Ok(text) => Ok(SecretValue::new(text)),
        Err(e) => {
            e.into_bytes().zeroize();
            Err(CryptoError::Malformed)
        }
    }
}
