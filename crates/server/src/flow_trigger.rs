//! Flow triggers in the server: when an execution ends, or enters a state a trigger's `states`
//! names while it runs (RUNNING, PAUSED), every stored, enabled flow with an enabled
//! `io.kestra.plugin.core.trigger.Flow` trigger whose `states` name that state and whose
//! conditions all hold gets a new execution, through the same path as an API
//! trigger, with the trigger's `inputs` rendered in the context of the execution that ended
//! and Kestra's `trigger` variable (`executionId`, `namespace`, `flowId`, `flowRevision`,
//! `state`). As in Kestra, a flow never reacts to its own executions.
//!
//! The node that stores an end evaluates the triggers, and each firing is claimed in the store
//! first (`claim_fire`, the claim Schedule triggers use, keyed by the listening flow, the
//! trigger and the execution that ended), so that an end fires each trigger once across nodes.
//!
//! The context is the ended execution as stored, which the engine's edge already masked: a
//! secret an upstream output held reaches the new execution's inputs masked, and the trigger
//! renders without a secret scope (`secret()` fails), so no clear secret enters an input.
//! Rendered inputs are never logged.
//!
//! `MultipleCondition`s and `preconditions` keep what their windows met in the store
//! (`meet_window`), so that every node counts every end and a restart forgets nothing; a window
//! that resets is reset by one node only (`reset_window`), which alone fires.

use crate::error::AppError;
use crate::executor::{self, Submission};
use crate::flows::{LoadedFlow, StoredFlows};
use crate::state::AppState;
use chrono::{DateTime, TimeDelta as Span, Timelike, Utc};
use kestrel_expr::Context;
use kestrel_flow::{Facts, FlowTrigger, Multiple, TimeWindow};
use kestrel_secrets::SecretValue;
use kestrel_store::{ConditionWindow, ExecutionRecord, FlowRecord};
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// The flows that listen.
#[derive(Default)]
pub(crate) struct FlowTriggers {
    /// The stored flows, each revision parsed when it has an enabled Flow trigger.
    flows: tokio::sync::Mutex<StoredFlows<Arc<LoadedFlow>>>,
}

/// The bounds of a multiple condition's window at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
}

impl Window {
    /// The window of `kind` at `now`, as Kestra computes it (UTC); a sliding one is the
    /// `window` before `now`.
    fn at(kind: &TimeWindow, now: DateTime<Utc>) -> Self {
        let day = now
            .with_time(chrono::NaiveTime::MIN)
            .single()
            .unwrap_or(now);
        let (start, end) = match kind {
            TimeWindow::Duration { window, advance } => {
                let window = span(*window);
                let shift = advance.and_then(|a| Span::from_std(a).ok());
                let start = aligned(now, window) + shift.unwrap_or_default();
                (start, start + window - Span::milliseconds(1))
            }
            TimeWindow::Sliding { window } => (now - span(*window), now),
            TimeWindow::Daily { start, end } => {
                (day + since_midnight(*start), day + since_midnight(*end))
            }
            TimeWindow::Deadline { deadline } => (day, day + since_midnight(*deadline)),
        };
        Self { start, end }
    }

    fn contains(&self, now: DateTime<Utc>) -> bool {
        self.start <= now && now <= self.end
    }
}

/// A window's length: a day when absent (Kestra's default).
fn span(window: Option<std::time::Duration>) -> Span {
    window
        .and_then(|w| Span::from_std(w).ok())
        .unwrap_or_else(|| Span::days(1))
}

fn since_midnight(time: chrono::NaiveTime) -> Span {
    Span::seconds(i64::from(time.num_seconds_from_midnight()))
}

/// `now` truncated as Kestra's DURATION_WINDOW does: to the day for a window of days, to the
/// hour for hours, to a multiple of the window's minutes within the hour for minutes.
fn aligned(now: DateTime<Utc>, window: Span) -> DateTime<Utc> {
    let mut at = now.with_nanosecond(0).unwrap_or(now);
    if window.num_days() > 0 {
        at = at.with_hour(0).unwrap_or(at);
    }
    if window.num_hours() > 0 {
        at = at.with_minute(0).unwrap_or(at);
    }
    let minutes = window.num_minutes();
    if minutes > 0 {
        let step = i64::from(now.minute()) / minutes * minutes;
        let hour = at
            .with_second(0)
            .and_then(|t| t.with_minute(0))
            .unwrap_or(at);
        at = hour + Span::minutes(step);
    }
    at
}

/// Fires the Flow triggers `ended` meets; a failure is logged (the end itself is stored).
pub(crate) async fn fire(state: &AppState, ended: &ExecutionRecord) {
    if let Err(error) = fire_all(state, ended).await {
        crate::log::warn(&format!(
            "flow triggers on the end of execution {}: {error}",
            ended.id
        ));
    }
}

async fn fire_all(state: &AppState, ended: &ExecutionRecord) -> Result<(), AppError> {
    let listening = listening(state).await?;
    for firing in firings(state, ended, &listening) {
        if windows_met(state, &firing.windows).await? && claimed(state, &firing, ended).await? {
            start(state, firing, ended).await;
        }
    }
    Ok(())
}

/// A trigger whose conditions `ended` met, with its inputs rendered (`None` when they do not
/// render).
struct Firing {
    listening: Arc<LoadedFlow>,
    trigger_id: String,
    inputs: Option<Vec<(String, SecretValue)>>,
    /// What the end meets of each multiple condition, still to be recorded.
    windows: Vec<Meeting>,
}

/// The conditions of a multiple condition that an end meets, for its window.
struct Meeting {
    window: ConditionWindow,
    met: Vec<String>,
    /// How many conditions the window must meet.
    all: usize,
    since: DateTime<Utc>,
    reset: bool,
}

/// The triggers of `listening` whose `states` and plain conditions the end of `ended` meets,
/// with what it meets of their multiple conditions.
fn firings(
    state: &AppState,
    ended: &ExecutionRecord,
    listening: &[Arc<LoadedFlow>],
) -> Vec<Firing> {
    let labels = labels(&ended.labels);
    let facts = Facts {
        namespace: &ended.namespace,
        flow_id: &ended.flow_id,
        state: &ended.state,
        labels: &labels,
    };
    let engine = state.0.engines.engine();
    let now = Utc::now();
    let mut found = Vec::new();
    for listening in listening {
        let flow = &listening.flow;
        // Kestra's `removeUnwanted`: a flow never triggers on its own executions.
        if flow.namespace == ended.namespace && flow.id == ended.flow_id {
            continue;
        }
        let context = Context::new(variables(listening, ended), None);
        let render = |template: &str| engine.expressions().render(template, &context).ok();
        for trigger in flow.flow_triggers.iter().filter(|t| !t.disabled) {
            if !trigger.states.contains(&ended.state)
                || !trigger.conditions.iter().all(|c| c.holds(&facts, &render))
            {
                continue;
            }
            let meetings = trigger.multiples.iter().map(|multiple| {
                let window = condition_window(state, listening, trigger, multiple);
                meeting(window, multiple, &facts, &render, now)
            });
            // A window whose time is past (a daily deadline) evaluates nothing.
            if let Some(windows) = meetings.collect::<Option<Vec<_>>>() {
                found.push(Firing {
                    listening: Arc::clone(listening),
                    trigger_id: trigger.id.clone(),
                    inputs: rendered_inputs(trigger, &render),
                    windows,
                });
            }
        }
    }
    found
}

/// The stored flows with an enabled Flow trigger, each revision parsed once.
async fn listening(state: &AppState) -> Result<Vec<Arc<LoadedFlow>>, AppError> {
    let (store, tenant) = (state.0.store.as_ref(), &state.options().tenant);
    let mut flows = state.0.flow_triggers.flows.lock().await;
    flows.refresh(store, tenant, parsed_listener).await?;
    Ok(flows.values().cloned().collect())
}

/// The revision parsed, when it is enabled and has an enabled Flow trigger (one that no
/// longer validates listens to nothing).
fn parsed_listener(record: FlowRecord) -> Option<Arc<LoadedFlow>> {
    let flow = kestrel_flow::parse_flow(&record.source).ok()?;
    let listens = !flow.disabled && flow.flow_triggers.iter().any(|t| !t.disabled);
    listens.then(|| Arc::new(LoadedFlow { record, flow }))
}

/// Labels from their stored form, `[{"key", "value"}]`.
fn labels(stored: &Value) -> Vec<(String, String)> {
    let text = |label: &Value, key: &str| label[key].as_str().unwrap_or_default().to_owned();
    stored
        .as_array()
        .map(|all| {
            all.iter()
                .map(|l| (text(l, "key"), text(l, "value")))
                .collect()
        })
        .unwrap_or_default()
}

/// The variables the trigger's inputs and expressions render with, as in Kestra: the listening
/// flow, the ended execution (its inputs, its task outputs as `outputs`, its labels) and its
/// flow outputs as `trigger.outputs`.
fn variables(listening: &LoadedFlow, ended: &ExecutionRecord) -> Value {
    let empty = Map::new();
    let runs = ended.task_runs.iter().map(|run| {
        let outputs = run.outputs.as_object().unwrap_or(&empty);
        (run.task_id.as_str(), run.detail["value"].as_str(), outputs)
    });
    let labels: Map<String, Value> = labels(&ended.labels)
        .into_iter()
        .map(|(key, value)| (key, Value::String(value)))
        .collect();
    json!({
        "flow": {
            "id": listening.flow.id,
            "namespace": listening.flow.namespace,
            "revision": listening.record.revision,
        },
        "execution": {
            "id": ended.id,
            "namespace": ended.namespace,
            "flowId": ended.flow_id,
            "flowRevision": ended.flow_revision,
            "state": ended.state,
            "startDate": crate::view::date(ended.created_at),
        },
        "inputs": ended.inputs,
        "outputs": kestrel_engine::task_outputs(runs),
        "labels": labels,
        "trigger": {"outputs": ended.outputs},
    })
}

/// The key of `multiple`'s window in the store.
fn condition_window(
    state: &AppState,
    listening: &LoadedFlow,
    trigger: &FlowTrigger,
    multiple: &Multiple,
) -> ConditionWindow {
    ConditionWindow {
        tenant: state.options().tenant.clone(),
        namespace: listening.flow.namespace.clone(),
        flow_id: listening.flow.id.clone(),
        trigger_id: trigger.id.clone(),
        condition_id: multiple.id.clone(),
    }
}

/// The conditions of `multiple` that `facts` meets; `None` when its window is not open at
/// `now` (a daily window outside its hours).
fn meeting(
    window: ConditionWindow,
    multiple: &Multiple,
    facts: &Facts<'_>,
    render: &kestrel_flow::Render<'_>,
    now: DateTime<Utc>,
) -> Option<Meeting> {
    let bounds = Window::at(&multiple.window, now);
    bounds.contains(now).then(|| Meeting {
        window,
        met: multiple
            .conditions
            .iter()
            .filter(|(_, condition)| condition.holds(facts, render))
            .map(|(name, _)| name.clone())
            .collect(),
        all: multiple.conditions.len(),
        since: bounds.start,
        reset: multiple.reset_on_success,
    })
}

/// Records each meeting in its window; whether every window has now met all its conditions
/// and, for those that reset, this node was the one to reset them (then alone it fires). As in
/// Kestra, a complete window resets even when another window of the trigger is not complete.
async fn windows_met(state: &AppState, meetings: &[Meeting]) -> Result<bool, AppError> {
    let store = &state.0.store;
    let now = Utc::now();
    let mut fires = true;
    for meeting in meetings {
        // An end that meets none of a window's conditions is not the one that completes it.
        if meeting.met.is_empty() {
            fires = false;
            continue;
        }
        let window = &meeting.window;
        let met = store
            .meet_window(window, &meeting.met, now, meeting.since)
            .await?;
        let complete = met.len() == meeting.all;
        if complete && meeting.reset {
            fires &= store.reset_window(window).await?;
        }
        fires &= complete;
    }
    Ok(fires)
}

/// Whether this node is the first to fire `trigger` for the state `ended` entered (it then
/// starts the execution): the claim's trigger is `<trigger id>:<execution id>` at the time
/// it entered that state (its end, for a final one), and that state unless final.
async fn claimed(
    state: &AppState,
    firing: &Firing,
    ended: &ExecutionRecord,
) -> Result<bool, AppError> {
    let flow = &firing.listening.flow;
    let fire = kestrel_store::Fire {
        tenant: state.options().tenant.clone(),
        namespace: flow.namespace.clone(),
        flow_id: flow.id.clone(),
        trigger_id: match ended.ended_at {
            Some(_) => format!("{}:{}", firing.trigger_id, ended.id),
            None => format!("{}:{}:{}", firing.trigger_id, ended.id, ended.state),
        },
        at: ended
            .ended_at
            .or_else(|| ended.histories.last().map(|entered| entered.at))
            .unwrap_or(ended.created_at),
    };
    Ok(state.0.store.claim_fire(&fire).await?)
}

/// Creates the execution `trigger` fires; inputs that do not render, or that the flow
/// refuses, start nothing and are logged without their values.
async fn start(state: &AppState, firing: Firing, ended: &ExecutionRecord) {
    let Firing {
        listening,
        trigger_id,
        inputs,
        ..
    } = firing;
    let flow = &listening.flow;
    let Some(inputs) = inputs else {
        crate::log::warn(&format!(
            "Flow trigger {trigger_id} of flow {}.{}: its inputs cannot be rendered for \
             execution {}",
            flow.namespace, flow.id, ended.id
        ));
        return;
    };
    let submission = Submission {
        id: None,
        flow: Arc::clone(&listening),
        inputs,
        trigger: Some(json!({
            "executionId": ended.id,
            "namespace": ended.namespace,
            "flowId": ended.flow_id,
            "flowRevision": ended.flow_revision,
            "state": ended.state,
        })),
        triggered_by: executor::FLOW_TRIGGER.into(),
    };
    if let Err(error) = executor::submit(state, submission).await {
        crate::log::warn(&format!(
            "Flow trigger {trigger_id} of flow {}.{} on execution {}: {error}",
            flow.namespace, flow.id, ended.id
        ));
    }
}

/// The trigger's inputs, each text rendered; `None` when one does not render.
fn rendered_inputs(
    trigger: &FlowTrigger,
    render: &kestrel_flow::Render<'_>,
) -> Option<Vec<(String, SecretValue)>> {
    trigger
        .inputs
        .iter()
        .map(|(id, value)| {
            let text = match value {
                Value::String(template) => render(template)?,
                other => other.to_string(),
            };
            Some((id.clone(), SecretValue::new(text)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(hour: u32, minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 6, hour, minute, 17).unwrap()
    }

    #[test]
    fn duration_windows_start_where_kestra_starts_them() {
        let day = Window::at(
            &TimeWindow::Duration {
                window: Some(std::time::Duration::from_secs(86_400)),
                advance: Some(std::time::Duration::ZERO),
            },
            at(9, 41),
        );
        assert_eq!(
            day.start,
            Utc.with_ymd_and_hms(2026, 12, 6, 0, 0, 0).unwrap()
        );
        assert!(day.contains(at(23, 59)));
        let ten = TimeWindow::Duration {
            window: Some(std::time::Duration::from_secs(600)),
            advance: None,
        };
        let window = Window::at(&ten, at(9, 41));
        assert_eq!(
            window.start,
            Utc.with_ymd_and_hms(2026, 12, 6, 9, 40, 0).unwrap()
        );
        assert!(!window.contains(at(9, 50)));
    }

    #[test]
    fn a_deadline_passed_opens_no_window_for_today() {
        let nine = chrono::NaiveTime::from_hms_opt(9, 0, 0).unwrap();
        let window = Window::at(&TimeWindow::Deadline { deadline: nine }, at(10, 0));
        assert!(!window.contains(at(10, 0)));
        assert!(window.contains(at(8, 0)));
    }

    #[test]
    fn labels_are_read_from_their_stored_form() {
        let stored = json!([{"key": "some", "value": "label"}]);
        assert_eq!(labels(&stored), [("some".to_owned(), "label".to_owned())]);
        assert!(labels(&json!(null)).is_empty());
    }
}
