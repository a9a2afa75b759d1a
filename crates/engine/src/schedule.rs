//! Schedule triggers: when each one fires next, and a loop that starts executions on time.
//!
//! A [`Scheduler`] holds the `io.kestra.plugin.core.trigger.Schedule` triggers of some flows
//! and the next time each fires (its cron read in its time zone). [`Scheduler::run`] sleeps on
//! a [`Clock`] until the next one, starts an execution per trigger due with the trigger's
//! inputs and its `trigger` variable (`date`, `next`, `previous`), and goes on until
//! cancelled. Fire times missed while the clock jumped are all fired, oldest first, as
//! Kestra recovers missed schedules by default. The [`ManualClock`] lets tests move time.

use crate::{CancelToken, Engine, Execution, InputError, Inputs, Listener, Origin};
use chrono::{DateTime, SecondsFormat, Utc};
use kestrel_flow::{Flow, Schedule};
use kestrel_secrets::SecretValue;
use serde_json::{Value, json};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Where the time comes from, and how to wait for a moment.
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;

    /// Completes once [`Clock::now`] has reached `at`.
    fn sleep_until(&self, at: DateTime<Utc>) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

/// The system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

/// The longest single sleep of the [`SystemClock`]: the wall clock may be set or the machine
/// suspended meanwhile, so the time is read again at least this often.
const LONGEST_SLEEP: Duration = Duration::from_secs(60);

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep_until(&self, at: DateTime<Utc>) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            while let Ok(left) = (at - Utc::now()).to_std() {
                if left.is_zero() {
                    break;
                }
                tokio::time::sleep(left.min(LONGEST_SLEEP)).await;
            }
        })
    }
}

/// A clock that moves only when told: for tests and simulations.
#[derive(Debug)]
pub struct ManualClock {
    now: watch::Sender<DateTime<Utc>>,
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        Self {
            now: watch::Sender::new(start),
        }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let by = chrono::Duration::from_std(by).unwrap_or(chrono::Duration::MAX);
        self.now.send_modify(|now| {
            *now = now
                .checked_add_signed(by)
                .unwrap_or(DateTime::<Utc>::MAX_UTC);
        });
    }

    /// Sets the clock to `at` (later or earlier).
    pub fn set(&self, at: DateTime<Utc>) {
        self.now.send_replace(at);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.borrow()
    }

    fn sleep_until(&self, at: DateTime<Utc>) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        let mut now = self.now.subscribe();
        Box::pin(async move {
            // The sender lives as long as the clock, which outlives this borrow of it.
            let _ = now.wait_for(|now| *now >= at).await;
        })
    }
}

/// One firing of a trigger: the flow, the trigger and the moment it was due.
#[derive(Clone)]
pub struct Fire {
    /// The flow to run.
    pub flow: Arc<Flow>,
    /// The trigger that fired.
    pub trigger: Schedule,
    /// When it was due.
    pub date: DateTime<Utc>,
    /// When it fires next, if ever.
    pub next: Option<DateTime<Utc>>,
    /// When it was due before, since the scheduler started.
    pub previous: Option<DateTime<Utc>>,
}

impl fmt::Debug for Fire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The trigger's inputs may hold a SECRET input's value: names only.
        f.debug_struct("Fire")
            .field(
                "flow",
                &format_args!("{}.{}", self.flow.namespace, self.flow.id),
            )
            .field("trigger", &self.trigger.id)
            .field("date", &self.date)
            .finish_non_exhaustive()
    }
}

impl Fire {
    /// The `trigger` variable of the execution it starts: `date`, `next` and `previous` in
    /// the trigger's time zone.
    pub fn variables(&self) -> Value {
        let zoned = |at: &DateTime<Utc>| {
            at.with_timezone(&self.trigger.timezone)
                .to_rfc3339_opts(SecondsFormat::Secs, true)
        };
        json!({
            "date": zoned(&self.date),
            "next": self.next.as_ref().map(zoned),
            "previous": self.previous.as_ref().map(zoned),
        })
    }

    /// The trigger's inputs, typed by the flow's inputs.
    pub fn inputs(&self) -> Result<Inputs, InputError> {
        let raw = self.trigger.inputs.iter().map(|(id, value)| {
            let text = match value {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            (id.clone(), SecretValue::new(text))
        });
        Inputs::parse(&self.flow.inputs, raw)
    }
}

/// What the scheduler tells about the executions it starts. It is also the [`Listener`] of
/// each of them.
pub trait ScheduleSink: Listener {
    /// An execution started by `fire` ended.
    fn on_execution(&self, fire: &Fire, execution: &Execution);

    /// `fire` started nothing: its inputs do not fit the flow.
    fn on_refused(&self, fire: &Fire, error: &InputError);
}

/// One trigger and when it fires next.
struct Entry {
    flow: Arc<Flow>,
    trigger: Schedule,
    next: Option<DateTime<Utc>>,
    previous: Option<DateTime<Utc>>,
}

/// The Schedule triggers of a set of flows, each with its next fire time.
pub struct Scheduler {
    entries: Vec<Entry>,
}

impl fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scheduler")
            .field("triggers", &self.entries.len())
            .field("next_fire", &self.next_fire())
            .finish()
    }
}

impl Scheduler {
    /// The triggers of `flows` that can fire (enabled, in enabled flows), each first due
    /// after `now`.
    pub fn new(flows: impl IntoIterator<Item = Arc<Flow>>, now: DateTime<Utc>) -> Self {
        let mut entries = Vec::new();
        for flow in flows.into_iter().filter(|flow| !flow.disabled) {
            for trigger in flow.schedules.iter().filter(|t| !t.disabled) {
                entries.push(Entry {
                    flow: Arc::clone(&flow),
                    next: trigger.cron.next_after(now, trigger.timezone),
                    trigger: trigger.clone(),
                    previous: None,
                });
            }
        }
        Self { entries }
    }

    /// When the next trigger is due, if any ever is.
    pub fn next_fire(&self) -> Option<DateTime<Utc>> {
        self.entries.iter().filter_map(|entry| entry.next).min()
    }

    /// Every firing due at `now` (all those missed too), oldest first, each trigger moved on
    /// to its next fire time.
    pub fn due(&mut self, now: DateTime<Utc>) -> Vec<Fire> {
        let mut fires = Vec::new();
        for entry in &mut self.entries {
            while let Some(date) = entry.next.filter(|date| *date <= now) {
                let next = entry.trigger.cron.next_after(date, entry.trigger.timezone);
                fires.push(Fire {
                    flow: Arc::clone(&entry.flow),
                    trigger: entry.trigger.clone(),
                    date,
                    next,
                    previous: entry.previous,
                });
                entry.previous = Some(date);
                entry.next = next;
            }
        }
        // Stable: two triggers due at once keep the flows' order.
        fires.sort_by_key(|fire| fire.date);
        fires
    }

    /// Starts the executions of the triggers as they come due on `clock`, until `cancel`;
    /// then waits for the executions still running, which the cancel kills too.
    pub async fn run(
        mut self,
        engine: Arc<Engine>,
        clock: Arc<dyn Clock>,
        sink: Arc<dyn ScheduleSink>,
        cancel: CancelToken,
    ) {
        let mut running = JoinSet::new();
        loop {
            for fire in self.due(clock.now()) {
                start(&mut running, &engine, &sink, &cancel, fire);
            }
            // Reap the executions already ended, so that the set does not grow forever.
            while running.try_join_next().is_some() {}
            let wait = async {
                match self.next_fire() {
                    Some(at) => clock.sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = wait => {}
                () = cancel.cancelled() => break,
            }
        }
        while running.join_next().await.is_some() {}
    }
}

/// Starts the execution of `fire` on its own task, or tells the sink why it cannot.
fn start(
    running: &mut JoinSet<()>,
    engine: &Arc<Engine>,
    sink: &Arc<dyn ScheduleSink>,
    cancel: &CancelToken,
    fire: Fire,
) {
    let inputs = match fire.inputs() {
        Ok(inputs) => inputs,
        Err(error) => {
            sink.on_refused(&fire, &error);
            return;
        }
    };
    let engine = Arc::clone(engine);
    let sink = Arc::clone(sink);
    let cancel = cancel.clone();
    running.spawn(async move {
        let listener: &dyn Listener = sink.as_ref();
        let origin = Origin {
            trigger: Some(fire.variables()),
            ..Origin::by("schedule")
        };
        let execution = engine
            .run(&fire.flow, inputs, origin, listener, &cancel)
            .await;
        sink.on_execution(&fire, &execution);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn flow(triggers: &str) -> Arc<Flow> {
        let source = format!(
            "id: f\nnamespace: dev\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.debug.Return\ntriggers:\n{triggers}"
        );
        Arc::new(kestrel_flow::parse_flow(&source).unwrap())
    }

    fn dates(fires: &[Fire]) -> Vec<String> {
        fires
            .iter()
            .map(|fire| format!("{} {}", fire.trigger.id, fire.date.to_rfc3339()))
            .collect()
    }

    #[test]
    fn due_fires_every_time_passed_in_order_and_moves_on() {
        let flows = [flow(concat!(
            "  - id: paris\n    type: io.kestra.plugin.core.trigger.Schedule\n    cron: \"0 9 * * *\"\n    timezone: Europe/Paris\n",
            "  - id: half\n    type: io.kestra.plugin.core.trigger.Schedule\n    cron: \"30 7 * * *\"\n",
        ))];
        let mut scheduler = Scheduler::new(flows, at("2024-03-30T00:00:00Z"));
        assert_eq!(scheduler.next_fire(), Some(at("2024-03-30T07:30:00Z")));
        assert!(scheduler.due(at("2024-03-30T07:29:59Z")).is_empty());
        let fires = scheduler.due(at("2024-03-31T08:00:00Z"));
        assert_eq!(
            dates(&fires),
            [
                "half 2024-03-30T07:30:00+00:00",
                "paris 2024-03-30T08:00:00+00:00",
                "paris 2024-03-31T07:00:00+00:00",
                "half 2024-03-31T07:30:00+00:00",
            ]
        );
        assert!(scheduler.due(at("2024-03-31T08:00:00Z")).is_empty());
        assert_eq!(scheduler.next_fire(), Some(at("2024-04-01T07:00:00Z")));
    }

    #[test]
    fn the_trigger_variable_is_in_the_trigger_zone() {
        let flows = [flow(
            "  - id: paris\n    type: io.kestra.plugin.core.trigger.Schedule\n    cron: \"0 9 * * *\"\n    timezone: Europe/Paris\n",
        )];
        let mut scheduler = Scheduler::new(flows, at("2024-03-30T00:00:00Z"));
        let fires = scheduler.due(at("2024-03-31T12:00:00Z"));
        assert_eq!(
            fires[1].variables(),
            json!({
                "date": "2024-03-31T09:00:00+02:00",
                "next": "2024-04-01T09:00:00+02:00",
                "previous": "2024-03-30T09:00:00+01:00",
            })
        );
    }

    #[test]
    fn disabled_triggers_and_flows_never_fire() {
        let disabled_trigger = flow(
            "  - id: off\n    type: io.kestra.plugin.core.trigger.Schedule\n    cron: '@hourly'\n    disabled: true\n",
        );
        let mut disabled_flow = (*flow(
            "  - id: on\n    type: io.kestra.plugin.core.trigger.Schedule\n    cron: '@hourly'\n",
        ))
        .clone();
        disabled_flow.disabled = true;
        let scheduler = Scheduler::new(
            [disabled_trigger, Arc::new(disabled_flow)],
            at("2024-01-01T00:00:00Z"),
        );
        assert_eq!(scheduler.next_fire(), None);
    }

    #[tokio::test]
    async fn the_manual_clock_wakes_sleepers_when_it_passes_their_time() {
        let clock = Arc::new(ManualClock::new(at("2024-01-01T00:00:00Z")));
        let sleeper = {
            let clock = Arc::clone(&clock);
            tokio::spawn(async move { clock.sleep_until(at("2024-01-01T01:00:00Z")).await })
        };
        clock.advance(Duration::from_secs(1800));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished());
        clock.advance(Duration::from_secs(1800));
        sleeper.await.unwrap();
        assert_eq!(clock.now(), at("2024-01-01T01:00:00Z"));
    }
}
