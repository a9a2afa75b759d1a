//! Schedule triggers in a running server: one execution per fire time passed, with the
//! trigger's inputs and `trigger` variable, and none once the flow is deleted.

#![allow(clippy::unwrap_used)] // Test code: a failure is a failed test.

mod common;

use chrono::{DateTime, Utc};
use common::{Harness, Who, harness};
use kestrel_engine::{Clock, ManualClock};
use kestrel_server::{AppState, Server};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

const EVERY_FIVE: &str = "id: tick\nnamespace: team\ninputs:\n  - id: who\n    type: STRING\ntasks:\n  - id: hello\n    type: io.kestra.plugin.core.debug.Return\n    format: \"{{ inputs.who }} at {{ trigger.date }}\"\ntriggers:\n  - id: every5\n    type: io.kestra.plugin.core.trigger.Schedule\n    cron: \"*/5 * * * *\"\n    inputs:\n      who: cron\n";

const FIVE_MINUTES: Duration = Duration::from_secs(300);

/// The executions of `team.tick`, newest first.
async fn executions(h: &Harness) -> Vec<Value> {
    let found = h
        .get(
            "/api/v1/main/executions/search?namespace=team&flowId=tick&size=100",
            Who::Admin,
        )
        .await
        .json();
    found["results"].as_array().unwrap().clone()
}

/// Moves the clock on and waits until the server started what came due.
async fn advance(state: &AppState, clock: &ManualClock) {
    clock.advance(FIVE_MINUTES);
    state.schedules_started(clock.now()).await;
}

#[tokio::test]
async fn a_schedule_fires_once_per_step_and_never_after_its_flow_is_deleted() {
    let h = harness().await;
    let start: DateTime<Utc> = "2024-05-01T10:01:00Z".parse().unwrap();
    let clock = Arc::new(ManualClock::new(start));
    let scheduled = AppState::with_clock(
        h.state.options().clone(),
        Arc::clone(h.state.store()),
        clock.clone(),
    )
    .unwrap();
    let _server = Server::start(scheduled.clone()).await.unwrap();
    h.flow(EVERY_FIVE).await;
    scheduled.schedules_started(start).await;
    assert!(executions(&h).await.is_empty());

    for step in 1..=3 {
        advance(&scheduled, &clock).await;
        assert_eq!(executions(&h).await.len(), step, "after step {step}");
    }
    // Executions created within one millisecond have no order between them: each fire is
    // checked by what it ran, not by its place in the list.
    let mut fired = Vec::new();
    for execution in executions(&h).await {
        assert_eq!(execution["inputs"]["who"], "cron", "{execution}");
        let ended = h.ended(execution["id"].as_str().unwrap()).await;
        assert_eq!(ended["state"]["current"], "SUCCESS", "{ended}");
        fired.push(ended["taskRunList"][0]["outputs"]["value"].clone());
    }
    fired.sort_by_key(ToString::to_string);
    assert_eq!(
        fired,
        [
            "cron at 2024-05-01T10:05:00Z",
            "cron at 2024-05-01T10:10:00Z",
            "cron at 2024-05-01T10:15:00Z"
        ]
    );

    h.delete("/api/v1/main/flows/team/tick", Who::Admin).await;
    advance(&scheduled, &clock).await;
    advance(&scheduled, &clock).await;
    assert_eq!(executions(&h).await.len(), 3);
}
