//! The SQL of flows: one row per revision, the latest one answering. Writers of one flow take
//! a transaction-scoped advisory lock on its address, so two nodes never both save the same
//! revision number.

use crate::PgStore;
use crate::db::err;
use crate::time::{from_ms, now_ms};
use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use kestrel_store::{FlowRecord, FlowStore, StoreError, validate_namespace, validate_tenant};
use tokio_postgres::Row;

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

fn record(r: &Row) -> FlowRecord {
    FlowRecord {
        tenant: r.get(0),
        namespace: r.get(1),
        id: r.get(2),
        revision: u64::try_from(r.get::<_, i64>(3)).unwrap_or_default(),
        source: r.get(4),
        deleted: r.get(5),
        updated_at: from_ms(r.get(6)),
    }
}

fn sql_revision(revision: u64) -> i64 {
    i64::try_from(revision).unwrap_or(i64::MAX)
}

async fn revision(
    client: &impl GenericClient,
    at: &Address<'_>,
    revision: Option<u64>,
) -> Result<Option<FlowRecord>, StoreError> {
    let statement = client
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM flows WHERE tenant = $1 AND namespace = $2 AND id = $3
             AND ($4::BIGINT IS NULL OR revision = $4) ORDER BY revision DESC LIMIT 1"
        ))
        .await
        .map_err(err("read a flow"))?;
    let row = client
        .query_opt(
            &statement,
            &[
                &at.tenant,
                &at.namespace,
                &at.id,
                &revision.map(sql_revision),
            ],
        )
        .await
        .map_err(err("read a flow"))?;
    Ok(row.as_ref().map(record))
}

/// The latest revision, if it is live.
async fn live(
    client: &impl GenericClient,
    at: &Address<'_>,
) -> Result<Option<FlowRecord>, StoreError> {
    Ok(revision(client, at, None)
        .await?
        .filter(|flow| !flow.deleted))
}

/// Serializes the writers of one flow until the transaction ends.
async fn lock(client: &impl GenericClient, at: &Address<'_>) -> Result<(), StoreError> {
    let statement = client
        .prepare_cached("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .await
        .map_err(err("lock a flow"))?;
    // Tenants and namespaces hold no '/', so the id, last, keeps the key unambiguous.
    let address = format!("flow/{}/{}/{}", at.tenant, at.namespace, at.id);
    client
        .execute(&statement, &[&address])
        .await
        .map_err(err("lock a flow"))?;
    Ok(())
}

async fn insert(
    client: &impl GenericClient,
    at: &Address<'_>,
    revision: u64,
    source: &str,
    deleted: bool,
) -> Result<FlowRecord, StoreError> {
    let now = now_ms();
    let statement = client
        .prepare_cached(&format!(
            "INSERT INTO flows ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        ))
        .await
        .map_err(err("write a flow"))?;
    client
        .execute(
            &statement,
            &[
                &at.tenant,
                &at.namespace,
                &at.id,
                &sql_revision(revision),
                &source,
                &deleted,
                &now,
            ],
        )
        .await
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

/// What a write does once it holds the flow's lock and has read its latest revision.
enum Write {
    /// Saves a revision with this source, deleted or not.
    Save { source: String, deleted: bool },
    /// Saves nothing; answers this.
    Keep(Option<FlowRecord>),
}

impl PgStore {
    /// Runs one write of a flow in a transaction: `decide` sees the latest revision (deleted
    /// or not) and says what to save.
    async fn write_flow(
        &self,
        at: &Address<'_>,
        decide: impl FnOnce(Option<&FlowRecord>) -> Result<Write, StoreError>,
    ) -> Result<Option<FlowRecord>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(err("write a flow"))?;
        lock(&tx, at).await?;
        let latest = revision(&tx, at, None).await?;
        let written = match decide(latest.as_ref())? {
            Write::Keep(answer) => answer,
            Write::Save { source, deleted } => {
                let next = latest.map_or(1, |flow| flow.revision + 1);
                Some(insert(&tx, at, next, &source, deleted).await?)
            }
        };
        tx.commit().await.map_err(err("write a flow"))?;
        Ok(written)
    }
}

#[async_trait]
impl FlowStore for PgStore {
    async fn create_flow(
        &self,
        tenant: &str,
        namespace: &str,
        id: &str,
        source: &str,
    ) -> Result<FlowRecord, StoreError> {
        let at = Address::new(tenant, namespace, id)?;
        let created = self
            .write_flow(&at, |latest| match latest {
                Some(flow) if !flow.deleted => Err(StoreError::Conflict(format!(
                    "Flow id '{id}' already exists in namespace '{namespace}'"
                ))),
                _ => Ok(Write::Save {
                    source: source.to_owned(),
                    deleted: false,
                }),
            })
            .await?;
        created.ok_or_else(|| StoreError::backend("create a flow", "no revision was saved"))
    }

    async fn update_flow(
        &self,
        tenant: &str,
        namespace: &str,
        id: &str,
        source: &str,
    ) -> Result<Option<FlowRecord>, StoreError> {
        let at = Address::new(tenant, namespace, id)?;
        self.write_flow(&at, |latest| {
            Ok(match latest.filter(|flow| !flow.deleted) {
                None => Write::Keep(None),
                Some(flow) if flow.source == source => Write::Keep(Some(flow.clone())),
                Some(_) => Write::Save {
                    source: source.to_owned(),
                    deleted: false,
                },
            })
        })
        .await
    }

    async fn get_flow(
        &self,
        tenant: &str,
        namespace: &str,
        id: &str,
        revision_asked: Option<u64>,
    ) -> Result<Option<FlowRecord>, StoreError> {
        let at = Address::new(tenant, namespace, id)?;
        let client = self.client().await?;
        match revision_asked {
            None => live(&client, &at).await,
            Some(_) => revision(&client, &at, revision_asked).await,
        }
    }

    async fn delete_flow(
        &self,
        tenant: &str,
        namespace: &str,
        id: &str,
    ) -> Result<bool, StoreError> {
        let at = Address::new(tenant, namespace, id)?;
        let deleted = self
            .write_flow(&at, |latest| {
                Ok(match latest.filter(|flow| !flow.deleted) {
                    None => Write::Keep(None),
                    Some(flow) => Write::Save {
                        source: flow.source.clone(),
                        deleted: true,
                    },
                })
            })
            .await?;
        Ok(deleted.is_some())
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
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM (
                     SELECT DISTINCT ON (namespace, id) {COLUMNS} FROM flows
                     WHERE tenant = $1
                       AND ($2::TEXT IS NULL OR namespace = $2
                            OR starts_with(namespace, $2 || '.'))
                     ORDER BY namespace, id, revision DESC
                 ) latest WHERE NOT deleted ORDER BY namespace, id"
            ))
            .await
            .map_err(err("list flows"))?;
        let rows = client
            .query(&statement, &[&tenant, &namespace])
            .await
            .map_err(err("list flows"))?;
        Ok(rows.iter().map(record).collect())
    }
}
