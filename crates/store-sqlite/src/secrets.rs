//! The SQL of secrets and their versions. Values arrive here sealed or leave here sealed.

use crate::db::err;
use crate::time::{from_ms, from_sql_u64, sql_u64};
use kestrel_crypto::{Aad, KeyId, Keyring, Sealed};
use kestrel_secrets::SecretValue;
use kestrel_store::{Actor, SecretId, SecretInfo, SecretMeta, StoreError, Tag, VersionInfo};
use rusqlite::{Connection, OptionalExtension as _, Row};

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

fn stored_version(r: &Row<'_>) -> rusqlite::Result<StoredVersion> {
    let key_id: Option<KeyId> = r.get(1)?;
    let bytes: Option<Vec<u8>> = r.get(2)?;
    Ok(StoredVersion {
        version: from_sql_u64(r.get(0)?),
        sealed: key_id
            .zip(bytes)
            .map(|(key_id, bytes)| Sealed { key_id, bytes }),
        deleted: r.get(3)?,
    })
}

/// The latest version's row (`version: None`) or the given one's.
pub(crate) fn load_version(
    conn: &Connection,
    id: &SecretId,
    version: Option<u64>,
) -> Result<Option<StoredVersion>, StoreError> {
    let found = match version {
        None => conn
            .prepare_cached(
                "SELECT v.version, v.key_id, v.sealed, v.deleted_at IS NOT NULL
                 FROM secrets s JOIN secret_versions v
                   ON v.tenant = s.tenant AND v.namespace = s.namespace AND v.key = s.key
                  AND v.version = s.latest_version
                 WHERE s.tenant = ?1 AND s.namespace = ?2 AND s.key = ?3",
            )
            .and_then(|mut s| {
                s.query_row((id.tenant(), id.namespace(), id.key()), stored_version)
                    .optional()
            }),
        Some(v) => conn
            .prepare_cached(
                "SELECT version, key_id, sealed, deleted_at IS NOT NULL FROM secret_versions
                 WHERE tenant = ?1 AND namespace = ?2 AND key = ?3 AND version = ?4",
            )
            .and_then(|mut s| {
                s.query_row(
                    (id.tenant(), id.namespace(), id.key(), sql_u64(v)),
                    stored_version,
                )
                .optional()
            }),
    };
    found.map_err(err("read a secret"))
}

/// Bumps the change generation (every change of a value or of its state) and returns it.
pub(crate) fn bump_generation(conn: &Connection) -> Result<i64, StoreError> {
    conn.prepare_cached(
        "UPDATE store_state SET generation = generation + 1 WHERE singleton = 1
         RETURNING generation",
    )
    .and_then(|mut s| s.query_row([], |r| r.get(0)))
    .map_err(err("bump the change generation"))
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

/// Seals and inserts the next version, updates the secret's row, prunes beyond `kept`.
pub(crate) fn insert_version(
    conn: &Connection,
    ring: &Keyring,
    new: &NewVersion<'_>,
) -> Result<u64, StoreError> {
    let id = new.id;
    let version = latest_version(conn, id)?.map_or(1, |v| v + 1);
    let (description, tags) = match new.meta {
        Some(meta) => (meta.description.as_deref(), tags_json(&meta.tags)?),
        None => (None, "[]".to_owned()),
    };
    conn.prepare_cached(
        "INSERT INTO secrets (tenant, namespace, key, description, tags, latest_version,
                              created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)
         ON CONFLICT (tenant, namespace, key) DO UPDATE SET
           latest_version = excluded.latest_version, updated_at = excluded.updated_at,
           description = CASE WHEN ?8 THEN excluded.description ELSE description END,
           tags = CASE WHEN ?8 THEN excluded.tags ELSE tags END",
    )
    .and_then(|mut s| {
        s.execute((
            id.tenant(),
            id.namespace(),
            id.key(),
            description,
            tags,
            sql_u64(version),
            new.now,
            new.meta.is_some(),
        ))
    })
    .map_err(err("write a secret"))?;
    let sealed = ring
        .seal(&aad(id, version), new.value.expose_secret().as_bytes())
        .map_err(StoreError::Crypto)?;
    conn.prepare_cached(
        "INSERT INTO secret_versions (tenant, namespace, key, version, created_at, actor_kind,
                                      actor_id, key_id, sealed)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )
    .and_then(|mut s| {
        s.execute((
            id.tenant(),
            id.namespace(),
            id.key(),
            sql_u64(version),
            new.now,
            new.actor.kind(),
            new.actor.id(),
            sealed.key_id,
            &sealed.bytes,
        ))
    })
    .map_err(err("write a secret version"))?;
    conn.prepare_cached(
        "DELETE FROM secret_versions
         WHERE tenant = ?1 AND namespace = ?2 AND key = ?3 AND version <= ?4",
    )
    .and_then(|mut s| {
        let oldest_kept = version.saturating_sub(u64::from(new.kept.max(1)));
        s.execute((id.tenant(), id.namespace(), id.key(), sql_u64(oldest_kept)))
    })
    .map_err(err("prune old versions"))?;
    Ok(version)
}

/// Soft-deletes the latest version if it is readable; returns its number.
pub(crate) fn soft_delete(
    conn: &Connection,
    id: &SecretId,
    now: i64,
) -> Result<Option<u64>, StoreError> {
    conn.prepare_cached(
        "UPDATE secret_versions SET deleted_at = ?4
         WHERE tenant = ?1 AND namespace = ?2 AND key = ?3
           AND deleted_at IS NULL AND sealed IS NOT NULL
           AND version = (SELECT latest_version FROM secrets
                          WHERE tenant = ?1 AND namespace = ?2 AND key = ?3)
         RETURNING version",
    )
    .and_then(|mut s| {
        s.query_row((id.tenant(), id.namespace(), id.key(), now), |r| r.get(0))
            .optional()
    })
    .map(|v: Option<i64>| v.map(from_sql_u64))
    .map_err(err("delete a secret"))
}

/// The latest version's number, readable or not.
pub(crate) fn latest_version(conn: &Connection, id: &SecretId) -> Result<Option<u64>, StoreError> {
    conn.prepare_cached(
        "SELECT latest_version FROM secrets WHERE tenant = ?1 AND namespace = ?2 AND key = ?3",
    )
    .and_then(|mut s| {
        s.query_row((id.tenant(), id.namespace(), id.key()), |r| r.get(0))
            .optional()
    })
    .map(|v: Option<i64>| v.map(from_sql_u64))
    .map_err(err("read a secret"))
}

/// Clears the deletion mark of `version`, if it has one and was not destroyed.
pub(crate) fn undelete(
    conn: &Connection,
    id: &SecretId,
    version: u64,
) -> Result<Undeleted, StoreError> {
    let found = load_version(conn, id, Some(version))?;
    let Some(stored) = found.filter(|s| s.sealed.is_some()) else {
        return Ok(Undeleted::Absent);
    };
    if !stored.deleted {
        return Ok(Undeleted::WasReadable);
    }
    conn.prepare_cached(
        "UPDATE secret_versions SET deleted_at = NULL
         WHERE tenant = ?1 AND namespace = ?2 AND key = ?3 AND version = ?4",
    )
    .and_then(|mut s| s.execute((id.tenant(), id.namespace(), id.key(), sql_u64(version))))
    .map_err(err("undelete a secret"))?;
    Ok(Undeleted::Restored)
}

/// What `undelete` found.
pub(crate) enum Undeleted {
    Absent,
    WasReadable,
    Restored,
}

/// Removes the ciphertext of `version` (or of every version); returns the versions destroyed.
pub(crate) fn destroy(
    conn: &Connection,
    id: &SecretId,
    version: Option<u64>,
    now: i64,
) -> Result<Vec<u64>, StoreError> {
    conn.prepare_cached(
        "UPDATE secret_versions SET sealed = NULL, key_id = NULL, destroyed_at = ?5
         WHERE tenant = ?1 AND namespace = ?2 AND key = ?3 AND sealed IS NOT NULL
           AND (?4 IS NULL OR version = ?4)
         RETURNING version",
    )
    .and_then(|mut s| {
        s.query_map(
            (
                id.tenant(),
                id.namespace(),
                id.key(),
                version.map(sql_u64),
                now,
            ),
            |r| r.get(0).map(from_sql_u64),
        )?
        .collect::<Result<Vec<u64>, _>>()
    })
    .map(|mut v| {
        v.sort_unstable();
        v
    })
    .map_err(err("destroy a secret"))
}

/// Replaces description and tags; `false` when the secret was never set.
pub(crate) fn update_meta(
    conn: &Connection,
    id: &SecretId,
    meta: &SecretMeta,
    now: i64,
) -> Result<bool, StoreError> {
    let tags = tags_json(&meta.tags)?;
    let n = conn
        .prepare_cached(
            "UPDATE secrets SET description = ?4, tags = ?5, updated_at = ?6
             WHERE tenant = ?1 AND namespace = ?2 AND key = ?3",
        )
        .and_then(|mut s| {
            s.execute((
                id.tenant(),
                id.namespace(),
                id.key(),
                meta.description.as_deref(),
                tags,
                now,
            ))
        })
        .map_err(err("update a secret's metadata"))?;
    Ok(n > 0)
}

// Metadata never touches `sealed`: a version holds a value exactly when it holds its
// `key_id` (both are set together and cleared together by `destroy`), and reading that column
// costs nothing, where a value's column is as large as the value.
const INFO_COLUMNS: &str = "s.namespace, s.key, s.description, s.tags, s.latest_version,
     v.key_id IS NOT NULL AND v.deleted_at IS NULL, s.created_at, s.updated_at
     FROM secrets s LEFT JOIN secret_versions v
       ON v.tenant = s.tenant AND v.namespace = s.namespace AND v.key = s.key
      AND v.version = s.latest_version";

fn info_row(r: &Row<'_>) -> rusqlite::Result<SecretInfo> {
    let tags: String = r.get(3)?;
    Ok(SecretInfo {
        namespace: r.get(0)?,
        key: r.get(1)?,
        meta: SecretMeta {
            description: r.get(2)?,
            // Tags are written by this crate only; unreadable ones read as none.
            tags: serde_json::from_str(&tags).unwrap_or_default(),
        },
        version: from_sql_u64(r.get(4)?),
        readable: r.get::<_, Option<bool>>(5)?.unwrap_or(false),
        created_at: from_ms(r.get(6)?),
        updated_at: from_ms(r.get(7)?),
    })
}

pub(crate) fn info(conn: &Connection, id: &SecretId) -> Result<Option<SecretInfo>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {INFO_COLUMNS} WHERE s.tenant = ?1 AND s.namespace = ?2 AND s.key = ?3"
    ))
    .and_then(|mut s| {
        s.query_row((id.tenant(), id.namespace(), id.key()), info_row)
            .optional()
    })
    .map_err(err("read a secret's metadata"))
}

pub(crate) fn list(
    conn: &Connection,
    tenant: &str,
    namespace: &str,
) -> Result<Vec<SecretInfo>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {INFO_COLUMNS} WHERE s.tenant = ?1 AND s.namespace = ?2
           AND v.key_id IS NOT NULL AND v.deleted_at IS NULL
         ORDER BY s.key"
    ))
    .and_then(|mut s| s.query_map((tenant, namespace), info_row)?.collect())
    .map_err(err("list secrets"))
}

pub(crate) fn namespaces(conn: &Connection, tenant: &str) -> Result<Vec<String>, StoreError> {
    conn.prepare_cached(
        "SELECT DISTINCT s.namespace FROM secrets s JOIN secret_versions v
           ON v.tenant = s.tenant AND v.namespace = s.namespace AND v.key = s.key
          AND v.version = s.latest_version
         WHERE s.tenant = ?1 AND v.key_id IS NOT NULL AND v.deleted_at IS NULL
         ORDER BY s.namespace",
    )
    .and_then(|mut s| s.query_map([tenant], |r| r.get(0))?.collect())
    .map_err(err("list namespaces"))
}

pub(crate) fn versions(conn: &Connection, id: &SecretId) -> Result<Vec<VersionInfo>, StoreError> {
    conn.prepare_cached(
        "SELECT version, created_at, actor_kind, actor_id, deleted_at, destroyed_at
         FROM secret_versions WHERE tenant = ?1 AND namespace = ?2 AND key = ?3
         ORDER BY version",
    )
    .and_then(|mut s| {
        s.query_map((id.tenant(), id.namespace(), id.key()), |r| {
            Ok(VersionInfo {
                version: from_sql_u64(r.get(0)?),
                created_at: from_ms(r.get(1)?),
                created_by: crate::audit::actor_at(r, 2)?,
                deleted_at: r.get::<_, Option<i64>>(4)?.map(from_ms),
                destroyed_at: r.get::<_, Option<i64>>(5)?.map(from_ms),
                label: None,
                stages: Vec::new(),
            })
        })?
        .collect()
    })
    .map_err(err("list versions"))
}
