//! The keyring as this process holds it, kept in step with the database's.

use crate::db::err;
use crate::sync::{read, write};
use crate::time::now_ms;
use kestrel_crypto::{KeyId, Keyring, MasterKey, WrappedKey};
use kestrel_store::StoreError;
use rusqlite::{Connection, TransactionBehavior};
use std::sync::{Arc, RwLock};

pub(crate) struct Keys {
    master: RwLock<MasterKey>,
    ring: RwLock<Arc<Keyring>>,
}

/// `(current_key, rotating_to)` as stored.
pub(crate) fn state(conn: &Connection) -> Result<(Option<KeyId>, Option<KeyId>), StoreError> {
    conn.prepare_cached("SELECT current_key, rotating_to FROM store_state WHERE singleton = 1")
        .and_then(|mut s| s.query_row([], |r| Ok((r.get(0)?, r.get(1)?))))
        .map_err(err("read the keyring state"))
}

pub(crate) fn load_wrapped(conn: &Connection) -> Result<Vec<WrappedKey>, StoreError> {
    conn.prepare_cached("SELECT id, wrapped FROM keyring ORDER BY id")
        .and_then(|mut s| {
            s.query_map([], |r| {
                Ok(WrappedKey {
                    id: r.get(0)?,
                    bytes: r.get(1)?,
                })
            })?
            .collect()
        })
        .map_err(err("read the keyring"))
}

pub(crate) fn store_wrapped(conn: &Connection, wrapped: &WrappedKey) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO keyring (id, wrapped, created_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (id) DO UPDATE SET wrapped = excluded.wrapped",
    )
    .and_then(|mut s| s.execute((wrapped.id, &wrapped.bytes, now_ms())))
    .map_err(err("write the keyring"))?;
    Ok(())
}

fn unwrap_stored(conn: &Connection, master: &MasterKey) -> Result<Keyring, StoreError> {
    let (current, _) = state(conn)?;
    let current = current
        .ok_or_else(|| StoreError::backend("read the keyring", "the keyring has no current key"))?;
    Keyring::unwrap(master, &load_wrapped(conn)?, current).map_err(StoreError::from_keyring)
}

impl Keys {
    /// Unwraps the stored keyring, or creates it (one data key) in a new database.
    pub(crate) fn init(conn: &mut Connection, master: MasterKey) -> Result<Self, StoreError> {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err("open the keyring"))?;
        let ring = if state(&tx)?.0.is_some() {
            unwrap_stored(&tx, &master)?
        } else {
            let ring = Keyring::generate().map_err(StoreError::Crypto)?;
            let wrapped = ring
                .wrap(&master, ring.current())
                .map_err(StoreError::Crypto)?;
            store_wrapped(&tx, &wrapped)?;
            tx.execute(
                "UPDATE store_state SET current_key = ?1 WHERE singleton = 1",
                [ring.current()],
            )
            .map_err(err("create the keyring"))?;
            ring
        };
        tx.commit().map_err(err("create the keyring"))?;
        Ok(Self {
            master: RwLock::new(master),
            ring: RwLock::new(Arc::new(ring)),
        })
    }

    pub(crate) fn ring(&self) -> Arc<Keyring> {
        Arc::clone(&read(&self.ring))
    }

    pub(crate) fn master(&self) -> MasterKey {
        read(&self.master).clone()
    }

    /// Re-reads the keyring (another process rotated or rekeyed).
    pub(crate) fn reload(&self, conn: &Connection) -> Result<Arc<Keyring>, StoreError> {
        let ring = Arc::new(unwrap_stored(conn, &read(&self.master))?);
        *write(&self.ring) = Arc::clone(&ring);
        Ok(ring)
    }

    /// The keyring, re-read first if the stored current key differs from ours; called in
    /// every write transaction, so a value is never sealed under a key a rotation left behind.
    pub(crate) fn current(&self, conn: &Connection) -> Result<Arc<Keyring>, StoreError> {
        let ring = self.ring();
        match state(conn)?.0 {
            Some(id) if id == ring.current() => Ok(ring),
            _ => self.reload(conn),
        }
    }

    /// The keyring, re-read first if it lacks `key_id`.
    pub(crate) fn holding(
        &self,
        conn: &Connection,
        key_id: KeyId,
    ) -> Result<Arc<Keyring>, StoreError> {
        let ring = self.ring();
        if ring.contains(key_id) {
            Ok(ring)
        } else {
            self.reload(conn)
        }
    }

    /// Installs a keyring this process just committed.
    pub(crate) fn install(&self, ring: Keyring) {
        *write(&self.ring) = Arc::new(ring);
    }

    /// Installs a master key this process just committed (after `rekey`).
    pub(crate) fn install_master(&self, master: MasterKey) {
        *write(&self.master) = master;
    }
}
