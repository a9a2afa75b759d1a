//! Schedule triggers fire on time under a clock the test moves: exactly the executions due,
//! at the times their cron says in their time zone, with their inputs.

#![allow(clippy::unwrap_used)] // Test code: a failure is a failed test.

mod control;

use chrono::{DateTime, Utc};
use kestrel_engine::{
    CancelToken, Clock, Execution, Fire, InputError, Listener, ManualClock, ScheduleSink,
    Scheduler, State,
};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

/// Records each ended execution as `trigger date: outputs`, and refusals.
#[derive(Default)]
struct Recorder {
    ended: Mutex<Vec<(String, Execution)>>,
    refused: Mutex<Vec<String>>,
    changed: Notify,
}

impl Recorder {
    /// Waits until `count` executions ended (or were refused).
    async fn wait_for(&self, count: usize) {
        loop {
            let notified = self.changed.notified();
            let seen = self.ended.lock().unwrap().len() + self.refused.lock().unwrap().len();
            if seen >= count {
                return;
            }
            notified.await;
        }
    }
}

impl Listener for Recorder {}

impl ScheduleSink for Recorder {
    fn on_execution(&self, fire: &Fire, execution: &Execution) {
        let key = format!("{} {}", fire.trigger.id, fire.date.to_rfc3339());
        self.ended.lock().unwrap().push((key, execution.clone()));
        self.changed.notify_waiters();
    }

    fn on_refused(&self, fire: &Fire, error: &InputError) {
        self.refused
            .lock()
            .unwrap()
            .push(format!("{} {error}", fire.trigger.id));
        self.changed.notify_waiters();
    }
}

const FLOW: &str = "id: nightly
namespace: dev
inputs:
  - id: who
    type: STRING
  - id: times
    type: INT
    defaults: 1
tasks:
  - id: stamp
    type: io.kestra.plugin.core.debug.Return
    format: \"{{ inputs.who }} x{{ inputs.times }} at {{ trigger.date }} after {{ trigger.previous }}\"
triggers:
  - id: paris
    type: io.kestra.plugin.core.trigger.Schedule
    cron: \"0 9 * * *\"
    timezone: Europe/Paris
    inputs:
      who: team
      times: 2
  - id: broken
    type: io.kestra.plugin.core.trigger.Schedule
    cron: \"0 12 * * *\"
    inputs:
      who: nobody
      times: many
";

#[test]
fn a_schedule_fires_on_time_in_its_zone_with_its_inputs() {
    let flow = Arc::new(kestrel_flow::parse_flow(FLOW).unwrap());
    let clock = Arc::new(ManualClock::new(at("2024-03-29T12:00:00Z")));
    let recorder = Arc::new(Recorder::default());
    let cancel = CancelToken::new();
    let runtime = control::runtime();
    runtime.block_on(async {
        let scheduler = Scheduler::new([flow], clock.now());
        let engine = Arc::new(control::engine());
        let sink: Arc<dyn ScheduleSink> = recorder.clone();
        let dyn_clock: Arc<dyn Clock> = clock.clone();
        let running = tokio::spawn(scheduler.run(engine, dyn_clock, sink, cancel.clone()));

        // Nothing is due before 09:00 in Paris (08:00 UTC) on the 30th.
        clock.set(at("2024-03-30T07:59:00Z"));
        tokio::task::yield_now().await;
        assert!(recorder.ended.lock().unwrap().is_empty());

        // Across the change to summer time: 09:00 in Paris is 07:00 UTC from the 31st.
        clock.set(at("2024-04-01T08:30:00Z"));
        let waited = tokio::time::timeout(Duration::from_secs(30), recorder.wait_for(5)).await;
        assert!(waited.is_ok(), "the scheduler did not fire everything due");
        cancel.cancel();
        running.await.unwrap();
    });

    let mut ended = recorder.ended.lock().unwrap().clone();
    ended.sort_by(|a, b| a.0.cmp(&b.0));
    let seen: Vec<(String, State, String)> = ended
        .iter()
        .map(|(key, execution)| {
            let value = execution.task_runs[0].outputs["value"]
                .as_str()
                .unwrap_or_default();
            (key.clone(), execution.state, value.to_owned())
        })
        .collect();
    assert_eq!(
        seen,
        [
            (
                "paris 2024-03-30T08:00:00+00:00".to_string(),
                State::Success,
                "team x2 at 2024-03-30T09:00:00+01:00 after ".to_string()
            ),
            (
                "paris 2024-03-31T07:00:00+00:00".to_string(),
                State::Success,
                "team x2 at 2024-03-31T09:00:00+02:00 after 2024-03-30T09:00:00+01:00".to_string()
            ),
            (
                "paris 2024-04-01T07:00:00+00:00".to_string(),
                State::Success,
                "team x2 at 2024-04-01T09:00:00+02:00 after 2024-03-31T09:00:00+02:00".to_string()
            ),
        ]
    );
    // The other trigger's inputs do not fit the flow: each of its two noons is refused.
    let refused = recorder.refused.lock().unwrap().clone();
    assert_eq!(
        refused,
        ["broken invalid input 'times': expected an INT"; 2]
    );
}
