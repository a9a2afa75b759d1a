//! `rotate-key` (a new data key, every version re-encrypted, a batch per transaction,
//! resumable by any node) and `rekey` (the keyring re-wrapped under a new master key).
//!
//! Each step locks the store-state row, as every change of a secret does first: a value is
//! never sealed under the old key after the rotation started (the change either committed
//! before, and a batch re-encrypts it, or reads the new current key), and `rekey` never races
//! a key being added under the old master key. Reads take no lock and go on throughout.

use crate::Inner;
use crate::audit;
use crate::db::err;
use crate::keys::{key_id, load_wrapped, state, store_wrapped};
use crate::secrets::{Params, aad, execute, from_sql_u64, rows, sql_u64};
use crate::time::now_ms;
use deadpool_postgres::GenericClient;
use kestrel_crypto::{KeyId, Keyring, MasterKey, Sealed};
use kestrel_store::{Actor, AuditAction, RotateReport, SecretId, StoreError};

/// A stored version awaiting re-encryption.
struct Pending {
    id: SecretId,
    version: u64,
    sealed: Sealed,
}

/// Locks the store-state row until the transaction ends (see the module's comment).
async fn lock_state(client: &impl GenericClient, doing: &'static str) -> Result<(), StoreError> {
    let sql = "SELECT 1 FROM store_state WHERE singleton = 1 FOR UPDATE";
    execute(client, doing, sql, &[]).await.map(drop)
}

impl Inner {
    /// Rotates to a new data key, or finishes the rotation an interrupted call (on any node)
    /// started. `max_batches` stops early (tests of resumption); `None` runs to the end.
    pub(crate) async fn rotate(
        &self,
        actor: &Actor,
        max_batches: Option<usize>,
    ) -> Result<Option<RotateReport>, StoreError> {
        let (key_id, resumed) = self.start_rotation().await?;
        let mut reencrypted = 0;
        for batch in 0.. {
            if max_batches.is_some_and(|max| batch >= max) {
                return Ok(None);
            }
            match self.rotate_batch(key_id, actor).await? {
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
    async fn start_rotation(&self) -> Result<(KeyId, bool), StoreError> {
        let doing = "start a key rotation";
        let mut client = self.connection(doing).await?;
        let tx = client.transaction().await.map_err(err(doing))?;
        lock_state(&tx, doing).await?;
        if let (_, Some(target)) = state(&tx).await? {
            return Ok((target, true));
        }
        // Unwrapping afresh proves our master key still opens the stored keyring (another
        // node may have rekeyed it) before a key wrapped with it is added.
        let mut ring = Keyring::clone(&*self.keys.reload(&tx).await?);
        let id = ring.add_key().map_err(StoreError::Crypto)?;
        ring.set_current(id).map_err(StoreError::Crypto)?;
        let wrapped = ring
            .wrap(&self.keys.master(), id)
            .map_err(StoreError::Crypto)?;
        store_wrapped(&tx, &wrapped).await?;
        let sql = "UPDATE store_state SET current_key = $1, rotating_to = $1 WHERE singleton = 1";
        execute(&tx, doing, sql, &[&i64::from(id)]).await?;
        tx.commit().await.map_err(err(doing))?;
        self.keys.install(ring);
        Ok((id, false))
    }

    /// Re-encrypts one batch under `target` in one transaction; `None` when nothing was left
    /// (the rotation is then marked finished and audited).
    async fn rotate_batch(&self, target: KeyId, actor: &Actor) -> Result<Option<u64>, StoreError> {
        let doing = "re-encrypt secret versions";
        let mut client = self.connection(doing).await?;
        let tx = client.transaction().await.map_err(err(doing))?;
        lock_state(&tx, doing).await?;
        if state(&tx).await?.1 != Some(target) {
            // Finished meanwhile by another call, on this node or another.
            return Ok(None);
        }
        let ring = self.keys.holding(&tx, target).await?;
        let pending = pending(&tx, target, self.options.rotate_batch).await?;
        if pending.is_empty() {
            let sql = "UPDATE store_state SET rotating_to = NULL WHERE singleton = 1";
            execute(&tx, "finish a key rotation", sql, &[]).await?;
            audit::record(
                &tx,
                &ring.chain_key(),
                now_ms(),
                actor,
                AuditAction::RotateKey,
                None,
                None,
            )
            .await?;
            tx.commit().await.map_err(err("finish a key rotation"))?;
            return Ok(None);
        }
        // No key newer than `target` exists while it is being rotated to, so `ring` holds every
        // key a pending version can name.
        let resealed = pending
            .iter()
            .map(|p| {
                ring.reseal(&aad(&p.id, p.version), &p.sealed, target)
                    .map(|sealed| sealed.bytes)
                    .map_err(|cause| StoreError::Undecryptable {
                        namespace: p.id.namespace().to_owned(),
                        key: p.id.key().to_owned(),
                        version: p.version,
                        cause,
                    })
            })
            .collect::<Result<Vec<Vec<u8>>, StoreError>>()?;
        store_resealed(&tx, target, &pending, resealed).await?;
        tx.commit().await.map_err(err(doing))?;
        Ok(Some(pending.len() as u64))
    }

    /// Re-wraps every data key under `new_master` in one transaction, checks the result opens,
    /// and keeps `new_master` for this node.
    pub(crate) async fn rekey(
        &self,
        actor: &Actor,
        new_master: &MasterKey,
    ) -> Result<(), StoreError> {
        let doing = "re-wrap the keyring";
        let mut client = self.connection(doing).await?;
        let tx = client.transaction().await.map_err(err(doing))?;
        lock_state(&tx, doing).await?;
        let ring = self.keys.reload(&tx).await?;
        for wrapped in ring.wrap_all(new_master).map_err(StoreError::Crypto)? {
            store_wrapped(&tx, &wrapped).await?;
        }
        Keyring::unwrap(new_master, &load_wrapped(&tx).await?, ring.current())
            .map_err(StoreError::from_keyring)?;
        audit::record(
            &tx,
            &ring.chain_key(),
            now_ms(),
            actor,
            AuditAction::Rekey,
            None,
            None,
        )
        .await?;
        tx.commit().await.map_err(err(doing))?;
        self.keys.install_master(new_master.clone());
        Ok(())
    }
}

/// Writes a batch's new ciphertexts in one statement (one round trip, so the batch holds the
/// store-state row, and writers wait, for as short a time as can be).
async fn store_resealed(
    client: &impl GenericClient,
    target: KeyId,
    pending: &[Pending],
    resealed: Vec<Vec<u8>>,
) -> Result<(), StoreError> {
    let column = |part: fn(&SecretId) -> &str| -> Vec<&str> {
        pending.iter().map(|p| part(&p.id)).collect()
    };
    let versions: Vec<i64> = pending.iter().map(|p| sql_u64(p.version)).collect();
    let sql = "UPDATE secret_versions v SET key_id = $1, sealed = r.sealed
         FROM unnest($2::TEXT[], $3::TEXT[], $4::TEXT[], $5::BIGINT[], $6::BYTEA[])
              AS r (tenant, namespace, key, version, sealed)
         WHERE v.tenant = r.tenant AND v.namespace = r.namespace AND v.key = r.key
           AND v.version = r.version";
    let params: Params<'_> = &[
        &i64::from(target),
        &column(SecretId::tenant),
        &column(SecretId::namespace),
        &column(SecretId::key),
        &versions,
        &resealed,
    ];
    execute(client, "re-encrypt secret versions", sql, params).await?;
    Ok(())
}

/// Up to `limit` stored versions not yet sealed under `target`.
async fn pending(
    client: &impl GenericClient,
    target: KeyId,
    limit: usize,
) -> Result<Vec<Pending>, StoreError> {
    let sql = "SELECT tenant, namespace, key, version, key_id, sealed FROM secret_versions
               WHERE sealed IS NOT NULL AND key_id <> $1 LIMIT $2";
    let limit = i64::try_from(limit.max(1)).unwrap_or(i64::MAX);
    let params: Params<'_> = &[&i64::from(target), &limit];
    let rows = rows(client, "find versions to re-encrypt", sql, params).await?;
    rows.iter()
        .map(|r| {
            Ok(Pending {
                id: SecretId::new(r.get(0), r.get(1), r.get(2))?,
                version: from_sql_u64(r.get(3)),
                sealed: Sealed {
                    key_id: key_id(r.get(4))?,
                    bytes: r.get(5),
                },
            })
        })
        .collect()
}
