//! Executions through the queue every node shares (kestrel-store's `ExecutionQueue`). A
//! submission is written to the store with its inputs sealed: when this process runs a worker
//! and has a free slot (`worker.threads`), it holds the execution from its creation and runs
//! it at once; otherwise the execution waits in the queue (CREATED) until a worker, here or on
//! another node, claims it ([`worker`]). While an execution runs here, readers see it from
//! memory ([`Live`]); elsewhere they read the store, woken when executions end.
//!
//! A worker heartbeats while it holds executions; those of a worker that stopped heartbeating
//! (a crash, a kill) are taken over by another after `worker.resume-after` and run again from
//! their start, their task runs as new attempts. Ends are fenced: the result of an execution
//! that another node ended (a kill) or took over is dropped. A graceful stop lets running
//! executions finish for a grace period, then kills them; queued ones stay in the queue.

mod concurrency;
mod live;
pub(crate) mod record;
mod restart;
mod retry;
mod subflow;
mod worker;

pub(crate) use live::{Live, LiveEvent};
pub(crate) use restart::{replay, restart};
pub(crate) use worker::start_worker;

use crate::error::AppError;
use crate::flows::LoadedFlow;
use crate::state::AppState;
use chrono::Utc;
use concurrency::Admission;
use kestrel_engine::{Host, Inputs, Origin};
use kestrel_flow::{Flowable, FlowableKind, InputDef, TaskKind};
use kestrel_secrets::SecretValue;
use kestrel_store::{EndWatch, ExecutionRecord, LogRecord};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// The log entry of an execution a stop interrupted.
const STOPPED: &str = "kestrel stopped while this execution was running";

/// The longest a reader of an execution running elsewhere waits before it reads the store
/// again: ends on other nodes are not always signalled.
const STORE_POLL: Duration = Duration::from_secs(1);

/// How many times the end of an execution is written before it is given up on (the store
/// failing): an execution whose end is not stored stays RUNNING under this worker.
const END_TRIES: u32 = 5;

/// The pool and the executions it holds.
pub(crate) struct Executor {
    /// This process's name in the queue: `<host>-<pid>-<8 hex>`.
    worker_id: String,
    permits: Arc<Semaphore>,
    /// Told when a slot frees, so that the worker claims at once.
    slot_freed: Arc<Notify>,
    live: Mutex<HashMap<String, Arc<Live>>>,
    inflight: Arc<Inflight>,
    stopping: AtomicBool,
    /// Whether the worker's claim loop and heartbeat were started.
    started: AtomicBool,
}

/// Inputs as given, as text, by id.
type RawInputs = Vec<(String, SecretValue)>;

/// Where an execution sits among subflows: a child's labels from its parent, and how deep it
/// is (0 for an execution nothing started as a subflow).
#[derive(Debug, Clone, Default)]
pub(crate) struct Lineage {
    labels: Vec<(String, String)>,
    depth: usize,
}

/// A request for an execution of a flow.
pub(crate) struct Submission {
    /// The execution's id when the caller drew it (to store its uploads first); else drawn
    /// here.
    pub(crate) id: Option<String>,
    pub(crate) flow: Arc<LoadedFlow>,
    /// The inputs given, as text.
    pub(crate) inputs: RawInputs,
    /// The `trigger` variable of a triggered execution (a webhook's request).
    pub(crate) trigger: Option<Value>,
    /// Who triggered it (`user:ada`, `token:ci`, `schedule`, `webhook`): the audit trail
    /// names them with every secret the execution reads.
    pub(crate) triggered_by: String,
}

/// An execution just written: as it was created, and how its end will be known.
pub(crate) struct Submitted {
    pub(crate) record: ExecutionRecord,
    follow: Follow,
}

/// How the end of a submitted execution will be known.
enum Follow {
    /// It runs here: its [`Live`].
    Here(Arc<Live>),
    /// It waits in the queue: the ends the store signals, watched from before its creation
    /// (so that no read is needed before the first signal).
    Queued(EndWatch),
}

/// A slot of the pool held by one execution; its release wakes the worker.
struct Slot {
    /// Always held until the drop, which releases it before telling the worker.
    permit: Option<OwnedSemaphorePermit>,
    freed: Arc<Notify>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        // Released first: a worker woken before the permit is back finds no free slot and
        // sleeps until the next poll with an execution waiting in the queue.
        drop(self.permit.take());
        self.freed.notify_one();
    }
}

struct Job {
    live: Arc<Live>,
    flow: Arc<LoadedFlow>,
    inputs: Inputs,
    trigger: Option<Value>,
    triggered_by: String,
    /// The server's own entries written before the engine's (a resumed execution's notice).
    prelude: Vec<LogRecord>,
    lineage: Lineage,
    /// Its sealed payload, which a new execution in its place is written with.
    payload: SecretValue,
    /// When it runs in a RETRIED one's place: where it sits in the chain, and when it is due.
    due: Option<retry::Due>,
    /// When a restart put it back in the queue: its task runs as planned.
    restarted: Vec<kestrel_engine::TaskRun>,
    slot: Slot,
    _inflight: InflightGuard,
}

impl Executor {
    pub(crate) fn new(threads: usize) -> Self {
        Self {
            worker_id: worker_id(),
            permits: Arc::new(Semaphore::new(threads.max(1))),
            slot_freed: Arc::new(Notify::new()),
            live: Mutex::new(HashMap::new()),
            inflight: Arc::new(Inflight::default()),
            stopping: AtomicBool::new(false),
            started: AtomicBool::new(false),
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

    /// This process's name in the queue.
    pub(crate) fn worker_id(&self) -> &str {
        &self.worker_id
    }

    fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// A free slot, wrapped so that its release wakes the worker.
    fn slot(&self, permit: OwnedSemaphorePermit) -> Slot {
        Slot {
            permit: Some(permit),
            freed: Arc::clone(&self.slot_freed),
        }
    }

    /// The slot of a subflow's child: its parent's, which holds a permit while it waits.
    fn parents_slot(&self) -> Slot {
        Slot {
            permit: None,
            freed: Arc::clone(&self.slot_freed),
        }
    }
}

/// `<host>-<pid>-<8 hex>`: unique per process, and says where it runs.
fn worker_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "kestrel".to_owned());
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}-{}-{}", std::process::id(), &random[..8])
}

/// Creates an execution of `submission`: it runs here at once when this process runs a worker
/// with a free slot, else it waits in the queue. 422 for inputs the flow does not accept, 409
/// for a disabled flow.
pub(crate) async fn submit(
    state: &AppState,
    submission: Submission,
) -> Result<Submitted, AppError> {
    submit_registering(state, submission, Vec::new()).await
}

/// [`submit`], with values the execution registers for masking from its start, by name (the
/// key of the Webhook trigger that started it).
pub(crate) async fn submit_registering(
    state: &AppState,
    submission: Submission,
    registered: RawInputs,
) -> Result<Submitted, AppError> {
    submit_in(state, submission, registered, Lineage::default()).await
}

/// [`submit_registering`], for an execution of `lineage`. A subflow's child runs here at once,
/// in its parent's slot: a parent waiting for a child queued behind it would wait forever.
async fn submit_in(
    state: &AppState,
    submission: Submission,
    registered: RawInputs,
    lineage: Lineage,
) -> Result<Submitted, AppError> {
    let executor = &state.0.executor;
    if executor.is_stopping() {
        return Err(AppError::Unavailable("the server is stopping".into()));
    }
    let Submission {
        id,
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
    // A subflow's child runs in its parent's slot, whatever its flow's limit.
    let admission = match lineage.depth {
        0 => concurrency::admit(state, &flow.flow).await?,
        _ => Admission::Run,
    };
    let mut inputs = parse_inputs(&flow, raw.iter().cloned(), &triggered_by)
        .map_err(|error| AppError::invalid(error.to_string()))?;
    for (name, value) in &registered {
        inputs.register_secret(name, value.clone());
    }
    start_worker(state);
    let now = Utc::now();
    let id = id.unwrap_or_else(kestrel_engine::new_id);
    let labels = kestrel_engine::execution_labels(&flow.flow.labels, lineage.labels.clone(), &id);
    let mut created = ExecutionRecord {
        id,
        tenant: state.0.options.tenant.clone(),
        namespace: flow.flow.namespace.clone(),
        flow_id: flow.flow.id.clone(),
        flow_revision: flow.record.revision,
        state: String::new(),
        histories: Vec::new(),
        inputs: Value::Object(state.0.engines.engine().shown_inputs(&inputs)),
        outputs: json!({}),
        labels: record::labels_json(&labels),
        task_runs: Vec::new(),
        created_at: now,
        ended_at: None,
    };
    record::entered(&mut created, "CREATED", now);
    let sealed = sealed_payload(&raw, trigger.as_ref(), &registered, &triggered_by, &lineage);
    let store = &state.0.store;
    let ends = store.signals().on_ended();
    match admission {
        Admission::Run => {}
        Admission::Queue => {
            record::entered(&mut created, concurrency::QUEUED, now);
            store.create_execution(&created, Some(&sealed)).await?;
            return Ok(Submitted {
                record: created,
                follow: Follow::Queued(ends),
            });
        }
        Admission::End(final_state, entry) => {
            store.create_execution(&created, None).await?;
            record::ended(&mut created, final_state);
            store.end_execution(&created, &[entry]).await?;
            return Ok(Submitted {
                record: created,
                follow: Follow::Queued(ends),
            });
        }
    }
    let slot = match lineage.depth {
        0 => free_slot(state).map(|permit| executor.slot(permit)),
        _ => Some(executor.parents_slot()),
    };
    let Some(slot) = slot else {
        store.create_execution(&created, Some(&sealed)).await?;
        return Ok(Submitted {
            record: created,
            follow: Follow::Queued(ends),
        });
    };
    record::entered(&mut created, "RUNNING", now);
    store
        .create_claimed(&created, Some(&sealed), &executor.worker_id)
        .await?;
    if lineage.depth == 0 && !concurrency::may_start(state, &flow.flow, &mut created).await? {
        drop(slot);
        return Ok(Submitted {
            record: created,
            follow: Follow::Queued(ends),
        });
    }
    let live = Arc::new(Live::new(created.clone(), 0));
    let job = Job {
        live: Arc::clone(&live),
        flow,
        inputs,
        trigger,
        triggered_by,
        prelude: Vec::new(),
        lineage,
        payload: sealed,
        due: None,
        restarted: Vec::new(),
        slot,
        _inflight: executor.inflight.enter(),
    };
    start(state, job);
    Ok(Submitted {
        record: created,
        follow: Follow::Here(live),
    })
}

/// Who triggered an execution a Flow trigger started.
pub(crate) const FLOW_TRIGGER: &str = "flow";

/// The inputs of an execution of `flow`, typed; those of an execution a Flow trigger started
/// as Kestra takes them (a required input not given is null).
fn parse_inputs(
    flow: &LoadedFlow,
    raw: impl IntoIterator<Item = (String, SecretValue)>,
    triggered_by: &str,
) -> Result<Inputs, kestrel_engine::InputError> {
    if triggered_by == FLOW_TRIGGER {
        Inputs::parse_triggered(&flow.flow.inputs, raw)
    } else {
        Inputs::parse(&flow.flow.inputs, raw)
    }
}

/// A free slot of this process's worker, if it runs one.
fn free_slot(state: &AppState) -> Option<OwnedSemaphorePermit> {
    let executor = &state.0.executor;
    state.0.options.worker.enabled.then_some(())?;
    Arc::clone(&executor.permits).try_acquire_owned().ok()
}

/// What a worker (here or on another node) needs to run an execution: its inputs as given,
/// its trigger, the values it registers at start, who triggered it, and its lineage.
fn sealed_payload(
    raw: &[(String, SecretValue)],
    trigger: Option<&Value>,
    registered: &[(String, SecretValue)],
    triggered_by: &str,
    lineage: &Lineage,
) -> SecretValue {
    let labels: Map<String, Value> = lineage
        .labels
        .iter()
        .map(|(key, value)| (key.clone(), json!(value)))
        .collect();
    let payload = zeroize::Zeroizing::new(
        json!({
            "inputs": texts(raw),
            "trigger": trigger,
            "registered": texts(registered),
            "triggeredBy": triggered_by,
            "labels": labels,
            "depth": lineage.depth,
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
    lineage: Lineage,
    due: Option<retry::Due>,
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
            lineage: Lineage::default(),
            due: None,
        });
    };
    let value: Value = serde_json::from_str(payload.expose_secret())
        .map_err(|_| "its stored inputs cannot be read".to_owned())?;
    let trigger = Some(value["trigger"].clone()).filter(|t| !t.is_null());
    let triggered_by = value["triggeredBy"].as_str().unwrap_or(UNKNOWN_TRIGGER);
    let labels = value["labels"]
        .as_object()
        .map(|labels| {
            labels
                .iter()
                .map(|(key, v)| (key.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default();
    let depth = value["depth"]
        .as_u64()
        .and_then(|depth| usize::try_from(depth).ok())
        .unwrap_or(0);
    Ok(Opened {
        inputs: secret_texts(&value["inputs"]),
        trigger,
        registered: secret_texts(&value["registered"]),
        triggered_by: triggered_by.to_owned(),
        lineage: Lineage { labels, depth },
        due: retry::due_of(&value),
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

/// Runs the execution, stores its end.
async fn run(state: AppState, job: Job) {
    let Job {
        live,
        flow,
        inputs,
        trigger,
        triggered_by,
        prelude,
        lineage,
        payload,
        due,
        restarted,
        slot,
        _inflight,
    } = job;
    let slot = match &due {
        Some(due) => retry::wait_until(&state, due.at, &live.cancel, slot).await,
        None => slot,
    };
    // Killed while it waited for its retry's delay: it ends without a task run.
    if live.cancel.is_cancelled() {
        drop(slot);
        let mut killed = live.record();
        record::ended(&mut killed, "KILLED");
        end(&state, &live, killed, prelude, None).await;
        return;
    }
    let engine = state.0.engines.engine();
    let (changes, mut changed) = tokio::sync::mpsc::unbounded_channel();
    let listener = live.listener(changes);
    // The Flow triggers listening to RUNNING or PAUSED fire as the execution enters them,
    // in order.
    let firing = state.clone();
    let fired = tokio::spawn(async move {
        while let Some(entered) = changed.recv().await {
            crate::flow_trigger::fire(&firing, &entered).await;
        }
    });
    let launcher = subflow::StoredFlows {
        state: &state,
        triggered_by: &triggered_by,
        depth: lineage.depth,
    };
    let origin = Origin {
        id: Some(live.record().id),
        trigger,
        labels: lineage.labels,
        retry_chain: due.map(|due| due.chain),
        restarted,
        ..Origin::by(triggered_by.clone())
    };
    let host = Host {
        subflows: Some(&launcher),
        resumes: live.take_resumes(),
    };
    let (execution, next) = engine
        .run_one_hosted(&flow.flow, inputs, origin, &listener, &live.cancel, host)
        .await;
    // Those fired for the states it entered go first, then those of its end.
    drop(listener);
    if let Err(error) = fired.await {
        crate::log::error(&format!("flow triggers of a running execution: {error}"));
    }
    drop(slot);
    let offset = live.attempt_offset();
    let mut logs = prelude;
    logs.extend(
        execution
            .logs
            .iter()
            .map(|entry| record::log(entry, offset)),
    );
    if state.0.executor.is_stopping() && execution.state == kestrel_engine::State::Killed {
        logs.push(record::server_log("ERROR", STOPPED));
    }
    let ended = record::finished(live.record(), &execution, offset);
    let in_place = next.map(|next| retry::InPlace {
        next,
        payload: &payload,
    });
    end(&state, &live, ended, logs, in_place).await;
}

/// Stores the end of an execution this worker holds, then writes the new execution to run in
/// its place when it ended RETRIED, fires the Flow triggers it meets and tells its followers
/// and waiters; when another node ended it or took it over meanwhile, drops it.
async fn end(
    state: &AppState,
    live: &Live,
    ended: ExecutionRecord,
    logs: Vec<LogRecord>,
    in_place: Option<retry::InPlace<'_>>,
) {
    let executor = &state.0.executor;
    let id = ended.id.clone();
    let mut tries = 0;
    let stored = loop {
        tries += 1;
        match state
            .0
            .store
            .end_claimed(&ended, &logs, &executor.worker_id)
            .await
        {
            Ok(stored) => break stored,
            Err(error) if tries < END_TRIES => {
                crate::log::warn(&format!(
                    "store the end of execution {id} (retrying): {error}"
                ));
                tokio::time::sleep(STORE_POLL).await;
            }
            Err(error) => {
                crate::log::error(&format!("store the end of execution {id}: {error}"));
                break true;
            }
        }
    };
    if stored {
        // Before the end is told: whoever sees it here sees the executions it started.
        if let Some(in_place) = in_place {
            retry::start_in_place(state, &ended, in_place).await;
        }
        crate::flow_trigger::fire(state, &ended).await;
        live.finish(ended, logs);
    } else {
        crate::log::warn(&format!(
            "execution {id} was ended elsewhere (killed through another node, or taken over by \
             another worker after this one missed its heartbeats): its result here is dropped"
        ));
        live.abandon();
    }
    executor.live().remove(&id);
}

/// The execution `id` once it ended: from `live` when it runs here, else from the store, read
/// again whenever an execution ends and at least every [`STORE_POLL`]. 404 when it is gone.
pub(crate) async fn ended(
    state: &AppState,
    id: &str,
    live: Option<Arc<Live>>,
) -> Result<ExecutionRecord, AppError> {
    if let Some(live) = live
        && let Some(record) = live.ended().await
    {
        return Ok((*record).clone());
    }
    // Subscribed before the first read: an end after it wakes the wait.
    let ends = state.0.store.signals().on_ended();
    read_once_ended(state, id, ends, true).await
}

/// A submitted execution once it ended (see [`ended`]); one that waits in the queue is read
/// from the store only once told that it ended (or after [`STORE_POLL`]).
pub(crate) async fn submitted_ended(
    state: &AppState,
    submitted: Submitted,
) -> Result<ExecutionRecord, AppError> {
    let id = submitted.record.id;
    match submitted.follow {
        Follow::Here(live) => ended(state, &id, Some(live)).await,
        Follow::Queued(ends) => read_once_ended(state, &id, ends, false).await,
    }
}

/// Reads execution `id` (at once when `read_now`, else first when `ends` tells of its end or
/// [`STORE_POLL`] passed) until it ended.
async fn read_once_ended(
    state: &AppState,
    id: &str,
    mut ends: EndWatch,
    mut read_now: bool,
) -> Result<ExecutionRecord, AppError> {
    let store = &state.0.store;
    loop {
        if read_now {
            let found = store
                .get_execution(&state.0.options.tenant, id)
                .await?
                .ok_or_else(|| AppError::NotFound(format!("Execution {id} not found")))?;
            if found.ended_at.is_some() {
                return Ok(found);
            }
        }
        ends.ended_within(id, STORE_POLL).await;
        read_now = true;
    }
}

/// The execution `id` once it ended (see [`ended`]) with its log entries, for a follower of an
/// execution that does not run here.
pub(crate) async fn ended_with_logs(
    state: &AppState,
    id: &str,
) -> Result<(ExecutionRecord, Vec<LogRecord>), AppError> {
    let record = ended(state, id, None).await?;
    let logs = state
        .0
        .store
        .execution_logs(&state.0.options.tenant, id)
        .await?;
    Ok((record, logs))
}

/// Kills an execution: a running one ends KILLED (its task processes killed), a queued one
/// never starts. One running on another node is ended here: its worker's end is then refused
/// and its heartbeat kills its tasks. 404 when absent, 409 when it already ended.
pub(crate) async fn kill(state: &AppState, found: &ExecutionRecord) -> Result<(), AppError> {
    if let Some(live) = state.0.executor.get(&found.id) {
        live.cancel.cancel();
        return Ok(());
    }
    if !matches!(
        found.state.as_str(),
        "CREATED" | "RUNNING" | concurrency::QUEUED | restart::RESTARTED
    ) {
        return Err(AppError::Conflict(format!(
            "Execution {} already ended ({})",
            found.id, found.state
        )));
    }
    let mut killed = found.clone();
    record::ended(&mut killed, "KILLED");
    state.0.store.end_execution(&killed, &[]).await?;
    crate::flow_trigger::fire(state, &killed).await;
    Ok(())
}

/// What a worker needs to run a claimed execution: its flow's revision and its sealed
/// `payload` (read with the claim) opened; why not when they are gone or unreadable.
async fn prepare(
    state: &AppState,
    found: &ExecutionRecord,
    payload: Option<&SecretValue>,
) -> Result<Prepared, String> {
    let flow = state
        .flow_of(found)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("revision {} of its flow is gone", found.flow_revision))?;
    let opened = open_payload(payload)?;
    let payload = payload
        .cloned()
        .unwrap_or_else(|| sealed_payload(&[], None, &[], UNKNOWN_TRIGGER, &Lineage::default()));
    let mut inputs =
        parse_inputs(&flow, opened.inputs, &opened.triggered_by).map_err(|e| e.to_string())?;
    for (name, value) in opened.registered {
        inputs.register_secret(&name, value);
    }
    Ok(Prepared {
        flow,
        inputs,
        trigger: opened.trigger,
        triggered_by: opened.triggered_by,
        lineage: opened.lineage,
        payload,
        due: opened.due,
    })
}

/// What [`prepare`] gives.
struct Prepared {
    flow: Arc<LoadedFlow>,
    inputs: Inputs,
    trigger: Option<Value>,
    triggered_by: String,
    lineage: Lineage,
    payload: SecretValue,
    due: Option<retry::Due>,
}

/// Stops the pool: no new execution is taken, queued ones stay in the queue, running ones get
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

/// The `onResume` inputs of the Pause task `paused` waits in (none when its flow's revision
/// has no such task), with that flow: its FILE inputs are stored as a trigger's.
pub(crate) async fn on_resume_inputs(
    state: &AppState,
    paused: &ExecutionRecord,
) -> Result<(Vec<InputDef>, Arc<LoadedFlow>), AppError> {
    let flow = state.flow_of(paused).await?.ok_or_else(|| {
        AppError::Conflict(format!(
            "revision {} of the flow of execution {} is gone",
            paused.flow_revision, paused.id
        ))
    })?;
    let pauses: Vec<&str> = paused
        .task_runs
        .iter()
        .filter(|run| run.state == "PAUSED")
        .map(|run| run.task_id.as_str())
        .collect();
    let defs = flow
        .flow
        .find_task(|task| pauses.contains(&task.id.as_str()))
        .and_then(|task| match &task.kind {
            TaskKind::Flowable(Flowable {
                kind: FlowableKind::Pause { on_resume, .. },
                ..
            }) => Some(on_resume.clone()),
            _ => None,
        })
        .unwrap_or_default();
    Ok((defs, flow))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sealed_payload_gives_back_inputs_trigger_and_registered_values() {
        let raw = vec![("password".to_owned(), SecretValue::new("hunter2".into()))];
        let key = vec![("webhook".to_owned(), SecretValue::new("k3y-value".into()))];
        let trigger = json!({"body": {"a": 1}});
        let lineage = Lineage {
            labels: vec![("k".into(), "v".into())],
            depth: 2,
        };
        let sealed = sealed_payload(&raw, Some(&trigger), &key, "webhook", &lineage);
        let opened = open_payload(Some(&sealed)).unwrap();
        assert_eq!(opened.inputs.len(), 1);
        assert_eq!(opened.inputs[0].1.expose_secret(), "hunter2");
        assert_eq!(opened.registered[0].1.expose_secret(), "k3y-value");
        assert_eq!(opened.trigger, Some(trigger));
        assert_eq!(opened.triggered_by, "webhook");
        assert_eq!(opened.lineage.labels, lineage.labels);
        assert_eq!(opened.lineage.depth, 2);
        let before = open_payload(None).unwrap();
        assert_eq!(
            (before.inputs.len(), before.triggered_by.as_str()),
            (0, "unknown")
        );
    }
}
