//! The audit trail's SQL: one row per read or change, never a value, each chained to the one
//! before ([`kestrel_store::chain`]).

use crate::secrets::{Params, execute, from_sql_u64, rows, sql_u64};
use crate::time::from_ms;
use deadpool_postgres::GenericClient;
use kestrel_crypto::{ChainKey, Link};
use kestrel_store::chain::{self, Anchor, ChainedRow};
use kestrel_store::{Actor, AuditAction, AuditEntry, AuditFilter, SecretId, StoreError};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

fn unknown(what: String) -> StoreError {
    StoreError::backend("read the audit trail", format!("unknown {what}"))
}

/// The actor stored in columns `kind_col` (kind) and `kind_col + 1` (id).
pub(crate) fn actor_at(row: &Row, kind_col: usize) -> Result<Actor, StoreError> {
    let kind: String = row.get(kind_col);
    Actor::from_parts(&kind, row.get(kind_col + 1))
        .ok_or_else(|| unknown(format!("actor kind '{kind}'")))
}

/// Every writer of the audit trail takes this transaction lock first, so that each row is
/// chained after the one committed before it, across nodes.
const CHAIN_LOCK: i64 = 0x6b65_7374_7265_6c01;

/// Records `action` by `actor` on `id` (none for keyring actions) in the caller's transaction,
/// chained after the newest row under `chain` (see [`kestrel_store::chain`]). Called last in
/// its transaction: the chain's lock is held until the commit.
pub(crate) async fn record(
    client: &impl GenericClient,
    chain: &ChainKey,
    now: i64,
    actor: &Actor,
    action: AuditAction,
    id: Option<&SecretId>,
    version: Option<u64>,
) -> Result<(), StoreError> {
    const DOING: &str = "write the audit trail";
    execute(
        client,
        DOING,
        "SELECT pg_advisory_xact_lock($1)",
        &[&CHAIN_LOCK],
    )
    .await?;
    // The newest row (through the primary key's index: a plan that scans the table would be
    // paid by every audited read), or, when a purge removed every row, the last one it removed.
    let mut newest = rows(
        client,
        DOING,
        "SELECT id, link FROM audit ORDER BY id DESC LIMIT 1",
        &[],
    )
    .await?;
    if newest.is_empty() {
        newest = rows(client, DOING, "SELECT id, link FROM audit_anchor", &[]).await?;
    }
    // The chain goes on after that row when it is chained; after rows from before the chain
    // (or none), it starts afresh.
    let (previous, before) = match newest.first() {
        Some(row) => match row.get::<_, Option<Vec<u8>>>(1) {
            Some(link) => (Some(row.get::<_, i64>(0)), link_of(&link)?),
            None => (None, chain::GENESIS),
        },
        None => (None, chain::GENESIS),
    };
    let sql = "INSERT INTO audit (at, actor_kind, actor_id, action, tenant, namespace, key,
                                  version, previous)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id";
    let params: Params<'_> = &[
        &now,
        &actor.kind(),
        &actor.id(),
        &action.as_str(),
        &id.map(SecretId::tenant),
        &id.map(SecretId::namespace),
        &id.map(SecretId::key),
        &version.map(sql_u64),
        &previous,
    ];
    let inserted = rows(client, DOING, sql, params).await?;
    let row_id: i64 = inserted
        .first()
        .map(|row| row.get(0))
        .ok_or_else(|| StoreError::backend(DOING, "the new row's id was not returned"))?;
    let entry = AuditEntry::written(row_id, from_ms(now), actor, action, id, version);
    let link = chain.link(&before, &chain::row_bytes(&entry, previous));
    let update = "UPDATE audit SET link = $1 WHERE id = $2";
    execute(client, DOING, update, &[&&link[..], &row_id]).await?;
    Ok(())
}

/// A stored link, which must be [`kestrel_crypto::LINK_LEN`] bytes.
fn link_of(bytes: &[u8]) -> Result<Link, StoreError> {
    Link::try_from(bytes).map_err(|_| {
        StoreError::backend("read the audit trail", "an audit link of the wrong length")
    })
}

/// Up to `limit` entries after row `after`, oldest first.
pub(crate) async fn after(
    client: &impl GenericClient,
    after: i64,
    limit: usize,
) -> Result<Vec<AuditEntry>, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let sql = format!("SELECT {ENTRY_COLUMNS} FROM audit WHERE id > $1 ORDER BY id LIMIT $2");
    let found = rows(client, "read the audit trail", &sql, &[&after, &limit]).await?;
    found.iter().map(entry).collect()
}

/// Every row as the chain reads it, oldest first, and the anchor of the last purge.
pub(crate) async fn chained(
    client: &impl GenericClient,
) -> Result<(Vec<ChainedRow>, Option<Anchor>), StoreError> {
    const DOING: &str = "read the audit trail's chain";
    let sql = format!("SELECT {ENTRY_COLUMNS}, previous, link FROM audit ORDER BY id");
    let found = rows(client, DOING, &sql, &[]).await?;
    let mut chained = Vec::with_capacity(found.len());
    for row in &found {
        let link: Option<Vec<u8>> = row.get(10);
        chained.push(ChainedRow {
            entry: entry(row)?,
            previous: row.get(9),
            link: link.as_deref().map(link_of).transpose()?,
        });
    }
    let anchor = rows(
        client,
        DOING,
        "SELECT id, link, seal FROM audit_anchor",
        &[],
    )
    .await?;
    let anchor = match anchor.first() {
        Some(row) => Some(Anchor {
            id: row.get(0),
            link: link_of(&row.get::<_, Vec<u8>>(1))?,
            seal: link_of(&row.get::<_, Vec<u8>>(2))?,
        }),
        None => None,
    };
    Ok((chained, anchor))
}

/// Removes the rows written before `before` and keeps, sealed, where the rest of the chain
/// starts; the number removed. In the caller's transaction, under the chain's lock.
pub(crate) async fn purge(
    client: &impl GenericClient,
    chain: &ChainKey,
    before: i64,
) -> Result<u64, StoreError> {
    const DOING: &str = "purge the old audit trail";
    execute(
        client,
        DOING,
        "SELECT pg_advisory_xact_lock($1)",
        &[&CHAIN_LOCK],
    )
    .await?;
    let last = rows(
        client,
        DOING,
        "SELECT id, link FROM audit WHERE at < $1 ORDER BY id DESC LIMIT 1",
        &[&before],
    )
    .await?;
    if let Some(row) = last.first()
        && let Some(link) = row.get::<_, Option<Vec<u8>>>(1)
    {
        let id: i64 = row.get(0);
        let link = link_of(&link)?;
        let seal = chain::anchor_link(chain, id, &link);
        let upsert = "INSERT INTO audit_anchor (one, id, link, seal) VALUES (1, $1, $2, $3)
                      ON CONFLICT (one) DO UPDATE SET id = excluded.id, link = excluded.link,
                                                      seal = excluded.seal";
        execute(client, DOING, upsert, &[&id, &&link[..], &&seal[..]]).await?;
    }
    execute(client, DOING, "DELETE FROM audit WHERE at < $1", &[&before]).await
}

/// The columns of an entry, in [`entry`]'s order.
const ENTRY_COLUMNS: &str = "id, at, actor_kind, actor_id, action, tenant, namespace, key, version";

/// Entries matching `filter`, newest first. Without a namespace, keyring actions (which have
/// no tenant) are included.
pub(crate) async fn query(
    client: &impl GenericClient,
    filter: &AuditFilter,
) -> Result<Vec<AuditEntry>, StoreError> {
    let mut sql = format!("SELECT {ENTRY_COLUMNS} FROM audit");
    let limit = i64::try_from(filter.limit).unwrap_or(i64::MAX);
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![&filter.tenant];
    match &filter.namespace {
        Some(ns) => {
            sql.push_str(" WHERE tenant = $1 AND namespace = $2");
            params.push(ns);
        }
        None => sql.push_str(" WHERE (tenant = $1 OR tenant IS NULL)"),
    }
    if let Some(key) = &filter.key {
        params.push(key);
        sql.push_str(&format!(" AND key = ${}", params.len()));
    }
    params.push(&limit);
    sql.push_str(&format!(" ORDER BY id DESC LIMIT ${}", params.len()));
    let rows = rows(client, "read the audit trail", &sql, &params).await?;
    rows.iter().map(entry).collect()
}

fn entry(row: &Row) -> Result<AuditEntry, StoreError> {
    let action: String = row.get(4);
    Ok(AuditEntry {
        id: row.get(0),
        at: from_ms(row.get(1)),
        actor: actor_at(row, 2)?,
        action: AuditAction::parse(&action)
            .ok_or_else(|| unknown(format!("audit action '{action}'")))?,
        tenant: row.get(5),
        namespace: row.get(6),
        key: row.get(7),
        version: row.get::<_, Option<i64>>(8).map(from_sql_u64),
    })
}
