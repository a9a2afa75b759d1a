//! Executions on a worker pool in this process: at most `worker.threads` run at once, the
//! others wait in order. Each is written to the store when created (with its inputs sealed),
//! when it starts, and when it ends (task runs and logs with it); while it runs, readers see it
//! from memory ([`Live`]).
//!
//! A restart resumes the executions that were waiting and ends those that were running as
//! FAILED, with a log entry saying why; a graceful stop lets running executions finish for a
//! grace period, then kills them, and leaves waiting ones to the next start.

mod live;
pub(crate) mod record;

pub(crate) use live::{Live, LiveEvent};

use crate::error::AppError;
use crate::flows::LoadedFlow;
use crate::state::AppState;
use chrono::Utc;
use kestrel_engine::{Inputs, Origin};
use kestrel_secrets::SecretValue;
use kestrel_store::{ExecutionRecord, LogRecord};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// The log entry of an execution a stop interrupted.
const STOPPED: &str = "kestrel stopped while this execution was running";

/// The pool and the executions it holds.
pub(crate) struct Executor {
    permits: Arc<Semaphore>,
    live: Mutex<HashMap<String, Arc<Live>>>,
    inflight: Arc<Inflight>,
    stopping: AtomicBool,
}

/// Inputs as given, as text, by id.
type RawInputs = Vec<(String, SecretValue)>;

/// A request for an execution of a flow.
pub(crate) struct Submission {
    pub(crate) flow: Arc<LoadedFlow>,
    /// The inputs given, as text.
    pub(crate) inputs: RawInputs,
    /// The `trigger` variable of a triggered execution (a webhook's request).
    pub(crate) trigger: Option<Value>,
    /// Who triggered it (`user:ada`, `token:ci`, `schedule`, `webhook`): the audit trail
    /// names them with every secret the execution reads.
    pub(crate) triggered_by: String,
}

struct Job {
    live: Arc<Live>,
    flow: Arc<LoadedFlow>,
    inputs: Inputs,
    trigger: Option<Value>,
    triggered_by: String,
    /// Held from creation when a slot was free then.
    permit: Option<OwnedSemaphorePermit>,
    _inflight: InflightGuard,
}

impl Executor {
    pub(crate) fn new(threads: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(threads.max(1))),
            live: Mutex::new(HashMap::new()),
            inflight: Arc::new(Inflight::default()),
            stopping: AtomicBool::new(false),
        }
    }

    fn live(&self) -> MutexGuard<'_, HashMap<String, Arc<Live>>> {
        // Inserts and removals are single calls: a panic cannot leave the map half-changed.
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The execution `id`, if it is in this process and not ended.
    pub(crate) fn get(&self, id: &str) -> Option<Arc<Live>> {
        self.live().get(id).cloned()
    }

    fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }
}

/// Creates an execution of `submission` and hands it to the pool: it starts at once when a
/// slot is free. 422 for inputs the flow does not accept, 409 for a disabled flow.
pub(crate) async fn submit(
    state: &AppState,
    submission: Submission,
) -> Result<Arc<Live>, AppError> {
    submit_registering(state, submission, Vec::new()).await
}

/// [`submit`], with values the execution registers for masking from its start, by name (the
/// key of the Webhook trigger that started it).
pub(crate) async fn submit_registering(
    state: &AppState,
    submission: Submission,
    registered: RawInputs,
) -> Result<Arc<Live>, AppError> {
    let executor = &state.0.executor;
    if executor.is_stopping() {
        return Err(AppError::Unavailable("the server is stopping".into()));
    }
    let Submission {
        flow,
        inputs: raw,
        trigger,
        triggered_by,
    } = submission;
    if flow.flow.disabled {
        return Err(AppError::Conflict(format!(
            "Flow {}.{} is disabled",
            flow.flow.namespace, flow.flow.id
        )));
    }
    let mut inputs = Inputs::parse(&flow.flow.inputs, raw.iter().cloned())
        .map_err(|error| AppError::invalid(error.to_string()))?;
    for (name, value) in &registered {
        inputs.register_secret(name, value.clone());
    }
    let now = Utc::now();
    let mut created = ExecutionRecord {
        id: record::new_id(),
        tenant: state.0.options.tenant.clone(),
        namespace: flow.flow.namespace.clone(),
        flow_id: flow.flow.id.clone(),
        flow_revision: flow.record.revision,
        state: String::new(),
        histories: Vec::new(),
        inputs: Value::Object(state.0.engines.engine().shown_inputs(&inputs)),
        outputs: json!({}),
        labels: record::labels(&flow.flow),
        task_runs: Vec::new(),
        created_at: now,
        ended_at: None,
    };
    record::entered(&mut created, "CREATED", now);
    let permit = Arc::clone(&executor.permits).try_acquire_owned().ok();
    if permit.is_some() {
        record::entered(&mut created, "RUNNING", now);
    }
    let sealed = sealed_payload(&raw, trigger.as_ref(), &registered, &triggered_by);
    state
        .0
        .store
        .create_execution(&created, Some(&sealed))
        .await?;
    let live = Arc::new(Live::new(created));
    let job = Job {
        live: Arc::clone(&live),
        flow,
        inputs,
        trigger,
        triggered_by,
        permit,
        _inflight: executor.inflight.enter(),
    };
    start(state, job);
    Ok(live)
}

/// What a restart needs to run an execution again: its inputs as given, its trigger, the
/// values it registers at start, and who triggered it.
fn sealed_payload(
    raw: &[(String, SecretValue)],
    trigger: Option<&Value>,
    registered: &[(String, SecretValue)],
    triggered_by: &str,
) -> SecretValue {
    let payload = zeroize::Zeroizing::new(
        json!({
            "inputs": texts(raw),
            "trigger": trigger,
            "registered": texts(registered),
            "triggeredBy": triggered_by,
        })
        .to_string(),
    );
    SecretValue::new(payload.to_string())
}

/// Texts by name, as a JSON object.
fn texts(pairs: &[(String, SecretValue)]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|(id, value)| (id.clone(), json!(value.expose_secret())))
        .collect()
}

/// What a [`sealed_payload`] holds.
struct Opened {
    inputs: RawInputs,
    trigger: Option<Value>,
    registered: RawInputs,
    triggered_by: String,
}

/// Who triggered an execution stored before kestrel recorded it.
const UNKNOWN_TRIGGER: &str = "unknown";

/// The inputs, trigger, registered values and trigger's author of a [`sealed_payload`].
fn open_payload(payload: Option<&SecretValue>) -> Result<Opened, String> {
    let Some(payload) = payload else {
        return Ok(Opened {
            inputs: Vec::new(),
            trigger: None,
            registered: Vec::new(),
            triggered_by: UNKNOWN_TRIGGER.into(),
        });
    };
    let value: Value = serde_json::from_str(payload.expose_secret())
        .map_err(|_| "its stored inputs cannot be read".to_owned())?;
    let trigger = Some(value["trigger"].clone()).filter(|t| !t.is_null());
    let triggered_by = value["triggeredBy"].as_str().unwrap_or(UNKNOWN_TRIGGER);
    Ok(Opened {
        inputs: secret_texts(&value["inputs"]),
        trigger,
        registered: secret_texts(&value["registered"]),
        triggered_by: triggered_by.to_owned(),
    })
}

/// The texts of a JSON object written by [`texts`] (none when absent).
fn secret_texts(object: &Value) -> RawInputs {
    object
        .as_object()
        .map(|map| {
            map.iter()
                .map(|(id, v)| {
                    let text = v.as_str().unwrap_or_default().to_owned();
                    (id.clone(), SecretValue::new(text))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn start(state: &AppState, job: Job) {
    let id = job.live.record().id;
    state.0.executor.live().insert(id, Arc::clone(&job.live));
    tokio::spawn(run(state.clone(), job));
}

/// Waits for a slot, runs the execution, stores its end.
async fn run(state: AppState, job: Job) {
    let Job {
        live,
        flow,
        inputs,
        trigger,
        triggered_by,
        permit,
        _inflight,
    } = job;
    let permit = match permit {
        Some(permit) => permit,
        None => match wait_for_slot(&state, &live).await {
            Some(permit) => permit,
            None => return,
        },
    };
    let engine = state.0.engines.engine();
    let listener = live.listener();
    let origin = Origin {
        id: Some(live.record().id),
        triggered_by,
        trigger,
    };
    let execution = engine
        .run(&flow.flow, inputs, origin, &listener, &live.cancel)
        .await;
    drop(permit);
    let mut logs: Vec<LogRecord> = execution.logs.iter().map(record::log).collect();
    if state.0.executor.is_stopping() && execution.state == kestrel_engine::State::Killed {
        logs.push(record::server_log("ERROR", STOPPED));
    }
    end(
        &state,
        &live,
        record::finished(live.record(), &execution),
        &logs,
    )
    .await;
}

/// A slot for a waiting execution, once it is RUNNING in the store; `None` when it was killed
/// meanwhile (and is now ended) or the server is stopping (it stays CREATED for the next
/// start).
async fn wait_for_slot(state: &AppState, live: &Arc<Live>) -> Option<OwnedSemaphorePermit> {
    let executor = &state.0.executor;
    let permit = tokio::select! {
        permit = Arc::clone(&executor.permits).acquire_owned() => permit.ok(),
        () = live.cancel.cancelled() => None,
    };
    let Some(permit) = permit else {
        if live.cancel.is_cancelled() && !executor.is_stopping() {
            let mut killed = live.record();
            record::ended(&mut killed, "KILLED");
            end(state, live, killed, &[]).await;
        } else {
            // Stopping: it stays CREATED in the store for the next start; whoever waits for
            // it gets it as it is.
            let (waiting, logs) = live.snapshot();
            executor.live().remove(&waiting.id);
            live.finish(waiting, logs);
        }
        return None;
    };
    live.update(|r| record::entered(r, "RUNNING", Utc::now()));
    match state.0.store.transition(&live.record(), "CREATED").await {
        Ok(true) => Some(permit),
        outcome => {
            if let Err(error) = outcome {
                crate::log::error(&format!("start execution {}: {error}", live.record().id));
            }
            let (left, logs) = live.snapshot();
            executor.live().remove(&left.id);
            live.finish(left, logs);
            None
        }
    }
}

/// Stores the end of an execution, then tells its followers and waiters.
async fn end(state: &AppState, live: &Live, ended: ExecutionRecord, logs: &[LogRecord]) {
    if let Err(error) = state.0.store.end_execution(&ended, logs).await {
        crate::log::error(&format!("store the end of execution {}: {error}", ended.id));
    }
    let id = ended.id.clone();
    live.finish(ended, logs.to_vec());
    state.0.executor.live().remove(&id);
}

/// Kills an execution: a running one ends KILLED (its task processes killed), a waiting one
/// never starts. 404 when absent, 409 when it already ended.
pub(crate) async fn kill(state: &AppState, found: &ExecutionRecord) -> Result<(), AppError> {
    if let Some(live) = state.0.executor.get(&found.id) {
        live.cancel.cancel();
        return Ok(());
    }
    if !matches!(found.state.as_str(), "CREATED" | "RUNNING") {
        return Err(AppError::Conflict(format!(
            "Execution {} already ended ({})",
            found.id, found.state
        )));
    }
    // Not in this process (left by another one): ended here.
    let mut killed = found.clone();
    record::ended(&mut killed, "KILLED");
    state.0.store.end_execution(&killed, &[]).await?;
    Ok(())
}

/// At start: executions left waiting are queued again, those left running end FAILED.
/// Returns (resumed, marked interrupted).
pub(crate) async fn resume(state: &AppState) -> Result<(usize, usize), AppError> {
    let store = &state.0.store;
    let unfinished = store.unfinished_executions(&state.0.options.tenant).await?;
    let (mut resumed, mut interrupted) = (0, 0);
    for found in unfinished {
        if found.state == "RUNNING" {
            let reason = format!("{STOPPED} (a crash or a kill); it was not resumed");
            fail(state, found, &reason).await;
            interrupted += 1;
        } else {
            match requeue(state, &found).await {
                Ok(()) => resumed += 1,
                Err(reason) => fail(state, found, &format!("cannot be resumed: {reason}")).await,
            }
        }
    }
    Ok((resumed, interrupted))
}

async fn fail(state: &AppState, mut found: ExecutionRecord, reason: &str) {
    record::ended(&mut found, "FAILED");
    let logs = [record::server_log("ERROR", reason)];
    if let Err(error) = state.0.store.end_execution(&found, &logs).await {
        crate::log::error(&format!("store the end of execution {}: {error}", found.id));
    }
}

async fn requeue(state: &AppState, found: &ExecutionRecord) -> Result<(), String> {
    let store = &state.0.store;
    let flow = crate::flows::load(
        store.as_ref(),
        &found.tenant,
        &found.namespace,
        &found.flow_id,
        Some(found.flow_revision),
    )
    .await
    .map_err(|e| e.to_string())?
    .ok_or_else(|| format!("revision {} of its flow is gone", found.flow_revision))?;
    let payload = store
        .execution_inputs(&found.tenant, &found.id)
        .await
        .map_err(|e| e.to_string())?;
    let opened = open_payload(payload.as_ref())?;
    let mut inputs = Inputs::parse(&flow.flow.inputs, opened.inputs).map_err(|e| e.to_string())?;
    for (name, value) in opened.registered {
        inputs.register_secret(&name, value);
    }
    let job = Job {
        live: Arc::new(Live::new(found.clone())),
        flow: Arc::new(flow),
        inputs,
        trigger: opened.trigger,
        triggered_by: opened.triggered_by,
        permit: None,
        _inflight: state.0.executor.inflight.enter(),
    };
    start(state, job);
    Ok(())
}

/// Stops the pool: no new execution, waiting ones stay for the next start, running ones get
/// `grace` to end before they are killed.
pub(crate) async fn stop(state: &AppState, grace: Duration) {
    let executor = &state.0.executor;
    executor.stopping.store(true, Ordering::SeqCst);
    executor.permits.close();
    if tokio::time::timeout(grace, executor.inflight.idle())
        .await
        .is_ok()
    {
        return;
    }
    let running: Vec<Arc<Live>> = executor.live().values().cloned().collect();
    crate::log::info(&format!("killing {} running execution(s)", running.len()));
    for live in running {
        live.cancel.cancel();
    }
    // Killing is quick; this bound only guards against a task that ignores it.
    let _ = tokio::time::timeout(Duration::from_secs(10), executor.inflight.idle()).await;
}

/// Jobs not yet finished, and a way to wait until there are none.
#[derive(Default)]
struct Inflight {
    count: AtomicUsize,
    idle: Notify,
}

struct InflightGuard(Arc<Inflight>);

impl Inflight {
    fn enter(self: &Arc<Self>) -> InflightGuard {
        self.count.fetch_add(1, Ordering::SeqCst);
        InflightGuard(Arc::clone(self))
    }

    async fn idle(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.count.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for InflightGuard {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sealed_payload_gives_back_inputs_trigger_and_registered_values() {
        let raw = vec![("password".to_owned(), SecretValue::new("hunter2".into()))];
        let key = vec![("webhook".to_owned(), SecretValue::new("k3y-value".into()))];
        let trigger = json!({"body": {"a": 1}});
        let sealed = sealed_payload(&raw, Some(&trigger), &key, "webhook");
        let opened = open_payload(Some(&sealed)).unwrap();
        assert_eq!(opened.inputs.len(), 1);
        assert_eq!(opened.inputs[0].1.expose_secret(), "hunter2");
        assert_eq!(opened.registered[0].1.expose_secret(), "k3y-value");
        assert_eq!(opened.trigger, Some(trigger));
        assert_eq!(opened.triggered_by, "webhook");
        let before = open_payload(None).unwrap();
        assert_eq!(
            (before.inputs.len(), before.triggered_by.as_str()),
            (0, "unknown")
        );
    }
}
