//! The SQL of secrets and their versions, and of the change generation. Values arrive here
//! sealed or leave here sealed.

use crate::db::err;
use crate::keys::key_id;
use crate::time::from_ms;
use deadpool_postgres::GenericClient;
use kestrel_crypto::{Aad, Keyring, Sealed};
use kestrel_secrets::SecretValue;
use kestrel_store::{Actor, SecretId, SecretInfo, SecretMeta, StoreError, Tag, VersionInfo};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

/// Statement parameters.
pub(crate) type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// The rows `sql` answers, through this connection's statement cache.
pub(crate) async fn rows(
    client: &impl GenericClient,
    doing: &'static str,
    sql: &str,
    params: Params<'_>,
) -> Result<Vec<Row>, StoreError> {
    let statement = client.prepare_cached(sql).await.map_err(err(doing))?;
    client.query(&statement, params).await.map_err(err(doing))
}

/// The first row `sql` answers, if any.
pub(crate) async fn first_row(
    client: &impl GenericClient,
    doing: &'static str,
    sql: &str,
    params: Params<'_>,
) -> Result<Option<Row>, StoreError> {
    Ok(rows(client, doing, sql, params).await?.into_iter().next())
}

/// Runs `sql`; the number of rows it changed.
pub(crate) async fn execute(
    client: &impl GenericClient,
    doing: &'static str,
    sql: &str,
    params: Params<'_>,
) -> Result<u64, StoreError> {
    let statement = client.prepare_cached(sql).await.map_err(err(doing))?;
    client.execute(&statement, params).await.map_err(err(doing))
}

/// A version number as stored (versions never come near `i64::MAX`).
pub(crate) fn sql_u64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A stored version number; a negative one (never written) reads as 0.
pub(crate) fn from_sql_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// A version's row, as read for `get`.
pub(crate) struct StoredVersion {
    pub(crate) version: u64,
    /// `None` once destroyed.
    pub(crate) sealed: Option<Sealed>,
    pub(crate) deleted: bool,
}

impl StoredVersion {
    /// The ciphertext, when this version is readable.
    pub(crate) fn readable(self) -> Option<(u64, Sealed)> {
        match (self.deleted, self.sealed) {
            (false, Some(sealed)) => Some((self.version, sealed)),
            _ => None,
        }
    }
}

/// The additional data of a version of `id`.
pub(crate) fn aad(id: &SecretId, version: u64) -> Aad {
    Aad::secret(id.tenant(), id.namespace(), id.key(), version)
}

/// Reads `version, key_id, sealed, deleted` (columns 0 to 3).
fn stored_version(row: &Row) -> Result<StoredVersion, StoreError> {
    let key: Option<i64> = row.get(1);
    let bytes: Option<Vec<u8>> = row.get(2);
    let sealed = match key.zip(bytes) {
        Some((key, bytes)) => Some(Sealed {
            key_id: key_id(key)?,
            bytes,
        }),
        None => None,
    };
    Ok(StoredVersion {
        version: from_sql_u64(row.get(0)),
        sealed,
        deleted: row.get(3),
    })
}

/// The latest version's row (`version: None`) or the given one's.
pub(crate) async fn load_version(
    client: &impl GenericClient,
    id: &SecretId,
    version: Option<u64>,
) -> Result<Option<StoredVersion>, StoreError> {
    let (tenant, namespace, key) = (id.tenant(), id.namespace(), id.key());
    let found = match version {
        None => {
            let sql = "SELECT v.version, v.key_id, v.sealed, v.deleted_at IS NOT NULL
                 FROM secrets s JOIN secret_versions v
                   ON v.tenant = s.tenant AND v.namespace = s.namespace AND v.key = s.key
                  AND v.version = s.latest_version
                 WHERE s.tenant = $1 AND s.namespace = $2 AND s.key = $3";
            first_row(client, "read a secret", sql, &[&tenant, &namespace, &key]).await?
        }
        Some(v) => {
            let sql = "SELECT version, key_id, sealed, deleted_at IS NOT NULL
                 FROM secret_versions
                 WHERE tenant = $1 AND namespace = $2 AND key = $3 AND version = $4";
            let params: Params<'_> = &[&tenant, &namespace, &key, &sql_u64(v)];
            first_row(client, "read a secret", sql, params).await?
        }
    };
    found.as_ref().map(stored_version).transpose()
}

/// Bumps the change generation and returns it. The row lock this takes is held until the
/// transaction ends, so changes of secrets (and the steps of `rotate-key` and `rekey`, which
/// lock the same row) run one at a time across every node.
pub(crate) async fn bump_generation(client: &impl GenericClient) -> Result<i64, StoreError> {
    let sql = "UPDATE store_state SET generation = generation + 1 WHERE singleton = 1
               RETURNING generation";
    let row = first_row(client, "bump the change generation", sql, &[]).await?;
    row.map(|r| r.get(0))
        .ok_or_else(|| StoreError::backend("bump the change generation", "no store state"))
}

/// Tells every node (this one too) that secrets changed, when the transaction commits.
pub(crate) async fn notify(client: &impl GenericClient, generation: i64) -> Result<(), StoreError> {
    let payload = generation.to_string();
    let sql = "SELECT pg_notify($1, $2)";
    let params: Params<'_> = &[&crate::listen::SECRETS, &payload];
    execute(client, "announce a secret change", sql, params).await?;
    Ok(())
}

/// The change generation as committed now.
pub(crate) async fn generation(client: &impl GenericClient) -> Result<i64, StoreError> {
    let sql = "SELECT generation FROM store_state WHERE singleton = 1";
    let row = first_row(client, "read the change generation", sql, &[]).await?;
    row.map(|r| r.get(0))
        .ok_or_else(|| StoreError::backend("read the change generation", "no store state"))
}

/// What a `set` writes.
pub(crate) struct NewVersion<'a> {
    pub(crate) actor: &'a Actor,
    pub(crate) id: &'a SecretId,
    pub(crate) value: &'a SecretValue,
    pub(crate) meta: Option<&'a SecretMeta>,
    pub(crate) kept: u32,
    pub(crate) now: i64,
}

fn tags_json(tags: &[Tag]) -> Result<String, StoreError> {
    serde_json::to_string(tags).map_err(|e| StoreError::backend("write tags", e))
}

/// Counts the next version in the secret's row (locking it until the transaction ends), seals
/// and inserts it, prunes beyond `kept`.
pub(crate) async fn insert_version(
    client: &impl GenericClient,
    ring: &Keyring,
    new: &NewVersion<'_>,
) -> Result<u64, StoreError> {
    let id = new.id;
    let (tenant, namespace, key) = (id.tenant(), id.namespace(), id.key());
    let (description, tags) = match new.meta {
        Some(meta) => (meta.description.as_deref(), tags_json(&meta.tags)?),
        None => (None, "[]".to_owned()),
    };
    let replace_meta = new.meta.is_some();
    let sql = "INSERT INTO secrets (tenant, namespace, key, description, tags, latest_version,
                                    created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, 1, $6, $6)
         ON CONFLICT (tenant, namespace, key) DO UPDATE SET
           latest_version = secrets.latest_version + 1, updated_at = excluded.updated_at,
           description = CASE WHEN $7 THEN excluded.description ELSE secrets.description END,
           tags = CASE WHEN $7 THEN excluded.tags ELSE secrets.tags END
         RETURNING latest_version";
    let params: Params<'_> = &[
        &tenant,
        &namespace,
        &key,
        &description,
        &tags,
        &new.now,
        &replace_meta,
    ];
    let row = first_row(client, "write a secret", sql, params).await?;
    let version = from_sql_u64(
        row.ok_or_else(|| StoreError::backend("write a secret", "no version counted"))?
            .get(0),
    );
    let sealed = ring
        .seal(&aad(id, version), new.value.expose_secret().as_bytes())
        .map_err(StoreError::Crypto)?;
    let sql = "INSERT INTO secret_versions (tenant, namespace, key, version, created_at,
                                            actor_kind, actor_id, key_id, sealed)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
    let params: Params<'_> = &[
        &tenant,
        &namespace,
        &key,
        &sql_u64(version),
        &new.now,
        &new.actor.kind(),
        &new.actor.id(),
        &i64::from(sealed.key_id),
        &sealed.bytes,
    ];
    execute(client, "write a secret version", sql, params).await?;
    let oldest_kept = version.saturating_sub(u64::from(new.kept.max(1)));
    let sql = "DELETE FROM secret_versions
         WHERE tenant = $1 AND namespace = $2 AND key = $3 AND version <= $4";
    let params: Params<'_> = &[&tenant, &namespace, &key, &sql_u64(oldest_kept)];
    execute(client, "prune old versions", sql, params).await?;
    Ok(version)
}

/// The latest version's number, readable or not, with the secret's row locked until the
/// transaction ends.
pub(crate) async fn lock_latest_version(
    client: &impl GenericClient,
    id: &SecretId,
) -> Result<Option<u64>, StoreError> {
    let sql = "SELECT latest_version FROM secrets
               WHERE tenant = $1 AND namespace = $2 AND key = $3 FOR UPDATE";
    let params: Params<'_> = &[&id.tenant(), &id.namespace(), &id.key()];
    let row = first_row(client, "read a secret", sql, params).await?;
    Ok(row.map(|r| from_sql_u64(r.get(0))))
}

/// Soft-deletes the latest version if it is readable; returns its number.
pub(crate) async fn soft_delete(
    client: &impl GenericClient,
    id: &SecretId,
    now: i64,
) -> Result<Option<u64>, StoreError> {
    let Some(latest) = lock_latest_version(client, id).await? else {
        return Ok(None);
    };
    let sql = "UPDATE secret_versions SET deleted_at = $5
         WHERE tenant = $1 AND namespace = $2 AND key = $3 AND version = $4
           AND deleted_at IS NULL AND sealed IS NOT NULL
         RETURNING version";
    let params: Params<'_> = &[
        &id.tenant(),
        &id.namespace(),
        &id.key(),
        &sql_u64(latest),
        &now,
    ];
    let row = first_row(client, "delete a secret", sql, params).await?;
    Ok(row.map(|r| from_sql_u64(r.get(0))))
}

/// What `undelete` found.
pub(crate) enum Undeleted {
    Absent,
    WasReadable,
    Restored,
}

/// Clears the deletion mark of `version`, if it has one and was not destroyed.
pub(crate) async fn undelete(
    client: &impl GenericClient,
    id: &SecretId,
    version: u64,
) -> Result<Undeleted, StoreError> {
    let found = load_version(client, id, Some(version)).await?;
    let Some(stored) = found.filter(|s| s.sealed.is_some()) else {
        return Ok(Undeleted::Absent);
    };
    if !stored.deleted {
        return Ok(Undeleted::WasReadable);
    }
    let sql = "UPDATE secret_versions SET deleted_at = NULL
         WHERE tenant = $1 AND namespace = $2 AND key = $3 AND version = $4";
    let params: Params<'_> = &[&id.tenant(), &id.namespace(), &id.key(), &sql_u64(version)];
    execute(client, "undelete a secret", sql, params).await?;
    Ok(Undeleted::Restored)
}

/// Removes the ciphertext of `version` (or of every version); returns the versions destroyed.
pub(crate) async fn destroy(
    client: &impl GenericClient,
    id: &SecretId,
    version: Option<u64>,
    now: i64,
) -> Result<Vec<u64>, StoreError> {
    lock_latest_version(client, id).await?;
    let sql = "UPDATE secret_versions SET sealed = NULL, key_id = NULL, destroyed_at = $5
         WHERE tenant = $1 AND namespace = $2 AND key = $3 AND sealed IS NOT NULL
           AND ($4::BIGINT IS NULL OR version = $4)
         RETURNING version";
    let version = version.map(sql_u64);
    let params: Params<'_> = &[&id.tenant(), &id.namespace(), &id.key(), &version, &now];
    let rows = rows(client, "destroy a secret", sql, params).await?;
    let mut destroyed: Vec<u64> = rows.iter().map(|r| from_sql_u64(r.get(0))).collect();
    destroyed.sort_unstable();
    Ok(destroyed)
}

/// Replaces description and tags; `false` when the secret was never set.
pub(crate) async fn update_meta(
    client: &impl GenericClient,
    id: &SecretId,
    meta: &SecretMeta,
    now: i64,
) -> Result<bool, StoreError> {
    let tags = tags_json(&meta.tags)?;
    let sql = "UPDATE secrets SET description = $4, tags = $5, updated_at = $6
               WHERE tenant = $1 AND namespace = $2 AND key = $3";
    let params: Params<'_> = &[
        &id.tenant(),
        &id.namespace(),
        &id.key(),
        &meta.description.as_deref(),
        &tags,
        &now,
    ];
    Ok(execute(client, "update a secret's metadata", sql, params).await? > 0)
}

// Metadata never touches `sealed`: a version holds a value exactly when it holds its
// `key_id` (both are set together and cleared together by `destroy`), and reading that column
// costs nothing, where a value's column is as large as the value.
const INFO_COLUMNS: &str = "s.namespace, s.key, s.description, s.tags, s.latest_version,
     v.key_id IS NOT NULL AND v.deleted_at IS NULL, s.created_at, s.updated_at
     FROM secrets s LEFT JOIN secret_versions v
       ON v.tenant = s.tenant AND v.namespace = s.namespace AND v.key = s.key
      AND v.version = s.latest_version";

fn info_row(row: &Row) -> SecretInfo {
    let tags: String = row.get(3);
    SecretInfo {
        namespace: row.get(0),
        key: row.get(1),
        meta: SecretMeta {
            description: row.get(2),
            // Tags are written by this crate only; unreadable ones read as none.
            tags: serde_json::from_str(&tags).unwrap_or_default(),
        },
        version: from_sql_u64(row.get(4)),
        readable: row.get::<_, Option<bool>>(5).unwrap_or(false),
        created_at: from_ms(row.get(6)),
        updated_at: from_ms(row.get(7)),
    }
}

pub(crate) async fn info(
    client: &impl GenericClient,
    id: &SecretId,
) -> Result<Option<SecretInfo>, StoreError> {
    let sql =
        format!("SELECT {INFO_COLUMNS} WHERE s.tenant = $1 AND s.namespace = $2 AND s.key = $3");
    let params: Params<'_> = &[&id.tenant(), &id.namespace(), &id.key()];
    let row = first_row(client, "read a secret's metadata", &sql, params).await?;
    Ok(row.as_ref().map(info_row))
}

pub(crate) async fn list(
    client: &impl GenericClient,
    tenant: &str,
    namespace: &str,
) -> Result<Vec<SecretInfo>, StoreError> {
    let sql = format!(
        "SELECT {INFO_COLUMNS} WHERE s.tenant = $1 AND s.namespace = $2
           AND v.key_id IS NOT NULL AND v.deleted_at IS NULL
         ORDER BY s.key"
    );
    let rows = rows(client, "list secrets", &sql, &[&tenant, &namespace]).await?;
    Ok(rows.iter().map(info_row).collect())
}

pub(crate) async fn namespaces(
    client: &impl GenericClient,
    tenant: &str,
) -> Result<Vec<String>, StoreError> {
    let sql = "SELECT DISTINCT s.namespace FROM secrets s JOIN secret_versions v
           ON v.tenant = s.tenant AND v.namespace = s.namespace AND v.key = s.key
          AND v.version = s.latest_version
         WHERE s.tenant = $1 AND v.key_id IS NOT NULL AND v.deleted_at IS NULL
         ORDER BY s.namespace";
    let rows = rows(client, "list namespaces", sql, &[&tenant]).await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

pub(crate) async fn versions(
    client: &impl GenericClient,
    id: &SecretId,
) -> Result<Vec<VersionInfo>, StoreError> {
    let sql = "SELECT version, created_at, actor_kind, actor_id, deleted_at, destroyed_at
         FROM secret_versions WHERE tenant = $1 AND namespace = $2 AND key = $3
         ORDER BY version";
    let params: Params<'_> = &[&id.tenant(), &id.namespace(), &id.key()];
    let rows = rows(client, "list versions", sql, params).await?;
    rows.iter()
        .map(|r| {
            Ok(VersionInfo {
                version: from_sql_u64(r.get(0)),
                created_at: from_ms(r.get(1)),
                created_by: crate::audit::actor_at(r, 2)?,
                deleted_at: r.get::<_, Option<i64>>(4).map(from_ms),
                destroyed_at: r.get::<_, Option<i64>>(5).map(from_ms),
                label: None,
                stages: Vec::new(),
            })
        })
        .collect()
}
