//! The execution queue every node shares. A claim locks the oldest queued rows it can take
//! with `FOR UPDATE SKIP LOCKED` (claimers never wait on each other, and never take the same
//! row) and marks them held in the same transaction; an end is fenced by its update's
//! condition (the holder, not ended), which locks the row until the end commits. Queued and
//! ended executions are announced by NOTIFY (after the commit), which the listener of every
//! node turns into its [`QueueSignals`].

use crate::PgStore;
use crate::db::err;
use crate::executions::{ClaimedEnd, EXECUTION_COLUMNS, col, execution_row, task_runs_of};
use crate::time::{from_ms, ms, now_ms};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use kestrel_secrets::SecretValue;
use kestrel_store::{
    Claimed, ConditionWindow, ExecutionQueue, ExecutionRecord, Fire, LogRecord, QueueSignals,
    StateChange, StoreError,
};
use std::collections::HashMap;
use std::time::Duration;

const CLAIM: &str = "claim executions";

/// Where the sealed inputs start in a row of [`lock_queued`].
const INPUTS_AT: usize = 10;

/// Locks up to `limit` queued executions of `tenant`, oldest first, skipping those another
/// claim holds: [`EXECUTION_COLUMNS`], then the sealed inputs (from [`INPUTS_AT`]).
async fn lock_queued(
    client: &impl GenericClient,
    tenant: &str,
    limit: u32,
    resume_after: Duration,
) -> Result<Vec<tokio_postgres::Row>, StoreError> {
    let stale_before = now_ms() - i64::try_from(resume_after.as_millis()).unwrap_or(i64::MAX);
    let statement = client
        .prepare_cached(&format!(
            "SELECT {EXECUTION_COLUMNS}, inputs_key, inputs_sealed FROM executions
             WHERE tenant = $1 AND state IN ('CREATED', 'RESTARTED', 'RUNNING')
               AND (state != 'RUNNING' OR COALESCE(heartbeat_at, 0) < $2)
             ORDER BY created_at, id LIMIT $3
             FOR UPDATE SKIP LOCKED"
        ))
        .await
        .map_err(err(CLAIM))?;
    client
        .query(&statement, &[&tenant, &stale_before, &i64::from(limit)])
        .await
        .map_err(err(CLAIM))
}

/// Marks the locked executions held by `worker`; `records` (the new record text for those
/// that were CREATED, none for those taken over) by id. How many claims each has had.
async fn hold(
    client: &impl GenericClient,
    worker: &str,
    records: &[(&str, Option<String>)],
) -> Result<HashMap<String, u32>, StoreError> {
    let statement = client
        .prepare_cached(
            "UPDATE executions e
             SET state = 'RUNNING', worker = $1, heartbeat_at = $2, claims = e.claims + 1,
                 record = COALESCE(u.record, e.record),
                 updated_at = CASE WHEN u.record IS NULL THEN e.updated_at ELSE $2 END
             FROM UNNEST($3::TEXT[], $4::TEXT[]) AS u(id, record)
             WHERE e.id = u.id
             RETURNING e.id, e.claims",
        )
        .await
        .map_err(err(CLAIM))?;
    let ids: Vec<&str> = records.iter().map(|(id, _)| *id).collect();
    let texts: Vec<Option<&str>> = records.iter().map(|(_, r)| r.as_deref()).collect();
    client
        .query(&statement, &[&worker, &now_ms(), &ids, &texts])
        .await
        .map_err(err(CLAIM))?
        .iter()
        .map(|row| {
            let claims: i32 = col(row, 1, CLAIM)?;
            Ok((
                col(row, 0, CLAIM)?,
                u32::try_from(claims).unwrap_or_default(),
            ))
        })
        .collect()
}

/// `record` moved from CREATED (or RESTARTED) to RUNNING now, as a claim moves it.
fn started(record: &mut ExecutionRecord) {
    record.state = "RUNNING".into();
    record.histories.push(StateChange {
        state: "RUNNING".into(),
        // What the table keeps: milliseconds.
        at: from_ms(now_ms()),
    });
}

#[async_trait]
impl ExecutionQueue for PgStore {
    async fn create_claimed(
        &self,
        record: &ExecutionRecord,
        inputs: Option<&SecretValue>,
        worker: &str,
    ) -> Result<(), StoreError> {
        self.create(record, inputs, Some(worker)).await
    }

    async fn claim(
        &self,
        tenant: &str,
        worker: &str,
        limit: u32,
        resume_after: Duration,
    ) -> Result<Vec<Claimed>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(err(CLAIM))?;
        let rows = lock_queued(&tx, tenant, limit, resume_after).await?;
        if rows.is_empty() {
            tx.commit().await.map_err(err(CLAIM))?;
            return Ok(Vec::new());
        }
        let mut records = rows
            .iter()
            .map(execution_row)
            .collect::<Result<Vec<_>, _>>()?;
        // A fresh execution has no task runs stored yet; a restarted or taken-over one has.
        let with_runs: Vec<String> = records
            .iter()
            .filter(|r| r.state != "CREATED")
            .map(|r| r.id.clone())
            .collect();
        let mut texts = Vec::with_capacity(records.len());
        for record in &mut records {
            let text = (record.state != "RUNNING").then(|| {
                started(record);
                record.detail_text()
            });
            texts.push(text);
        }
        let held: Vec<(&str, Option<String>)> =
            records.iter().map(|r| r.id.as_str()).zip(texts).collect();
        let ids: Vec<&str> = with_runs.iter().map(String::as_str).collect();
        let (claims, mut runs) =
            futures_util::future::try_join(hold(&tx, worker, &held), task_runs_of(&tx, &ids))
                .await?;
        tx.commit().await.map_err(err(CLAIM))?;
        let mut claimed = Vec::with_capacity(records.len());
        for (mut record, row) in records.into_iter().zip(&rows) {
            record.task_runs = runs.remove(&record.id).unwrap_or_default();
            let claims = claims.get(&record.id).copied().unwrap_or(1);
            let inputs = self
                .open_inputs(&client, tenant, &record.id, row, INPUTS_AT)
                .await
                .map_err(|error| error.to_string());
            claimed.push(Claimed {
                record,
                claims,
                inputs,
            });
        }
        Ok(claimed)
    }

    /// Skips the executions whose row another transaction holds (an end being written): a
    /// heartbeat that waited for them could deadlock with a batch of ends, which lock their
    /// rows in another order, and PostgreSQL would break the cycle only after its
    /// `deadlock_timeout` (1 s), stalling every execution of the batch. An execution being
    /// ended needs no heartbeat, and one whose end failed gets the next.
    async fn heartbeat(&self, worker: &str) -> Result<(), StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(
                "UPDATE executions SET heartbeat_at = $2 WHERE id IN (
                     SELECT id FROM executions WHERE worker = $1 AND state = 'RUNNING'
                     FOR NO KEY UPDATE SKIP LOCKED)",
            )
            .await
            .map_err(err("heartbeat"))?;
        client
            .execute(&statement, &[&worker, &now_ms()])
            .await
            .map_err(err("heartbeat"))?;
        Ok(())
    }

    async fn end_claimed(
        &self,
        record: &ExecutionRecord,
        logs: &[LogRecord],
        worker: &str,
    ) -> Result<bool, StoreError> {
        let end = ClaimedEnd {
            record: record.clone(),
            logs: logs.to_vec(),
            worker: worker.to_owned(),
        };
        self.inner.ends.write(end).await
    }

    async fn requeue(&self, record: &ExecutionRecord, from: &str) -> Result<bool, StoreError> {
        self.requeue_now(record, from).await
    }

    async fn claim_fire(&self, fire: &Fire) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(
                "INSERT INTO trigger_fires (tenant, namespace, flow_id, trigger_id, fire_at)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            )
            .await
            .map_err(err("record a trigger's tick"))?;
        let inserted = client
            .execute(
                &statement,
                &[
                    &fire.tenant,
                    &fire.namespace,
                    &fire.flow_id,
                    &fire.trigger_id,
                    &ms(fire.at),
                ],
            )
            .await
            .map_err(err("record a trigger's tick"))?;
        Ok(inserted > 0)
    }

    async fn meet_window(
        &self,
        window: &ConditionWindow,
        met: &[String],
        at: DateTime<Utc>,
        since: DateTime<Utc>,
    ) -> Result<Vec<String>, StoreError> {
        const DOING: &str = "record what a window met";
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(err(DOING))?;
        // One window at a time: two nodes meeting its last conditions at once both see both.
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtext($1))",
            &[&window_lock(window)],
        )
        .await
        .map_err(err(DOING))?;
        let key = window_key(window);
        let forget = format!("DELETE FROM condition_windows WHERE {WINDOW} AND met_at < $6");
        tx.execute(
            &forget,
            &[key[0], key[1], key[2], key[3], key[4], &ms(since)],
        )
        .await
        .map_err(err(DOING))?;
        for condition in met {
            tx.execute(
                "INSERT INTO condition_windows
                 (tenant, namespace, flow_id, trigger_id, condition_id, met, met_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (tenant, namespace, flow_id, trigger_id, condition_id, met)
                 DO UPDATE SET met_at = excluded.met_at",
                &[key[0], key[1], key[2], key[3], key[4], condition, &ms(at)],
            )
            .await
            .map_err(err(DOING))?;
        }
        let read = format!("SELECT met FROM condition_windows WHERE {WINDOW} AND met_at >= $6");
        let rows = tx
            .query(&read, &[key[0], key[1], key[2], key[3], key[4], &ms(since)])
            .await
            .map_err(err(DOING))?;
        tx.commit().await.map_err(err(DOING))?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }

    async fn reset_window(&self, window: &ConditionWindow) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let reset = format!("DELETE FROM condition_windows WHERE {WINDOW}");
        let deleted = client
            .execute(&reset, &window_key(window))
            .await
            .map_err(err("reset a window"))?;
        Ok(deleted > 0)
    }

    fn signals(&self) -> &QueueSignals {
        &self.inner.signals
    }
}

/// The rows of one condition window, its key as parameters 1 to 5.
const WINDOW: &str =
    "tenant = $1 AND namespace = $2 AND flow_id = $3 AND trigger_id = $4 AND condition_id = $5";

/// A condition window's key, as parameters.
fn window_key(window: &ConditionWindow) -> [&(dyn tokio_postgres::types::ToSql + Sync); 5] {
    [
        &window.tenant,
        &window.namespace,
        &window.flow_id,
        &window.trigger_id,
        &window.condition_id,
    ]
}

/// The name of a condition window's advisory lock (its key's parts, unit-separated).
fn window_lock(window: &ConditionWindow) -> String {
    [
        &window.tenant,
        &window.namespace,
        &window.flow_id,
        &window.trigger_id,
        &window.condition_id,
    ]
    .map(String::as_str)
    .join("\u{1f}")
}
