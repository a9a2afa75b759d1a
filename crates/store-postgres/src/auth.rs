//! The SQL of users, API tokens and the namespaces they reach (`grants`). Passwords and tokens
//! are stored hashed only. A token found is remembered by its node (`token_cache`) until any
//! node changes a user, token or grant, which every write here announces.

use crate::PgStore;
use crate::db::err;
use crate::executions::col;
use crate::time::{from_ms, ms, now_ms};
use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use kestrel_store::{AuthStore, SecretAccess, StoreError, TokenRecord, UserRecord};
use std::collections::HashMap;
use tokio_postgres::Row;

fn access(r: &Row, column: usize, doing: &'static str) -> Result<SecretAccess, StoreError> {
    let name: &str = col(r, column, doing)?;
    SecretAccess::parse(name)
        .ok_or_else(|| StoreError::backend(doing, format!("unknown secret access '{name}'")))
}

/// The namespaces granted to each of `names` (principals of `kind`), sorted.
async fn grants(
    client: &impl GenericClient,
    kind: &str,
    names: &[&str],
    doing: &'static str,
) -> Result<HashMap<String, Vec<String>>, StoreError> {
    let statement = client
        .prepare_cached(
            "SELECT principal, namespace FROM grants
             WHERE principal_kind = $1 AND principal = ANY($2) ORDER BY principal, namespace",
        )
        .await
        .map_err(err(doing))?;
    let mut found: HashMap<String, Vec<String>> = HashMap::new();
    for row in client
        .query(&statement, &[&kind, &names])
        .await
        .map_err(err(doing))?
    {
        found
            .entry(col(&row, 0, doing)?)
            .or_default()
            .push(col(&row, 1, doing)?);
    }
    Ok(found)
}

/// Replaces the namespaces granted to `name`, and announces the change.
async fn set_grants(
    client: &impl GenericClient,
    kind: &str,
    name: &str,
    namespaces: &[String],
    doing: &'static str,
) -> Result<(), StoreError> {
    let (delete, insert) = futures_util::future::try_join(
        client.prepare_cached("DELETE FROM grants WHERE principal_kind = $1 AND principal = $2"),
        client.prepare_cached(
            "INSERT INTO grants (principal_kind, principal, namespace)
             SELECT $1, $2, ns FROM UNNEST($3::TEXT[]) AS ns ON CONFLICT DO NOTHING",
        ),
    )
    .await
    .map_err(err(doing))?;
    futures_util::future::try_join(
        client.execute(&delete, &[&kind, &name]),
        client.execute(&insert, &[&kind, &name, &namespaces]),
    )
    .await
    .map_err(err(doing))?;
    announce(client, doing).await
}

/// Tells every node (this one too), when the transaction commits, that users, tokens or
/// grants changed: each forgets the tokens it found.
async fn announce(client: &impl GenericClient, doing: &'static str) -> Result<(), StoreError> {
    client
        .execute("SELECT pg_notify($1, '')", &[&crate::listen::AUTH])
        .await
        .map_err(err(doing))?;
    Ok(())
}

/// Rows read by `read` (name first), each with its grants.
async fn with_grants<T>(
    client: &impl GenericClient,
    kind: &str,
    rows: &[Row],
    doing: &'static str,
    read: impl Fn(&Row, Vec<String>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let names = rows
        .iter()
        .map(|r| col(r, 0, doing))
        .collect::<Result<Vec<&str>, _>>()?;
    let mut granted = grants(client, kind, &names, doing).await?;
    rows.iter()
        .zip(names)
        .map(|(row, name)| read(row, granted.remove(name).unwrap_or_default()))
        .collect()
}

fn user(r: &Row, namespaces: Vec<String>) -> Result<UserRecord, StoreError> {
    const DOING: &str = "read a user";
    Ok(UserRecord {
        name: col(r, 0, DOING)?,
        password_hash: col(r, 1, DOING)?,
        secrets: access(r, 2, DOING)?,
        created_at: from_ms(col(r, 3, DOING)?),
        namespaces,
    })
}

fn token(r: &Row, namespaces: Vec<String>) -> Result<TokenRecord, StoreError> {
    const DOING: &str = "read a token";
    Ok(TokenRecord {
        name: col(r, 0, DOING)?,
        secrets: access(r, 1, DOING)?,
        created_at: from_ms(col(r, 2, DOING)?),
        revoked_at: col::<Option<i64>>(r, 3, DOING)?.map(from_ms),
        namespaces,
    })
}

const USER_COLUMNS: &str = "SELECT name, password_hash, secrets, created_at FROM users";
const TOKEN_COLUMNS: &str = "SELECT name, secrets, created_at, revoked_at, token_hash FROM tokens";

impl PgStore {
    /// Commits a change to users, tokens or grants (announced inside it), and forgets this
    /// node's tokens at once: the other nodes forget theirs when the announcement reaches them.
    async fn commit_auth_change(
        &self,
        tx: deadpool_postgres::Transaction<'_>,
        doing: &'static str,
    ) -> Result<(), StoreError> {
        tx.commit().await.map_err(err(doing))?;
        self.inner.tokens.changed();
        Ok(())
    }

    async fn users_where(
        &self,
        filter: &str,
        name: Option<&str>,
    ) -> Result<Vec<UserRecord>, StoreError> {
        const DOING: &str = "read users";
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&format!("{USER_COLUMNS} {filter} ORDER BY name"))
            .await
            .map_err(err(DOING))?;
        let rows = match name {
            Some(name) => client.query(&statement, &[&name]).await,
            None => client.query(&statement, &[]).await,
        }
        .map_err(err(DOING))?;
        with_grants(&client, "user", &rows, DOING, user).await
    }

    /// Tokens matching `filter` (its one parameter `arg`, if any) with their hashes, by name.
    async fn tokens_where(
        &self,
        filter: &str,
        arg: Option<&str>,
    ) -> Result<Vec<(TokenRecord, String)>, StoreError> {
        const DOING: &str = "read tokens";
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&format!("{TOKEN_COLUMNS} {filter} ORDER BY name"))
            .await
            .map_err(err(DOING))?;
        let rows = match arg {
            Some(arg) => client.query(&statement, &[&arg]).await,
            None => client.query(&statement, &[]).await,
        }
        .map_err(err(DOING))?;
        with_grants(&client, "token", &rows, DOING, |row, namespaces| {
            Ok((token(row, namespaces)?, col(row, 4, DOING)?))
        })
        .await
    }
}

#[async_trait]
impl AuthStore for PgStore {
    async fn add_user(&self, new: &UserRecord) -> Result<(), StoreError> {
        const DOING: &str = "add a user";
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(err(DOING))?;
        let insert = tx
            .prepare_cached(
                "INSERT INTO users (name, password_hash, secrets, created_at)
                 VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING",
            )
            .await
            .map_err(err(DOING))?;
        let inserted = tx
            .execute(
                &insert,
                &[
                    &new.name,
                    &new.password_hash,
                    &new.secrets.as_str(),
                    &ms(new.created_at),
                ],
            )
            .await
            .map_err(err(DOING))?;
        if inserted == 0 {
            return Err(StoreError::Conflict(format!(
                "a user named '{}' exists already",
                new.name
            )));
        }
        set_grants(&tx, "user", &new.name, &new.namespaces, DOING).await?;
        self.commit_auth_change(tx, DOING).await
    }

    async fn remove_user(&self, name: &str) -> Result<bool, StoreError> {
        const DOING: &str = "remove a user";
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(err(DOING))?;
        set_grants(&tx, "user", name, &[], DOING).await?;
        let removed = tx
            .execute("DELETE FROM users WHERE name = $1", &[&name])
            .await
            .map_err(err(DOING))?;
        self.commit_auth_change(tx, DOING).await?;
        Ok(removed > 0)
    }

    async fn user(&self, name: &str) -> Result<Option<UserRecord>, StoreError> {
        Ok(self.users_where("WHERE name = $1", Some(name)).await?.pop())
    }

    async fn users(&self) -> Result<Vec<UserRecord>, StoreError> {
        self.users_where("", None).await
    }

    async fn add_token(&self, new: &TokenRecord, token_hash: &str) -> Result<(), StoreError> {
        const DOING: &str = "add a token";
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(err(DOING))?;
        // A revoked token's name is free again: its row goes.
        tx.execute(
            "DELETE FROM tokens WHERE name = $1 AND revoked_at IS NOT NULL",
            &[&new.name],
        )
        .await
        .map_err(err(DOING))?;
        let inserted = tx
            .execute(
                "INSERT INTO tokens (name, token_hash, secrets, created_at)
                 VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                &[
                    &new.name,
                    &token_hash,
                    &new.secrets.as_str(),
                    &ms(new.created_at),
                ],
            )
            .await
            .map_err(err(DOING))?;
        if inserted == 0 {
            return Err(StoreError::Conflict(format!(
                "a token named '{}' exists already",
                new.name
            )));
        }
        set_grants(&tx, "token", &new.name, &new.namespaces, DOING).await?;
        self.commit_auth_change(tx, DOING).await
    }

    async fn token_by_hash(&self, token_hash: &str) -> Result<Option<TokenRecord>, StoreError> {
        let cache = &self.inner.tokens;
        if let Some(token) = cache.lookup(token_hash) {
            return Ok(Some(token));
        }
        let changes_before = cache.changes();
        let found = self
            .tokens_where(
                "WHERE token_hash = $1 AND revoked_at IS NULL",
                Some(token_hash),
            )
            .await?;
        let token = found.into_iter().next().map(|(token, _)| token);
        if let Some(token) = &token {
            cache.remember(token_hash, token, changes_before);
        }
        Ok(token)
    }

    async fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        let all = self.tokens_where("", None).await?;
        Ok(all.into_iter().map(|(token, _)| token).collect())
    }

    async fn token_hashes(&self) -> Result<Vec<(TokenRecord, String)>, StoreError> {
        self.tokens_where("WHERE revoked_at IS NULL", None).await
    }

    async fn revoke_token(&self, name: &str) -> Result<bool, StoreError> {
        const DOING: &str = "revoke a token";
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(err(DOING))?;
        let revoked = tx
            .execute(
                "UPDATE tokens SET revoked_at = $2 WHERE name = $1 AND revoked_at IS NULL",
                &[&name, &now_ms()],
            )
            .await
            .map_err(err(DOING))?;
        announce(&tx, DOING).await?;
        self.commit_auth_change(tx, DOING).await?;
        Ok(revoked > 0)
    }
}
