//! `kestrel server`, `kestrel users` and `kestrel tokens` as a person runs them: the real
//! binary on a free port of 127.0.0.1, spoken to over plain HTTP.

#![allow(clippy::unwrap_used)] // Test code: a failure is a failed test.

mod util;

use serde_json::Value;
use std::time::Duration;
use util::Sandbox;
use util::server::{Running, basic};

#[test]
fn a_first_start_says_how_to_sign_in_and_a_sigterm_stops_it() {
    let sandbox = Sandbox::new();
    let mut server = Running::start(&sandbox, &[]);
    server.line_with("kestrel users add NAME");
    let (status, health) = server.http("GET", "/health", None, None);
    assert_eq!(status, 200);
    assert!(health.contains("\"UP\""), "{health}");
    let (status, body) = server.http("GET", "/api/v1/main/flows/search", None, None);
    assert_eq!(status, 401);
    assert!(body.contains("\"message\""), "{body}");
    let (code, stderr) = server.terminate();
    assert_eq!(code, Some(0), "{stderr:?}");
    assert!(stderr.iter().any(|l| l.contains("stopped")), "{stderr:?}");
}

#[test]
fn users_and_tokens_sign_in_with_the_access_they_were_given() {
    let sandbox = Sandbox::new();
    sandbox
        .kestrel(["users", "add", "ada"])
        .stdin("pa55-word\n")
        .output()
        .assert_code(0);
    let created = sandbox
        .kestrel(["tokens", "create", "ci", "--namespace", "team"])
        .output();
    created.assert_code(0);
    let token = created.stdout.trim().to_owned();
    assert!(token.starts_with("kst_"), "{token}");
    let listed = sandbox
        .kestrel(["tokens", "list", "--output", "json"])
        .output();
    let listed: Value = serde_json::from_str(&listed.stdout).unwrap();
    assert_eq!(
        listed[0]["secrets"], "none",
        "only the first principal writes secrets"
    );
    assert_eq!(listed[0]["namespaces"], serde_json::json!(["team"]));
    assert!(
        !listed.to_string().contains(&token),
        "a token is shown once"
    );
    let users = sandbox.kestrel(["users", "list"]).output();
    assert!(users.stdout.contains("ada\t*\twrite"), "{}", users.stdout);

    let server = Running::start(&sandbox, &[]);
    let ada = basic("ada", "pa55-word");
    let secret = (
        "application/json",
        r#"{"key":"DB","value":"the-db-password"}"#,
    );
    let put = server.json(
        "PUT",
        "/api/v1/main/namespaces/team/secrets",
        &ada,
        Some(secret),
    );
    assert_eq!(put[0]["key"], "DB");
    let bearer = format!("Bearer {token}");
    let (status, _) = server.http(
        "PUT",
        "/api/v1/main/namespaces/team/secrets",
        Some(&bearer),
        Some(secret),
    );
    assert_eq!(status, 403, "ci has no secret access");
    let (status, _) = server.http(
        "GET",
        "/api/v1/main/flows/search?namespace=other",
        Some(&bearer),
        None,
    );
    assert_eq!(status, 403, "ci reaches team only");
    let (status, _) = server.http(
        "GET",
        "/api/v1/main/flows/search?namespace=team",
        Some(&bearer),
        None,
    );
    assert_eq!(status, 200);
    let (status, _) = server.http(
        "GET",
        "/api/v1/main/flows/search",
        Some(&basic("ada", "nope")),
        None,
    );
    assert_eq!(status, 401);
    sandbox
        .kestrel(["tokens", "revoke", "ci"])
        .output()
        .assert_code(0);
    let (status, _) = server.http(
        "GET",
        "/api/v1/main/flows/search?namespace=team",
        Some(&bearer),
        None,
    );
    assert_eq!(status, 401, "a revoked token is refused at once");
    sandbox
        .kestrel(["tokens", "revoke", "ci"])
        .output()
        .assert_code(1);
    sandbox
        .kestrel(["users", "remove", "ada"])
        .output()
        .assert_code(0);
}

const SLOW: &str = "id: slow\nnamespace: team\ntasks:\n  - id: wait\n    type: io.kestra.plugin.scripts.shell.Commands\n    commands:\n      - sleep 8\n      - echo slept\n";
const QUICK: &str = "id: quick\nnamespace: team\ninputs:\n  - id: token\n    type: SECRET\ntasks:\n  - id: log\n    type: io.kestra.plugin.core.log.Log\n    message: \"{{ inputs.token | length }}\"\n";

fn state(server: &Running, auth: &str, id: &str) -> String {
    let execution = server.json("GET", &format!("/api/v1/main/executions/{id}"), auth, None);
    execution["state"]["current"].as_str().unwrap().to_owned()
}

#[test]
fn a_killed_server_resumes_waiting_executions_and_interrupted_ones() {
    let sandbox = Sandbox::new();
    // An interrupted execution is taken over once its worker missed heartbeats for 2 s.
    sandbox.write(
        "kestrel.yml",
        "worker:\n  threads: 1\n  heartbeat: 500ms\n  resume-after: 2s\n",
    );
    let token = sandbox
        .kestrel(["tokens", "create", "ci"])
        .output()
        .stdout
        .trim()
        .to_owned();
    let auth = format!("Bearer {token}");
    let config = ["--config", "kestrel.yml"];
    let mut server = Running::start(&sandbox, &config);
    for flow in [SLOW, QUICK] {
        server.json(
            "POST",
            "/api/v1/main/flows",
            &auth,
            Some(("application/x-yaml", flow)),
        );
    }
    let slow = server.json("POST", "/api/v1/main/executions/team/slow", &auth, None);
    let inputs = ("application/json", r#"{"token": "a-secret-input-value"}"#);
    let quick = server.json(
        "POST",
        "/api/v1/main/executions/team/quick",
        &auth,
        Some(inputs),
    );
    let (slow, quick) = (slow["id"].as_str().unwrap(), quick["id"].as_str().unwrap());
    assert_eq!(state(&server, &auth, quick), "CREATED", "one worker, busy");
    server.child.kill().unwrap();
    server.child.wait().unwrap();

    let restarted = Running::start(&sandbox, &config);
    for id in [quick, slow] {
        let mut now = String::new();
        // Generous: the slow one is resumed after 2 s and sleeps 8 s again.
        for _ in 0..1200 {
            now = state(&restarted, &auth, id);
            if now == "SUCCESS" {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(now, "SUCCESS", "{id} ran after the restart");
    }
    let logs = restarted.json("GET", &format!("/api/v1/main/logs/{quick}"), &auth, None);
    assert_eq!(logs[0]["message"], "20");
    let logs = restarted.json("GET", &format!("/api/v1/main/logs/{slow}"), &auth, None);
    assert!(
        logs[0]["message"]
            .as_str()
            .unwrap()
            .contains("resumed after its worker stopped heartbeating"),
        "{logs}"
    );
    let slept = logs.as_array().unwrap().last().unwrap();
    assert_eq!(slept["message"], "slept", "{logs}");
    assert_eq!(slept["attemptNumber"], 2, "a new attempt: {logs}");
}

/// The test certificate (for 127.0.0.1) and its key, as `server.tls` configuration.
fn tls_config(sandbox: &Sandbox, cert: bool, key: bool) {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls");
    let mut config = String::from("server:\n  tls:\n");
    if cert {
        config.push_str(&format!(
            "    cert-file: {}\n",
            fixtures.join("cert.pem").display()
        ));
    }
    if key {
        config.push_str(&format!(
            "    key-file: {}\n",
            fixtures.join("key.pem").display()
        ));
    }
    sandbox.write("kestrel.yml", &config);
}

/// `curl ARGS...`: whether it succeeded, and what it printed.
fn curl(args: &[&str]) -> (bool, String) {
    let output = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .args(args)
        .output()
        .expect("curl runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[test]
fn with_server_tls_the_server_speaks_https_and_nothing_else() {
    let sandbox = Sandbox::new();
    tls_config(&sandbox, true, true);
    let invocation =
        sandbox.kestrel(["--config", "kestrel.yml", "server", "--bind", "127.0.0.1:0"]);
    let server = Running::spawn_at(invocation, "https://");
    let address = server.address.clone();
    let cert = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls/cert.pem");
    let (ok, health) = curl(&[
        "--cacert",
        &cert.display().to_string(),
        &format!("https://{address}/health"),
    ]);
    assert!(ok && health.contains("\"UP\""), "{health}");
    let (ok, _) = curl(&[&format!("http://{address}/health")]);
    assert!(!ok, "plain HTTP is not answered");
    let (code, stderr) = server.terminate();
    assert_eq!(code, Some(0), "{stderr:?}");
}

#[test]
fn server_tls_needs_both_files() {
    let sandbox = Sandbox::new();
    tls_config(&sandbox, true, false);
    let out = sandbox
        .kestrel(["--config", "kestrel.yml", "server", "--bind", "127.0.0.1:0"])
        .output();
    out.assert_code(2);
    assert!(out.stderr.contains("key-file"), "{out:#?}");
}

/// The form's CSRF token in `html`.
fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a form token") + 19;
    html[at..].split('"').next().unwrap().to_owned()
}

#[test]
fn the_first_admin_is_created_on_the_setup_page_with_the_code_from_the_log() {
    let sandbox = Sandbox::new();
    let mut server = Running::start(&sandbox, &[]);
    let notice = server.line_with("/ui/setup");
    let code = notice
        .split("one-time code ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .unwrap()
        .trim()
        .to_owned();
    let base = format!("http://{}", server.address);
    let jar = sandbox.path("cookies").display().to_string();
    let (ok, shown) = curl(&["-L", "-c", &jar, &format!("{base}/ui/login")]);
    assert!(
        ok && shown.contains("One-time code"),
        "login leads to setup: {shown}"
    );
    let post = |code: &str, csrf: &str| {
        curl(&[
            "-b",
            &jar,
            "-c",
            &jar,
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{redirect_url}",
            "--data-urlencode",
            &format!("code={code}"),
            "--data-urlencode",
            "username=root",
            "--data-urlencode",
            "password=a-long-admin-password",
            "--data-urlencode",
            "again=a-long-admin-password",
            "--data-urlencode",
            &format!("csrf={csrf}"),
            &format!("{base}/ui/setup"),
        ])
        .1
    };
    let refused = post("AAAA-AAAA-AAAA-AAAA", &csrf_of(&shown));
    assert!(refused.starts_with("403"), "{refused}");
    let users = sandbox.kestrel(["users", "list"]).output();
    assert!(!users.stdout.contains("root"), "{users:#?}");

    let (_, again) = curl(&["-b", &jar, "-c", &jar, &format!("{base}/ui/setup")]);
    let created = post(&code, &csrf_of(&again));
    assert!(
        created.starts_with("303") && created.ends_with("/ui/namespaces"),
        "{created}"
    );
    let (ok, home) = curl(&["-b", &jar, &format!("{base}/ui/namespaces")]);
    assert!(ok && home.contains("Sign out"), "signed in: {home}");
    let closed = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{redirect_url}",
        &format!("{base}/ui/setup"),
    ])
    .1;
    assert!(closed.ends_with("/ui/login"), "{closed}");
    let (ok, _) = curl(&[
        "-f",
        "-u",
        "root:a-long-admin-password",
        &format!("{base}/api/v1/main/flows/search"),
    ]);
    assert!(ok, "the admin signs in to the API");
    let users = sandbox.kestrel(["users", "list"]).output();
    assert!(
        users.stdout.contains("root") && users.stdout.contains("write"),
        "{users:#?}"
    );
    let (_, stderr) = server.terminate();
    assert!(
        stderr
            .iter()
            .all(|line| !line.contains("a-long-admin-password")),
        "{stderr:?}"
    );
}
