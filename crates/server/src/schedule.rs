//! Schedule triggers in the server: a background task starts an execution each time a stored
//! flow's `io.kestra.plugin.core.trigger.Schedule` trigger comes due, through the same path as
//! an API trigger (stored, run on the pool, with the trigger's inputs and `trigger` variable).
//!
//! The stored flows are read again at every tick (when the clock reaches the next fire time,
//! and at least every [`RELOAD`]), so flows created, changed, disabled or deleted through the
//! API count from the next tick on. Each tick starts what came due since the previous one:
//! nothing fires twice, and a flow deleted before its time never fires again. Every server
//! sharing the store sees each tick: the one that records it first in the store
//! (`claim_fire`) starts its execution, so a tick fires once across nodes.

use crate::error::AppError;
use crate::executor::{self, Submission};
use crate::flows::{LoadedFlow, StoredFlows};
use crate::state::AppState;
use chrono::{DateTime, Utc};
use kestrel_engine::{Clock, Fire, Scheduler};
use kestrel_flow::Flow;
use kestrel_secrets::SecretValue;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How often the stored flows are read again when no trigger comes due sooner (in real
/// time, whatever the clock).
const RELOAD: Duration = Duration::from_secs(1);

/// The scheduler's clock, and how far it has started what came due.
pub(crate) struct Schedules {
    pub(crate) clock: Arc<dyn Clock>,
    done: watch::Sender<Option<DateTime<Utc>>>,
}

impl Schedules {
    pub(crate) fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            done: watch::Sender::new(None),
        }
    }
}

/// What the loop keeps from tick to tick.
#[derive(Default)]
struct Memory {
    /// The stored flows, each revision parsed when it has Schedule triggers that can fire.
    flows: StoredFlows<(Arc<LoadedFlow>, Arc<Flow>)>,
    /// When each trigger (flow address and trigger id) last fired, for `trigger.previous`.
    previous: HashMap<(String, String, String), DateTime<Utc>>,
}

/// Starts the executions of the stored flows' Schedule triggers as they come due, forever.
pub(crate) async fn run(state: AppState) {
    let clock = Arc::clone(&state.0.schedule.clock);
    let mut since = clock.now();
    let mut memory = Memory::default();
    loop {
        let now = clock.now().max(since);
        let next = match tick(&state, &mut memory, since, now).await {
            Ok(next) => {
                since = now;
                state.0.schedule.done.send_replace(Some(now));
                next
            }
            Err(error) => {
                // Kept `since`: what came due is started at the next tick.
                crate::log::error(&format!("schedule triggers: {error}"));
                None
            }
        };
        let due = async {
            match next {
                Some(at) => clock.sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = due => {}
            () = tokio::time::sleep(RELOAD) => {}
        }
    }
}

/// Starts every execution due in `(since, now]` and answers when the next one is due.
async fn tick(
    state: &AppState,
    memory: &mut Memory,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, AppError> {
    let (store, tenant) = (state.0.store.as_ref(), &state.options().tenant);
    memory.flows.refresh(store, tenant, schedulable).await?;
    let schedulable: Vec<_> = memory.flows.values().cloned().collect();
    let mut scheduler = Scheduler::new(schedulable.iter().map(|(_, f)| Arc::clone(f)), since);
    for mut fire in scheduler.due(now) {
        let key = (
            fire.flow.namespace.clone(),
            fire.flow.id.clone(),
            fire.trigger.id.clone(),
        );
        fire.previous = memory.previous.insert(key, fire.date).or(fire.previous);
        let found = schedulable
            .iter()
            .find(|(_, flow)| Arc::ptr_eq(flow, &fire.flow));
        if let Some((loaded, _)) = found {
            // An error keeps `since`: the tick is tried again, and fires once all the same.
            if first_to_fire(state, &fire).await? {
                start(state, Arc::clone(loaded), &fire).await;
            }
        }
    }
    let flows = &memory.flows;
    memory
        .previous
        .retain(|(namespace, id, _), _| flows.contains(namespace, id));
    Ok(scheduler.next_fire())
}

/// The revision parsed, when it is enabled and has an enabled Schedule trigger.
fn schedulable(record: kestrel_store::FlowRecord) -> Option<(Arc<LoadedFlow>, Arc<Flow>)> {
    let flow = match kestrel_flow::parse_flow(&record.source) {
        Ok(flow) => flow,
        Err(_) => {
            crate::log::warn(&format!(
                "flow {}.{} revision {} no longer validates: its schedules do not fire",
                record.namespace, record.id, record.revision
            ));
            return None;
        }
    };
    let fires = !flow.disabled && flow.schedules.iter().any(|t| !t.disabled);
    fires.then(|| {
        let shared = Arc::new(flow.clone());
        (Arc::new(LoadedFlow { record, flow }), shared)
    })
}

/// Whether this node is the first to see `fire` (it then starts its execution).
async fn first_to_fire(state: &AppState, fire: &Fire) -> Result<bool, AppError> {
    let tick = kestrel_store::Fire {
        tenant: state.options().tenant.clone(),
        namespace: fire.flow.namespace.clone(),
        flow_id: fire.flow.id.clone(),
        trigger_id: fire.trigger.id.clone(),
        at: fire.date,
    };
    Ok(state.0.store.claim_fire(&tick).await?)
}

/// Creates the execution of `fire` as an API trigger would; a refusal is logged.
async fn start(state: &AppState, flow: Arc<LoadedFlow>, fire: &Fire) {
    let inputs = fire
        .trigger
        .inputs
        .iter()
        .map(|(id, value)| {
            let text = match value {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            (id.clone(), SecretValue::new(text))
        })
        .collect();
    let submission = Submission {
        id: None,
        flow,
        inputs,
        trigger: Some(fire.variables()),
        triggered_by: "schedule".into(),
    };
    if let Err(error) = executor::submit(state, submission).await {
        crate::log::warn(&format!(
            "schedule {} of flow {}.{} due at {}: {error}",
            fire.trigger.id, fire.flow.namespace, fire.flow.id, fire.date
        ));
    }
}

impl AppState {
    /// The clock the Schedule triggers fire on.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.0.schedule.clock
    }

    /// Completes once the running server (see [`crate::Server::start`]) has created every
    /// execution its Schedule triggers had due up to `at` on its [`AppState::clock`].
    pub async fn schedules_started(&self, at: DateTime<Utc>) {
        let mut done = self.0.schedule.done.subscribe();
        // The sender lives in the state, which this borrow keeps alive.
        let _ = done
            .wait_for(|done| done.is_some_and(|done| done >= at))
            .await;
    }
}
