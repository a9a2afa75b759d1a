//! Several kestrel processes on one database, as docs/multi-node.md sets them up: servers
//! with `--no-worker` answer the API, `kestrel worker`s run executions from the queue. Each
//! story takes the database as a `--database` URL, so that it runs on the embedded SQLite
//! file shared by every process here and on PostgreSQL alike.

#![allow(clippy::unwrap_used)] // Test code: a failure is a failed test.

mod util;

use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};
use util::Sandbox;
use util::server::Running;

/// Heartbeats every second, takeover after three: a dead worker's executions resume soon.
const CONFIG: &str = "worker:\n  threads: 4\n  heartbeat: 1s\n  resume-after: 3s\n";

const QUICK: &str = "id: quick\nnamespace: nodes\ntasks:\n  - id: hello\n    type: io.kestra.plugin.core.log.Log\n    message: hello\n";

const QUICK_AGAIN: &str = "id: quick\nnamespace: nodes\ntasks:\n  - id: hello\n    type: io.kestra.plugin.core.log.Log\n    message: hello again\n";

const SLEEPY: &str = "id: sleepy\nnamespace: nodes\ntasks:\n  - id: nap\n    type: io.kestra.plugin.scripts.shell.Commands\n    commands:\n      - sleep 1\n      - echo slept\n";

const LONG: &str = "id: long\nnamespace: nodes\ntasks:\n  - id: nap\n    type: io.kestra.plugin.scripts.shell.Commands\n    commands:\n      - sleep 8\n      - echo slept\n";

const TICK: &str = "id: tick\nnamespace: nodes\ntasks:\n  - id: hello\n    type: io.kestra.plugin.core.log.Log\n    message: \"tick {{ trigger.date }}\"\ntriggers:\n  - id: minutely\n    type: io.kestra.plugin.core.trigger.Schedule\n    cron: \"* * * * *\"\n";

const DIGEST: &str = "id: digest\nnamespace: nodes\ntasks:\n  - id: read\n    type: io.kestra.plugin.core.debug.Return\n    format: \"{{ secret('ROTATED') | sha256 }}\"\n";

const LISTENER: &str = "id: listener\nnamespace: nodes\ntasks:\n  - id: said\n    type: io.kestra.plugin.core.debug.Return\n    format: \"{{ trigger.executionId }}\"\ntriggers:\n  - id: after-quick\n    type: io.kestra.plugin.core.trigger.Flow\n    conditions:\n      - type: io.kestra.plugin.core.condition.ExecutionFlow\n        namespace: nodes\n        flowId: quick\n";

const OTHER: &str = "id: other\nnamespace: nodes\ntasks:\n  - id: hello\n    type: io.kestra.plugin.core.log.Log\n    message: other\n";

const BOTH: &str = "id: both\nnamespace: nodes\ntasks:\n  - id: said\n    type: io.kestra.plugin.core.debug.Return\n    format: \"{{ trigger.flowId }}\"\ntriggers:\n  - id: after-both\n    type: io.kestra.plugin.core.trigger.Flow\n    conditions:\n      - id: quick-and-other\n        type: io.kestra.plugin.core.condition.MultipleCondition\n        window: P1D\n        conditions:\n          quick:\n            type: io.kestra.plugin.core.condition.ExecutionFlow\n            namespace: nodes\n            flowId: quick\n          other:\n            type: io.kestra.plugin.core.condition.ExecutionFlow\n            namespace: nodes\n            flowId: other\n";

/// The log entry of an execution taken over from a dead worker.
const LIMITED: &str = "id: limited\nnamespace: nodes\nconcurrency:\n  limit: 2\ntasks:\n  - id: nap\n    type: io.kestra.plugin.scripts.shell.Commands\n    commands:\n      - sleep 0.3\n";

const RESUMED: &str = "resumed after its worker stopped heartbeating";

/// Every kestrel process of a story: one sandbox (data directory, master key), one database.
struct Cluster {
    sandbox: Sandbox,
    database: String,
    auth: String,
}

impl Cluster {
    /// A cluster on `database`, with an API token and `CONFIG`.
    fn new(sandbox: Sandbox, database: String) -> Self {
        sandbox.write("kestrel.yml", CONFIG);
        let created = sandbox
            .kestrel(["tokens", "create", "ci", "--database", &database])
            .output();
        created.assert_code(0);
        let auth = format!("Bearer {}", created.stdout.trim());
        Self {
            sandbox,
            database,
            auth,
        }
    }

    fn global(&self) -> [&str; 4] {
        ["--config", "kestrel.yml", "--database", &self.database]
    }

    /// `kestrel server --no-worker`.
    fn api_server(&self) -> Running {
        let mut args = self.global().to_vec();
        args.push("--no-worker");
        Running::start(&self.sandbox, &args)
    }

    /// `kestrel server`, which runs executions too.
    fn server(&self) -> Running {
        Running::start(&self.sandbox, &self.global())
    }

    /// `kestrel worker`.
    fn worker(&self) -> Running {
        Running::worker(&self.sandbox, &self.global())
    }

    fn get(&self, server: &Running, path: &str) -> Value {
        server.json("GET", path, &self.auth, None)
    }

    fn flow(&self, server: &Running, yaml: &str) {
        let body = Some(("application/x-yaml", yaml));
        server.json("POST", "/api/v1/main/flows", &self.auth, body);
    }

    /// Triggers `nodes.<flow>` without waiting; its id.
    fn trigger(&self, server: &Running, flow: &str) -> String {
        let path = format!("/api/v1/main/executions/nodes/{flow}");
        let created = server.json("POST", &path, &self.auth, None);
        created["id"].as_str().unwrap().to_owned()
    }

    /// The executions of namespace `nodes` in `state` (every state: `None`), up to 1,000.
    fn executions(&self, server: &Running, state: Option<&str>) -> Vec<Value> {
        let state = state.map(|s| format!("&state={s}")).unwrap_or_default();
        let path = format!("/api/v1/main/executions/search?namespace=nodes&size=1000{state}");
        self.get(server, &path)["results"]
            .as_array()
            .unwrap()
            .clone()
    }

    /// Polls until `done` holds, for at most `limit`.
    fn wait_until(&self, limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + limit;
        while !done() {
            assert!(Instant::now() < deadline, "still waiting for {what}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Every log entry of execution `id`, every attempt's.
    fn logs(&self, server: &Running, id: &str) -> Vec<Value> {
        let path = format!("/api/v1/main/logs/{id}?attempt=all");
        self.get(server, &path).as_array().unwrap().clone()
    }
}

/// A fresh PostgreSQL database on the server `KESTREL_TEST_POSTGRES` names; `None` (the test
/// skips) when there is none and none is required.
fn postgres() -> Option<String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(kestrel_store_postgres::testing::fresh_database())
}

/// The hex SHA-256 of `text`, as the `sha256` filter writes it.
fn sha256(text: &str) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A fresh database for a story: the SQLite file in the story's sandbox.
fn sqlite(sandbox: &Sandbox) -> String {
    format!("sqlite://{}", sandbox.path("shared.db").display())
}

fn state(execution: &Value) -> &str {
    execution["state"]["current"].as_str().unwrap()
}

fn messages(logs: &[Value]) -> Vec<&str> {
    logs.iter()
        .map(|entry| entry["message"].as_str().unwrap())
        .collect()
}

/// Two API servers and two workers: 200 executions triggered across both servers, a tenth of
/// them running a task that sleeps, all end SUCCESS, each once.
fn every_execution_completes_once(sandbox: Sandbox, database: String) {
    let cluster = Cluster::new(sandbox, database);
    let servers = [cluster.api_server(), cluster.api_server()];
    let _workers = [cluster.worker(), cluster.worker()];
    cluster.flow(&servers[0], QUICK);
    cluster.flow(&servers[0], SLEEPY);
    let ids: Vec<String> = (0..200)
        .map(|i| {
            let flow = if i % 10 == 0 { "sleepy" } else { "quick" };
            cluster.trigger(&servers[i % 2], flow)
        })
        .collect();
    cluster.wait_until(
        Duration::from_secs(300),
        "200 executions to succeed",
        || cluster.executions(&servers[1], Some("SUCCESS")).len() == 200,
    );
    assert_eq!(cluster.executions(&servers[0], None).len(), 200);
    for (i, id) in ids.iter().enumerate() {
        let execution = cluster.get(&servers[i % 2], &format!("/api/v1/main/executions/{id}"));
        assert_eq!(state(&execution), "SUCCESS", "{execution}");
        let histories = execution["state"]["histories"].as_array().unwrap();
        let ends = histories.iter().filter(|h| h["state"] == "SUCCESS").count();
        assert_eq!(ends, 1, "{execution}");
        let logs = cluster.logs(&servers[(i + 1) % 2], id);
        let expected = if i % 10 == 0 { "slept" } else { "hello" };
        assert_eq!(messages(&logs), [expected], "{id} ran once: {logs:?}");
        assert!(
            logs.iter().all(|entry| entry["attemptNumber"] == 1),
            "{logs:?}"
        );
    }
}

/// A flow limited to 2 executions at a time, its executions triggered through two servers and
/// claimed by two workers: all of them succeed, and at no moment did more than 2 run their
/// tasks (from their last RUNNING entry to their end).
fn a_concurrency_limit_holds_across_workers(sandbox: Sandbox, database: String) {
    let cluster = Cluster::new(sandbox, database);
    let servers = [cluster.api_server(), cluster.api_server()];
    let _workers = [cluster.worker(), cluster.worker()];
    cluster.flow(&servers[0], LIMITED);
    let ids: Vec<String> = (0..8)
        .map(|i| cluster.trigger(&servers[i % 2], "limited"))
        .collect();
    cluster.wait_until(Duration::from_secs(120), "8 executions to succeed", || {
        cluster.executions(&servers[1], Some("SUCCESS")).len() == 8
    });
    let runs: Vec<(String, String)> = ids
        .iter()
        .map(|id| {
            let execution = cluster.get(&servers[0], &format!("/api/v1/main/executions/{id}"));
            let histories = execution["state"]["histories"].as_array().unwrap();
            let date = |entry: &Value| entry["date"].as_str().unwrap().to_owned();
            let started = histories
                .iter()
                .rev()
                .find(|h| h["state"] == "RUNNING")
                .map(date);
            (started.unwrap(), date(histories.last().unwrap()))
        })
        .collect();
    for (start, _) in &runs {
        let at_once = runs
            .iter()
            .filter(|(other_start, other_end)| other_start <= start && start < other_end)
            .count();
        assert!(at_once <= 2, "{at_once} ran at {start}: {runs:?}");
    }
}

/// A worker SIGKILLed while it holds executions: another worker resumes them after
/// `worker.resume-after`, as new attempts saying so; none is lost, none ends twice.
fn a_killed_workers_executions_are_resumed(sandbox: Sandbox, database: String) {
    let cluster = Cluster::new(sandbox, database);
    let server = cluster.api_server();
    cluster.flow(&server, LONG);
    let mut doomed = cluster.worker();
    let ids: Vec<String> = (0..6).map(|_| cluster.trigger(&server, "long")).collect();
    // Its four slots full: it holds four executions, two wait in the queue.
    cluster.wait_until(Duration::from_secs(60), "four executions running", || {
        cluster.executions(&server, Some("RUNNING")).len() == 4
    });
    let held: HashSet<String> = cluster
        .executions(&server, Some("RUNNING"))
        .iter()
        .map(|execution| execution["id"].as_str().unwrap().to_owned())
        .collect();
    doomed.child.kill().unwrap();
    doomed.child.wait().unwrap();
    let survivor = cluster.worker();
    cluster.wait_until(
        Duration::from_secs(180),
        "every execution to succeed",
        || cluster.executions(&server, Some("SUCCESS")).len() == 6,
    );
    for id in &ids {
        let logs = cluster.logs(&server, id);
        let shown = messages(&logs);
        if held.contains(id) {
            assert!(shown[0].contains(RESUMED), "{id}: {logs:?}");
            assert_eq!(shown[1..], ["slept"], "{id}: {logs:?}");
            assert_eq!(logs[1]["attemptNumber"], 2, "a new attempt: {logs:?}");
        } else {
            assert_eq!(shown, ["slept"], "{id} never ran before: {logs:?}");
        }
    }
    assert_eq!(cluster.executions(&server, None).len(), 6);
    let (code, stderr) = survivor.terminate();
    assert_eq!(code, Some(0), "{stderr:?}");
    assert!(
        stderr
            .iter()
            .any(|line| line.contains("kestrel worker stopped")),
        "{stderr:?}"
    );
}

/// Two servers see every tick of a Schedule trigger: each tick starts one execution.
fn a_schedule_tick_fires_once(sandbox: Sandbox, database: String) {
    let cluster = Cluster::new(sandbox, database);
    let servers = [cluster.server(), cluster.server()];
    cluster.flow(&servers[0], TICK);
    // How many executions each tick started (the tick is in their log).
    let ticks = |server: &Running| {
        let mut ticks = BTreeMap::new();
        for execution in cluster.executions(server, Some("SUCCESS")) {
            let logs = cluster.logs(server, execution["id"].as_str().unwrap());
            *ticks.entry(messages(&logs)[0].to_owned()).or_insert(0) += 1;
        }
        ticks
    };
    // Two ticks: by the second, the first was seen by both servers long ago.
    cluster.wait_until(Duration::from_secs(200), "two ticks", || {
        ticks(&servers[1]).len() >= 2
    });
    let seen = ticks(&servers[0]);
    assert!(
        seen.values().all(|&n| n == 1),
        "a tick fired twice: {seen:?}"
    );
}

/// Two API servers and two workers: each of 20 executions of `quick`, ended on either worker,
/// starts the Flow trigger's listener once.
fn a_flow_trigger_fires_once_per_end(sandbox: Sandbox, database: String) {
    let cluster = Cluster::new(sandbox, database);
    let servers = [cluster.api_server(), cluster.api_server()];
    let _workers = [cluster.worker(), cluster.worker()];
    cluster.flow(&servers[0], QUICK);
    cluster.flow(&servers[1], LISTENER);
    let ids: HashSet<String> = (0..20)
        .map(|i| cluster.trigger(&servers[i % 2], "quick"))
        .collect();
    let listened = || {
        cluster
            .executions(&servers[1], Some("SUCCESS"))
            .into_iter()
            .filter(|execution| execution["flowId"] == "listener")
            .collect::<Vec<_>>()
    };
    cluster.wait_until(Duration::from_secs(120), "20 listeners to succeed", || {
        listened().len() >= 20
    });
    let heard: Vec<String> = listened()
        .iter()
        .map(|execution| {
            let said = &execution["taskRunList"][0]["outputs"]["value"];
            said.as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(heard.len(), 20, "an end fired twice: {heard:?}");
    assert_eq!(heard.into_iter().collect::<HashSet<_>>(), ids);
}

/// One worker runs `quick` and stops; another, started afterwards, runs `other`: the
/// multiple condition waiting for both fires once, on the second worker, from what the first
/// recorded in the database.
fn a_multiple_condition_counts_ends_across_workers(sandbox: Sandbox, database: String) {
    let cluster = Cluster::new(sandbox, database);
    let server = cluster.api_server();
    for flow in [QUICK, OTHER, BOTH] {
        cluster.flow(&server, flow);
    }
    let of_flow = |flow: &str| {
        let found = cluster.executions(&server, Some("SUCCESS"));
        found
            .into_iter()
            .filter(|execution| execution["flowId"] == flow)
            .collect::<Vec<_>>()
    };
    let first = cluster.worker();
    cluster.trigger(&server, "quick");
    cluster.wait_until(Duration::from_secs(60), "quick to succeed", || {
        of_flow("quick").len() == 1
    });
    let (code, stderr) = first.terminate();
    assert_eq!(code, Some(0), "{stderr:?}");
    assert!(of_flow("both").is_empty(), "quick alone fires nothing");
    let _second = cluster.worker();
    cluster.trigger(&server, "other");
    cluster.wait_until(Duration::from_secs(60), "the listener to succeed", || {
        !of_flow("both").is_empty()
    });
    let fired = of_flow("both");
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(fired[0]["taskRunList"][0]["outputs"]["value"], "other");
}

/// Two servers: a flow saved through one is run in its new revision by the other, whose
/// cache held the old revision a moment before (it reads the latest again within a second).
fn a_flow_saved_on_one_server_is_run_by_the_other(sandbox: Sandbox, database: String) {
    let cluster = Cluster::new(sandbox, database);
    let (a, b) = (cluster.server(), cluster.server());
    cluster.flow(&a, QUICK);
    let path = "/api/v1/main/executions/nodes/quick?wait=true";
    let first = b.json("POST", path, &cluster.auth, None);
    assert_eq!(first["flowRevision"], 1, "{first:#}");
    let body = Some(("application/x-yaml", QUICK_AGAIN));
    a.json("PUT", "/api/v1/main/flows/nodes/quick", &cluster.auth, body);
    let mut ran = first;
    cluster.wait_until(Duration::from_secs(10), "revision 2 to run", || {
        ran = b.json("POST", path, &cluster.auth, None);
        ran["flowRevision"] == 2
    });
    let logs = cluster.logs(&b, ran["id"].as_str().unwrap());
    assert_eq!(messages(&logs), ["hello again"]);
}

impl Cluster {
    /// Sets secret `ROTATED` of namespace `nodes` through `server`'s API.
    fn set_secret(&self, server: &Running, value: &str) {
        let body = serde_json::json!({"key": "ROTATED", "value": value}).to_string();
        let path = "/api/v1/main/namespaces/nodes/secrets";
        let (status, text) = server.http(
            "PUT",
            path,
            Some(&self.auth),
            Some(("application/json", &body)),
        );
        assert!(status < 300, "PUT {path}: {status} {text}");
    }

    /// Runs `nodes.digest` on `server` to its end; the digest its task returned.
    fn digest_seen_by(&self, server: &Running) -> String {
        let path = "/api/v1/main/executions/nodes/digest?wait=true";
        let ended = server.json("POST", path, &self.auth, None);
        assert_eq!(state(&ended), "SUCCESS", "{ended:#}");
        ended["taskRunList"][0]["outputs"]["value"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

/// Two servers that run executions: a secret rotated through one is used by the very next
/// execution on the other, whose cache held the old value a moment before. PostgreSQL only:
/// its NOTIFY reaches the other node at once, where SQLite's processes look for changes every
/// 100 ms (crates/store-sqlite/tests/freshness.rs covers that bound).
fn a_rotation_on_one_server_is_used_by_the_next_execution_on_the_other(
    sandbox: Sandbox,
    database: String,
) {
    let cluster = Cluster::new(sandbox, database);
    let (a, b) = (cluster.server(), cluster.server());
    cluster.flow(&a, DIGEST);
    cluster.set_secret(&a, "first-value-before-rotation");
    assert_eq!(
        cluster.digest_seen_by(&b),
        sha256("first-value-before-rotation")
    );
    for round in 0..3 {
        let rotated = format!("rotated-value-number-{round}");
        cluster.set_secret(&a, &rotated);
        assert_eq!(
            cluster.digest_seen_by(&b),
            sha256(&rotated),
            "round {round}: the other server used the old value"
        );
    }
}

#[test]
fn postgres_every_execution_triggered_across_two_servers_completes_once() {
    if let Some(database) = postgres() {
        every_execution_completes_once(Sandbox::new(), database);
    }
}

#[test]
fn postgres_a_sigkilled_workers_executions_are_resumed_by_another() {
    if let Some(database) = postgres() {
        a_killed_workers_executions_are_resumed(Sandbox::new(), database);
    }
}

#[test]
fn postgres_a_schedule_tick_fires_once_across_two_servers() {
    if let Some(database) = postgres() {
        a_schedule_tick_fires_once(Sandbox::new(), database);
    }
}

#[test]
fn postgres_a_rotation_on_one_server_is_used_by_the_next_execution_on_the_other() {
    if let Some(database) = postgres() {
        a_rotation_on_one_server_is_used_by_the_next_execution_on_the_other(
            Sandbox::new(),
            database,
        );
    }
}

#[test]
fn postgres_a_flow_saved_on_one_server_is_run_by_the_other() {
    if let Some(database) = postgres() {
        a_flow_saved_on_one_server_is_run_by_the_other(Sandbox::new(), database);
    }
}

#[test]
fn postgres_a_flow_trigger_fires_once_per_end_across_two_workers() {
    if let Some(database) = postgres() {
        a_flow_trigger_fires_once_per_end(Sandbox::new(), database);
    }
}

#[test]
fn postgres_a_multiple_condition_counts_ends_across_workers() {
    if let Some(database) = postgres() {
        a_multiple_condition_counts_ends_across_workers(Sandbox::new(), database);
    }
}

#[test]
fn postgres_a_concurrency_limit_holds_across_workers() {
    if let Some(database) = postgres() {
        a_concurrency_limit_holds_across_workers(Sandbox::new(), database);
    }
}

#[test]
fn sqlite_a_concurrency_limit_holds_across_workers() {
    let sandbox = Sandbox::new();
    let database = sqlite(&sandbox);
    a_concurrency_limit_holds_across_workers(sandbox, database);
}

#[test]
fn sqlite_a_multiple_condition_counts_ends_across_workers() {
    let sandbox = Sandbox::new();
    let database = sqlite(&sandbox);
    a_multiple_condition_counts_ends_across_workers(sandbox, database);
}

#[test]
fn sqlite_a_flow_trigger_fires_once_per_end_across_two_workers() {
    let sandbox = Sandbox::new();
    let database = sqlite(&sandbox);
    a_flow_trigger_fires_once_per_end(sandbox, database);
}

#[test]
fn sqlite_a_flow_saved_on_one_server_is_run_by_the_other() {
    let sandbox = Sandbox::new();
    let database = sqlite(&sandbox);
    a_flow_saved_on_one_server_is_run_by_the_other(sandbox, database);
}

#[test]
fn sqlite_every_execution_triggered_across_two_servers_completes_once() {
    let sandbox = Sandbox::new();
    let database = sqlite(&sandbox);
    every_execution_completes_once(sandbox, database);
}

#[test]
fn sqlite_a_sigkilled_workers_executions_are_resumed_by_another() {
    let sandbox = Sandbox::new();
    let database = sqlite(&sandbox);
    a_killed_workers_executions_are_resumed(sandbox, database);
}

#[test]
fn sqlite_a_schedule_tick_fires_once_across_two_servers() {
    let sandbox = Sandbox::new();
    let database = sqlite(&sandbox);
    a_schedule_tick_fires_once(sandbox, database);
}
