//! The executions API: trigger with no body, multipart or JSON inputs, `?wait=true`, get,
//! search, kill, logs with their filters, and following logs as Server-Sent Events.

#![allow(clippy::unwrap_used)] // Test code: a failure is a failed test.

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use common::{Harness, Who, harness, logging_flow};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use std::time::Duration;
use tower::ServiceExt as _;

const SECRET: &str = "s3cr3t-database-password";

async fn with_secret_flow() -> Harness {
    let h = harness().await;
    h.secret("team", "DB_PASSWORD", SECRET).await;
    h.flow(&logging_flow("team.data", "report", "DB_PASSWORD"))
        .await;
    h
}

#[tokio::test]
async fn wait_true_answers_the_ended_execution_masked() {
    let h = with_secret_flow().await;
    let execution = h.run("team.data", "report").await;
    assert_eq!(execution["state"]["current"], "SUCCESS", "{execution}");
    let histories: Vec<&str> = execution["state"]["histories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["state"].as_str().unwrap())
        .collect();
    assert_eq!(histories, ["CREATED", "RUNNING", "SUCCESS"]);
    assert_eq!(execution["flowRevision"], 1);
    assert!(
        execution["state"]["duration"]
            .as_str()
            .unwrap()
            .starts_with("PT")
    );
    let runs = execution["taskRunList"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[1]["outputs"]["value"], "ok ******");
    let id = execution["id"].as_str().unwrap();
    let logs = h
        .get(&format!("/api/v1/main/logs/{id}"), Who::Admin)
        .await
        .json();
    assert_eq!(logs[0]["message"], "the secret is ******");
    assert_eq!(logs[0]["taskId"], "log");
    assert_eq!(logs[0]["executionId"], id);
    let stored = h
        .get(&format!("/api/v1/main/executions/{id}"), Who::Admin)
        .await
        .json();
    assert_eq!(stored, execution, "what was answered is what was stored");
    h.assert_never_answered(&[SECRET, &SECRET.to_uppercase()]);
}

#[tokio::test]
async fn a_trigger_without_wait_answers_created_and_the_execution_runs() {
    let h = with_secret_flow().await;
    let answer = h
        .send(
            Method::POST,
            "/api/v1/main/executions/team.data/report",
            Who::Admin,
            None,
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let created = answer.json();
    assert!(["CREATED", "RUNNING"].contains(&created["state"]["current"].as_str().unwrap()));
    let done = h.ended(created["id"].as_str().unwrap()).await;
    assert_eq!(done["state"]["current"], "SUCCESS");
    let missing = h
        .send(
            Method::POST,
            "/api/v1/main/executions/team.data/nope",
            Who::Admin,
            None,
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

/// A flow that fails under a retry in new executions, reading a SECRET input each time.
const RETRIED_IN_NEW_EXECUTIONS: &str = concat!(
    "id: again\nnamespace: team\n",
    "inputs:\n  - id: token\n    type: SECRET\n",
    "retry:\n  behavior: CREATE_NEW_EXECUTION\n  type: constant\n  maxAttempt: 3\n",
    "  interval: PT0.1S\n",
    "tasks:\n  - id: use\n    type: io.kestra.plugin.core.log.Log\n",
    "    message: \"token {{ inputs.token }}\"\n",
    "  - id: fail\n    type: io.kestra.plugin.core.execution.Fail\n",
);

/// The label `key` of an execution as the API answers it.
fn label<'e>(execution: &'e Value, key: &str) -> Option<&'e str> {
    execution["labels"]
        .as_array()?
        .iter()
        .find(|label| label["key"] == key)?["value"]
        .as_str()
}

/// RetryCaseTest.retryNewExecutionFlowAttempts on the server: each failure ends its execution
/// RETRIED and a new one, recorded and visible in the API before that end is, runs in its
/// place with the same (sealed) inputs and the first one's correlation id; the third fails.
#[tokio::test]
async fn a_retry_in_new_executions_records_each_execution_of_the_chain() {
    let h = harness().await;
    h.flow(RETRIED_IN_NEW_EXECUTIONS).await;
    let token = "chain-token-7781";
    let started = h
        .json(
            Method::POST,
            "/api/v1/main/executions/team/again?wait=true",
            Who::Admin,
            &json!({"token": token}),
        )
        .await;
    assert_eq!(started.status, StatusCode::OK, "{}", started.text);
    let first = started.json();
    let first_id = first["id"].as_str().unwrap().to_owned();
    let mut chain = vec![first];
    while chain.len() < 4 {
        let search = h
            .get(
                "/api/v1/main/executions/search?namespace=team&flowId=again&size=10",
                Who::Admin,
            )
            .await
            .json();
        let found = search["results"].as_array().unwrap().clone();
        let known: Vec<&str> = chain.iter().map(|e| e["id"].as_str().unwrap()).collect();
        let Some(next) = found
            .iter()
            .find(|e| !known.contains(&e["id"].as_str().unwrap()))
        else {
            break;
        };
        let next = h.ended(next["id"].as_str().unwrap()).await;
        chain.push(next);
    }
    let states: Vec<&str> = chain
        .iter()
        .map(|e| e["state"]["current"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["RETRIED", "RETRIED", "FAILED"]);
    for execution in &chain {
        assert_eq!(
            label(execution, "system.correlationId"),
            Some(first_id.as_str())
        );
        let id = execution["id"].as_str().unwrap();
        let logs = h
            .get(&format!("/api/v1/main/logs/{id}"), Who::Admin)
            .await
            .text;
        assert!(logs.contains("token ******"), "{logs}");
    }
    h.assert_never_answered(&[token]);
}

/// A new execution waiting for its retry's delay holds no slot and ends KILLED at once when
/// killed, its task never run; nothing follows it.
#[tokio::test]
async fn a_new_execution_waiting_for_its_delay_can_be_killed() {
    let h = common::harness_with(|options| options.worker_threads = 1).await;
    h.flow(&RETRIED_IN_NEW_EXECUTIONS.replace("PT0.1S", "PT1H"))
        .await;
    let started = h
        .json(
            Method::POST,
            "/api/v1/main/executions/team/again?wait=true",
            Who::Admin,
            &json!({"token": "chain-token-7781"}),
        )
        .await;
    let first_id = started.json()["id"].as_str().unwrap().to_owned();
    let search = "/api/v1/main/executions/search?namespace=team&flowId=again&size=10";
    let found = h.get(search, Who::Admin).await.json()["results"].clone();
    let waiting = found
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] != first_id.as_str())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The one slot is free while it waits: another flow runs meanwhile.
    h.flow(&logging_flow("team", "other", "K")).await;
    h.secret("team", "K", "other-value-1").await;
    assert_eq!(h.run("team", "other").await["state"]["current"], "SUCCESS");
    let kill = h
        .delete(
            &format!("/api/v1/main/executions/{waiting}/kill"),
            Who::Admin,
        )
        .await;
    assert_eq!(kill.status, StatusCode::ACCEPTED, "{}", kill.text);
    let killed = h.ended(&waiting).await;
    assert_eq!(killed["state"]["current"], "KILLED");
    assert_eq!(killed["taskRunList"].as_array().map_or(0, Vec::len), 0);
    let all = h.get(search, Who::Admin).await.json();
    assert_eq!(all["results"].as_array().unwrap().len(), 2, "{all}");
}

const WITH_INPUTS: &str = "id: greet\nnamespace: team\ninputs:\n  - id: name\n    type: STRING\n  - id: count\n    type: INT\n  - id: token\n    type: SECRET\n    required: false\ntasks:\n  - id: log\n    type: io.kestra.plugin.core.log.Log\n    message: \"{{ inputs.name }} x{{ inputs.count }} {{ inputs.token }}\"\n";

#[tokio::test]
async fn inputs_come_as_multipart_parts_or_as_json() {
    let h = harness().await;
    h.flow(WITH_INPUTS).await;
    let boundary = "XkestrelX";
    let mut form = String::new();
    for (name, value) in [
        ("name", "Ada"),
        ("count", "3"),
        ("token", "multipart-token-9"),
    ] {
        form.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        ));
    }
    form.push_str(&format!("--{boundary}--\r\n"));
    let content_type = format!("multipart/form-data; boundary={boundary}");
    let path = "/api/v1/main/executions/team/greet?wait=true";
    let answer = h
        .send(
            Method::POST,
            path,
            Who::Admin,
            Some((&content_type, form.into_bytes())),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let execution = answer.json();
    assert_eq!(execution["state"]["current"], "SUCCESS", "{execution}");
    assert_eq!(
        execution["inputs"],
        json!({"name": "Ada", "count": 3, "token": "******"})
    );
    let id = execution["id"].as_str().unwrap();
    let logs = h
        .get(&format!("/api/v1/main/logs/{id}"), Who::Admin)
        .await
        .json();
    assert_eq!(logs[0]["message"], "Ada x3 ******");

    let json_inputs = json!({"name": "Grace", "count": 5});
    let answer = h.json(Method::POST, path, Who::Admin, &json_inputs).await;
    assert_eq!(answer.json()["inputs"]["count"], 5);
    let bad = h
        .json(
            Method::POST,
            path,
            Who::Admin,
            &json!({"count": "many", "name": "x"}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.json()["message"].as_str().unwrap().contains("count"));
    let missing = h.send(Method::POST, path, Who::Admin, None).await;
    assert_eq!(
        missing.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "name is required"
    );
    let text = Some(("text/plain", b"name=x".to_vec()));
    let unsupported = h.send(Method::POST, path, Who::Admin, text).await;
    assert_eq!(unsupported.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    h.assert_never_answered(&["multipart-token-9"]);
}

const SLOW: &str = "id: slow\nnamespace: team\ntasks:\n  - id: first\n    type: io.kestra.plugin.core.log.Log\n    message: \"starting with {{ secret('DB_PASSWORD') }}\"\n  - id: wait\n    type: io.kestra.plugin.scripts.shell.Commands\n    commands:\n      - sleep 30\n  - id: never\n    type: io.kestra.plugin.core.log.Log\n    message: never\n";

#[tokio::test]
async fn a_killed_execution_ends_killed_and_runs_nothing_more() {
    let h = with_secret_flow().await;
    h.flow(SLOW).await;
    let created = h
        .send(
            Method::POST,
            "/api/v1/main/executions/team/slow",
            Who::Admin,
            None,
        )
        .await
        .json();
    let id = created["id"].as_str().unwrap();
    // Killed once its shell task runs, so that the task's process is what gets killed.
    for _ in 0..400 {
        let now = h
            .get(&format!("/api/v1/main/executions/{id}"), Who::Admin)
            .await
            .json();
        let runs = now["taskRunList"].as_array().unwrap().len();
        if runs >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let kill = h
        .delete(&format!("/api/v1/main/executions/{id}/kill"), Who::Admin)
        .await;
    assert_eq!(kill.status, StatusCode::ACCEPTED, "{}", kill.text);
    let done = h.ended(id).await;
    assert_eq!(done["state"]["current"], "KILLED", "{done}");
    let tasks: Vec<&str> = done["taskRunList"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["taskId"].as_str().unwrap())
        .collect();
    assert!(!tasks.contains(&"never"), "{tasks:?}");
    let again = h
        .delete(&format!("/api/v1/main/executions/{id}/kill"), Who::Admin)
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    let absent = h
        .delete("/api/v1/main/executions/nope/kill", Who::Admin)
        .await;
    assert_eq!(absent.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn search_finds_executions_by_namespace_and_flow() {
    let h = with_secret_flow().await;
    for _ in 0..3 {
        h.run("team.data", "report").await;
    }
    let found = h
        .get(
            "/api/v1/main/executions/search?namespace=team&flowId=report&size=2",
            Who::Admin,
        )
        .await
        .json();
    assert_eq!(found["total"], 3);
    assert_eq!(found["results"].as_array().unwrap().len(), 2);
    let none = h
        .get(
            "/api/v1/main/executions/search?flowId=report&state=FAILED",
            Who::Admin,
        )
        .await
        .json();
    assert_eq!(none["total"], 0);
}

const RETRIED: &str = "id: levels\nnamespace: team\ntasks:\n  - id: chatty\n    type: io.kestra.plugin.core.log.Log\n    level: DEBUG\n    message: [\"quiet\", \"also quiet\"]\n  - id: loud\n    type: io.kestra.plugin.core.log.Log\n    level: WARN\n    message: loud\n";

#[tokio::test]
async fn logs_filter_by_level_and_task() {
    let h = harness().await;
    h.flow(RETRIED).await;
    let id = h.run("team", "levels").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/v1/main/logs/{id}");
    assert_eq!(
        h.get(&path, Who::Admin)
            .await
            .json()
            .as_array()
            .unwrap()
            .len(),
        3
    );
    let warn = h
        .get(&format!("{path}?minLevel=WARN"), Who::Admin)
        .await
        .json();
    assert_eq!(warn.as_array().unwrap().len(), 1);
    assert_eq!(warn[0]["message"], "loud");
    let chatty = h
        .get(&format!("{path}?taskId=chatty"), Who::Admin)
        .await
        .json();
    assert_eq!(chatty.as_array().unwrap().len(), 2);
    let all = h
        .get(&format!("{path}?attempt=all"), Who::Admin)
        .await
        .json();
    assert_eq!(all.as_array().unwrap().len(), 3);
    let bad = h.get(&format!("{path}?minLevel=LOUD"), Who::Admin).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn following_logs_receives_each_entry_masked_until_the_end() {
    let h = with_secret_flow().await;
    let flow = "id: follow\nnamespace: team\ntasks:\n  - id: before\n    type: io.kestra.plugin.core.log.Log\n    message: \"before {{ secret('DB_PASSWORD') }}\"\n  - id: pause\n    type: io.kestra.plugin.scripts.shell.Commands\n    commands:\n      - sleep 1\n      - echo \"from the shell {{ secret('DB_PASSWORD') }}\"\n  - id: after\n    type: io.kestra.plugin.core.log.Log\n    message: after\n";
    h.flow(flow).await;
    let created = h
        .send(
            Method::POST,
            "/api/v1/main/executions/team/follow",
            Who::Admin,
            None,
        )
        .await
        .json();
    let id = created["id"].as_str().unwrap();
    let request = Request::get(format!("/api/v1/main/logs/{id}/follow"))
        .header(header::AUTHORIZATION, h.authorization(Who::Admin).unwrap())
        .body(Body::empty())
        .unwrap();
    let response = h.app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("text/event-stream"),
        "{content_type}"
    );
    // The stream ends when the execution does.
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8(body.to_vec()).unwrap();
    let messages: Vec<String> = text
        .lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .map(|data| {
            serde_json::from_str::<Value>(data).unwrap()["message"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        messages.first().map(String::as_str),
        Some("before ******"),
        "{text}"
    );
    assert!(
        messages.contains(&"from the shell ******".to_owned()),
        "{messages:?}"
    );
    assert_eq!(messages.last().map(String::as_str), Some("after"));
    assert!(!text.contains(SECRET), "{text}");
    // Following an ended execution replays its entries and ends.
    let replay = h
        .get(&format!("/api/v1/main/logs/{id}/follow"), Who::Admin)
        .await;
    assert_eq!(replay.text.matches("data: ").count(), messages.len());
}
