//! The SQL of executions, task runs and logs. What is written is masked; an execution's raw
//! inputs alone are sealed, and only until it ends (or, for one that can be restarted, until
//! it is purged).

use crate::SqliteStore;
use crate::db::err;
use crate::time::{from_ms, from_sql_u64, sql_u64};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use kestrel_crypto::{Aad, Sealed};
use kestrel_secrets::SecretValue;
use kestrel_store::{
    ExecutionQuery, ExecutionRecord, ExecutionStore, LogRecord, PurgedExecution, Retention,
    StateChange, StoreError, TaskRunRecord, keeps_inputs,
};
use rusqlite::types::Value as Sql;
use rusqlite::{Connection, OptionalExtension as _, Row, params_from_iter};
use serde_json::Value;
use zeroize::Zeroizing;

/// What an execution's sealed inputs are bound to.
fn inputs_aad(tenant: &str, id: &str) -> Aad {
    Aad::new("kestrel-execution-inputs-v1")
        .with_str(tenant)
        .with_str(id)
}

fn json_text(value: &Value) -> String {
    value.to_string()
}

fn parse_json(r: &Row<'_>, column: usize) -> rusqlite::Result<Value> {
    let text: Option<String> = r.get(column)?;
    text.map_or(Ok(Value::Null), |text| {
        serde_json::from_str(&text).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(column, rusqlite::types::Type::Text, e.into())
        })
    })
}

pub(crate) const EXECUTION_COLUMNS: &str = "id, tenant, namespace, flow_id, flow_revision, state, \
     inputs_masked, record, created_at, ended_at";

pub(crate) fn execution_row(r: &Row<'_>) -> rusqlite::Result<ExecutionRecord> {
    let detail = parse_json(r, 7)?;
    Ok(ExecutionRecord {
        id: r.get(0)?,
        tenant: r.get(1)?,
        namespace: r.get(2)?,
        flow_id: r.get(3)?,
        flow_revision: from_sql_u64(r.get(4)?),
        state: r.get(5)?,
        inputs: parse_json(r, 6)?,
        histories: StateChange::list_in(&detail),
        outputs: detail["outputs"].clone(),
        labels: detail["labels"].clone(),
        task_runs: Vec::new(),
        created_at: from_ms(r.get(8)?),
        ended_at: r.get::<_, Option<i64>>(9)?.map(from_ms),
    })
}

fn task_run_row(r: &Row<'_>) -> rusqlite::Result<TaskRunRecord> {
    Ok(TaskRunRecord {
        id: r.get(0)?,
        attempt: u32::try_from(r.get::<_, i64>(1)?).unwrap_or_default(),
        task_id: r.get(2)?,
        state: r.get(3)?,
        outputs: parse_json(r, 4)?,
        error: r.get(5)?,
        started_at: from_ms(r.get(6)?),
        ended_at: r.get::<_, Option<i64>>(7)?.map(from_ms),
        detail: parse_json(r, 8)?,
    })
}

pub(crate) fn with_task_runs(
    conn: &Connection,
    mut record: ExecutionRecord,
) -> rusqlite::Result<ExecutionRecord> {
    record.task_runs = conn
        .prepare_cached(
            "SELECT id, attempt, task_id, state, outputs_masked, error, started_at, ended_at,
                    record
             FROM task_runs WHERE execution_id = ?1 ORDER BY position",
        )?
        .query_map([&record.id], task_run_row)?
        .collect::<rusqlite::Result<_>>()?;
    Ok(record)
}

fn ms(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

fn insert_execution(
    conn: &Connection,
    record: &ExecutionRecord,
    sealed: Option<&Sealed>,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO executions (id, tenant, namespace, flow_id, flow_revision, state,
                                 inputs_masked, record, inputs_key, inputs_sealed, created_at,
                                 updated_at, ended_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11, ?12)",
    )?
    .execute((
        &record.id,
        &record.tenant,
        &record.namespace,
        &record.flow_id,
        sql_u64(record.flow_revision),
        &record.state,
        json_text(&record.inputs),
        record.detail_text(),
        sealed.map(|s| s.key_id),
        sealed.map(|s| &s.bytes),
        ms(record.created_at),
        record.ended_at.map(ms),
    ))?;
    Ok(())
}

/// Writes the state, histories, outputs and labels of a stored execution; rows changed.
pub(crate) fn update_execution(
    conn: &Connection,
    record: &ExecutionRecord,
    from: Option<&str>,
) -> rusqlite::Result<usize> {
    conn.prepare_cached(
        "UPDATE executions SET state = ?3, record = ?4, updated_at = ?5, ended_at = ?6,
                               inputs_masked = ?8
         WHERE tenant = ?1 AND id = ?2 AND (?7 IS NULL OR state = ?7)",
    )?
    .execute((
        &record.tenant,
        &record.id,
        &record.state,
        record.detail_text(),
        crate::time::now_ms(),
        record.ended_at.map(ms),
        from,
        // Masked again as the execution registers more (a secret a STRING input holds).
        json_text(&record.inputs),
    ))
}

/// Writes an execution's end: state, task runs, logs appended; its sealed inputs dropped
/// unless the end [`keeps_inputs`].
pub(crate) fn write_end(
    tx: &Connection,
    record: &ExecutionRecord,
    logs: &[LogRecord],
) -> rusqlite::Result<()> {
    if update_execution(tx, record, None)? == 0 {
        insert_execution(tx, record, None)?;
    }
    if !keeps_inputs(&record.state) {
        tx.prepare_cached(
            "UPDATE executions SET inputs_key = NULL, inputs_sealed = NULL WHERE id = ?1",
        )?
        .execute([&record.id])?;
    }
    write_task_runs(tx, record)?;
    append_logs(tx, &record.id, logs)
}

impl SqliteStore {
    /// Inserts `record` with `inputs` sealed under the current data key.
    pub(crate) fn insert_sealed(
        &self,
        tx: &Connection,
        record: &ExecutionRecord,
        inputs: Option<&SecretValue>,
    ) -> Result<(), StoreError> {
        let sealed = match inputs {
            Some(inputs) => {
                let ring = self.inner.keys.current(tx)?;
                let aad = inputs_aad(&record.tenant, &record.id);
                let sealed = ring
                    .seal(&aad, inputs.expose_secret().as_bytes())
                    .map_err(StoreError::Crypto)?;
                Some(sealed)
            }
            None => None,
        };
        insert_execution(tx, record, sealed.as_ref()).map_err(err("write an execution"))?;
        write_task_runs(tx, record).map_err(err("write an execution"))
    }
}

pub(crate) fn write_task_runs(conn: &Connection, record: &ExecutionRecord) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM task_runs WHERE execution_id = ?1")?
        .execute([&record.id])?;
    let mut insert = conn.prepare_cached(
        "INSERT INTO task_runs (id, attempt, execution_id, task_id, state, outputs_masked,
                                error, started_at, ended_at, record, position)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?;
    for (position, run) in record.task_runs.iter().enumerate() {
        insert.execute((
            &run.id,
            run.attempt,
            &record.id,
            &run.task_id,
            &run.state,
            json_text(&run.outputs),
            &run.error,
            ms(run.started_at),
            run.ended_at.map(ms),
            json_text(&run.detail),
            i64::try_from(position).unwrap_or(i64::MAX),
        ))?;
    }
    Ok(())
}

fn append_logs(conn: &Connection, id: &str, logs: &[LogRecord]) -> rusqlite::Result<()> {
    let mut insert = conn.prepare_cached(
        "INSERT INTO logs (execution_id, task_id, task_run_id, attempt, at, level, message)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for log in logs {
        insert.execute((
            id,
            &log.task_id,
            &log.task_run_id,
            log.attempt,
            ms(log.at),
            &log.level,
            &log.message,
        ))?;
    }
    Ok(())
}

/// `column = ns OR column starts with ns.`, for each of `namespaces`, as SQL and parameters.
fn namespace_clause(namespaces: &[String], params: &mut Vec<Sql>) -> String {
    let alternatives: Vec<String> = namespaces
        .iter()
        .map(|ns| {
            params.push(Sql::Text(ns.clone()));
            let n = params.len();
            format!("namespace = ?{n} OR substr(namespace, 1, length(?{n}) + 1) = ?{n} || '.'")
        })
        .collect();
    format!("({})", alternatives.join(" OR "))
}

/// The WHERE clause of a search and its parameters.
fn search_filter(query: &ExecutionQuery) -> (String, Vec<Sql>) {
    let mut params = vec![Sql::Text(query.tenant.clone())];
    let mut clauses = vec!["tenant = ?1".to_owned()];
    if let Some(ns) = &query.namespace {
        clauses.push(namespace_clause(std::slice::from_ref(ns), &mut params));
    }
    if !query.within.is_empty() {
        clauses.push(namespace_clause(&query.within, &mut params));
    }
    for (column, value) in [("flow_id", &query.flow_id), ("state", &query.state)] {
        if let Some(value) = value {
            params.push(Sql::Text(value.clone()));
            clauses.push(format!("{column} = ?{}", params.len()));
        }
    }
    for (bound, at) in [(">=", query.created_after), ("<", query.created_before)] {
        if let Some(at) = at {
            params.push(Sql::Integer(at.timestamp_millis()));
            clauses.push(format!("created_at {bound} ?{}", params.len()));
        }
    }
    for (key, value) in &query.labels {
        params.push(Sql::Text(key.clone()));
        params.push(Sql::Text(value.clone()));
        let n = params.len();
        clauses.push(format!(
            "EXISTS (SELECT 1 FROM json_each(record, '$.labels') \
             WHERE json_extract(value, '$.key') = ?{} AND json_extract(value, '$.value') = ?{n})",
            n - 1
        ));
    }
    (clauses.join(" AND "), params)
}

fn search(
    conn: &Connection,
    query: &ExecutionQuery,
) -> rusqlite::Result<(Vec<ExecutionRecord>, u64)> {
    let (filter, mut params) = search_filter(query);
    let total: i64 = conn
        .prepare_cached(&format!("SELECT count(*) FROM executions WHERE {filter}"))?
        .query_row(params_from_iter(params.iter()), |r| r.get(0))?;
    let size = i64::from(query.size.max(1));
    params.push(Sql::Integer(size));
    params.push(Sql::Integer(i64::from(query.page.max(1) - 1) * size));
    let n = params.len();
    let sql = format!(
        "SELECT {EXECUTION_COLUMNS} FROM executions WHERE {filter}
         ORDER BY created_at DESC, id DESC LIMIT ?{} OFFSET ?{n}",
        n - 1
    );
    let page = conn
        .prepare_cached(&sql)?
        .query_map(params_from_iter(params.iter()), execution_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?
        .into_iter()
        .map(|record| with_task_runs(conn, record))
        .collect::<rusqlite::Result<_>>()?;
    Ok((page, from_sql_u64(total)))
}

#[async_trait]
impl ExecutionStore for SqliteStore {
    async fn create_execution(
        &self,
        record: &ExecutionRecord,
        inputs: Option<&SecretValue>,
    ) -> Result<(), StoreError> {
        self.inner
            .db
            .write(|tx| self.insert_sealed(tx, record, inputs))?;
        if kestrel_store::waits_in_queue(&record.state) {
            self.inner.signals.queued();
        }
        Ok(())
    }

    async fn transition(&self, record: &ExecutionRecord, from: &str) -> Result<bool, StoreError> {
        self.inner.db.write(|tx| {
            let changed = update_execution(tx, record, Some(from))
                .map_err(err("change an execution's state"))?;
            Ok(changed > 0)
        })
    }

    async fn end_execution(
        &self,
        record: &ExecutionRecord,
        logs: &[LogRecord],
    ) -> Result<(), StoreError> {
        self.inner
            .db
            .write(|tx| write_end(tx, record, logs).map_err(err("write an ended execution")))?;
        self.inner.signals.ended(&record.id);
        Ok(())
    }

    async fn get_execution(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<Option<ExecutionRecord>, StoreError> {
        self.inner.db.read(|conn| {
            let sql =
                format!("SELECT {EXECUTION_COLUMNS} FROM executions WHERE tenant = ?1 AND id = ?2");
            let found = conn
                .prepare_cached(&sql)
                .and_then(|mut s| s.query_row((tenant, id), execution_row).optional())
                .map_err(err("read an execution"))?;
            found
                .map(|record| with_task_runs(conn, record))
                .transpose()
                .map_err(err("read an execution's task runs"))
        })
    }

    async fn search_executions(
        &self,
        query: &ExecutionQuery,
    ) -> Result<(Vec<ExecutionRecord>, u64), StoreError> {
        self.inner
            .db
            .read(|conn| search(conn, query).map_err(err("search executions")))
    }

    async fn unfinished_executions(
        &self,
        tenant: &str,
    ) -> Result<Vec<ExecutionRecord>, StoreError> {
        self.inner.db.read(|conn| {
            let sql = format!(
                "SELECT {EXECUTION_COLUMNS} FROM executions
                 WHERE tenant = ?1 AND state IN ('CREATED', 'RUNNING') ORDER BY created_at, id"
            );
            let records: Vec<ExecutionRecord> = conn
                .prepare_cached(&sql)
                .and_then(|mut s| s.query_map([tenant], execution_row)?.collect())
                .map_err(err("list unfinished executions"))?;
            records
                .into_iter()
                .map(|record| with_task_runs(conn, record))
                .collect::<rusqlite::Result<_>>()
                .map_err(err("list unfinished executions"))
        })
    }

    async fn execution_inputs(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<Option<SecretValue>, StoreError> {
        self.inner.db.read(|conn| {
            let stored: Option<(Option<u32>, Option<Vec<u8>>)> = conn
                .prepare_cached(
                    "SELECT inputs_key, inputs_sealed FROM executions WHERE tenant = ?1 AND id = ?2",
                )
                .and_then(|mut s| s.query_row((tenant, id), |r| Ok((r.get(0)?, r.get(1)?))).optional())
                .map_err(err("read an execution's inputs"))?;
            let Some((Some(key_id), Some(bytes))) = stored else {
                return Ok(None);
            };
            let sealed = Sealed { key_id, bytes };
            let ring = self.inner.keys.holding(conn, key_id)?;
            let plain = ring
                .open(&inputs_aad(tenant, id), &sealed)
                .map_err(StoreError::Crypto)?;
            let text = Zeroizing::new(
                String::from_utf8(plain.to_vec())
                    .map_err(|_| StoreError::backend("read an execution's inputs", "not text"))?,
            );
            Ok(Some(SecretValue::new(text.to_string())))
        })
    }

    async fn execution_logs(&self, tenant: &str, id: &str) -> Result<Vec<LogRecord>, StoreError> {
        self.inner.db.read(|conn| {
            conn.prepare_cached(
                "SELECT l.task_id, l.task_run_id, l.attempt, l.at, l.level, l.message
                 FROM logs l JOIN executions e ON e.id = l.execution_id
                 WHERE e.tenant = ?1 AND l.execution_id = ?2 ORDER BY l.id",
            )
            .and_then(|mut s| {
                s.query_map((tenant, id), |r| {
                    Ok(LogRecord {
                        task_id: r.get(0)?,
                        task_run_id: r.get(1)?,
                        attempt: r.get(2)?,
                        at: from_ms(r.get(3)?),
                        level: r.get(4)?,
                        message: r.get(5)?,
                    })
                })?
                .collect()
            })
            .map_err(err("read an execution's logs"))
        })
    }
}

#[async_trait]
impl Retention for SqliteStore {
    async fn purge_executions(
        &self,
        before: DateTime<Utc>,
    ) -> Result<Vec<PurgedExecution>, StoreError> {
        let before = ms(before);
        self.inner.db.write(|tx| {
            let ended = "SELECT id FROM executions WHERE ended_at IS NOT NULL AND ended_at < ?1";
            let purge = || -> rusqlite::Result<Vec<PurgedExecution>> {
                tx.execute(
                    &format!("DELETE FROM logs WHERE execution_id IN ({ended})"),
                    [before],
                )?;
                tx.execute(
                    &format!("DELETE FROM task_runs WHERE execution_id IN ({ended})"),
                    [before],
                )?;
                tx.execute("DELETE FROM trigger_fires WHERE fire_at < ?1", [before])?;
                let mut purged = tx.prepare(
                    "DELETE FROM executions WHERE ended_at IS NOT NULL AND ended_at < ?1
                     RETURNING namespace, flow_id, id",
                )?;
                let rows = purged.query_map([before], |row| {
                    Ok(PurgedExecution {
                        namespace: row.get(0)?,
                        flow_id: row.get(1)?,
                        id: row.get(2)?,
                    })
                })?;
                rows.collect()
            };
            purge().map_err(err("purge old executions"))
        })
    }

    async fn purge_audit(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        self.inner.db.write(|tx| {
            let chain = self.inner.chain_key();
            crate::audit::purge(tx, &chain, ms(before))
        })
    }
}
