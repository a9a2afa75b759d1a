//! `rotate-key` (a new data key, every version re-encrypted, resumable) and `rekey` (the
//! keyring re-wrapped under a new master key).

use crate::audit;
use crate::db::err;
use crate::keys::{load_wrapped, state, store_wrapped};
use crate::secrets::aad;
use crate::store::Inner;
use crate::time::{from_sql_u64, now_ms, sql_u64};
use kestrel_crypto::{KeyId, Keyring, MasterKey, Sealed};
use kestrel_store::{Actor, AuditAction, RotateReport, SecretId, StoreError};
use rusqlite::Connection;

/// A stored version awaiting re-encryption.
struct Pending {
    id: SecretId,
    version: u64,
    sealed: Sealed,
}

impl Inner {
    /// Rotates to a new data key, or finishes the rotation an interrupted call started.
    /// `max_batches` stops early (tests of resumption); `None` runs to the end.
    pub(crate) fn rotate(
        &self,
        actor: &Actor,
        max_batches: Option<usize>,
    ) -> Result<Option<RotateReport>, StoreError> {
        let (key_id, resumed) = self.start_rotation()?;
        let mut reencrypted = 0;
        for batch in 0.. {
            if max_batches.is_some_and(|max| batch >= max) {
                return Ok(None);
            }
            match self.db.write(|tx| self.rotate_batch(tx, key_id, actor))? {
                Some(n) => reencrypted += n,
                None => break,
            }
        }
        Ok(Some(RotateReport {
            key_id,
            resumed,
            reencrypted,
        }))
    }

    /// The rotation's target key: the unfinished one, or a new key made current now.
    fn start_rotation(&self) -> Result<(KeyId, bool), StoreError> {
        let (target, new_ring) = self.db.write(|tx| {
            if let (_, Some(target)) = state(tx)? {
                return Ok((target, None));
            }
            // Unwrapping afresh proves our master key still opens the stored keyring (another
            // process may have rekeyed it) before a key wrapped with it is added.
            let mut ring = Keyring::clone(&*self.keys.reload(tx)?);
            let id = ring.add_key().map_err(StoreError::Crypto)?;
            ring.set_current(id).map_err(StoreError::Crypto)?;
            let wrapped = ring
                .wrap(&self.keys.master(), id)
                .map_err(StoreError::Crypto)?;
            store_wrapped(tx, &wrapped)?;
            tx.execute(
                "UPDATE store_state SET current_key = ?1, rotating_to = ?1 WHERE singleton = 1",
                [id],
            )
            .map_err(err("start a key rotation"))?;
            Ok((id, Some(ring)))
        })?;
        let resumed = new_ring.is_none();
        if let Some(ring) = new_ring {
            self.keys.install(ring);
        }
        Ok((target, resumed))
    }

    /// Re-encrypts one batch under `target`; `None` when nothing was left (the rotation is then
    /// marked finished and audited).
    fn rotate_batch(
        &self,
        tx: &Connection,
        target: KeyId,
        actor: &Actor,
    ) -> Result<Option<u64>, StoreError> {
        if state(tx)?.1 != Some(target) {
            // Finished meanwhile by another process.
            return Ok(None);
        }
        let ring = self.keys.holding(tx, target)?;
        let pending = pending(tx, target, self.options.rotate_batch)?;
        if pending.is_empty() {
            tx.execute(
                "UPDATE store_state SET rotating_to = NULL WHERE singleton = 1",
                [],
            )
            .map_err(err("finish a key rotation"))?;
            audit::record(
                tx,
                &ring.chain_key(),
                now_ms(),
                actor,
                AuditAction::RotateKey,
                None,
                None,
            )?;
            return Ok(None);
        }
        // No key newer than `target` exists while it is being rotated to, so `ring` holds every
        // key a pending version can name.
        for p in &pending {
            let resealed = ring
                .reseal(&aad(&p.id, p.version), &p.sealed, target)
                .map_err(|cause| StoreError::Undecryptable {
                    namespace: p.id.namespace().to_owned(),
                    key: p.id.key().to_owned(),
                    version: p.version,
                    cause,
                })?;
            tx.prepare_cached(
                "UPDATE secret_versions SET key_id = ?5, sealed = ?6
                 WHERE tenant = ?1 AND namespace = ?2 AND key = ?3 AND version = ?4",
            )
            .and_then(|mut s| {
                s.execute((
                    p.id.tenant(),
                    p.id.namespace(),
                    p.id.key(),
                    sql_u64(p.version),
                    resealed.key_id,
                    &resealed.bytes,
                ))
            })
            .map_err(err("re-encrypt a secret version"))?;
        }
        Ok(Some(pending.len() as u64))
    }

    /// Re-wraps every data key under `new_master` in one transaction, checks the result opens,
    /// and keeps `new_master` for this process.
    pub(crate) fn rekey(&self, actor: &Actor, new_master: &MasterKey) -> Result<(), StoreError> {
        self.db.write(|tx| {
            let ring = self.keys.reload(tx)?;
            for wrapped in ring.wrap_all(new_master).map_err(StoreError::Crypto)? {
                store_wrapped(tx, &wrapped)?;
            }
            Keyring::unwrap(new_master, &load_wrapped(tx)?, ring.current())
                .map_err(StoreError::from_keyring)?;
            audit::record(
                tx,
                &ring.chain_key(),
                now_ms(),
                actor,
                AuditAction::Rekey,
                None,
                None,
            )
        })?;
        self.keys.install_master(new_master.clone());
        Ok(())
    }
}

/// Up to `limit` stored versions not yet sealed under `target`.
fn pending(conn: &Connection, target: KeyId, limit: usize) -> Result<Vec<Pending>, StoreError> {
    let rows: Vec<(String, String, String, i64, KeyId, Vec<u8>)> = conn
        .prepare_cached(
            "SELECT tenant, namespace, key, version, key_id, sealed FROM secret_versions
             WHERE sealed IS NOT NULL AND key_id != ?1 LIMIT ?2",
        )
        .and_then(|mut s| {
            s.query_map((target, sql_u64(limit as u64)), |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })?
            .collect()
        })
        .map_err(err("find versions to re-encrypt"))?;
    rows.into_iter()
        .map(|(tenant, namespace, key, version, key_id, bytes)| {
            Ok(Pending {
                id: SecretId::new(&tenant, &namespace, &key)?,
                version: from_sql_u64(version),
                sealed: Sealed { key_id, bytes },
            })
        })
        .collect()
}
