//! The keyring as this process holds it, kept in step with the database's: every node unwraps
//! the same data keys with the same master key.

use crate::db::err;
use crate::time::now_ms;
use deadpool_postgres::GenericClient;
use kestrel_crypto::{KeyId, Keyring, MasterKey, WrappedKey};
use kestrel_store::StoreError;
use std::sync::{Arc, PoisonError, RwLock};

pub(crate) struct Keys {
    master: RwLock<MasterKey>,
    ring: RwLock<Arc<Keyring>>,
}

pub(crate) fn key_id(stored: i64) -> Result<KeyId, StoreError> {
    KeyId::try_from(stored).map_err(err("read the keyring"))
}

/// `(current_key, rotating_to)` as stored.
pub(crate) async fn state(
    client: &impl GenericClient,
) -> Result<(Option<KeyId>, Option<KeyId>), StoreError> {
    let row = client
        .query_one(
            "SELECT current_key, rotating_to FROM store_state WHERE singleton = 1",
            &[],
        )
        .await
        .map_err(err("read the keyring state"))?;
    let current: Option<i64> = row.get(0);
    let rotating: Option<i64> = row.get(1);
    Ok((
        current.map(key_id).transpose()?,
        rotating.map(key_id).transpose()?,
    ))
}

pub(crate) async fn load_wrapped(
    client: &impl GenericClient,
) -> Result<Vec<WrappedKey>, StoreError> {
    let rows = client
        .query("SELECT id, wrapped FROM keyring ORDER BY id", &[])
        .await
        .map_err(err("read the keyring"))?;
    rows.iter()
        .map(|row| {
            Ok(WrappedKey {
                id: key_id(row.get(0))?,
                bytes: row.get(1),
            })
        })
        .collect()
}

pub(crate) async fn store_wrapped(
    client: &impl GenericClient,
    wrapped: &WrappedKey,
) -> Result<(), StoreError> {
    client
        .execute(
            "INSERT INTO keyring (id, wrapped, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO UPDATE SET wrapped = excluded.wrapped",
            &[&i64::from(wrapped.id), &wrapped.bytes, &now_ms()],
        )
        .await
        .map_err(err("write the keyring"))?;
    Ok(())
}

async fn unwrap_stored(
    client: &impl GenericClient,
    master: &MasterKey,
) -> Result<Keyring, StoreError> {
    let (current, _) = state(client).await?;
    let current = current
        .ok_or_else(|| StoreError::backend("read the keyring", "the keyring has no current key"))?;
    Keyring::unwrap(master, &load_wrapped(client).await?, current).map_err(StoreError::from_keyring)
}

impl Keys {
    /// Unwraps the stored keyring, or creates it (one data key) in a new database; nodes
    /// starting together agree on one keyring (the first to lock the state row creates it).
    pub(crate) async fn init(
        client: &mut deadpool_postgres::Client,
        master: MasterKey,
    ) -> Result<Self, StoreError> {
        let tx = client
            .transaction()
            .await
            .map_err(err("open the keyring"))?;
        tx.execute(
            "SELECT 1 FROM store_state WHERE singleton = 1 FOR UPDATE",
            &[],
        )
        .await
        .map_err(err("open the keyring"))?;
        let ring = if state(&tx).await?.0.is_some() {
            unwrap_stored(&tx, &master).await?
        } else {
            let ring = Keyring::generate().map_err(StoreError::Crypto)?;
            let wrapped = ring
                .wrap(&master, ring.current())
                .map_err(StoreError::Crypto)?;
            store_wrapped(&tx, &wrapped).await?;
            tx.execute(
                "UPDATE store_state SET current_key = $1 WHERE singleton = 1",
                &[&i64::from(ring.current())],
            )
            .await
            .map_err(err("create the keyring"))?;
            ring
        };
        tx.commit().await.map_err(err("create the keyring"))?;
        Ok(Self {
            master: RwLock::new(master),
            ring: RwLock::new(Arc::new(ring)),
        })
    }

    pub(crate) fn ring(&self) -> Arc<Keyring> {
        Arc::clone(&self.ring.read().unwrap_or_else(PoisonError::into_inner))
    }

    pub(crate) fn master(&self) -> MasterKey {
        self.master
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Re-reads the keyring (another node rotated or rekeyed).
    pub(crate) async fn reload(
        &self,
        client: &impl GenericClient,
    ) -> Result<Arc<Keyring>, StoreError> {
        let ring = Arc::new(unwrap_stored(client, &self.master()).await?);
        self.install_arc(Arc::clone(&ring));
        Ok(ring)
    }

    /// The keyring, re-read first if the stored current key differs from ours; called in
    /// every write transaction, so a value is never sealed under a key a rotation left behind.
    pub(crate) async fn current(
        &self,
        client: &impl GenericClient,
    ) -> Result<Arc<Keyring>, StoreError> {
        let ring = self.ring();
        match state(client).await?.0 {
            Some(id) if id == ring.current() => Ok(ring),
            _ => self.reload(client).await,
        }
    }

    /// The keyring, re-read first if it lacks `key_id`.
    pub(crate) async fn holding(
        &self,
        client: &impl GenericClient,
        key_id: KeyId,
    ) -> Result<Arc<Keyring>, StoreError> {
        let ring = self.ring();
        if ring.contains(key_id) {
            Ok(ring)
        } else {
            self.reload(client).await
        }
    }

    /// Installs a keyring this process just committed.
    pub(crate) fn install(&self, ring: Keyring) {
        self.install_arc(Arc::new(ring));
    }

    fn install_arc(&self, ring: Arc<Keyring>) {
        *self.ring.write().unwrap_or_else(PoisonError::into_inner) = ring;
    }

    /// Installs a master key this process just committed (after `rekey`).
    pub(crate) fn install_master(&self, master: MasterKey) {
        *self.master.write().unwrap_or_else(PoisonError::into_inner) = master;
    }
}
