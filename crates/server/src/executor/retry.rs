//! Retries in new executions (`behavior: CREATE_NEW_EXECUTION`) on the server: when an
//! execution ends RETRIED, a new execution of the same flow revision, inputs and labels is
//! written to the queue at once, CREATED, its sealed payload saying where it sits in the chain
//! (attempt number, the first execution's start and `system.correlationId`) and when it is
//! due. Whichever worker claims it (here or on another node, after a crash too) waits until it
//! is due without holding a slot, then runs it as the engine's next execution of the chain.

use super::{Slot, record};
use crate::error::AppError;
use crate::state::AppState;
use chrono::{DateTime, Utc};
use kestrel_engine::{CancelToken, NewExecution, RetryChain};
use kestrel_secrets::SecretValue;
use kestrel_store::ExecutionRecord;
use serde_json::{Value, json};
use std::sync::Arc;

/// The key of the sealed payload that holds an execution's place in its chain.
const KEY: &str = "retryChain";

/// A new execution's place in its chain, and when it is due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Due {
    pub(super) chain: RetryChain,
    pub(super) at: DateTime<Utc>,
}

/// The new execution a RETRIED one asks for, and the RETRIED one's sealed payload.
pub(super) struct InPlace<'a> {
    pub(super) next: NewExecution,
    pub(super) payload: &'a SecretValue,
}

/// Writes the new execution `in_place` asks for in `retried`'s place (logging why not when
/// it cannot be written): the same flow revision, shown inputs and labels, and the same sealed
/// payload with its place in the chain.
pub(super) async fn start_in_place(
    state: &AppState,
    retried: &ExecutionRecord,
    in_place: InPlace<'_>,
) {
    match write_in_place(state, retried, in_place).await {
        Ok(id) => crate::log::info(&format!(
            "execution {} ended RETRIED: execution {id} runs in its place",
            retried.id
        )),
        Err(error) => crate::log::error(&format!(
            "write the new execution of RETRIED execution {}: {error}",
            retried.id
        )),
    }
}

async fn write_in_place(
    state: &AppState,
    retried: &ExecutionRecord,
    InPlace { next, payload }: InPlace<'_>,
) -> Result<String, AppError> {
    let now = Utc::now();
    let due = Due {
        chain: next.chain,
        at: now + chrono::Duration::from_std(next.after).unwrap_or_default(),
    };
    let mut created = ExecutionRecord {
        id: kestrel_engine::new_id(),
        state: String::new(),
        histories: Vec::new(),
        outputs: json!({}),
        task_runs: Vec::new(),
        created_at: now,
        ended_at: None,
        ..retried.clone()
    };
    record::entered(&mut created, "CREATED", now);
    let sealed = with_due(payload, &due)?;
    state
        .0
        .store
        .create_execution(&created, Some(&sealed))
        .await?;
    Ok(created.id)
}

/// `payload` with `due` written in.
fn with_due(payload: &SecretValue, due: &Due) -> Result<SecretValue, AppError> {
    let mut value: Value = serde_json::from_str(payload.expose_secret())
        .map_err(|_| AppError::Internal("an execution's stored inputs cannot be read".into()))?;
    value[KEY] = json!({
        "number": due.chain.number,
        "firstStarted": due.chain.first_started.to_rfc3339(),
        "correlationId": due.chain.correlation_id,
        "due": due.at.to_rfc3339(),
    });
    let text = zeroize::Zeroizing::new(value.to_string());
    Ok(SecretValue::new(text.to_string()))
}

/// The place in its chain an opened payload gives, if any.
pub(super) fn due_of(payload: &Value) -> Option<Due> {
    let place = payload.get(KEY)?;
    let time = |key: &str| {
        DateTime::parse_from_rfc3339(place[key].as_str()?)
            .ok()
            .map(|at| at.with_timezone(&Utc))
    };
    Some(Due {
        chain: RetryChain {
            number: u32::try_from(place["number"].as_u64()?).ok()?,
            first_started: time("firstStarted")?,
            correlation_id: place["correlationId"].as_str()?.to_owned(),
        },
        at: time("due")?,
    })
}

/// Waits until `at` (or a kill) without a slot of the pool, then takes one: the slot the
/// execution runs in (its parent's kind, which holds none, once killed or when the pool
/// stopped: a killed one ends without running, a stopped one is killed by the stop).
pub(super) async fn wait_until(
    state: &AppState,
    at: DateTime<Utc>,
    cancel: &CancelToken,
    slot: Slot,
) -> Slot {
    drop(slot);
    let executor = &state.0.executor;
    let wait = (at - Utc::now()).to_std().unwrap_or_default();
    tokio::select! {
        () = tokio::time::sleep(wait) => {}
        () = cancel.cancelled() => return executor.parents_slot(),
    }
    tokio::select! {
        permit = Arc::clone(&executor.permits).acquire_owned() => match permit {
            Ok(permit) => executor.slot(permit),
            Err(_) => executor.parents_slot(),
        },
        () = cancel.cancelled() => executor.parents_slot(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_place_in_the_chain_survives_the_sealed_payload() {
        let payload = SecretValue::new(json!({"inputs": {"password": "hunter2"}}).to_string());
        let due = Due {
            chain: RetryChain {
                number: 3,
                first_started: Utc::now() - chrono::Duration::seconds(5),
                correlation_id: "first-id".into(),
            },
            at: Utc::now(),
        };
        let sealed = with_due(&payload, &due).unwrap();
        let opened: Value = serde_json::from_str(sealed.expose_secret()).unwrap();
        assert_eq!(opened["inputs"]["password"], "hunter2");
        let read = due_of(&opened).unwrap();
        assert_eq!(read.chain.number, 3);
        assert_eq!(read.chain.correlation_id, "first-id");
        assert_eq!(
            read.chain.first_started.timestamp_millis(),
            due.chain.first_started.timestamp_millis()
        );
        assert_eq!(due_of(&json!({"inputs": {}})), None);
    }
}
