//! `/api/v1/main/logs/{executionId}`: an execution's log entries, filtered; and `/follow`, the
//! same as Server-Sent Events while it runs (one running on another node sends its entries
//! once it ended, when the store has them). Entries were masked before they were kept.

use super::executions::find;
use crate::auth::Caller;
use crate::error::AppError;
use crate::executor::{self, LiveEvent};
use crate::extract::{Params, Path, Query};
use crate::state::AppState;
use crate::view::log_json;
use axum::Json;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, BoxStream, Stream, StreamExt as _};
use kestrel_flow::Level;
use kestrel_store::{ExecutionRecord, LogRecord};
use serde_json::Value;
use std::collections::HashMap;
use std::convert::Infallible;
use tokio::sync::broadcast::error::RecvError;

/// Which attempts' entries to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attempts {
    /// The last attempt of each task run (the default).
    Last,
    /// This attempt number.
    Number(u32),
    /// Every attempt.
    All,
}

/// The filters of `GET /logs/{executionId}`.
struct Filter {
    min_level: Level,
    task_id: Option<String>,
    attempts: Attempts,
}

impl Filter {
    fn from_params(params: &Params) -> Result<Self, AppError> {
        let min_level = match params.get("minLevel").filter(|l| !l.is_empty()) {
            None => Level::Trace,
            Some(name) => Level::from_name(&name.to_ascii_uppercase()).ok_or_else(|| {
                AppError::invalid(format!(
                    "minLevel: '{name}' is not one of TRACE, DEBUG, INFO, WARN, ERROR"
                ))
            })?,
        };
        let attempts = match params.get("attempt").map(String::as_str) {
            None | Some("") => Attempts::Last,
            Some(all) if all.eq_ignore_ascii_case("all") => Attempts::All,
            Some(number) => Attempts::Number(number.parse().map_err(|_| {
                AppError::invalid(format!("attempt: '{number}' is not a number nor 'all'"))
            })?),
        };
        Ok(Self {
            min_level,
            task_id: params.get("taskId").filter(|t| !t.is_empty()).cloned(),
            attempts,
        })
    }

    /// Whether `log` passes; `last` gives each task run's last attempt.
    fn keeps(&self, log: &LogRecord, last: &HashMap<&str, u32>) -> bool {
        let level = Level::from_name(&log.level).unwrap_or(Level::Info);
        let attempt_ok = match (self.attempts, log.task_run_id.as_deref(), log.attempt) {
            (Attempts::All, _, _) | (_, None, _) | (_, _, None) => true,
            (Attempts::Number(n), _, Some(a)) => a == n,
            (Attempts::Last, Some(run), Some(a)) => last.get(run).is_none_or(|&l| a == l),
        };
        level >= self.min_level
            && attempt_ok
            && self
                .task_id
                .as_ref()
                .is_none_or(|t| log.task_id.as_ref() == Some(t))
    }
}

fn last_attempts(record: &ExecutionRecord) -> HashMap<&str, u32> {
    record
        .task_runs
        .iter()
        .map(|run| (run.id.as_str(), run.attempt))
        .collect()
}

pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(params): Query<Params>,
) -> Result<Json<Value>, AppError> {
    let filter = Filter::from_params(&params)?;
    let (record, live) = find(&state, &caller, &id).await?;
    let (record, logs) = match live {
        Some(live) => live.snapshot(),
        None => {
            let logs = state
                .0
                .store
                .execution_logs(&state.options().tenant, &id)
                .await?;
            (record, logs)
        }
    };
    let last = last_attempts(&record);
    let shown: Vec<Value> = logs
        .iter()
        .filter(|log| filter.keeps(log, &last))
        .map(|log| log_json(&record, log))
        .collect();
    Ok(Json(Value::Array(shown)))
}

fn event(record: &ExecutionRecord, log: &LogRecord) -> Result<Event, Infallible> {
    Ok(Event::default().data(log_json(record, log).to_string()))
}

/// Every entry so far, then each new one as it comes, until the execution ends.
pub(super) async fn follow(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, AppError> {
    let (record, live) = find(&state, &caller, &id).await?;
    let events = match live {
        Some(live) => live_events(record, &live),
        None => stored_events(state, id),
    };
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

/// The entries of an execution not running here, once it ended (the store has none before).
fn stored_events(state: AppState, id: String) -> BoxStream<'static, Result<Event, Infallible>> {
    let ended = async move {
        let events: Vec<_> = match executor::ended_with_logs(&state, &id).await {
            Ok((record, logs)) => logs.iter().map(|log| event(&record, log)).collect(),
            // Gone meanwhile (purged): nothing more to send.
            Err(_) => Vec::new(),
        };
        stream::iter(events)
    };
    stream::once(ended).flatten().boxed()
}

/// The entries of an execution running here so far, then each as it comes.
fn live_events(
    record: ExecutionRecord,
    live: &executor::Live,
) -> BoxStream<'static, Result<Event, Infallible>> {
    let (past, receiver) = live.follow();
    let past: Vec<_> = past.iter().map(|log| event(&record, log)).collect();
    let coming = stream::unfold(Some(receiver), move |receiver| {
        let record = record.clone();
        async move {
            let mut receiver = receiver?;
            loop {
                match receiver.recv().await {
                    Ok(LiveEvent::Log(log)) => return Some((event(&record, &log), Some(receiver))),
                    // A follower too slow for the buffer misses entries; the list has them all.
                    Err(RecvError::Lagged(_)) => {}
                    Ok(LiveEvent::End) | Err(RecvError::Closed) => return None,
                }
            }
        }
    });
    stream::iter(past).chain(coming).boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn log(level: &str, task: &str, attempt: u32) -> LogRecord {
        LogRecord {
            task_id: Some(task.into()),
            task_run_id: Some(format!("{task}-run")),
            attempt: Some(attempt),
            at: Utc::now(),
            level: level.into(),
            message: "m".into(),
        }
    }

    fn filter(pairs: &[(&str, &str)]) -> Filter {
        let params: Params = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Filter::from_params(&params).unwrap()
    }

    #[test]
    fn the_last_attempt_is_shown_unless_another_is_asked_for() {
        let last = HashMap::from([("t-run", 2)]);
        let (first, second) = (log("INFO", "t", 1), log("INFO", "t", 2));
        let default = filter(&[]);
        assert!(!default.keeps(&first, &last) && default.keeps(&second, &last));
        let one = filter(&[("attempt", "1")]);
        assert!(one.keeps(&first, &last) && !one.keeps(&second, &last));
        let all = filter(&[("attempt", "all")]);
        assert!(all.keeps(&first, &last) && all.keeps(&second, &last));
    }

    #[test]
    fn level_and_task_filters_apply() {
        let last = HashMap::new();
        let warn = filter(&[("minLevel", "WARN")]);
        assert!(!warn.keeps(&log("INFO", "t", 1), &last));
        assert!(warn.keeps(&log("ERROR", "t", 1), &last));
        let task = filter(&[("taskId", "u")]);
        assert!(!task.keeps(&log("INFO", "t", 1), &last));
        assert!(task.keeps(&log("INFO", "u", 1), &last));
        let bad = Filter::from_params(&[("minLevel".to_string(), "LOUD".to_string())].into());
        assert!(bad.is_err());
    }
}
