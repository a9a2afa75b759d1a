//! The execution queue in the file: several processes on one machine may share it, as nodes
//! share PostgreSQL's (their wake-ups come from their own writes, and others' within the
//! waiters' timeout).

use crate::SqliteStore;
use crate::db::err;
use crate::executions::{
    EXECUTION_COLUMNS, execution_row, update_execution, with_task_runs, write_end, write_task_runs,
};
use crate::time::now_ms;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use kestrel_secrets::SecretValue;
use kestrel_store::{
    Claimed, ConditionWindow, ExecutionQueue, ExecutionRecord, ExecutionStore, Fire, LogRecord,
    QueueSignals, StateChange, StoreError,
};
use rusqlite::{Connection, OptionalExtension as _};
use std::time::Duration;

/// Marks `id` as held by `worker` from now on, and returns how many claims it has had.
fn hold(tx: &Connection, id: &str, worker: &str) -> rusqlite::Result<u32> {
    tx.prepare_cached(
        "UPDATE executions SET worker = ?2, heartbeat_at = ?3, claims = claims + 1
         WHERE id = ?1 RETURNING claims",
    )?
    .query_row((id, worker, now_ms()), |r| r.get(0))
}

/// The queued executions of `tenant`, oldest first.
fn queued(
    tx: &Connection,
    tenant: &str,
    limit: u32,
    resume_after: Duration,
) -> rusqlite::Result<Vec<ExecutionRecord>> {
    let stale_before = now_ms() - i64::try_from(resume_after.as_millis()).unwrap_or(i64::MAX);
    let sql = format!(
        "SELECT {EXECUTION_COLUMNS} FROM executions
         WHERE tenant = ?1 AND state IN ('CREATED', 'RESTARTED', 'RUNNING')
           AND (state != 'RUNNING' OR COALESCE(heartbeat_at, 0) < ?2)
         ORDER BY created_at, id LIMIT ?3"
    );
    tx.prepare_cached(&sql)?
        .query_map((tenant, stale_before, limit), execution_row)?
        .collect()
}

fn claim_in(
    tx: &Connection,
    tenant: &str,
    worker: &str,
    limit: u32,
    resume_after: Duration,
) -> rusqlite::Result<Vec<(ExecutionRecord, u32)>> {
    let mut claimed = Vec::new();
    for mut record in queued(tx, tenant, limit, resume_after)? {
        if record.state != "RUNNING" {
            record.state = "RUNNING".into();
            record.histories.push(StateChange {
                state: "RUNNING".into(),
                at: Utc::now(),
            });
            update_execution(tx, &record, None)?;
        }
        let claims = hold(tx, &record.id, worker)?;
        let record = with_task_runs(tx, record)?;
        claimed.push((record, claims));
    }
    Ok(claimed)
}

fn holds(tx: &Connection, record: &ExecutionRecord, worker: &str) -> rusqlite::Result<bool> {
    tx.prepare_cached(
        "SELECT 1 FROM executions
         WHERE tenant = ?1 AND id = ?2 AND worker = ?3 AND ended_at IS NULL",
    )?
    .query_row((&record.tenant, &record.id, worker), |_| Ok(()))
    .optional()
    .map(|found| found.is_some())
}

#[async_trait]
impl ExecutionQueue for SqliteStore {
    async fn create_claimed(
        &self,
        record: &ExecutionRecord,
        inputs: Option<&SecretValue>,
        worker: &str,
    ) -> Result<(), StoreError> {
        self.inner.db.write(|tx| {
            self.insert_sealed(tx, record, inputs)?;
            hold(tx, &record.id, worker)
                .map(drop)
                .map_err(err("write an execution"))
        })
    }

    async fn claim(
        &self,
        tenant: &str,
        worker: &str,
        limit: u32,
        resume_after: Duration,
    ) -> Result<Vec<Claimed>, StoreError> {
        let held = self.inner.db.write(|tx| {
            claim_in(tx, tenant, worker, limit, resume_after).map_err(err("claim executions"))
        })?;
        let mut claimed = Vec::with_capacity(held.len());
        for (record, claims) in held {
            let inputs = ExecutionStore::execution_inputs(self, tenant, &record.id)
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

    async fn heartbeat(&self, worker: &str) -> Result<(), StoreError> {
        self.inner.db.write(|tx| {
            tx.prepare_cached(
                "UPDATE executions SET heartbeat_at = ?2 WHERE worker = ?1 AND state = 'RUNNING'",
            )
            .and_then(|mut s| s.execute((worker, now_ms())))
            .map(drop)
            .map_err(err("heartbeat"))
        })
    }

    async fn end_claimed(
        &self,
        record: &ExecutionRecord,
        logs: &[LogRecord],
        worker: &str,
    ) -> Result<bool, StoreError> {
        let ended = self.inner.db.write(|tx| {
            let write = || -> rusqlite::Result<bool> {
                if !holds(tx, record, worker)? {
                    return Ok(false);
                }
                write_end(tx, record, logs)?;
                Ok(true)
            };
            write().map_err(err("write an ended execution"))
        })?;
        if ended {
            self.inner.signals.ended(&record.id);
        }
        Ok(ended)
    }

    async fn requeue(&self, record: &ExecutionRecord, from: &str) -> Result<bool, StoreError> {
        let requeued = self.inner.db.write(|tx| {
            let write = || -> rusqlite::Result<bool> {
                let ended = tx
                    .prepare_cached(
                        "SELECT 1 FROM executions
                         WHERE tenant = ?1 AND id = ?2 AND ended_at IS NOT NULL",
                    )?
                    .query_row((&record.tenant, &record.id), |_| Ok(()))
                    .optional()?;
                if ended.is_none() || update_execution(tx, record, Some(from))? == 0 {
                    return Ok(false);
                }
                tx.prepare_cached(
                    "UPDATE executions SET worker = NULL, heartbeat_at = NULL, claims = 0
                     WHERE id = ?1",
                )?
                .execute([&record.id])?;
                write_task_runs(tx, record)?;
                Ok(true)
            };
            write().map_err(err("restart an execution"))
        })?;
        if requeued {
            self.inner.signals.queued();
        }
        Ok(requeued)
    }

    async fn claim_fire(&self, fire: &Fire) -> Result<bool, StoreError> {
        self.inner.db.write(|tx| {
            tx.prepare_cached(
                "INSERT INTO trigger_fires (tenant, namespace, flow_id, trigger_id, fire_at)
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
            )
            .and_then(|mut s| {
                s.execute((
                    &fire.tenant,
                    &fire.namespace,
                    &fire.flow_id,
                    &fire.trigger_id,
                    fire.at.timestamp_millis(),
                ))
            })
            .map(|inserted| inserted > 0)
            .map_err(err("record a trigger's tick"))
        })
    }

    async fn meet_window(
        &self,
        window: &ConditionWindow,
        met: &[String],
        at: DateTime<Utc>,
        since: DateTime<Utc>,
    ) -> Result<Vec<String>, StoreError> {
        let key = window_key(window);
        self.inner.db.write(|tx| {
            tx.prepare_cached(&format!(
                "DELETE FROM condition_windows WHERE {WINDOW} AND met_at < ?6"
            ))
            .and_then(|mut s| {
                s.execute((key.0, key.1, key.2, key.3, key.4, since.timestamp_millis()))
            })
            .map_err(err("forget what a window met before its start"))?;
            for condition in met {
                tx.prepare_cached(
                    "INSERT INTO condition_windows
                     (tenant, namespace, flow_id, trigger_id, condition_id, met, met_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT DO UPDATE SET met_at = excluded.met_at",
                )
                .and_then(|mut s| {
                    s.execute((
                        key.0,
                        key.1,
                        key.2,
                        key.3,
                        key.4,
                        condition,
                        at.timestamp_millis(),
                    ))
                })
                .map_err(err("record what a window met"))?;
            }
            tx.prepare_cached(&format!(
                "SELECT met FROM condition_windows WHERE {WINDOW} AND met_at >= ?6"
            ))
            .and_then(|mut s| {
                s.query_map(
                    (key.0, key.1, key.2, key.3, key.4, since.timestamp_millis()),
                    |r| r.get(0),
                )?
                .collect()
            })
            .map_err(err("read what a window met"))
        })
    }

    async fn reset_window(&self, window: &ConditionWindow) -> Result<bool, StoreError> {
        let key = window_key(window);
        self.inner.db.write(|tx| {
            tx.prepare_cached(&format!("DELETE FROM condition_windows WHERE {WINDOW}"))
                .and_then(|mut s| s.execute(key))
                .map(|deleted| deleted > 0)
                .map_err(err("reset a window"))
        })
    }

    fn signals(&self) -> &QueueSignals {
        &self.inner.signals
    }
}

/// The rows of one condition window, its key as parameters 1 to 5.
const WINDOW: &str = "tenant = ?1 AND namespace = ?2 AND flow_id = ?3 AND trigger_id = ?4 \
                      AND condition_id = ?5";

/// A condition window's key, as parameters.
fn window_key(window: &ConditionWindow) -> (&str, &str, &str, &str, &str) {
    (
        &window.tenant,
        &window.namespace,
        &window.flow_id,
        &window.trigger_id,
        &window.condition_id,
    )
}
