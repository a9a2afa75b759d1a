//! The audit trail's SQL: one row per read or change, never a value.

use crate::db::err;
use crate::time::{from_ms, from_sql_u64, sql_u64};
use kestrel_store::{Actor, AuditAction, AuditEntry, AuditFilter, SecretId, StoreError};
use rusqlite::types::{Type, Value};
use rusqlite::{Connection, Row};

fn unknown(column: usize, what: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(column, Type::Text, format!("unknown {what}").into())
}

/// The actor stored in columns `kind_col` (kind) and `kind_col + 1` (id).
pub(crate) fn actor_at(r: &Row<'_>, kind_col: usize) -> rusqlite::Result<Actor> {
    let kind: String = r.get(kind_col)?;
    Actor::from_parts(&kind, r.get(kind_col + 1)?)
        .ok_or_else(|| unknown(kind_col, format!("actor kind '{kind}'")))
}

/// Records `action` by `actor` on `id` (none for keyring actions), in the caller's transaction.
pub(crate) fn record(
    conn: &Connection,
    now: i64,
    actor: &Actor,
    action: AuditAction,
    id: Option<&SecretId>,
    version: Option<u64>,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO audit (at, actor_kind, actor_id, action, tenant, namespace, key, version)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
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
        ))
    })
    .map_err(err("write the audit trail"))?;
    Ok(())
}

/// Entries matching `filter`, newest first. Without a namespace, keyring actions (which have
/// no tenant) are included.
pub(crate) fn query(
    conn: &Connection,
    filter: &AuditFilter,
) -> Result<Vec<AuditEntry>, StoreError> {
    let mut sql = String::from(
        "SELECT id, at, actor_kind, actor_id, action, tenant, namespace, key, version FROM audit",
    );
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
            s.query_map(rusqlite::params_from_iter(params), |r| {
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
            })?
            .collect()
        })
        .map_err(err("read the audit trail"))
}
