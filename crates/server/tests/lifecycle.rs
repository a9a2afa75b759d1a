//! What happens around requests: queued executions wait for a worker, those of a dead worker
//! are resumed, a kill reaches the node that runs the execution, the env file is reloaded without restart, retention purges, `allowed-namespaces`
//! limits cross-namespace reads, and the server serves on a real socket and stops gracefully.

#![allow(clippy::unwrap_used)] // Test code: a failure is a failed test.

mod common;

use axum::http::{Method, StatusCode};
use chrono::Utc;
use common::{ENV_SECRET, Harness, Who, b64, harness, harness_with, logging_flow};
use kestrel_secrets::ReadPolicy;
use kestrel_server::Server;
use kestrel_store::{ExecutionQueue as _, ExecutionRecord, StateChange};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

const SLOW: &str = "id: slow\nnamespace: team\ntasks:\n  - id: wait\n    type: io.kestra.plugin.scripts.shell.Commands\n    commands:\n      - sleep 30\n";

const QUICK: &str = "id: quick\nnamespace: team\ninputs:\n  - id: token\n    type: SECRET\ntasks:\n  - id: log\n    type: io.kestra.plugin.core.log.Log\n    message: \"token {{ inputs.token }} of length {{ inputs.token | length }}\"\n";

async fn trigger(h: &Harness, path: &str, body: Option<Value>) -> String {
    let answer = match body {
        Some(body) => h.json(Method::POST, path, Who::Admin, &body).await,
        None => h.send(Method::POST, path, Who::Admin, None).await,
    };
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    answer.json()["id"].as_str().unwrap().to_owned()
}

const HELLO: &str = "id: hello\nnamespace: team\ntasks:\n  - id: log\n    type: io.kestra.plugin.core.log.Log\n    message: hello\n";

/// An execution of `team.hello` held by a worker that died at once: RUNNING, never
/// heartbeated again.
async fn held_by_a_dead_worker(h: &Harness) -> String {
    let now = Utc::now();
    let record = ExecutionRecord {
        id: "heldByADeadWorker".into(),
        tenant: "main".into(),
        namespace: "team".into(),
        flow_id: "hello".into(),
        flow_revision: 1,
        state: "RUNNING".into(),
        histories: ["CREATED", "RUNNING"]
            .map(|state| StateChange {
                state: state.into(),
                at: now,
            })
            .to_vec(),
        inputs: json!({}),
        outputs: json!({}),
        labels: json!([]),
        task_runs: Vec::new(),
        created_at: now,
        ended_at: None,
    };
    h.store
        .create_claimed(&record, None, "a-worker-gone-for-good")
        .await
        .unwrap();
    record.id
}

#[tokio::test]
async fn queued_executions_wait_for_a_worker_and_a_dead_workers_ones_are_resumed() {
    let api = harness_with(|o| o.worker.enabled = false).await;
    api.flow(QUICK).await;
    api.flow(HELLO).await;
    let inputs = json!({"token": "resumed-secret-input"});
    let waiting = trigger(&api, "/api/v1/main/executions/team/quick", Some(inputs)).await;
    let held = held_by_a_dead_worker(&api).await;
    let _api_server = Server::start(api.state.clone()).await.unwrap();
    assert_eq!(
        api.execution(&waiting).await["state"]["current"],
        "CREATED",
        "a server without a worker runs nothing"
    );

    // A node with a worker, over the same database.
    let worker = api
        .restart(|o| {
            o.worker_threads = 1;
            o.worker.heartbeat = Duration::from_millis(100);
            o.worker.resume_after = Duration::from_millis(500);
        })
        .await;
    let _worker_server = Server::start(worker.state.clone()).await.unwrap();
    let ran = api.ended(&waiting).await;
    assert_eq!(ran["state"]["current"], "SUCCESS", "{ran}");
    let logs = api
        .get(&format!("/api/v1/main/logs/{waiting}"), Who::Admin)
        .await
        .json();
    assert_eq!(logs[0]["message"], "token ****** of length 20");
    let resumed = api.ended(&held).await;
    assert_eq!(resumed["state"]["current"], "SUCCESS", "{resumed}");
    let logs = api
        .get(&format!("/api/v1/main/logs/{held}"), Who::Admin)
        .await
        .json();
    assert!(
        logs[0]["message"]
            .as_str()
            .unwrap()
            .contains("resumed after its worker stopped heartbeating"),
        "{logs}"
    );
    assert_eq!(logs[1]["message"], "hello");
    assert_eq!(
        logs[1]["attemptNumber"], 2,
        "a resumed task run is a new attempt"
    );
    api.assert_never_answered(&["resumed-secret-input"]);
}

#[tokio::test]
async fn a_wait_on_a_server_without_a_worker_returns_when_a_worker_ends_the_execution() {
    let api = harness_with(|o| o.worker.enabled = false).await;
    api.flow(HELLO).await;
    let worker = api.restart(|_| {}).await;
    let _worker_server = Server::start(worker.state.clone()).await.unwrap();
    let ended = api.run("team", "hello").await;
    assert_eq!(ended["state"]["current"], "SUCCESS", "{ended}");
}

#[tokio::test]
async fn a_kill_through_another_node_kills_the_tasks_of_the_worker_that_holds_it() {
    let worker = harness_with(|o| o.worker.heartbeat = Duration::from_millis(100)).await;
    worker.flow(SLOW).await;
    let _worker_server = Server::start(worker.state.clone()).await.unwrap();
    let running = trigger(&worker, "/api/v1/main/executions/team/slow", None).await;
    let api = worker.restart(|o| o.worker.enabled = false).await;
    let kill = api
        .delete(
            &format!("/api/v1/main/executions/{running}/kill"),
            Who::Admin,
        )
        .await;
    assert_eq!(kill.status, StatusCode::ACCEPTED, "{}", kill.text);
    // The worker shows its own copy while it runs there: it ends once its heartbeat saw the
    // kill and killed the task (its own end then refused).
    let killed = worker.ended(&running).await;
    assert_eq!(killed["state"]["current"], "KILLED", "{killed}");
}

const FROM_FILE: &str = "id: env\nnamespace: team\ntasks:\n  - id: log\n    type: io.kestra.plugin.core.log.Log\n    message: \"{{ secret('FILE_TOKEN') }} has {{ secret('FILE_TOKEN') | length }} characters\"\n";

async fn file_token_length(h: &Harness) -> String {
    let execution = h.run("team", "env").await;
    let id = execution["id"].as_str().unwrap();
    let logs = h
        .get(&format!("/api/v1/main/logs/{id}"), Who::Admin)
        .await
        .json();
    logs[0]["message"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_env_file_is_reloaded_and_a_broken_one_keeps_the_last_good_set() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secrets.env");
    std::fs::write(&file, format!("SECRET_FILE_TOKEN={}\n", b64("first-value"))).unwrap();
    let path = file.clone();
    let h = harness_with(move |o| o.env_file = Some(path)).await;
    h.flow(FROM_FILE).await;
    assert_eq!(file_token_length(&h).await, "****** has 11 characters");

    std::fs::write(
        &file,
        format!("SECRET_FILE_TOKEN={}\n", b64("a-second-longer-value")),
    )
    .unwrap();
    assert!(h.state.reload_env_file());
    assert_eq!(file_token_length(&h).await, "****** has 21 characters");

    std::fs::write(&file, "SECRET_FILE_TOKEN='unterminated\n").unwrap();
    assert!(!h.state.reload_env_file(), "a broken file is not used");
    assert_eq!(file_token_length(&h).await, "****** has 21 characters");
    std::fs::remove_file(&file).unwrap();
    assert!(!h.state.reload_env_file(), "nor a missing one");
    assert_eq!(file_token_length(&h).await, "****** has 21 characters");
    h.assert_never_answered(&["first-value", "a-second-longer-value"]);
}

/// A reload whose one value cannot be decoded keeps that key's previous value for the
/// executions that follow, not only for the listings.
#[tokio::test]
async fn a_reload_keeps_the_previous_value_of_an_undecodable_key_for_executions() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secrets.env");
    std::fs::write(&file, format!("SECRET_FILE_TOKEN={}\n", b64("first-value"))).unwrap();
    let path = file.clone();
    let h = harness_with(move |o| o.env_file = Some(path)).await;
    h.flow(FROM_FILE).await;
    assert_eq!(file_token_length(&h).await, "****** has 11 characters");
    std::fs::write(&file, "SECRET_FILE_TOKEN=not base64!\n").unwrap();
    assert!(h.state.reload_env_file());
    assert_eq!(file_token_length(&h).await, "****** has 11 characters");
    h.assert_never_answered(&["first-value"]);
}

#[tokio::test]
async fn the_watch_picks_up_a_changed_env_file_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secrets.env");
    std::fs::write(&file, format!("SECRET_FILE_TOKEN={}\n", b64("first-value"))).unwrap();
    let path = file.clone();
    let h = harness_with(move |o| {
        o.env_file = Some(path);
        o.env_file_poll = Duration::from_millis(50);
    })
    .await;
    let _server = Server::start(h.state.clone()).await.unwrap();
    h.flow(FROM_FILE).await;
    assert_eq!(file_token_length(&h).await, "****** has 11 characters");
    std::fs::write(
        &file,
        format!("SECRET_FILE_TOKEN={}\n", b64("the-next-value")),
    )
    .unwrap();
    let mut seen = String::new();
    for _ in 0..100 {
        seen = file_token_length(&h).await;
        if seen.contains("14") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(seen, "****** has 14 characters");
}

#[tokio::test]
async fn retention_purges_ended_executions_with_their_logs_and_the_audit_trail() {
    let h = harness_with(|o| {
        o.retention.executions = Duration::ZERO;
        o.retention.audit = Duration::ZERO;
    })
    .await;
    h.secret("team", "K", "value-1234").await;
    h.flow(&logging_flow("team", "report", "K")).await;
    let id = h.run("team", "report").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let (executions, audit) = h.state.purge_expired().await.unwrap();
    assert_eq!(executions, 1);
    assert!(audit >= 2, "the set and the execution's read: {audit}");
    let gone = h
        .get(&format!("/api/v1/main/executions/{id}"), Who::Admin)
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    let kept = harness().await;
    kept.flow(&logging_flow("team", "report", "ENV_TOKEN"))
        .await;
    kept.run("team", "report").await;
    assert_eq!(
        kept.state.purge_expired().await.unwrap().0,
        0,
        "30 days by default"
    );
}

#[tokio::test]
async fn allowed_namespaces_limit_reading_another_namespaces_secrets() {
    let h = harness_with(|o| {
        o.engine.policy = ReadPolicy::new(BTreeMap::from([(
            "company.finance".into(),
            vec!["company.finance".into()],
        )]));
    })
    .await;
    h.secret("company.finance", "LEDGER", "ledger-value-99")
        .await;
    let reader = |ns: &str| {
        format!(
            "id: reader\nnamespace: {ns}\ntasks:\n  - id: log\n    type: io.kestra.plugin.core.log.Log\n    message: \"{{{{ secret('LEDGER', namespace='company.finance') }}}}\"\n"
        )
    };
    h.flow(&reader("company.team")).await;
    h.flow(&reader("company.finance.reports")).await;
    let refused = h.run("company.team", "reader").await;
    assert_eq!(refused["state"]["current"], "FAILED");
    let id = refused["id"].as_str().unwrap();
    let logs = h
        .get(&format!("/api/v1/main/logs/{id}"), Who::Admin)
        .await
        .json();
    assert!(logs.to_string().contains("allowed-namespaces"), "{logs}");
    let allowed = h.run("company.finance.reports", "reader").await;
    assert_eq!(allowed["state"]["current"], "SUCCESS", "{allowed}");
    h.assert_never_answered(&["ledger-value-99"]);
}

/// A token limited to `team`, with no secret access, writes and runs a flow of `team` that
/// asks for `other`'s secret: with no `allowed-namespaces` anywhere, the read is refused.
#[tokio::test]
async fn issue_9_4_a_team_token_cannot_read_another_namespace_through_a_flow() {
    let h = harness().await;
    h.secret("other", "X", "other-team-value-42").await;
    let flow = "id: thief\nnamespace: team\ntasks:\n  - id: log\n    type: io.kestra.plugin.core.log.Log\n    message: \"{{ secret('X', namespace='other') }}\"\n";
    let written = h.post_yaml("/api/v1/main/flows", Who::Team, flow).await;
    assert_eq!(written.status, StatusCode::OK, "{}", written.text);
    let path = "/api/v1/main/executions/team/thief?wait=true";
    let execution = h.send(Method::POST, path, Who::Team, None).await.json();
    assert_eq!(execution["state"]["current"], "FAILED", "{execution}");
    let id = execution["id"].as_str().unwrap();
    let logs = h
        .get(&format!("/api/v1/main/logs/{id}"), Who::Team)
        .await
        .json();
    assert!(
        logs.to_string().contains(
            "namespace 'other' does not allow flows of namespace 'team' to read its secrets \
             (namespaces.other.allowed-namespaces)"
        ),
        "{logs}"
    );
    h.assert_never_answered(&["other-team-value-42"]);
}

#[tokio::test]
async fn no_answer_of_any_route_holds_a_secret_value() {
    let h = harness().await;
    let value = "Tr0ub4dor&3-horse";
    h.secret("team", "PASSWORD", value).await;
    let flow = "id: leaky\nnamespace: team.app\ntasks:\n  - id: plain\n    type: io.kestra.plugin.core.log.Log\n    message:\n      - \"{{ secret('PASSWORD') }}\"\n      - \"{{ secret('PASSWORD') | upper }}\"\n      - \"{{ secret('PASSWORD') | base64encode }}\"\n      - \"{{ secret('ENV_TOKEN') }}\"\n  - id: out\n    type: io.kestra.plugin.core.debug.Return\n    format: \"{{ {'p': secret('PASSWORD')} | toJson }}\"\n  - id: shell\n    type: io.kestra.plugin.scripts.shell.Commands\n    env:\n      P: \"{{ secret('PASSWORD') }}\"\n    commands:\n      - echo \"$P\"\n      - printf '%s' \"$P\" | base64\n";
    h.flow(flow).await;
    let execution = h.run("team.app", "leaky").await;
    assert_eq!(execution["state"]["current"], "SUCCESS", "{execution}");
    let id = execution["id"].as_str().unwrap();
    for path in [
        format!("/api/v1/main/executions/{id}"),
        format!("/api/v1/main/logs/{id}"),
        format!("/api/v1/main/logs/{id}?attempt=all"),
        format!("/api/v1/main/logs/{id}/follow"),
        "/api/v1/main/executions/search?namespace=team".to_owned(),
        "/api/v1/main/namespaces/team/secrets".to_owned(),
        "/api/v1/main/secrets".to_owned(),
        "/api/v1/main/namespaces/team.app/inherited-secrets".to_owned(),
        "/api/v1/main/flows/team.app/leaky".to_owned(),
    ] {
        let answer = h.get(&path, Who::Admin).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}: {}", answer.text);
    }
    let logs = h
        .get(&format!("/api/v1/main/logs/{id}"), Who::Admin)
        .await
        .text;
    assert!(logs.matches("******").count() >= 5, "{logs}");
    h.assert_never_answered(&[
        value,
        &value.to_uppercase(),
        &b64(value),
        ENV_SECRET,
        "Tr0ub4dor",
    ]);
}

async fn body(request: reqwest::RequestBuilder) -> Value {
    let text = request.send().await.unwrap().text().await.unwrap();
    serde_json::from_str(&text).unwrap()
}

#[tokio::test]
async fn the_server_serves_on_a_socket_and_stops_gracefully() {
    let h = harness().await;
    h.flow(&logging_flow("team", "report", "ENV_TOKEN")).await;
    let server = Server::start(h.state.clone()).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.serve(
        listener,
        async {
            let _ = stopped.await;
        },
        Duration::from_secs(5),
    ));
    let client = reqwest::Client::new();
    let health: Value = body(client.get(format!("http://{address}/health"))).await;
    assert_eq!(health["status"], "UP");
    let denied = client
        .post(format!(
            "http://{address}/api/v1/main/executions/team/report"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status().as_u16(), 401);
    let execution = body(
        client
            .post(format!(
                "http://{address}/api/v1/main/executions/team/report?wait=true"
            ))
            .header("authorization", h.authorization(Who::Admin).unwrap()),
    )
    .await;
    assert_eq!(execution["state"]["current"], "SUCCESS", "{execution}");
    stop.send(()).unwrap();
    serving.await.unwrap().unwrap();
    assert!(
        client
            .get(format!("http://{address}/health"))
            .send()
            .await
            .is_err()
    );
}
