//! kestrel over an external secret manager, as a team runs it: a real OpenBao dev server on
//! 127.0.0.1 (`scripts/services/openbao-install`), and moto for AWS Secrets Manager
//! (`scripts/services/moto-install`); the real binary for the CLI and the server. Without them
//! each test says so and passes, unless `KESTREL_REQUIRE_OPENBAO` / `KESTREL_REQUIRE_MOTO` is set.

#![allow(clippy::unwrap_used)] // Test code: a failure is a failed test.

mod util;

use kestrel_store_vault::testing::{DevVault, dev_vault_or_skip};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use util::server::Running;
use util::{MASK, Sandbox};

const VALUE: &str = "vault-held-token-4f2a";

/// A configuration with Vault as the default backend under a prefix of this test's own, the
/// token read from `TEST_VAULT_TOKEN`; `extra` is appended (more sections).
fn configure(sandbox: &Sandbox, vault: &DevVault, extra: &str) -> PathBuf {
    let prefix = vault.settings().prefix;
    sandbox.write(
        "kestrel.yml",
        &format!(
            "secret:\n  type: vault\n  vault:\n    address: {}\n    token: ${{TEST_VAULT_TOKEN}}\n    prefix: {prefix}\n{extra}",
            vault.address()
        ),
    )
}

/// `kestrel --config kestrel.yml ARGS`, with the Vault token in the environment only.
fn kestrel(sandbox: &Sandbox, vault: &DevVault, args: &[&str]) -> util::Invocation {
    let mut all = vec!["--config", "kestrel.yml"];
    all.extend_from_slice(args);
    sandbox
        .kestrel(all)
        .env("TEST_VAULT_TOKEN", vault.root_token())
        .env_remove("VAULT_TOKEN")
}

/// `kestrel secrets set NAMESPACE KEY` with `value` on stdin; it must succeed and never echo it.
fn set_secret(sandbox: &Sandbox, vault: &DevVault, namespace: &str, key: &str, value: &str) {
    kestrel(sandbox, vault, &["secrets", "set", namespace, key])
        .stdin(value)
        .output()
        .assert_code(0)
        .assert_hides(value);
}

fn flow(namespace: &str, key: &str) -> String {
    format!(
        "id: reads\nnamespace: {namespace}\ntasks:\n  - id: log\n    type: io.kestra.plugin.core.log.Log\n    message: \"{{{{ secret('{key}') }}}}\"\n  - id: length\n    type: io.kestra.plugin.core.debug.Return\n    format: \"{{{{ secret('{key}') | length }}}}\"\n"
    )
}

/// The value Vault holds for `namespace`/`key` under this test's prefix, read directly.
fn in_vault(vault: &DevVault, prefix: &str, namespace: &str, key: &str) -> Option<String> {
    let path = format!(
        "secret/data/{prefix}/main/{}/{key}",
        namespace.replace('.', "/")
    );
    let answer = vault.request("GET", &path, None).ok()?;
    answer["data"]["data"]["value"].as_str().map(str::to_owned)
}

fn prefix_of(sandbox: &Sandbox) -> String {
    let config = std::fs::read_to_string(sandbox.path("kestrel.yml")).unwrap();
    let line = config.lines().find(|l| l.contains("prefix:")).unwrap();
    line.split(':').nth(1).unwrap().trim().to_owned()
}

#[test]
fn a_secret_set_through_kestrel_lives_in_vault_and_flows_read_it_masked() {
    let Some(vault) = dev_vault_or_skip("secret_backends::set_and_read") else {
        return;
    };
    let sandbox = Sandbox::new();
    configure(&sandbox, &vault, "");
    set_secret(&sandbox, &vault, "company.team", "API_TOKEN", VALUE);
    let prefix = prefix_of(&sandbox);
    assert_eq!(
        in_vault(&vault, &prefix, "company.team", "API_TOKEN").as_deref(),
        Some(VALUE)
    );
    // The embedded store keeps the audit trail, never the value.
    let database = std::fs::read(sandbox.path("data/kestrel.db")).unwrap();
    assert!(!String::from_utf8_lossy(&database).contains(VALUE));

    sandbox.write("flow.yml", &flow("company.team.project", "API_TOKEN"));
    let run = kestrel(&sandbox, &vault, &["run", "flow.yml", "--output", "json"]).output();
    run.assert_code(0).assert_hides(VALUE);
    assert_eq!(run.messages(), [MASK]);
    let length = &run.json()["taskRuns"][1]["outputs"]["value"];
    assert_eq!(length, &json!(VALUE.len().to_string()));

    let audit = kestrel(&sandbox, &vault, &["secrets", "audit", "company.team"]).output();
    audit.assert_code(0);
    assert!(audit.stdout.contains("read"), "{}", audit.stdout);
    assert!(audit.stdout.contains("set"), "{}", audit.stdout);

    let got = kestrel(
        &sandbox,
        &vault,
        &["secrets", "get", "company.team", "API_TOKEN"],
    )
    .output();
    got.assert_code(0);
    assert_eq!(got.stdout, VALUE);
}

#[test]
fn secrets_check_names_every_key_a_flow_uses_that_the_backend_lacks() {
    let Some(vault) = dev_vault_or_skip("secret_backends::check") else {
        return;
    };
    let sandbox = Sandbox::new();
    configure(&sandbox, &vault, "");
    set_secret(&sandbox, &vault, "company", "PRESENT", VALUE);
    sandbox.write("present.yml", &flow("company.team", "PRESENT"));
    sandbox.write("missing.yml", &flow("company.team", "ABSENT_KEY"));
    let ok = kestrel(&sandbox, &vault, &["secrets", "check", "present.yml"]).output();
    ok.assert_code(0).assert_hides(VALUE);
    assert!(ok.stdout.contains("vault (company)"), "{}", ok.stdout);
    let missing = kestrel(
        &sandbox,
        &vault,
        &["secrets", "check", "present.yml", "missing.yml"],
    )
    .output();
    missing.assert_code(1).assert_hides(VALUE);
    assert!(
        missing.stdout.contains(
            "ABSENT_KEY\tcompany.team\tmissing: not in vault (company.team), vault (company), \
             the environment"
        ),
        "{}",
        missing.stdout
    );
}

#[test]
fn a_read_only_namespace_refuses_writes_from_the_cli_and_the_api_and_still_serves_reads() {
    let Some(vault) = dev_vault_or_skip("secret_backends::read_only") else {
        return;
    };
    let sandbox = Sandbox::new();
    let extra = "namespaces:\n  company.finance:\n    secret: {type: vault, read-only: true}\n";
    configure(&sandbox, &vault, extra);
    let prefix = prefix_of(&sandbox);
    let data = json!({"data": {"value": VALUE}});
    vault
        .request(
            "POST",
            &format!("secret/data/{prefix}/main/company/finance/DB"),
            Some(data),
        )
        .unwrap();
    let refused = kestrel(
        &sandbox,
        &vault,
        &["secrets", "set", "company.finance.eu", "K"],
    )
    .stdin("new-value")
    .output();
    refused.assert_code(2).assert_hides("new-value");
    assert!(
        refused
            .stderr
            .contains("vault backend, configured read-only"),
        "{}",
        refused.stderr
    );
    // The first principal may write secrets.
    let token = kestrel(&sandbox, &vault, &["tokens", "create", "ops"]).output();
    let auth = format!("Bearer {}", token.stdout.trim());
    let server = Running::spawn(kestrel(
        &sandbox,
        &vault,
        &["server", "--bind", "127.0.0.1:0"],
    ));
    let body = ("application/json", r#"{"key":"K","value":"api-value"}"#);
    let (status, text) = server.http(
        "PUT",
        "/api/v1/main/namespaces/company.finance/secrets",
        Some(&auth),
        Some(body),
    );
    assert_eq!(status, 409, "{text}");
    assert!(
        text.contains("vault backend, configured read-only"),
        "{text}"
    );
    assert!(!text.contains("api-value"));
    // The server reads through the same composition as the CLI.
    let flow = flow("company.finance", "DB");
    server.json(
        "POST",
        "/api/v1/main/flows",
        &auth,
        Some(("application/x-yaml", &flow)),
    );
    let execution = server.json(
        "POST",
        "/api/v1/main/executions/company.finance/reads?wait=true",
        &auth,
        None,
    );
    assert_eq!(execution["state"]["current"], "SUCCESS", "{execution}");
    let length = &execution["taskRunList"][1]["outputs"]["value"];
    assert_eq!(length, &json!(VALUE.len().to_string()));
    assert!(!execution.to_string().contains(VALUE));
}

/// Polls `done` every 50 ms until it holds or `limit` passes; whether it held.
fn eventually(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn a_change_through_the_cli_reaches_the_servers_cache_at_once_and_a_stopped_backend_is_named() {
    let Some(mut vault) = dev_vault_or_skip("secret_backends::freshness") else {
        return;
    };
    let sandbox = Sandbox::new();
    configure(&sandbox, &vault, "");
    let set = |value: &str| set_secret(&sandbox, &vault, "team", "ROTATED", value);
    set("short");
    let token = kestrel(&sandbox, &vault, &["tokens", "create", "ops"]).output();
    let auth = format!("Bearer {}", token.stdout.trim());
    let server = Running::spawn(kestrel(
        &sandbox,
        &vault,
        &["server", "--bind", "127.0.0.1:0"],
    ));
    let flow = flow("team", "ROTATED");
    server.json(
        "POST",
        "/api/v1/main/flows",
        &auth,
        Some(("application/x-yaml", &flow)),
    );
    let length = || -> Value {
        let execution = server.json(
            "POST",
            "/api/v1/main/executions/team/reads?wait=true",
            &auth,
            None,
        );
        execution["taskRunList"][1]["outputs"]["value"].clone()
    };
    assert_eq!(length(), json!("5"));
    // The server caches for 60 s; a write through kestrel reaches it within a second.
    set("a-much-longer-value");
    assert!(
        eventually(Duration::from_secs(10), || length() == json!("19")),
        "the server still uses the old value"
    );

    vault.stop();
    let (status, health) = server.http("GET", "/health", None, None);
    assert_eq!(status, 200, "the server stays up: {health}");
    let health: Value = serde_json::from_str(&health).unwrap();
    let backends = &health["checks"]["secrets"]["details"]["backends"];
    assert_eq!(backends[0]["backend"], "vault", "{health}");
    assert_eq!(backends[0]["status"], "DOWN", "{health}");
    sandbox.write("other.yml", &flow.replace("ROTATED", "NEVER_CACHED"));
    let run = kestrel(&sandbox, &vault, &["run", "other.yml", "--output", "json"]).output();
    run.assert_code(1);
    let failure = run.json().to_string();
    assert!(failure.contains("vault"), "{failure}");
    assert!(failure.contains("NEVER_CACHED"), "{failure}");
}

#[test]
fn secrets_copy_moves_a_namespace_from_the_embedded_store_into_vault() {
    let Some(vault) = dev_vault_or_skip("secret_backends::copy") else {
        return;
    };
    let sandbox = Sandbox::new();
    configure(&sandbox, &vault, "");
    // The same file, with the embedded store as the default backend.
    let config = std::fs::read_to_string(sandbox.path("kestrel.yml")).unwrap();
    sandbox.write(
        "kestrel.yml",
        &config.replace("type: vault", "type: embedded"),
    );
    for key in ["A_KEY", "B_KEY"] {
        set_secret(&sandbox, &vault, "company.team", key, VALUE);
    }
    let copied = kestrel(
        &sandbox,
        &vault,
        &[
            "secrets",
            "copy",
            "--from-namespace",
            "company.team",
            "--to-backend",
            "vault",
        ],
    )
    .output();
    copied.assert_code(0).assert_hides(VALUE);
    assert!(
        copied.stderr.contains("copied 2 secret(s)"),
        "{}",
        copied.stderr
    );
    let prefix = prefix_of(&sandbox);
    for key in ["A_KEY", "B_KEY"] {
        assert_eq!(
            in_vault(&vault, &prefix, "company.team", key).as_deref(),
            Some(VALUE)
        );
    }
}

#[test]
fn aws_secrets_manager_configured_by_file_holds_what_kestrel_sets_and_flows_read() {
    let Some(aws) = kestrel_store_aws::testing::dev_aws_or_skip("secret_backends::aws") else {
        return;
    };
    let settings = aws.settings();
    let sandbox = Sandbox::new();
    sandbox.write(
        "kestrel.yml",
        &format!(
            "secret:\n  type: aws-secret-manager\n  aws-secret-manager:\n    region: us-east-1\n    endpoint-override: {}\n    access-key-id: testing\n    secret-key-id: ${{TEST_AWS_SECRET}}\n    prefix: {}\n",
            aws.endpoint(),
            settings.prefix
        ),
    );
    let kestrel = |args: &[&str]| {
        let mut all = vec!["--config", "kestrel.yml"];
        all.extend_from_slice(args);
        sandbox
            .kestrel(all)
            .env("TEST_AWS_SECRET", "testing-secret")
    };
    kestrel(&["secrets", "set", "company.team", "API_TOKEN"])
        .stdin(VALUE)
        .output()
        .assert_code(0)
        .assert_hides(VALUE);
    let versions = kestrel(&["secrets", "versions", "company.team", "API_TOKEN"]).output();
    versions.assert_code(0);
    assert!(
        versions.stdout.contains("AWSCURRENT"),
        "{}",
        versions.stdout
    );
    let got = kestrel(&[
        "secrets",
        "get",
        "company.team",
        "API_TOKEN",
        "--version",
        "AWSCURRENT",
    ])
    .output();
    got.assert_code(0);
    assert_eq!(got.stdout, VALUE);
    sandbox.write("flow.yml", &flow("company.team.project", "API_TOKEN"));
    let run = kestrel(&["run", "flow.yml", "--output", "json"]).output();
    run.assert_code(0).assert_hides(VALUE);
    assert_eq!(run.messages(), [MASK]);
}
