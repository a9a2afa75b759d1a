//! The audit trail's SQL: one row per read or change, never a value, each chained to the one
//! before ([`kestrel_store::chain`]).

use crate::db::err;
use crate::time::{from_ms, from_sql_u64, sql_u64};
use kestrel_crypto::{ChainKey, Link};
use kestrel_store::chain::{self, Anchor, ChainedRow};
use kestrel_store::{Actor, AuditAction, AuditEntry, AuditFilter, SecretId, StoreError};
use rusqlite::types::{Type, Value};
use rusqlite::{Connection, OptionalExtension as _, Row};

fn unknown(column: usize, what: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(column, Type::Text, format!("unknown {what}").into())
}

/// The actor stored in columns `kind_col` (kind) and `kind_col + 1` (id).
pub(crate) fn actor_at(r: &Row<'_>, kind_col: usize) -> rusqlite::Result<Actor> {
    let kind: String = r.get(kind_col)?;
    Actor::from_parts(&kind, r.get(kind_col + 1)?)
        .ok_or_else(|| unknown(kind_col, format!("actor kind '{kind}'")))
}

/// Records `action` by `actor` on `id` (none for keyring actions), in the caller's
/// transaction, chained after the newest row under `chain` (see [`kestrel_store::chain`]): the
/// write transaction is the database's only writer, so no other row comes in between.
pub(crate) fn record(
    conn: &Connection,
    chain: &ChainKey,
    now: i64,
    actor: &Actor,
    action: AuditAction,
    id: Option<&SecretId>,
    version: Option<u64>,
) -> Result<(), StoreError> {
    const DOING: &str = "write the audit trail";
    // The newest row (through the primary key), or, when a purge removed every row, the last
    // one it removed.
    let newest_of = |sql: &str| {
        conn.prepare_cached(sql)
            .and_then(|mut s| s.query_row([], |r| Ok((r.get(0)?, r.get(1)?))).optional())
            .map_err(err(DOING))
    };
    let newest: Option<(i64, Option<Vec<u8>>)> =
        match newest_of("SELECT id, link FROM audit ORDER BY id DESC LIMIT 1")? {
            Some(row) => Some(row),
            None => newest_of("SELECT id, link FROM audit_anchor")?,
        };
    // The chain goes on after that row when it is chained; after rows from before the chain
    // (or none), it starts afresh.
    let (previous, before) = match newest {
        Some((newest_id, Some(link))) => (Some(newest_id), link_of(&link).map_err(err(DOING))?),
        _ => (None, chain::GENESIS),
    };
    conn.prepare_cached(
        "INSERT INTO audit (at, actor_kind, actor_id, action, tenant, namespace, key, version,
                            previous)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )
    .and_then(|mut s| {
        s.execute((
            now,
            actor.kind(),
            actor.id(),
            action.as_str(),
            id.map(SecretId::tenant),
            id.map(SecretId::namespace),
            id.map(SecretId::key),
            version.map(sql_u64),
            previous,
        ))
    })
    .map_err(err(DOING))?;
    let entry = AuditEntry::written(
        conn.last_insert_rowid(),
        from_ms(now),
        actor,
        action,
        id,
        version,
    );
    let link = chain.link(&before, &chain::row_bytes(&entry, previous));
    conn.prepare_cached("UPDATE audit SET link = ?1 WHERE id = ?2")
        .and_then(|mut s| s.execute((&link[..], entry.id)))
        .map_err(err(DOING))?;
    Ok(())
}

/// A stored link, which must be [`LINK_LEN`] bytes.
fn link_of(bytes: &[u8]) -> rusqlite::Result<Link> {
    Link::try_from(bytes).map_err(|_| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            Type::Blob,
            "an audit link of the wrong length".into(),
        )
    })
}

/// An entry of a row read with [`ENTRY_COLUMNS`] first.
fn entry_at(r: &Row<'_>) -> rusqlite::Result<AuditEntry> {
    let action: String = r.get(4)?;
    Ok(AuditEntry {
        id: r.get(0)?,
        at: from_ms(r.get(1)?),
        actor: actor_at(r, 2)?,
        action: AuditAction::parse(&action)
            .ok_or_else(|| unknown(4, format!("audit action '{action}'")))?,
        tenant: r.get(5)?,
        namespace: r.get(6)?,
        key: r.get(7)?,
        version: r.get::<_, Option<i64>>(8)?.map(from_sql_u64),
    })
}

/// The columns of an entry, in [`entry_at`]'s order.
const ENTRY_COLUMNS: &str = "id, at, actor_kind, actor_id, action, tenant, namespace, key, version";

/// Up to `limit` entries after row `after`, oldest first.
pub(crate) fn after(
    conn: &Connection,
    after: i64,
    limit: usize,
) -> Result<Vec<AuditEntry>, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    conn.prepare_cached(&format!(
        "SELECT {ENTRY_COLUMNS} FROM audit WHERE id > ?1 ORDER BY id LIMIT ?2"
    ))
    .and_then(|mut s| s.query_map((after, limit), entry_at)?.collect())
    .map_err(err("read the audit trail"))
}

/// Every row as the chain reads it, oldest first, and the anchor of the last purge.
pub(crate) fn chained(conn: &Connection) -> Result<(Vec<ChainedRow>, Option<Anchor>), StoreError> {
    const DOING: &str = "read the audit trail's chain";
    let rows = conn
        .prepare(&format!(
            "SELECT {ENTRY_COLUMNS}, previous, link FROM audit ORDER BY id"
        ))
        .and_then(|mut s| {
            s.query_map([], |r| {
                let link: Option<Vec<u8>> = r.get(10)?;
                Ok(ChainedRow {
                    entry: entry_at(r)?,
                    previous: r.get(9)?,
                    link: link.as_deref().map(link_of).transpose()?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(err(DOING))?;
    let anchor = conn
        .query_row("SELECT id, link, seal FROM audit_anchor", [], |r| {
            let link: Vec<u8> = r.get(1)?;
            let seal: Vec<u8> = r.get(2)?;
            Ok(Anchor {
                id: r.get(0)?,
                link: link_of(&link)?,
                seal: link_of(&seal)?,
            })
        })
        .optional()
        .map_err(err(DOING))?;
    Ok((rows, anchor))
}

/// Removes the rows written before `before` and keeps, sealed, where the rest of the chain
/// starts; the number removed.
pub(crate) fn purge(conn: &Connection, chain: &ChainKey, before: i64) -> Result<u64, StoreError> {
    const DOING: &str = "purge the old audit trail";
    let last_purged: Option<(i64, Option<Vec<u8>>)> = conn
        .query_row(
            "SELECT id, link FROM audit WHERE at < ?1 ORDER BY id DESC LIMIT 1",
            [before],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(err(DOING))?;
    if let Some((id, Some(link))) = &last_purged {
        let link = link_of(link).map_err(err(DOING))?;
        let seal = chain::anchor_link(chain, *id, &link);
        conn.execute(
            "INSERT INTO audit_anchor (one, id, link, seal) VALUES (1, ?1, ?2, ?3)
             ON CONFLICT (one) DO UPDATE SET id = excluded.id, link = excluded.link,
                                             seal = excluded.seal",
            (id, &link[..], &seal[..]),
        )
        .map_err(err(DOING))?;
    }
    let removed = conn
        .execute("DELETE FROM audit WHERE at < ?1", [before])
        .map_err(err(DOING))?;
    Ok(removed as u64)
}

/// Entries matching `filter`, newest first. Without a namespace, keyring actions (which have
/// no tenant) are included.
pub(crate) fn query(
    conn: &Connection,
    filter: &AuditFilter,
) -> Result<Vec<AuditEntry>, StoreError> {
    let mut sql = format!("SELECT {ENTRY_COLUMNS} FROM audit");
    let mut params: Vec<Value> = vec![Value::Text(filter.tenant.clone())];
    match &filter.namespace {
        Some(ns) => {
            sql.push_str(" WHERE tenant = ?1 AND namespace = ?2");
            params.push(Value::Text(ns.clone()));
        }
        None => sql.push_str(" WHERE (tenant = ?1 OR tenant IS NULL)"),
    }
    if let Some(key) = &filter.key {
        params.push(Value::Text(key.clone()));
        sql.push_str(&format!(" AND key = ?{}", params.len()));
    }
    params.push(Value::Integer(
        i64::try_from(filter.limit).unwrap_or(i64::MAX),
    ));
    sql.push_str(&format!(" ORDER BY id DESC LIMIT ?{}", params.len()));
    conn.prepare_cached(&sql)
        .and_then(|mut s| {
            s.query_map(rusqlite::params_from_iter(params), entry_at)?
                .collect()
        })
        .map_err(err("read the audit trail"))
}
