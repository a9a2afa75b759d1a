//! The SQL of executions, task runs and logs, as the embedded store writes them (the same
//! columns, the same JSON `record`). What is written is masked; an execution's raw inputs
//! alone are sealed, and only until it ends. Each call is one transaction whose statements are
//! prepared once per connection and sent together (pipelined) where they do not depend on each
//! other's answers; task runs and logs go in one statement each, as arrays.

use crate::PgStore;
use crate::db::err;
use crate::listen;

use crate::time::{from_ms, ms, now_ms};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use kestrel_crypto::{Aad, KeyId, Sealed};
use kestrel_secrets::SecretValue;
use kestrel_store::{
    ExecutionQuery, ExecutionRecord, ExecutionStore, LogRecord, PurgedExecution, Retention,
    StateChange, StoreError, TaskRunRecord, keeps_inputs,
};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use tokio_postgres::Row;
use tokio_postgres::types::{FromSql, ToSql};
use zeroize::Zeroizing;

/// What an execution's sealed inputs are bound to (the embedded store's binding: a database
/// exported from one opens in the other).
fn inputs_aad(tenant: &str, id: &str) -> Aad {
    Aad::new("kestrel-execution-inputs-v1")
        .with_str(tenant)
        .with_str(id)
}

/// Column `index` of `row`, or an error naming what was being read (never a panic).
pub(crate) fn col<'r, T: FromSql<'r>>(
    row: &'r Row,
    index: usize,
    doing: &'static str,
) -> Result<T, StoreError> {
    row.try_get(index).map_err(err(doing))
}

/// A JSON column: text as written (key order kept), NULL as JSON null.
fn json_col(row: &Row, index: usize, doing: &'static str) -> Result<Value, StoreError> {
    col::<Option<&str>>(row, index, doing)?.map_or(Ok(Value::Null), |text| {
        serde_json::from_str(text).map_err(err(doing))
    })
}

fn u32_or_zero(stored: i64) -> u32 {
    u32::try_from(stored).unwrap_or_default()
}

/// The columns [`execution_row`] reads, in its order.
pub(crate) const EXECUTION_COLUMNS: &str = "id, tenant, namespace, flow_id, flow_revision, state, \
     inputs_masked, record, created_at, ended_at";

/// An execution without its task runs, from [`EXECUTION_COLUMNS`].
pub(crate) fn execution_row(r: &Row) -> Result<ExecutionRecord, StoreError> {
    const DOING: &str = "read an execution";
    let detail = json_col(r, 7, DOING)?;
    Ok(ExecutionRecord {
        id: col(r, 0, DOING)?,
        tenant: col(r, 1, DOING)?,
        namespace: col(r, 2, DOING)?,
        flow_id: col(r, 3, DOING)?,
        flow_revision: u64::try_from(col::<i64>(r, 4, DOING)?).unwrap_or_default(),
        state: col(r, 5, DOING)?,
        inputs: json_col(r, 6, DOING)?,
        histories: StateChange::list_in(&detail),
        outputs: detail["outputs"].clone(),
        labels: detail["labels"].clone(),
        task_runs: Vec::new(),
        created_at: from_ms(col(r, 8, DOING)?),
        ended_at: col::<Option<i64>>(r, 9, DOING)?.map(from_ms),
    })
}

/// The columns of a task run, as [`task_run_row`] reads them.
const TASK_RUN_COLUMNS: &str =
    "id, attempt, task_id, state, outputs_masked, error, started_at, ended_at, record";

/// A task run from [`TASK_RUN_COLUMNS`], starting at column `at` of `r`.
fn task_run_row(r: &Row, at: usize) -> Result<TaskRunRecord, StoreError> {
    const DOING: &str = "read an execution's task runs";
    Ok(TaskRunRecord {
        id: col(r, at, DOING)?,
        attempt: u32_or_zero(col(r, at + 1, DOING)?),
        task_id: col(r, at + 2, DOING)?,
        state: col(r, at + 3, DOING)?,
        outputs: json_col(r, at + 4, DOING)?,
        error: col(r, at + 5, DOING)?,
        started_at: from_ms(col(r, at + 6, DOING)?),
        ended_at: col::<Option<i64>>(r, at + 7, DOING)?.map(from_ms),
        detail: json_col(r, at + 8, DOING)?,
    })
}

/// The task runs of `ids`' executions, each execution's in its order.
pub(crate) async fn task_runs_of(
    client: &impl GenericClient,
    ids: &[&str],
) -> Result<HashMap<String, Vec<TaskRunRecord>>, StoreError> {
    const DOING: &str = "read an execution's task runs";
    let mut found: HashMap<String, Vec<TaskRunRecord>> = HashMap::new();
    if ids.is_empty() {
        return Ok(found);
    }
    let statement = client
        .prepare_cached(&format!(
            "SELECT execution_id, {TASK_RUN_COLUMNS} FROM task_runs
                 WHERE execution_id = ANY($1) ORDER BY execution_id, position"
        ))
        .await
        .map_err(err(DOING))?;
    for r in client
        .query(&statement, &[&ids])
        .await
        .map_err(err(DOING))?
    {
        let run = task_run_row(&r, 1)?;
        found.entry(col(&r, 0, DOING)?).or_default().push(run);
    }
    Ok(found)
}

/// `rows` read as executions, each with its task runs (one more query for all of them).
pub(crate) async fn with_task_runs(
    client: &impl GenericClient,
    rows: &[Row],
) -> Result<Vec<ExecutionRecord>, StoreError> {
    let mut records = rows
        .iter()
        .map(execution_row)
        .collect::<Result<Vec<_>, _>>()?;
    let ids: Vec<&str> = records.iter().map(|r| r.id.as_str()).collect();
    let mut runs = task_runs_of(client, &ids).await?;
    for record in &mut records {
        record.task_runs = runs.remove(&record.id).unwrap_or_default();
    }
    Ok(records)
}

/// Writes every task run of `records` (after removing those stored, when `replace`), in one
/// statement for all of them.
async fn write_task_runs(
    client: &impl GenericClient,
    records: &[&ExecutionRecord],
    replace: bool,
) -> Result<(), StoreError> {
    const DOING: &str = "write an execution's task runs";
    if replace {
        let ids: Vec<&str> = records.iter().map(|r| r.id.as_str()).collect();
        let delete = client
            .prepare_cached("DELETE FROM task_runs WHERE execution_id = ANY($1)")
            .await
            .map_err(err(DOING))?;
        client.execute(&delete, &[&ids]).await.map_err(err(DOING))?;
    }
    let runs: Vec<(&str, i64, &TaskRunRecord)> = records
        .iter()
        .flat_map(|record| {
            record.task_runs.iter().enumerate().map(|(position, run)| {
                let position = i64::try_from(position).unwrap_or(i64::MAX);
                (record.id.as_str(), position, run)
            })
        })
        .collect();
    if runs.is_empty() {
        return Ok(());
    }
    let insert = client
        .prepare_cached(
            "INSERT INTO task_runs (id, attempt, execution_id, task_id, state, outputs_masked,
                                    error, started_at, ended_at, record, position)
             SELECT t.id, t.attempt, t.execution_id, t.task_id, t.state, t.outputs, t.error,
                    t.started_at, t.ended_at, t.record, t.position
             FROM UNNEST($1::TEXT[], $2::TEXT[], $3::BIGINT[], $4::TEXT[], $5::TEXT[],
                         $6::TEXT[], $7::TEXT[], $8::BIGINT[], $9::BIGINT[], $10::TEXT[],
                         $11::BIGINT[])
                  AS t(execution_id, id, attempt, task_id, state, outputs, error, started_at,
                       ended_at, record, position)",
        )
        .await
        .map_err(err(DOING))?;
    let executions: Vec<&str> = runs.iter().map(|(id, _, _)| *id).collect();
    let ids: Vec<&str> = runs.iter().map(|(_, _, r)| r.id.as_str()).collect();
    let attempts: Vec<i64> = runs.iter().map(|(_, _, r)| i64::from(r.attempt)).collect();
    let task_ids: Vec<&str> = runs.iter().map(|(_, _, r)| r.task_id.as_str()).collect();
    let states: Vec<&str> = runs.iter().map(|(_, _, r)| r.state.as_str()).collect();
    let outputs: Vec<String> = runs.iter().map(|(_, _, r)| r.outputs.to_string()).collect();
    let errors: Vec<Option<&str>> = runs.iter().map(|(_, _, r)| r.error.as_deref()).collect();
    let started: Vec<i64> = runs.iter().map(|(_, _, r)| ms(r.started_at)).collect();
    let ended: Vec<Option<i64>> = runs.iter().map(|(_, _, r)| r.ended_at.map(ms)).collect();
    let details: Vec<String> = runs.iter().map(|(_, _, r)| r.detail.to_string()).collect();
    let positions: Vec<i64> = runs.iter().map(|(_, position, _)| *position).collect();
    let params: [&(dyn ToSql + Sync); 11] = [
        &executions,
        &ids,
        &attempts,
        &task_ids,
        &states,
        &outputs,
        &errors,
        &started,
        &ended,
        &details,
        &positions,
    ];
    client.execute(&insert, &params).await.map_err(err(DOING))?;
    Ok(())
}

/// Appends each execution's logs to its own, in their order, in one statement for all.
async fn append_logs(
    client: &impl GenericClient,
    entries: &[(&str, &[LogRecord])],
) -> Result<(), StoreError> {
    const DOING: &str = "write an execution's logs";
    let logs: Vec<(&str, &LogRecord)> = entries
        .iter()
        .flat_map(|(id, logs)| logs.iter().map(move |log| (*id, log)))
        .collect();
    if logs.is_empty() {
        return Ok(());
    }
    // WITH ORDINALITY keeps the given order in the identity column.
    let insert = client
        .prepare_cached(
            "INSERT INTO logs (execution_id, task_id, task_run_id, attempt, at, level, message)
             SELECT l.execution_id, l.task_id, l.task_run_id, l.attempt, l.at, l.level,
                    l.message
             FROM UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::BIGINT[], $5::BIGINT[],
                         $6::TEXT[], $7::TEXT[]) WITH ORDINALITY
                  AS l(execution_id, task_id, task_run_id, attempt, at, level, message, n)
             ORDER BY l.n",
        )
        .await
        .map_err(err(DOING))?;
    let executions: Vec<&str> = logs.iter().map(|(id, _)| *id).collect();
    let task_ids: Vec<Option<&str>> = logs.iter().map(|(_, l)| l.task_id.as_deref()).collect();
    let runs: Vec<Option<&str>> = logs.iter().map(|(_, l)| l.task_run_id.as_deref()).collect();
    let attempts: Vec<Option<i64>> = logs.iter().map(|(_, l)| l.attempt.map(i64::from)).collect();
    let at: Vec<i64> = logs.iter().map(|(_, l)| ms(l.at)).collect();
    let levels: Vec<&str> = logs.iter().map(|(_, l)| l.level.as_str()).collect();
    let messages: Vec<&str> = logs.iter().map(|(_, l)| l.message.as_str()).collect();
    client
        .execute(
            &insert,
            &[
                &executions,
                &task_ids,
                &runs,
                &attempts,
                &at,
                &levels,
                &messages,
            ],
        )
        .await
        .map_err(err(DOING))?;
    Ok(())
}

/// Writes the state, histories, outputs and labels of a stored execution if its state is
/// still `from`; whether it did.
async fn transition_in(
    client: &impl GenericClient,
    record: &ExecutionRecord,
    from: &str,
) -> Result<bool, StoreError> {
    const DOING: &str = "change an execution's state";
    let statement = client
        .prepare_cached(
            "UPDATE executions SET state = $3, record = $4, updated_at = $5, ended_at = $6,
                                   inputs_masked = $7
             WHERE tenant = $1 AND id = $2 AND state = $8",
        )
        .await
        .map_err(err(DOING))?;
    let changed = client
        .execute(
            &statement,
            &[
                &record.tenant,
                &record.id,
                &record.state,
                &record.detail_text(),
                &now_ms(),
                &record.ended_at.map(ms),
                // Masked again as the execution registers more (a secret a STRING input holds).
                &record.inputs.to_string(),
                &from,
            ],
        )
        .await
        .map_err(err(DOING))?;
    Ok(changed > 0)
}

/// An end written by `end_execution`: the execution is inserted if it was never written.
/// `$12`: whether the end [`keeps_inputs`].
const END: &str = "INSERT INTO executions (id, tenant, namespace, flow_id, flow_revision, state,
                                inputs_masked, record, created_at, updated_at, ended_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
     ON CONFLICT (id) DO UPDATE SET state = excluded.state,
         inputs_masked = excluded.inputs_masked, record = excluded.record,
         updated_at = excluded.updated_at, ended_at = excluded.ended_at,
         inputs_key = CASE WHEN $12 THEN executions.inputs_key END,
         inputs_sealed = CASE WHEN $12 THEN executions.inputs_sealed END
     WHERE executions.tenant = excluded.tenant";

/// Writes an execution's end whoever holds it: state, record, task runs, logs appended, its
/// sealed inputs dropped; inserted if it was never written. The caller commits, then
/// announces it.
async fn write_end(
    client: &impl GenericClient,
    record: &ExecutionRecord,
    logs: &[LogRecord],
) -> Result<(), StoreError> {
    const DOING: &str = "write an ended execution";
    let statement = client.prepare_cached(END).await.map_err(err(DOING))?;
    let flow_revision = i64::try_from(record.flow_revision).unwrap_or(i64::MAX);
    let (inputs, detail) = (record.inputs.to_string(), record.detail_text());
    let (created, now, ended) = (ms(record.created_at), now_ms(), record.ended_at.map(ms));
    let keeps = keeps_inputs(&record.state);
    let params: [&(dyn ToSql + Sync); 12] = [
        &record.id,
        &record.tenant,
        &record.namespace,
        &record.flow_id,
        &flow_revision,
        &record.state,
        &inputs,
        &detail,
        &created,
        &now,
        &ended,
        &keeps,
    ];
    // Sent together; when the end is refused, what the others wrote is rolled back.
    let (written, runs, appended) = futures_util::future::join3(
        client.execute(&statement, &params),
        write_task_runs(client, &[record], true),
        append_logs(client, &[(record.id.as_str(), logs)]),
    )
    .await;
    if written.map_err(err(DOING))? == 0 {
        return Err(StoreError::backend(
            DOING,
            "an execution with this id belongs to another tenant",
        ));
    }
    runs?;
    appended?;
    Ok(())
}

/// The end of an execution as its worker writes it (`end_claimed`).
pub(crate) struct ClaimedEnd {
    pub(crate) record: ExecutionRecord,
    pub(crate) logs: Vec<LogRecord>,
    pub(crate) worker: String,
}

/// Writes each end of `ends` whose worker still holds its execution, not ended (the fence):
/// state, record, task runs, logs, sealed inputs dropped, in four statements for all of them.
/// Whether each was written, in order. The update locks the rows, so no claim takes them over
/// before the caller commits.
pub(crate) async fn write_claimed_ends(
    client: &impl GenericClient,
    ends: &[ClaimedEnd],
) -> Result<Vec<bool>, StoreError> {
    const DOING: &str = "write an ended execution";
    let statement = client
        .prepare_cached(
            "UPDATE executions e
             SET state = u.state, inputs_masked = u.inputs, record = u.record, updated_at = $1,
                 ended_at = u.ended_at,
                 inputs_key = CASE WHEN u.keeps THEN e.inputs_key END,
                 inputs_sealed = CASE WHEN u.keeps THEN e.inputs_sealed END
             FROM UNNEST($2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[], $6::TEXT[],
                         $7::TEXT[], $8::BIGINT[], $9::BOOL[])
                  AS u(tenant, id, worker, state, inputs, record, ended_at, keeps)
             WHERE e.tenant = u.tenant AND e.id = u.id AND e.worker = u.worker
               AND e.ended_at IS NULL
             RETURNING e.id",
        )
        .await
        .map_err(err(DOING))?;
    let records = ends.iter().map(|end| &end.record);
    let tenants: Vec<&str> = records.clone().map(|r| r.tenant.as_str()).collect();
    let ids: Vec<&str> = records.clone().map(|r| r.id.as_str()).collect();
    let workers: Vec<&str> = ends.iter().map(|end| end.worker.as_str()).collect();
    let states: Vec<&str> = records.clone().map(|r| r.state.as_str()).collect();
    let inputs: Vec<String> = records.clone().map(|r| r.inputs.to_string()).collect();
    let details: Vec<String> = records.clone().map(ExecutionRecord::detail_text).collect();
    let ended: Vec<Option<i64>> = records.clone().map(|r| r.ended_at.map(ms)).collect();
    let keeps: Vec<bool> = records.map(|r| keeps_inputs(&r.state)).collect();
    let params: [&(dyn ToSql + Sync); 9] = [
        &now_ms(),
        &tenants,
        &ids,
        &workers,
        &states,
        &inputs,
        &details,
        &ended,
        &keeps,
    ];
    let written: HashSet<String> = client
        .query(&statement, &params)
        .await
        .map_err(err(DOING))?
        .iter()
        .map(|row| col(row, 0, DOING))
        .collect::<Result<_, _>>()?;
    let accepted: Vec<&ClaimedEnd> = ends
        .iter()
        .filter(|end| written.contains(&end.record.id))
        .collect();
    if !accepted.is_empty() {
        let records: Vec<&ExecutionRecord> = accepted.iter().map(|end| &end.record).collect();
        let logs: Vec<(&str, &[LogRecord])> = accepted
            .iter()
            .map(|end| (end.record.id.as_str(), end.logs.as_slice()))
            .collect();
        futures_util::future::try_join(
            write_task_runs(client, &records, true),
            append_logs(client, &logs),
        )
        .await?;
    }
    Ok(ends
        .iter()
        .map(|end| written.contains(&end.record.id))
        .collect())
}

/// A new execution to write: held by `worker` when given (`create_claimed`).
pub(crate) struct NewExecution {
    pub(crate) record: ExecutionRecord,
    pub(crate) inputs: Option<SecretValue>,
    pub(crate) worker: Option<String>,
}

impl PgStore {
    /// Inserts `executions` with their inputs sealed under the current data key, in one
    /// statement (its own transaction, or the caller's), task runs in one more.
    pub(crate) async fn insert_sealed(
        &self,
        client: &impl GenericClient,
        executions: &[NewExecution],
    ) -> Result<(), StoreError> {
        const DOING: &str = "write an execution";
        let ring = if executions.iter().any(|e| e.inputs.is_some()) {
            Some(self.inner.keys.current(client).await?)
        } else {
            None
        };
        let mut sealed = Vec::with_capacity(executions.len());
        for new in executions {
            let one = match (&ring, &new.inputs) {
                (Some(ring), Some(inputs)) => {
                    let aad = inputs_aad(&new.record.tenant, &new.record.id);
                    let bytes = ring
                        .seal(&aad, inputs.expose_secret().as_bytes())
                        .map_err(StoreError::Crypto)?;
                    Some(bytes)
                }
                _ => None,
            };
            sealed.push(one);
        }
        let insert = client
            .prepare_cached(
                "INSERT INTO executions (id, tenant, namespace, flow_id, flow_revision, state,
                                         inputs_masked, record, inputs_key, inputs_sealed,
                                         created_at, updated_at, ended_at, worker, heartbeat_at,
                                         claims)
                 SELECT n.id, n.tenant, n.namespace, n.flow_id, n.flow_revision, n.state,
                        n.inputs, n.record, n.key_id, n.sealed, n.created_at, n.created_at,
                        n.ended_at, n.worker,
                        CASE WHEN n.worker IS NULL THEN NULL ELSE $1::BIGINT END,
                        CASE WHEN n.worker IS NULL THEN 0 ELSE 1 END
                 FROM UNNEST($2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[], $6::BIGINT[],
                             $7::TEXT[], $8::TEXT[], $9::TEXT[], $10::BIGINT[], $11::BYTEA[],
                             $12::BIGINT[], $13::BIGINT[], $14::TEXT[])
                      AS n(id, tenant, namespace, flow_id, flow_revision, state, inputs, record,
                           key_id, sealed, created_at, ended_at, worker)",
            )
            .await
            .map_err(err(DOING))?;
        let records: Vec<&ExecutionRecord> = executions.iter().map(|e| &e.record).collect();
        let ids: Vec<&str> = records.iter().map(|r| r.id.as_str()).collect();
        let tenants: Vec<&str> = records.iter().map(|r| r.tenant.as_str()).collect();
        let namespaces: Vec<&str> = records.iter().map(|r| r.namespace.as_str()).collect();
        let flow_ids: Vec<&str> = records.iter().map(|r| r.flow_id.as_str()).collect();
        let revisions: Vec<i64> = records
            .iter()
            .map(|r| i64::try_from(r.flow_revision).unwrap_or(i64::MAX))
            .collect();
        let states: Vec<&str> = records.iter().map(|r| r.state.as_str()).collect();
        let inputs: Vec<String> = records.iter().map(|r| r.inputs.to_string()).collect();
        let details: Vec<String> = records.iter().map(|r| r.detail_text()).collect();
        let key_ids: Vec<Option<i64>> = sealed
            .iter()
            .map(|s| s.as_ref().map(|s| i64::from(s.key_id)))
            .collect();
        let bytes: Vec<Option<&[u8]>> = sealed
            .iter()
            .map(|s| s.as_ref().map(|s| s.bytes.as_slice()))
            .collect();
        let created: Vec<i64> = records.iter().map(|r| ms(r.created_at)).collect();
        let ended: Vec<Option<i64>> = records.iter().map(|r| r.ended_at.map(ms)).collect();
        let workers: Vec<Option<&str>> = executions.iter().map(|e| e.worker.as_deref()).collect();
        let params: [&(dyn ToSql + Sync); 14] = [
            &now_ms(),
            &ids,
            &tenants,
            &namespaces,
            &flow_ids,
            &revisions,
            &states,
            &inputs,
            &details,
            &key_ids,
            &bytes,
            &created,
            &ended,
            &workers,
        ];
        futures_util::future::try_join(
            async { client.execute(&insert, &params).await.map_err(err(DOING)) },
            write_task_runs(client, &records, false),
        )
        .await?;
        Ok(())
    }

    /// Tells this node's waiters, and every other node's (NOTIFY `channel`), what was just
    /// committed: for [`listen::ENDED`], the ids of the executions that ended, separated by
    /// commas.
    ///
    /// The NOTIFY is a statement of its own, after the write's commit, and does not wait for
    /// the disk: PostgreSQL serializes the commits of every transaction that notifies, so a
    /// NOTIFY inside each durable write would queue all writes behind one disk flush each.
    /// Being told is for speed only (waiters also wake on their own timeouts), so a failure
    /// here is a warning, never the write's error.
    pub(crate) async fn announce(
        &self,
        client: &impl GenericClient,
        channel: &'static str,
        payload: &str,
    ) {
        self.inner.on_notification(channel, payload);
        let sent = async {
            let statement = client
                .prepare_cached(
                    "SELECT set_config('synchronous_commit', 'off', true), pg_notify($1, $2)",
                )
                .await?;
            client.execute(&statement, &[&channel, &payload]).await
        };
        if let Err(error) = sent.await {
            let error = err("notify the other nodes")(error);
            crate::log_warning(&error.to_string());
        }
    }

    /// The inputs sealed in columns `at` (key id) and `at + 1` (sealed bytes) of `row`, the
    /// row of execution `id`, opened; none when it was stored without them.
    pub(crate) async fn open_inputs(
        &self,
        client: &impl GenericClient,
        tenant: &str,
        id: &str,
        row: &Row,
        at: usize,
    ) -> Result<Option<SecretValue>, StoreError> {
        const DOING: &str = "read an execution's inputs";
        let (Some(key_id), Some(bytes)) = (
            col::<Option<i64>>(row, at, DOING)?,
            col::<Option<Vec<u8>>>(row, at + 1, DOING)?,
        ) else {
            return Ok(None);
        };
        let key_id = KeyId::try_from(key_id).map_err(err(DOING))?;
        let sealed = Sealed { key_id, bytes };
        let ring = self.inner.keys.holding(client, key_id).await?;
        let plain = ring
            .open(&inputs_aad(tenant, id), &sealed)
            .map_err(StoreError::Crypto)?;
        let text = Zeroizing::new(
            String::from_utf8(plain.to_vec())
                .map_err(|_| StoreError::backend(DOING, "not text"))?,
        );
        Ok(Some(SecretValue::new(text.to_string())))
    }

    /// Writes a new execution, held by `worker` when given, batched with others being
    /// created at the same time.
    pub(crate) async fn create(
        &self,
        record: &ExecutionRecord,
        inputs: Option<&SecretValue>,
        worker: Option<&str>,
    ) -> Result<(), StoreError> {
        let new = NewExecution {
            record: record.clone(),
            inputs: inputs.cloned(),
            worker: worker.map(str::to_owned),
        };
        self.inner.creates.write(new).await
    }

    /// Writes new executions (those with task runs in one transaction) and announces those
    /// queued (CREATED, not held) once committed.
    pub(crate) async fn create_now(&self, executions: &[NewExecution]) -> Result<(), StoreError> {
        const DOING: &str = "write an execution";
        let mut client = self.client().await?;
        if executions.iter().all(|e| e.record.task_runs.is_empty()) {
            // One statement, its own transaction (the keyring read before it would see no
            // more inside one: READ COMMITTED reads afresh at each statement).
            self.insert_sealed(&client, executions).await?;
        } else {
            let tx = client.transaction().await.map_err(err(DOING))?;
            self.insert_sealed(&tx, executions).await?;
            tx.commit().await.map_err(err(DOING))?;
        }
        let queued = executions
            .iter()
            .any(|e| kestrel_store::waits_in_queue(&e.record.state) && e.worker.is_none());
        if queued {
            self.announce(&client, listen::QUEUED, "").await;
        }
        Ok(())
    }

    /// Writes an execution's end whoever holds it, in one transaction (see [`write_end`]),
    /// and announces it.
    pub(crate) async fn end(
        &self,
        record: &ExecutionRecord,
        logs: &[LogRecord],
    ) -> Result<(), StoreError> {
        const DOING: &str = "write an ended execution";
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(err(DOING))?;
        write_end(&tx, record, logs).await?;
        tx.commit().await.map_err(err(DOING))?;
        self.announce(&client, listen::ENDED, &record.id).await;
        Ok(())
    }

    /// Writes the ends of `ends` their workers still hold, in one transaction (see
    /// [`write_claimed_ends`]), and announces them; whether each was written.
    pub(crate) async fn end_claimed_now(
        &self,
        ends: &[ClaimedEnd],
    ) -> Result<Vec<bool>, StoreError> {
        const DOING: &str = "write an ended execution";
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(err(DOING))?;
        let written = write_claimed_ends(&tx, ends).await?;
        tx.commit().await.map_err(err(DOING))?;
        let ids: Vec<&str> = ends
            .iter()
            .zip(&written)
            .filter(|(_, written)| **written)
            .map(|(end, _)| end.record.id.as_str())
            .collect();
        if !ids.is_empty() {
            self.announce(&client, listen::ENDED, &ids.join(",")).await;
        }
        Ok(written)
    }

    /// A connection from the pool.
    /// Puts an ended execution back in the queue (see `ExecutionQueue::requeue`): its record
    /// and task runs in one transaction, then announced as queued.
    pub(crate) async fn requeue_now(
        &self,
        record: &ExecutionRecord,
        from: &str,
    ) -> Result<bool, StoreError> {
        const DOING: &str = "restart an execution";
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(err(DOING))?;
        let statement = tx
            .prepare_cached(
                "UPDATE executions SET state = $3, record = $4, updated_at = $5, ended_at = NULL,
                                       inputs_masked = $6, worker = NULL, heartbeat_at = NULL,
                                       claims = 0
                 WHERE tenant = $1 AND id = $2 AND state = $7 AND ended_at IS NOT NULL",
            )
            .await
            .map_err(err(DOING))?;
        let params: [&(dyn ToSql + Sync); 7] = [
            &record.tenant,
            &record.id,
            &record.state,
            &record.detail_text(),
            &now_ms(),
            &record.inputs.to_string(),
            &from,
        ];
        if tx.execute(&statement, &params).await.map_err(err(DOING))? == 0 {
            return Ok(false);
        }
        write_task_runs(&tx, &[record], true).await?;
        tx.commit().await.map_err(err(DOING))?;
        self.announce(&client, listen::QUEUED, "").await;
        Ok(true)
    }

    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Client, StoreError> {
        self.inner
            .pool
            .get()
            .await
            .map_err(err("connect to PostgreSQL"))
    }
}

/// `column = ns OR column starts with ns.`, for each of `namespaces`, as SQL; the
/// parameters go to `params`.
fn namespace_clause(namespaces: &[String], params: &mut Vec<String>) -> String {
    let alternatives: Vec<String> = namespaces
        .iter()
        .map(|ns| {
            params.push(ns.clone());
            let n = params.len();
            format!("namespace = ${n} OR starts_with(namespace, ${n} || '.')")
        })
        .collect();
    format!("({})", alternatives.join(" OR "))
}

/// The WHERE clause of a search and its (text) parameters.
fn search_filter(query: &ExecutionQuery) -> (String, Vec<String>) {
    let mut params = vec![query.tenant.clone()];
    let mut clauses = vec!["tenant = $1".to_owned()];
    if let Some(ns) = &query.namespace {
        clauses.push(namespace_clause(std::slice::from_ref(ns), &mut params));
    }
    if !query.within.is_empty() {
        clauses.push(namespace_clause(&query.within, &mut params));
    }
    for (column, value) in [("flow_id", &query.flow_id), ("state", &query.state)] {
        if let Some(value) = value {
            params.push(value.clone());
            clauses.push(format!("{column} = ${}", params.len()));
        }
    }
    for (bound, at) in [(">=", query.created_after), ("<", query.created_before)] {
        if let Some(at) = at {
            params.push(ms(at).to_string());
            clauses.push(format!(
                "created_at {bound} CAST(${}::TEXT AS BIGINT)",
                params.len()
            ));
        }
    }
    if !query.labels.is_empty() {
        params.push(query.labels_json());
        clauses.push(format!(
            "CAST(record AS JSONB) -> 'labels' @> CAST(${}::TEXT AS JSONB)",
            params.len()
        ));
    }
    (clauses.join(" AND "), params)
}

async fn search(
    client: &impl GenericClient,
    query: &ExecutionQuery,
) -> Result<(Vec<ExecutionRecord>, u64), StoreError> {
    const DOING: &str = "search executions";
    let (filter, texts) = search_filter(query);
    let size = i64::from(query.size.max(1));
    let offset = i64::from(query.page.max(1) - 1) * size;
    let n = texts.len();
    let (count, page) = futures_util::future::try_join(
        client.prepare_cached(&format!("SELECT count(*) FROM executions WHERE {filter}")),
        client.prepare_cached(&format!(
            "SELECT {EXECUTION_COLUMNS} FROM executions WHERE {filter}
             ORDER BY created_at DESC, id DESC LIMIT ${} OFFSET ${}",
            n + 1,
            n + 2
        )),
    )
    .await
    .map_err(err(DOING))?;
    let mut params: Vec<&(dyn ToSql + Sync)> =
        texts.iter().map(|t| t as &(dyn ToSql + Sync)).collect();
    let (total, rows) = {
        let count_params = params.clone();
        params.push(&size);
        params.push(&offset);
        futures_util::future::try_join(
            client.query_one(&count, &count_params),
            client.query(&page, &params),
        )
        .await
        .map_err(err(DOING))?
    };
    let total: i64 = col(&total, 0, DOING)?;
    let records = with_task_runs(client, &rows).await?;
    Ok((records, u64::try_from(total).unwrap_or_default()))
}

#[async_trait]
impl ExecutionStore for PgStore {
    async fn create_execution(
        &self,
        record: &ExecutionRecord,
        inputs: Option<&SecretValue>,
    ) -> Result<(), StoreError> {
        self.create(record, inputs, None).await
    }

    async fn transition(&self, record: &ExecutionRecord, from: &str) -> Result<bool, StoreError> {
        // One statement: its own transaction.
        transition_in(&self.client().await?, record, from).await
    }

    async fn end_execution(
        &self,
        record: &ExecutionRecord,
        logs: &[LogRecord],
    ) -> Result<(), StoreError> {
        self.end(record, logs).await
    }

    async fn get_execution(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<Option<ExecutionRecord>, StoreError> {
        const DOING: &str = "read an execution";
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&format!(
                "SELECT {EXECUTION_COLUMNS} FROM executions WHERE tenant = $1 AND id = $2"
            ))
            .await
            .map_err(err(DOING))?;
        let rows = client
            .query(&statement, &[&tenant, &id])
            .await
            .map_err(err(DOING))?;
        Ok(with_task_runs(&client, &rows).await?.pop())
    }

    async fn search_executions(
        &self,
        query: &ExecutionQuery,
    ) -> Result<(Vec<ExecutionRecord>, u64), StoreError> {
        search(&self.client().await?, query).await
    }

    async fn unfinished_executions(
        &self,
        tenant: &str,
    ) -> Result<Vec<ExecutionRecord>, StoreError> {
        const DOING: &str = "list unfinished executions";
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&format!(
                "SELECT {EXECUTION_COLUMNS} FROM executions
                 WHERE tenant = $1 AND state IN ('CREATED', 'RUNNING') ORDER BY created_at, id"
            ))
            .await
            .map_err(err(DOING))?;
        let rows = client
            .query(&statement, &[&tenant])
            .await
            .map_err(err(DOING))?;
        with_task_runs(&client, &rows).await
    }

    async fn execution_inputs(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<Option<SecretValue>, StoreError> {
        const DOING: &str = "read an execution's inputs";
        let client = self.client().await?;
        let statement = client
            .prepare_cached(
                "SELECT inputs_key, inputs_sealed FROM executions WHERE tenant = $1 AND id = $2",
            )
            .await
            .map_err(err(DOING))?;
        let Some(row) = client
            .query_opt(&statement, &[&tenant, &id])
            .await
            .map_err(err(DOING))?
        else {
            return Ok(None);
        };
        self.open_inputs(&client, tenant, id, &row, 0).await
    }

    async fn execution_logs(&self, tenant: &str, id: &str) -> Result<Vec<LogRecord>, StoreError> {
        const DOING: &str = "read an execution's logs";
        let client = self.client().await?;
        let statement = client
            .prepare_cached(
                "SELECT l.task_id, l.task_run_id, l.attempt, l.at, l.level, l.message
                 FROM logs l JOIN executions e ON e.id = l.execution_id
                 WHERE e.tenant = $1 AND l.execution_id = $2 ORDER BY l.id",
            )
            .await
            .map_err(err(DOING))?;
        client
            .query(&statement, &[&tenant, &id])
            .await
            .map_err(err(DOING))?
            .iter()
            .map(|r| {
                Ok(LogRecord {
                    task_id: col(r, 0, DOING)?,
                    task_run_id: col(r, 1, DOING)?,
                    attempt: col::<Option<i64>>(r, 2, DOING)?.map(u32_or_zero),
                    at: from_ms(col(r, 3, DOING)?),
                    level: col(r, 4, DOING)?,
                    message: col(r, 5, DOING)?,
                })
            })
            .collect()
    }
}

#[async_trait]
impl Retention for PgStore {
    async fn purge_executions(
        &self,
        before: DateTime<Utc>,
    ) -> Result<Vec<PurgedExecution>, StoreError> {
        const DOING: &str = "purge old executions";
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(err(DOING))?;
        // The children first (they reference the executions), then the executions, in one
        // transaction: a purge is all or nothing.
        let ended = "SELECT id FROM executions WHERE ended_at IS NOT NULL AND ended_at < $1";
        let before = ms(before);
        for sql in [
            format!("DELETE FROM logs WHERE execution_id IN ({ended})"),
            format!("DELETE FROM task_runs WHERE execution_id IN ({ended})"),
            "DELETE FROM trigger_fires WHERE fire_at < $1".to_owned(),
        ] {
            tx.execute(&sql, &[&before]).await.map_err(err(DOING))?;
        }
        let purged = tx
            .query(
                "DELETE FROM executions WHERE ended_at IS NOT NULL AND ended_at < $1
                 RETURNING namespace, flow_id, id",
                &[&before],
            )
            .await
            .map_err(err(DOING))?;
        tx.commit().await.map_err(err(DOING))?;
        Ok(purged
            .iter()
            .map(|row| PurgedExecution {
                namespace: row.get(0),
                flow_id: row.get(1),
                id: row.get(2),
            })
            .collect())
    }

    async fn purge_audit(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        const DOING: &str = "purge the old audit trail";
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(err(DOING))?;
        let chain = self.inner.chain_key();
        let purged = crate::audit::purge(&tx, &chain, ms(before)).await?;
        tx.commit().await.map_err(err(DOING))?;
        Ok(purged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_search_filters_by_namespace_children_reach_flow_and_state_in_parameter_order() {
        let query = ExecutionQuery {
            tenant: "main".into(),
            namespace: Some("company".into()),
            flow_id: Some("hello".into()),
            state: Some("RUNNING".into()),
            within: vec!["company.team".into(), "dev".into()],
            page: 1,
            size: 10,
            ..ExecutionQuery::default()
        };
        let (filter, params) = search_filter(&query);
        assert_eq!(
            filter,
            "tenant = $1 AND (namespace = $2 OR starts_with(namespace, $2 || '.')) \
             AND (namespace = $3 OR starts_with(namespace, $3 || '.') \
             OR namespace = $4 OR starts_with(namespace, $4 || '.')) \
             AND flow_id = $5 AND state = $6"
        );
        assert_eq!(
            params,
            ["main", "company", "company.team", "dev", "hello", "RUNNING"]
        );
    }
}
