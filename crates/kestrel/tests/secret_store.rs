//! The embedded secret store from the command line: `secrets set/get/list/versions/delete/
//! undelete/destroy/audit/rotate-key/rekey/import-env`, and `secret()` reading it by namespace
//! in `kestrel run`, with the master key rules of the README.

mod util;

use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use util::{MASK, Output, Sandbox, base64, sha256};

/// `kestrel secrets set NAMESPACE KEY` with `value` on stdin; must succeed.
fn set(sandbox: &Sandbox, namespace: &str, key: &str, value: &str) -> Output {
    let out = sandbox
        .kestrel(["secrets", "set", namespace, key])
        .stdin(value)
        .output();
    out.assert_code(0);
    assert_eq!(out.stdout, "", "set prints nothing on stdout: {out:#?}");
    out
}

/// `kestrel secrets get NAMESPACE KEY [ARGS...]`.
fn get(sandbox: &Sandbox, namespace: &str, key: &str, args: &[&str]) -> Output {
    let mut all = vec!["secrets", "get", namespace, key];
    all.extend_from_slice(args);
    sandbox.kestrel(all).output()
}

/// A flow `reader` in `namespace` logging the digest of each of `keys`.
fn digest_flow(namespace: &str, keys: &[&str]) -> String {
    let messages: String = keys
        .iter()
        .map(|key| format!("      - \"{{{{ secret('{key}') | sha256 }}}}\"\n"))
        .collect();
    format!(
        "id: reader\nnamespace: {namespace}\ntasks:\n  - id: log\n    type: io.kestra.plugin.core.log.Log\n    message:\n{messages}"
    )
}

/// Every file of `dir` (the database, its WAL and shared memory), concatenated.
fn bytes_under(dir: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(dir).expect("the data directory exists") {
        let path = entry.expect("a directory entry").path();
        if path.is_file() {
            bytes.extend(std::fs::read(&path).expect("a readable file"));
        }
    }
    bytes
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

/// The rows of a listing (header left out), split at tabs.
fn rows(out: &Output) -> Vec<Vec<String>> {
    out.stdout
        .lines()
        .skip(1)
        .map(|line| line.split('\t').map(str::to_owned).collect())
        .collect()
}

#[test]
fn a_value_set_from_stdin_or_a_file_comes_back_byte_for_byte() {
    let sandbox = Sandbox::new();
    let value = "pässwörd with spaces\tand a tab\n";
    let out = set(&sandbox, "company.team", "FROM_STDIN", value);
    assert!(
        out.stderr.contains("warning:") && out.stderr.contains("newline"),
        "a trailing newline is kept, with a warning: {out:#?}"
    );
    out.assert_hides("pässwörd");
    let got = get(&sandbox, "company.team", "FROM_STDIN", &[]);
    got.assert_code(0);
    assert_eq!(got.stdout, value, "exactly the value, no newline added");

    sandbox.write("value.txt", "no-newline-🔑");
    let out = sandbox
        .kestrel([
            "secrets",
            "set",
            "company.team",
            "FROM_FILE",
            "--from-file",
            "value.txt",
        ])
        .output();
    out.assert_code(0);
    assert!(!out.stderr.contains("newline"), "{out:#?}");
    let got = get(&sandbox, "company.team", "FROM_FILE", &[]);
    assert_eq!(got.stdout, "no-newline-🔑");
}

#[test]
fn a_value_is_never_taken_from_the_command_line() {
    let sandbox = Sandbox::new();
    let out = sandbox
        .kestrel(["secrets", "set", "dev", "K", "hunter2"])
        .output();
    out.assert_code(2);
    assert_eq!(out.stdout, "");
    // Without a value on stdin (a forgotten pipe), nothing is stored either.
    let out = sandbox.kestrel(["secrets", "set", "dev", "K"]).output();
    out.assert_code(2);
    assert!(out.stderr.contains("empty"), "{out:#?}");
    get(&sandbox, "dev", "K", &[]).assert_code(1);
}

#[test]
fn get_reads_exactly_that_namespace_and_exits_1_when_absent() {
    let sandbox = Sandbox::new();
    let out = get(&sandbox, "dev", "NOTHING_YET", &[]);
    out.assert_code(1);
    assert_eq!(out.stdout, "");
    assert!(out.stderr.contains("NOTHING_YET"), "{out:#?}");
    set(&sandbox, "company", "ROOT_ONLY", "root-value");
    let out = get(&sandbox, "company.team", "ROOT_ONLY", &[]);
    out.assert_code(1);
    assert_eq!(out.stdout, "", "no walk to parents: {out:#?}");
}

#[test]
fn a_flow_inherits_from_its_parents_and_a_child_shadows_them() {
    let sandbox = Sandbox::new();
    set(&sandbox, "a", "FROM_ROOT", "root-secret-1");
    set(&sandbox, "a", "SHADOWED", "root-secret-2");
    set(&sandbox, "a.b", "SHADOWED", "middle-secret-2");
    set(&sandbox, "a.b.c", "OWN", "own-secret-3");
    set(&sandbox, "other", "ELSEWHERE", "other-secret");
    let flow = digest_flow("a.b.c", &["FROM_ROOT", "SHADOWED", "OWN"]);
    let out = sandbox.run_json(&flow, &[]);
    out.assert_code(0)
        .assert_hides("root-secret")
        .assert_hides("middle-secret")
        .assert_hides("own-secret");
    assert_eq!(
        out.messages(),
        [
            sha256("root-secret-1"),
            sha256("middle-secret-2"),
            sha256("own-secret-3")
        ]
    );
    // Another namespace's key is not inherited.
    let out = sandbox.run_json(&digest_flow("a.b.c", &["ELSEWHERE"]), &[]);
    out.assert_code(1);
    assert!(
        out.stdout
            .contains("Cannot find secret for key 'ELSEWHERE'."),
        "{out:#?}"
    );
}

#[test]
fn a_stored_secret_comes_before_the_environment_and_is_masked() {
    let sandbox = Sandbox::new();
    set(&sandbox, "dev", "TOKEN", "stored-token-value");
    let flow = "id: f\nnamespace: dev\ntasks:\n  - id: log\n    type: io.kestra.plugin.core.log.Log\n    message: \"token={{ secret('TOKEN') }} env={{ secret('ONLY_ENV') | sha256 }}\"\n";
    let out = sandbox.run_json(
        flow,
        &[
            ("SECRET_TOKEN", &base64("env-token")),
            ("SECRET_ONLY_ENV", &base64("from-env")),
        ],
    );
    out.assert_code(0).assert_hides("stored-token-value");
    assert_eq!(
        out.messages(),
        [format!("token={MASK} env={}", sha256("from-env"))]
    );
}

#[test]
fn list_shows_own_and_inherited_keys_with_their_origin_never_values() {
    let sandbox = Sandbox::new();
    set(&sandbox, "company", "ROOT_KEY", "value-root");
    set(&sandbox, "company", "SHARED", "value-shared-root");
    let out = sandbox
        .kestrel([
            "secrets",
            "set",
            "company.team",
            "SHARED",
            "--description",
            "the team's own",
            "--tag",
            "owner=data",
        ])
        .stdin("value-shared-team")
        .output();
    out.assert_code(0);
    set(&sandbox, "company.team", "TEAM_KEY", "value-team");

    let out = sandbox
        .kestrel(["secrets", "list", "company.team"])
        .output();
    out.assert_code(0).assert_hides("value-");
    assert!(out.stdout.starts_with("KEY\tNAMESPACE\t"), "{out:#?}");
    let listed: Vec<(String, String)> = rows(&out)
        .into_iter()
        .map(|row| (row[0].clone(), row[1].clone()))
        .collect();
    let expected = [
        ("ROOT_KEY", "company"),
        ("SHARED", "company.team"),
        ("TEAM_KEY", "company.team"),
    ];
    assert_eq!(listed, expected.map(|(k, n)| (k.to_owned(), n.to_owned())));

    let out = sandbox
        .kestrel(["secrets", "list", "company.team", "--output", "json"])
        .output();
    out.assert_code(0).assert_hides("value-");
    let json: Value = serde_json::from_str(&out.stdout).expect("JSON");
    let shared = &json[1];
    assert_eq!(shared["key"], "SHARED");
    assert_eq!(shared["inherited"], false);
    assert_eq!(shared["description"], "the team's own");
    assert_eq!(shared["tags"][0]["key"], "owner");
    assert_eq!(json[0]["inherited"], true);
}

#[test]
fn versions_can_be_read_deleted_restored_and_destroyed() {
    let sandbox = Sandbox::new();
    for value in ["first-value", "second-value", "third-value"] {
        set(&sandbox, "dev", "K", value);
    }
    let out = sandbox
        .kestrel(["secrets", "versions", "dev", "K"])
        .output();
    out.assert_code(0).assert_hides("-value");
    let numbers: Vec<String> = rows(&out).into_iter().map(|row| row[0].clone()).collect();
    assert_eq!(numbers, ["1", "2", "3"]);
    assert_eq!(
        get(&sandbox, "dev", "K", &["--version", "1"]).stdout,
        "first-value"
    );
    assert_eq!(get(&sandbox, "dev", "K", &[]).stdout, "third-value");

    sandbox
        .kestrel(["secrets", "delete", "dev", "K"])
        .output()
        .assert_code(0);
    let out = get(&sandbox, "dev", "K", &[]);
    out.assert_code(1);
    assert!(out.stderr.contains("deleted"), "{out:#?}");
    assert_eq!(
        get(&sandbox, "dev", "K", &["--version", "2"]).stdout,
        "second-value",
        "older versions stay readable"
    );
    sandbox
        .kestrel(["secrets", "undelete", "dev", "K"])
        .output()
        .assert_code(0);
    assert_eq!(get(&sandbox, "dev", "K", &[]).stdout, "third-value");

    sandbox
        .kestrel(["secrets", "destroy", "dev", "K", "--version", "2", "--yes"])
        .output()
        .assert_code(0);
    let out = get(&sandbox, "dev", "K", &["--version", "2"]);
    out.assert_code(1);
    assert!(out.stderr.contains("destroyed"), "{out:#?}");
    let out = sandbox
        .kestrel(["secrets", "versions", "dev", "K", "--output", "json"])
        .output();
    let json: Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert!(json[1]["destroyedAt"].is_string(), "{json}");
    assert!(json[0]["destroyedAt"].is_null(), "{json}");

    sandbox
        .kestrel(["secrets", "destroy", "dev", "K", "--yes"])
        .output()
        .assert_code(0);
    get(&sandbox, "dev", "K", &[]).assert_code(1);
    get(&sandbox, "dev", "K", &["--version", "1"]).assert_code(1);
    sandbox
        .kestrel(["secrets", "delete", "dev", "NEVER_SET"])
        .output()
        .assert_code(1);
}

#[test]
fn the_audit_trail_names_executions_and_the_cli_never_values() {
    let sandbox = Sandbox::new();
    set(&sandbox, "a", "TOKEN", "audited-value");
    let out = sandbox.run_json(&digest_flow("a.b", &["TOKEN"]), &[]);
    out.assert_code(0);
    let execution = out.json()["id"].as_str().expect("an id").to_owned();
    get(&sandbox, "a", "TOKEN", &[]).assert_code(0);

    let out = sandbox.kestrel(["secrets", "audit", "a"]).output();
    out.assert_code(0).assert_hides("audited-value");
    assert!(
        out.stdout
            .starts_with("TIME\tACTOR\tACTION\tNAMESPACE\tKEY\tVERSION\n"),
        "{out:#?}"
    );
    let actions: Vec<(String, String)> = rows(&out)
        .into_iter()
        .map(|row| (row[1].clone(), row[2].clone()))
        .collect();
    let by_cli = |actor: &str| actor.contains("cli:");
    assert_eq!(actions.len(), 3, "{out:#?}");
    // Newest first: the CLI's read, the execution's read, the set.
    assert!(by_cli(&actions[0].0) && actions[0].1 == "read", "{out:#?}");
    // The execution, and who triggered it: the operator at the command line.
    let (reader, action) = &actions[1];
    assert!(
        reader.starts_with(&format!("execution:{execution} by cli:")),
        "{out:#?}"
    );
    assert_eq!(action, "read");
    assert!(by_cli(&actions[2].0) && actions[2].1 == "set", "{out:#?}");

    let out = sandbox
        .kestrel(["secrets", "audit", "--output", "json"])
        .output();
    out.assert_code(0).assert_hides("audited-value");
    let json: Value = serde_json::from_str(&out.stdout).expect("JSON");
    let reader = json[1]["actor"]["id"].as_str().expect("an actor id");
    assert!(
        reader.starts_with(&format!("{execution} by cli:")),
        "{json}"
    );
    assert_eq!(json[1]["namespace"], "a");
    assert_eq!(json[1]["key"], "TOKEN");
}

/// Runs `sql` on the sandbox's database, as someone with the file but not the master key
/// could.
fn tamper(sandbox: &Sandbox, sql: &str) {
    let db = rusqlite::Connection::open(sandbox.path("data").join("kestrel.db")).expect("open");
    assert_eq!(db.execute(sql, []).expect("tamper"), 1, "{sql}");
}

#[test]
fn verify_names_an_audit_row_altered_or_removed_in_the_database() {
    let sandbox = Sandbox::new();
    for (key, value) in [
        ("A", "chained-one"),
        ("B", "chained-two"),
        ("C", "chained-three"),
    ] {
        set(&sandbox, "team", key, value);
    }
    get(&sandbox, "team", "A", &[]).assert_code(0);
    let verify = || sandbox.kestrel(["secrets", "audit", "--verify"]).output();
    let out = verify();
    out.assert_code(0);
    assert!(
        out.stdout
            .contains("The audit trail holds: 4 rows verified."),
        "{out:#?}"
    );

    // Someone rewrites who read A (row 4) in the database.
    tamper(
        &sandbox,
        "UPDATE audit SET actor_id = 'nobody' WHERE id = 4",
    );
    let out = verify();
    out.assert_code(1);
    assert!(
        out.stdout
            .contains("BROKEN: audit row 4 was altered: its content does not match its link"),
        "{out:#?}"
    );
    // And removes the row of B's set (row 2).
    tamper(&sandbox, "DELETE FROM audit WHERE id = 2");
    let out = verify();
    out.assert_code(1);
    assert!(
        out.stdout
            .contains("BROKEN: audit row 2 was removed: row 3 follows it, and it is gone"),
        "{out:#?}"
    );
    assert!(out.stdout.contains("audit row 4 was altered"), "{out:#?}");
    assert!(
        out.stdout.contains("2 break(s) in 3 chained rows"),
        "{out:#?}"
    );
}

/// `kestrel run` applies `allowed-namespaces` as the server does: with none configured a flow
/// of `team.a` cannot read `team.b`'s secret, the refusal is audited and nothing falls through
/// to the environment; configured, the read goes through.
#[test]
fn issue_9_4_kestrel_run_refuses_another_namespace_unless_allowed() {
    let sandbox = Sandbox::new();
    set(&sandbox, "team.b", "X", "team-b-secret-77");
    let flow = sandbox.write(
        "thief.yml",
        "id: thief\nnamespace: team.a\ntasks:\n  - id: log\n    type: io.kestra.plugin.core.log.Log\n    message: \"{{ secret('X', namespace='team.b') }}\"\n",
    );
    let refused = sandbox
        .kestrel(["run".as_ref(), flow.as_os_str()])
        .env("SECRET_X", util::base64("from-the-environment"))
        .output();
    refused.assert_code(1).assert_hides("team-b-secret-77");
    assert!(
        refused.stdout.contains(
            "namespace 'team.b' does not allow flows of namespace 'team.a' to read its secrets \
             (namespaces.team.b.allowed-namespaces)"
        ),
        "{refused:#?}"
    );
    assert!(
        !refused.stdout.contains("from-the-environment"),
        "{refused:#?}"
    );
    let audit = sandbox.kestrel(["secrets", "audit", "team.b"]).output();
    assert!(
        rows(&audit)
            .iter()
            .any(|row| row[2] == "refused" && row[4] == "X"),
        "{audit:#?}"
    );
    let config = sandbox.write(
        "kestrel.yml",
        "namespaces:\n  team.b:\n    allowed-namespaces: [team.a]\n",
    );
    let allowed = sandbox
        .kestrel(["run".as_ref(), flow.as_os_str()])
        .env("KESTREL_CONFIG", &config)
        .output();
    allowed.assert_code(0).assert_hides("team-b-secret-77");
}

#[test]
fn import_env_reads_an_encoded_and_a_plain_env_file() {
    let sandbox = Sandbox::new();
    sandbox.write(
        ".env_encoded",
        "SECRET_MYPASSWORD=cGFzc3dvcmQ=\nSECRET_GITHUB_ACCESS_TOKEN=bXlwYXQ=\nSECRET_MACRO={{ \"macro-value\" | base64encode }}\n",
    );
    let out = sandbox
        .kestrel([
            "secrets",
            "import-env",
            ".env_encoded",
            "--namespace",
            "dev",
        ])
        .output();
    out.assert_code(0).assert_hides("password");
    assert_eq!(get(&sandbox, "dev", "MYPASSWORD", &[]).stdout, "password");
    assert_eq!(
        get(&sandbox, "dev", "GITHUB_ACCESS_TOKEN", &[]).stdout,
        "mypat"
    );
    assert_eq!(get(&sandbox, "dev", "MACRO", &[]).stdout, "macro-value");

    sandbox.write(".env", "export PLAIN=plain value\nQUOTED=\"a=b\"\n");
    sandbox
        .kestrel(["secrets", "import-env", ".env", "--namespace", "dev.team"])
        .output()
        .assert_code(0);
    assert_eq!(
        get(&sandbox, "dev.team", "PLAIN", &[]).stdout,
        "plain value"
    );
    assert_eq!(get(&sandbox, "dev.team", "QUOTED", &[]).stdout, "a=b");
}

#[test]
fn import_env_stores_nothing_when_a_line_is_bad() {
    let sandbox = Sandbox::new();
    sandbox.write(
        "bad.env",
        "SECRET_GOOD=Z29vZA==\nSECRET_BAD=not base64 at all\n",
    );
    let out = sandbox
        .kestrel(["secrets", "import-env", "bad.env", "--namespace", "dev"])
        .output();
    out.assert_code(2).assert_hides("not base64 at all");
    assert!(out.stderr.contains("SECRET_BAD"), "{out:#?}");
    get(&sandbox, "dev", "GOOD", &[]).assert_code(1);
}

#[test]
fn the_database_and_its_wal_hold_no_plaintext() {
    let sandbox = Sandbox::new();
    let values = [
        "plaintext-canary-one",
        "plaintext-canary-two-ünïcode",
        "{\"password\":\"plaintext-canary-json\"}",
    ];
    for (index, value) in values.iter().enumerate() {
        set(&sandbox, "company.team", &format!("K{index}"), value);
    }
    set(&sandbox, "company.team", "K0", "plaintext-canary-one-v2");
    let out = sandbox.run_json(&digest_flow("company.team.x", &["K0", "K1", "K2"]), &[]);
    out.assert_code(0);
    sandbox
        .kestrel(["secrets", "rotate-key"])
        .output()
        .assert_code(0);
    let bytes = bytes_under(&sandbox.path("data"));
    assert!(bytes.len() > 4096, "the database is there");
    for value in values.iter().chain(&["plaintext-canary-one-v2"]) {
        assert!(!contains(&bytes, value), "{value} is in the data directory");
    }
    assert!(!contains(&bytes, "plaintext-canary"));
}

#[test]
fn the_wal_left_by_a_killed_writer_holds_no_plaintext() {
    let sandbox = Sandbox::new();
    set(&sandbox, "dev", "FIRST", "wal-canary-first");
    let lines: String = (0..5_000)
        .map(|i| format!("K{i}=wal-canary-value-{i:05}\n"))
        .collect();
    sandbox.write("many.env", &lines);
    let mut invocation =
        sandbox.kestrel(["secrets", "import-env", "many.env", "--namespace", "dev"]);
    let mut writer = invocation
        .command()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("kestrel starts");
    // Killed once its WAL holds a good number of commits, before a clean exit removes it.
    let wal = sandbox.path("data/kestrel.db-wal");
    while wal.metadata().map_or(0, |meta| meta.len()) < 256 * 1024 {
        if writer.try_wait().expect("the writer's status").is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    writer.kill().expect("SIGKILL");
    writer.wait().expect("the writer ends");
    let wal_bytes = std::fs::read(&wal).expect("the killed writer left its WAL");
    assert!(wal_bytes.len() >= 256 * 1024);
    assert!(!contains(&bytes_under(&sandbox.path("data")), "wal-canary"));
}

#[test]
fn a_wrong_master_key_fails_clearly_and_shows_no_value() {
    let sandbox = Sandbox::new();
    let key = base64("0123456789abcdef0123456789abcdef");
    let other = base64("fedcba9876543210fedcba9876543210");
    let out = sandbox
        .kestrel(["secrets", "set", "dev", "K"])
        .env("KESTREL_MASTER_KEY", &key)
        .stdin("the-right-value")
        .output();
    out.assert_code(0);
    let out = sandbox
        .kestrel(["secrets", "get", "dev", "K"])
        .env("KESTREL_MASTER_KEY", &other)
        .output();
    assert_ne!(out.code, Some(0), "{out:#?}");
    assert_eq!(out.stdout, "", "no garbage value");
    assert!(out.stderr.contains("master key"), "{out:#?}");
    out.assert_hides(&other);

    sandbox.write("flow.yml", &digest_flow("dev", &["K"]));
    let out = sandbox
        .kestrel(["run", "flow.yml"])
        .env("KESTREL_MASTER_KEY", &other)
        .output();
    // Checked before any task starts: nothing ran.
    out.assert_code(2).assert_hides("the-right-value");
    assert_eq!(out.stdout, "", "{out:#?}");
    assert!(out.stderr.contains("master key"), "{out:#?}");
}

#[test]
fn both_master_key_variables_set_runs_nothing() {
    let sandbox = Sandbox::new();
    let key = base64("0123456789abcdef0123456789abcdef");
    sandbox.write("master.key", &key);
    for args in [
        vec!["secrets", "get", "dev", "K"],
        vec!["secrets", "list", "dev"],
    ] {
        let out = sandbox
            .kestrel(args)
            .env("KESTREL_MASTER_KEY", &key)
            .env("KESTREL_MASTER_KEY_FILE", "master.key")
            .output();
        out.assert_code(2);
        assert_eq!(out.stdout, "");
        assert!(out.stderr.contains("KESTREL_MASTER_KEY_FILE"), "{out:#?}");
    }
}

#[test]
fn the_key_file_is_created_once_mode_0600_outside_the_data_dir() {
    let sandbox = Sandbox::new();
    let key_file = sandbox.path("config/kestrel/master.key");
    let out = set(&sandbox, "dev", "K", "value-one");
    assert!(
        out.stderr.contains("master.key"),
        "its creation is told: {out:#?}"
    );
    let mode = std::fs::metadata(&key_file)
        .expect("the key file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(!key_file.starts_with(sandbox.path("data")));
    let first = std::fs::read(&key_file).unwrap();
    let out = set(&sandbox, "dev", "K", "value-two");
    assert!(!out.stderr.contains("master.key"), "{out:#?}");
    assert_eq!(std::fs::read(&key_file).unwrap(), first, "created once");
    assert_eq!(get(&sandbox, "dev", "K", &[]).stdout, "value-two");
}

#[test]
fn a_store_whose_key_file_is_gone_gets_no_new_key() {
    let sandbox = Sandbox::new();
    set(&sandbox, "dev", "K", "value-kept");
    let key_file = sandbox.path("config/kestrel/master.key");
    std::fs::rename(&key_file, sandbox.path("saved.key")).unwrap();
    let out = get(&sandbox, "dev", "K", &[]);
    out.assert_code(2);
    assert_eq!(out.stdout, "");
    assert!(out.stderr.contains("master.key"), "{out:#?}");
    assert!(!key_file.exists(), "no new key took the old one's place");
    let out = sandbox
        .kestrel(["secrets", "get", "dev", "K"])
        .env("KESTREL_MASTER_KEY_FILE", "saved.key")
        .output();
    assert_eq!(out.stdout, "value-kept");
}

#[test]
fn a_flow_reading_no_stored_secret_creates_no_file() {
    let sandbox = Sandbox::new();
    let out = sandbox.run_json(
        &digest_flow("dev", &["FROM_ENV"]),
        &[("SECRET_FROM_ENV", &base64("env-value"))],
    );
    out.assert_code(0);
    assert!(!sandbox.path("data").exists(), "no database");
    assert!(
        !sandbox.path("config/kestrel/master.key").exists(),
        "no key"
    );
}

#[test]
fn rotate_key_keeps_every_value_readable() {
    let sandbox = Sandbox::new();
    set(&sandbox, "dev", "A", "value-a-1");
    set(&sandbox, "dev", "A", "value-a-2");
    set(&sandbox, "dev.team", "B", "value-b");
    for _ in 0..2 {
        let out = sandbox.kestrel(["secrets", "rotate-key"]).output();
        out.assert_code(0);
        assert!(out.stderr.contains("data key"), "{out:#?}");
    }
    assert_eq!(get(&sandbox, "dev", "A", &[]).stdout, "value-a-2");
    assert_eq!(
        get(&sandbox, "dev", "A", &["--version", "1"]).stdout,
        "value-a-1"
    );
    assert_eq!(get(&sandbox, "dev.team", "B", &[]).stdout, "value-b");
    let out = sandbox.kestrel(["secrets", "audit"]).output();
    assert!(out.stdout.contains("\trotate-key\t"), "{out:#?}");
}

#[test]
fn rekey_moves_the_keyring_to_the_new_master_key() {
    let sandbox = Sandbox::new();
    set(&sandbox, "dev", "K", "value-before-rekey");
    let out = sandbox
        .kestrel(["secrets", "rekey", "--new-master-key-file", "new.key"])
        .output();
    out.assert_code(0);
    let mode = std::fs::metadata(sandbox.path("new.key"))
        .expect("the new key file is created")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    let out = sandbox
        .kestrel(["secrets", "get", "dev", "K"])
        .env("KESTREL_MASTER_KEY_FILE", "new.key")
        .output();
    out.assert_code(0);
    assert_eq!(out.stdout, "value-before-rekey");
    let out = get(&sandbox, "dev", "K", &[]);
    assert_ne!(out.code, Some(0), "the old key no longer opens it");
    assert_eq!(out.stdout, "");
    assert!(out.stderr.contains("master key"), "{out:#?}");
}

#[test]
fn a_value_set_by_one_process_is_used_by_the_next_run() {
    let sandbox = Sandbox::new();
    let flow = digest_flow("dev", &["ROTATING"]);
    set(&sandbox, "dev", "ROTATING", "value-one");
    assert_eq!(
        sandbox.run_json(&flow, &[]).messages(),
        [sha256("value-one")]
    );
    set(&sandbox, "dev", "ROTATING", "value-two");
    assert_eq!(
        sandbox.run_json(&flow, &[]).messages(),
        [sha256("value-two")]
    );
}

#[test]
fn a_postgres_url_is_used_and_its_password_never_shown() {
    let sandbox = Sandbox::new();
    sandbox.write("flow.yml", &digest_flow("dev", &["K"]));
    // Nothing listens on port 1: the connection is refused at once.
    let url = "postgres://kestrel:pw-hidden@127.0.0.1:1/k?sslmode=disable";
    sandbox.write("kestrel.yml", &format!("database: {url}\n"));
    let kestrel = |args: &[&str]| {
        sandbox
            .kestrel(args)
            .env("KESTREL_CONFIG", "kestrel.yml")
            .output()
    };
    let out = kestrel(&["secrets", "list", "dev"]);
    out.assert_code(1).assert_hides("pw-hidden");
    assert!(out.stderr.contains("postgres://kestrel:"), "{out:#?}");
    assert!(out.stderr.contains("127.0.0.1:1/k"), "{out:#?}");
    // A flow reading a stored secret fails its task, naming no password.
    kestrel(&["run", "flow.yml"])
        .assert_code(1)
        .assert_hides("pw-hidden");
    let out = kestrel(&["config"]);
    out.assert_code(0).assert_hides("pw-hidden");
    assert!(out.stdout.contains("postgres://kestrel:"), "{out:#?}");
    let out = sandbox
        .kestrel(["secrets", "list", "dev"])
        .env("KESTREL_DATABASE", url)
        .output();
    out.assert_code(1).assert_hides("pw-hidden");
    assert!(out.stderr.contains("127.0.0.1:1/k"), "{out:#?}");
}

#[test]
fn a_sqlite_url_puts_the_database_where_it_says() {
    let sandbox = Sandbox::new();
    let out = sandbox
        .kestrel([
            "--database",
            "sqlite://elsewhere/k.db",
            "secrets",
            "set",
            "dev",
            "K",
        ])
        .stdin("somewhere-else")
        .output();
    out.assert_code(0);
    assert!(sandbox.path("elsewhere/k.db").is_file());
    assert!(!sandbox.path("data/kestrel.db").exists());
    let out = sandbox
        .kestrel([
            "secrets",
            "get",
            "dev",
            "K",
            "--database",
            "sqlite://elsewhere/k.db",
        ])
        .output();
    assert_eq!(out.stdout, "somewhere-else");
}
