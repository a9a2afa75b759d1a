//! The audit trail's SQL: one row per read or change, never a value.

use crate::secrets::{Params, execute, from_sql_u64, rows, sql_u64};
use crate::time::from_ms;
use deadpool_postgres::GenericClient;
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

/// Records `action` by `actor` on `id` (none for keyring actions), in the caller's transaction
/// (or on its own, outside one).
pub(crate) async fn record(
    client: &impl GenericClient,
    now: i64,
    actor: &Actor,
    action: AuditAction,
    id: Option<&SecretId>,
    version: Option<u64>,
) -> Result<(), StoreError> {
    let sql = "INSERT INTO audit (at, actor_kind, actor_id, action, tenant, namespace, key,
                                  version)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
    let params: Params<'_> = &[
        &now,
        &actor.kind(),
        &actor.id(),
        &action.as_str(),
        &id.map(SecretId::tenant),
        &id.map(SecretId::namespace),
        &id.map(SecretId::key),
        &version.map(sql_u64),
    ];
    execute(client, "write the audit trail", sql, params).await?;
    Ok(())
}

/// Entries matching `filter`, newest first. Without a namespace, keyring actions (which have
/// no tenant) are included.
pub(crate) async fn query(
    client: &impl GenericClient,
    filter: &AuditFilter,
) -> Result<Vec<AuditEntry>, StoreError> {
    let mut sql = String::from(
        "SELECT id, at, actor_kind, actor_id, action, tenant, namespace, key, version FROM audit",
    );
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
