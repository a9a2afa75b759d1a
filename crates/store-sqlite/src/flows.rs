//! The SQL of flows: one row per revision, the latest one answering.

use crate::SqliteStore;
use crate::db::err;
use crate::time::{from_ms, from_sql_u64, now_ms, sql_u64};
use async_trait::async_trait;
use kestrel_store::{FlowRecord, FlowStore, StoreError, validate_namespace, validate_tenant};
use rusqlite::{Connection, OptionalExtension as _, Row};

/// The flow's address, checked.
struct Address<'a> {
    tenant: &'a str,
    namespace: &'a str,
    id: &'a str,
}

impl<'a> Address<'a> {
    fn new(tenant: &'a str, namespace: &'a str, id: &'a str) -> Result<Self, StoreError> {
        validate_tenant(tenant)?;
        validate_namespace(namespace)?;
        Ok(Self {
            tenant,
            namespace,
            id,
        })
    }
}

const COLUMNS: &str = "tenant, namespace, id, revision, source, deleted, created_at";

fn record(r: &Row<'_>) -> rusqlite::Result<FlowRecord> {
    Ok(FlowRecord {
        tenant: r.get(0)?,
        namespace: r.get(1)?,
        id: r.get(2)?,
        revision: from_sql_u64(r.get(3)?),
        source: r.get(4)?,
        deleted: r.get(5)?,
        updated_at: from_ms(r.get(6)?),
    })
}

fn revision(
    conn: &Connection,
    at: &Address<'_>,
    revision: Option<u64>,
) -> Result<Option<FlowRecord>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM flows WHERE tenant = ?1 AND namespace = ?2 AND id = ?3
         AND (?4 IS NULL OR revision = ?4) ORDER BY revision DESC LIMIT 1"
    );
    conn.prepare_cached(&sql)
        .and_then(|mut s| {
            s.query_row(
                (at.tenant, at.namespace, at.id, revision.map(sql_u64)),
                record,
            )
            .optional()
        })
        .map_err(err("read a flow"))
}

/// The latest revision, if it is live.
fn live(conn: &Connection, at: &Address<'_>) -> Result<Option<FlowRecord>, StoreError> {
    Ok(revision(conn, at, None)?.filter(|flow| !flow.deleted))
}

fn insert(
    conn: &Connection,
    at: &Address<'_>,
    revision: u64,
    source: &str,
    deleted: bool,
) -> Result<FlowRecord, StoreError> {
    let now = now_ms();
    conn.prepare_cached(&format!(
        "INSERT INTO flows ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
    ))
    .and_then(|mut s| {
        s.execute((
            at.tenant,
            at.namespace,
            at.id,
            sql_u64(revision),
            source,
            deleted,
            now,
        ))
    })
    .map_err(err("write a flow"))?;
    Ok(FlowRecord {
        tenant: at.tenant.to_owned(),
        namespace: at.namespace.to_owned(),
        id: at.id.to_owned(),
        revision,
        source: source.to_owned(),
        deleted,
        updated_at: from_ms(now),
    })
}

#[async_trait]
impl FlowStore for SqliteStore {
    async fn create_flow(
        &self,
        tenant: &str,
        namespace: &str,
        id: &str,
        source: &str,
    ) -> Result<FlowRecord, StoreError> {
        let at = Address::new(tenant, namespace, id)?;
        self.inner.db.write(|tx| match revision(tx, &at, None)? {
            Some(flow) if !flow.deleted => Err(StoreError::Conflict(format!(
                "Flow id '{id}' already exists in namespace '{namespace}'"
            ))),
            latest => insert(tx, &at, latest.map_or(1, |f| f.revision + 1), source, false),
        })
    }

    async fn update_flow(
        &self,
        tenant: &str,
        namespace: &str,
        id: &str,
        source: &str,
    ) -> Result<Option<FlowRecord>, StoreError> {
        let at = Address::new(tenant, namespace, id)?;
        self.inner.db.write(|tx| match live(tx, &at)? {
            None => Ok(None),
            Some(flow) if flow.source == source => Ok(Some(flow)),
            Some(flow) => insert(tx, &at, flow.revision + 1, source, false).map(Some),
        })
    }

    async fn get_flow(
        &self,
        tenant: &str,
        namespace: &str,
        id: &str,
        revision_asked: Option<u64>,
    ) -> Result<Option<FlowRecord>, StoreError> {
        let at = Address::new(tenant, namespace, id)?;
        self.inner.db.read(|conn| match revision_asked {
            None => live(conn, &at),
            Some(_) => revision(conn, &at, revision_asked),
        })
    }

    async fn delete_flow(
        &self,
        tenant: &str,
        namespace: &str,
        id: &str,
    ) -> Result<bool, StoreError> {
        let at = Address::new(tenant, namespace, id)?;
        self.inner.db.write(|tx| match live(tx, &at)? {
            None => Ok(false),
            Some(flow) => insert(tx, &at, flow.revision + 1, &flow.source, true).map(|_| true),
        })
    }

    async fn list_flows(
        &self,
        tenant: &str,
        namespace: Option<&str>,
    ) -> Result<Vec<FlowRecord>, StoreError> {
        validate_tenant(tenant)?;
        if let Some(ns) = namespace {
            validate_namespace(ns)?;
        }
        let sql = format!(
            "SELECT {COLUMNS} FROM flows f WHERE tenant = ?1 AND deleted = 0
               AND revision = (SELECT max(revision) FROM flows g
                               WHERE g.tenant = f.tenant AND g.namespace = f.namespace
                                 AND g.id = f.id)
               AND (?2 IS NULL OR namespace = ?2 OR substr(namespace, 1, length(?2) + 1) = ?2 || '.')
             ORDER BY namespace, id"
        );
        self.inner.db.read(|conn| {
            conn.prepare_cached(&sql)
                .and_then(|mut s| s.query_map((tenant, namespace), record)?.collect())
                .map_err(err("list flows"))
        })
    }
}
