//! The SQL of users, API tokens and the namespaces they reach (`grants`).

use crate::SqliteStore;
use crate::db::err;
use crate::time::from_ms;
use async_trait::async_trait;
use kestrel_store::{AuthStore, SecretAccess, StoreError, TokenRecord, UserRecord};
use rusqlite::types::Type;
use rusqlite::{Connection, OptionalExtension as _, Row};

fn access(r: &Row<'_>, column: usize) -> rusqlite::Result<SecretAccess> {
    let name: String = r.get(column)?;
    SecretAccess::parse(&name).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            column,
            Type::Text,
            format!("unknown secret access '{name}'").into(),
        )
    })
}

fn grants(conn: &Connection, kind: &str, name: &str) -> rusqlite::Result<Vec<String>> {
    conn.prepare_cached(
        "SELECT namespace FROM grants WHERE principal_kind = ?1 AND principal = ?2
         ORDER BY namespace",
    )?
    .query_map((kind, name), |r| r.get(0))?
    .collect()
}

fn set_grants(
    conn: &Connection,
    kind: &str,
    name: &str,
    namespaces: &[String],
) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM grants WHERE principal_kind = ?1 AND principal = ?2")?
        .execute((kind, name))?;
    let mut insert = conn.prepare_cached(
        "INSERT OR IGNORE INTO grants (principal_kind, principal, namespace) VALUES (?1, ?2, ?3)",
    )?;
    for namespace in namespaces {
        insert.execute((kind, name, namespace))?;
    }
    Ok(())
}

fn user(conn: &Connection, r: &Row<'_>) -> rusqlite::Result<UserRecord> {
    let name: String = r.get(0)?;
    Ok(UserRecord {
        namespaces: grants(conn, "user", &name)?,
        password_hash: r.get(1)?,
        secrets: access(r, 2)?,
        created_at: from_ms(r.get(3)?),
        name,
    })
}

fn token(conn: &Connection, r: &Row<'_>) -> rusqlite::Result<TokenRecord> {
    let name: String = r.get(0)?;
    Ok(TokenRecord {
        namespaces: grants(conn, "token", &name)?,
        secrets: access(r, 1)?,
        created_at: from_ms(r.get(2)?),
        revoked_at: r.get::<_, Option<i64>>(3)?.map(from_ms),
        name,
    })
}

const USER_COLUMNS: &str = "SELECT name, password_hash, secrets, created_at FROM users";
const TOKEN_COLUMNS: &str = "SELECT name, secrets, created_at, revoked_at FROM tokens";

#[async_trait]
impl AuthStore for SqliteStore {
    async fn add_user(&self, new: &UserRecord) -> Result<(), StoreError> {
        self.inner.db.write(|tx| {
            let inserted = tx
                .prepare_cached(
                    "INSERT INTO users (name, password_hash, secrets, created_at)
                     VALUES (?1, ?2, ?3, ?4) ON CONFLICT (name) DO NOTHING",
                )
                .and_then(|mut s| {
                    s.execute((
                        &new.name,
                        &new.password_hash,
                        new.secrets.as_str(),
                        new.created_at.timestamp_millis(),
                    ))
                })
                .map_err(err("add a user"))?;
            if inserted == 0 {
                return Err(StoreError::Conflict(format!(
                    "a user named '{}' exists already",
                    new.name
                )));
            }
            set_grants(tx, "user", &new.name, &new.namespaces).map_err(err("add a user"))
        })
    }

    async fn remove_user(&self, name: &str) -> Result<bool, StoreError> {
        self.inner.db.write(|tx| {
            set_grants(tx, "user", name, &[]).map_err(err("remove a user"))?;
            let removed = tx
                .execute("DELETE FROM users WHERE name = ?1", [name])
                .map_err(err("remove a user"))?;
            Ok(removed > 0)
        })
    }

    async fn user(&self, name: &str) -> Result<Option<UserRecord>, StoreError> {
        self.inner.db.read(|conn| {
            conn.prepare_cached(&format!("{USER_COLUMNS} WHERE name = ?1"))
                .and_then(|mut s| s.query_row([name], |r| user(conn, r)).optional())
                .map_err(err("read a user"))
        })
    }

    async fn users(&self) -> Result<Vec<UserRecord>, StoreError> {
        self.inner.db.read(|conn| {
            conn.prepare_cached(&format!("{USER_COLUMNS} ORDER BY name"))
                .and_then(|mut s| s.query_map([], |r| user(conn, r))?.collect())
                .map_err(err("list users"))
        })
    }

    async fn add_token(&self, new: &TokenRecord, token_hash: &str) -> Result<(), StoreError> {
        self.inner.db.write(|tx| {
            // A revoked token's name is free again: its row goes.
            tx.execute(
                "DELETE FROM tokens WHERE name = ?1 AND revoked_at IS NOT NULL",
                [&new.name],
            )
            .map_err(err("add a token"))?;
            let inserted = tx
                .prepare_cached(
                    "INSERT INTO tokens (name, token_hash, secrets, created_at)
                     VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
                )
                .and_then(|mut s| {
                    s.execute((
                        &new.name,
                        token_hash,
                        new.secrets.as_str(),
                        new.created_at.timestamp_millis(),
                    ))
                })
                .map_err(err("add a token"))?;
            if inserted == 0 {
                return Err(StoreError::Conflict(format!(
                    "a token named '{}' exists already",
                    new.name
                )));
            }
            set_grants(tx, "token", &new.name, &new.namespaces).map_err(err("add a token"))
        })
    }

    async fn token_by_hash(&self, token_hash: &str) -> Result<Option<TokenRecord>, StoreError> {
        self.inner.db.read(|conn| {
            conn.prepare_cached(&format!(
                "{TOKEN_COLUMNS} WHERE token_hash = ?1 AND revoked_at IS NULL"
            ))
            .and_then(|mut s| s.query_row([token_hash], |r| token(conn, r)).optional())
            .map_err(err("find a token"))
        })
    }

    async fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        self.inner.db.read(|conn| {
            conn.prepare_cached(&format!("{TOKEN_COLUMNS} ORDER BY name"))
                .and_then(|mut s| s.query_map([], |r| token(conn, r))?.collect())
                .map_err(err("list tokens"))
        })
    }

    async fn token_hashes(&self) -> Result<Vec<(TokenRecord, String)>, StoreError> {
        self.inner.db.read(|conn| {
            conn.prepare_cached(
                "SELECT name, secrets, created_at, revoked_at, token_hash FROM tokens
                 WHERE revoked_at IS NULL ORDER BY name",
            )
            .and_then(|mut s| {
                s.query_map([], |r| Ok((token(conn, r)?, r.get(4)?)))?
                    .collect()
            })
            .map_err(err("list tokens"))
        })
    }

    async fn revoke_token(&self, name: &str) -> Result<bool, StoreError> {
        self.inner.db.write(|tx| {
            let revoked = tx
                .execute(
                    "UPDATE tokens SET revoked_at = ?2 WHERE name = ?1 AND revoked_at IS NULL",
                    (name, crate::time::now_ms()),
                )
                .map_err(err("revoke a token"))?;
            Ok(revoked > 0)
        })
    }
}
