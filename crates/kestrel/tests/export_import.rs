//! `kestrel export` and `kestrel import` through the real binary: a SQLite store with flows,
//! secrets (several versions, a destroyed one, tags), users and tokens, exported and imported
//! into another store with the same master key, gives the same flows, values (compared by
//! digest through `kestrel secrets get`), users and tokens (a token works against a server on
//! the imported store); the file holds no value, password or token in clear; a wrong master
//! key is refused with nothing written.
//!
//! `sqlite_to_postgres` runs the same story into PostgreSQL when `KESTREL_TEST_POSTGRES` is
//! set; it passes only once `kestrel-store-postgres` implements the store traits.

#![allow(clippy::unwrap_used)] // Test code: a failure is a failed test.

mod util;

use serde_json::Value;
use std::os::unix::fs::PermissionsExt as _;
use util::server::{Running, basic};
use util::{Invocation, Sandbox, sha256};

/// The master key of both stores (base64 of 32 bytes).
const KEY: &str = "a2VzdHJlbC1leHBvcnQtdGVzdC1tYXN0ZXIta2V5ISE=";
/// Another key, which does not open the export.
const OTHER_KEY: &str = "b3RoZXItbWFzdGVyLWtleS1vZi1hbm90aGVyLXN0b3I=";
const PASSWORD: &str = "correct horse battery staple";

/// The secrets of the source store: namespace, key, and each version's value, oldest first.
const VALUES: [(&str, &str, &[&str]); 3] = [
    (
        "dev.team",
        "DB_PASSWORD",
        &["db-value-one-destroyed", "db-value-two", "db-value-three"],
    ),
    ("dev", "API_KEY", &["api-key-value-only"]),
    ("prod", "MULTI", &["line one\nline two\n", "ünïcødé value"]),
];

const FLOWS: [(&str, &str); 2] = [("dev.team", "hello"), ("prod", "nightly")];

/// A store kestrel is pointed at: a sandbox (its data directory for SQLite) and the global
/// options that pick the database.
struct Store {
    sandbox: Sandbox,
    options: Vec<String>,
    key: &'static str,
}

impl Store {
    fn sqlite(key: &'static str) -> Self {
        Self {
            sandbox: Sandbox::new(),
            options: Vec::new(),
            key,
        }
    }

    fn kestrel(&self, args: &[&str]) -> Invocation {
        let mut all: Vec<&str> = self.options.iter().map(String::as_str).collect();
        all.extend_from_slice(args);
        self.sandbox
            .kestrel(all)
            .env("KESTREL_MASTER_KEY", self.key)
    }

    /// `kestrel ARGS` succeeding; its stdout.
    fn ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let mut invocation = self.kestrel(args);
        if let Some(text) = stdin {
            invocation = invocation.stdin(text);
        }
        let output = invocation.output();
        output.assert_code(0);
        output.stdout
    }

    fn server(&self) -> Running {
        let mut args = vec!["server", "--bind", "127.0.0.1:0"];
        args.extend(self.options.iter().map(String::as_str));
        Running::spawn(
            self.sandbox
                .kestrel(args)
                .env("KESTREL_MASTER_KEY", self.key),
        )
    }

    /// The value of `namespace`/`key` at `version`, as its digest.
    fn digest(&self, namespace: &str, key: &str, version: u64) -> String {
        let version = version.to_string();
        sha256(&self.ok(
            &["secrets", "get", namespace, key, "--version", &version],
            None,
        ))
    }
}

/// The source: users, tokens (one revoked), secrets, flows (through a server). The live
/// token's text.
fn fill(source: &Store) -> String {
    source.ok(
        &["users", "add", "ada", "--secrets", "write"],
        Some(PASSWORD),
    );
    source.ok(
        &[
            "users",
            "add",
            "bob",
            "--namespace",
            "prod",
            "--secrets",
            "read",
        ],
        Some("bob's password"),
    );
    let token = source.ok(&["tokens", "create", "ci", "--namespace", "dev"], None);
    source.ok(&["tokens", "create", "old"], None);
    source.ok(&["tokens", "revoke", "old"], None);
    for (namespace, key, values) in VALUES {
        for value in values {
            source.ok(
                &[
                    "secrets",
                    "set",
                    namespace,
                    key,
                    "--description",
                    "carried",
                    "--tag",
                    "team=data",
                ],
                Some(value),
            );
        }
    }
    source.ok(
        &[
            "secrets",
            "destroy",
            "dev.team",
            "DB_PASSWORD",
            "--version",
            "1",
            "--yes",
        ],
        None,
    );
    let server = source.server();
    let auth = basic("ada", PASSWORD);
    for (namespace, id) in FLOWS {
        let yaml = format!(
            "id: {id}\nnamespace: {namespace}\ntasks:\n  - id: log\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n"
        );
        server.json(
            "POST",
            "/api/v1/main/flows",
            &auth,
            Some(("application/x-yaml", &yaml)),
        );
    }
    drop(server);
    token.trim().to_owned()
}

/// The export of `store` in `name`, parsed.
fn export(store: &Store, name: &str) -> Value {
    store.ok(&["export", name], None);
    let path = store.sandbox.path(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// What must be the same on both sides: everything but the time, the keyring and the sealed
/// values (their versions renumbered).
fn comparable(export: &Value) -> Value {
    let mut export = export.clone();
    for field in ["exportedAt", "keyring"] {
        export.as_object_mut().unwrap().remove(field);
    }
    for secret in export["secrets"].as_array_mut().unwrap() {
        let count = secret["versions"].as_array().unwrap().len();
        secret["versions"] = Value::from(count);
    }
    export
}

fn story(target: &Store) {
    let source = Store::sqlite(KEY);
    let token = fill(&source);
    let exported = export(&source, "backup.json");
    let file = source.sandbox.path("backup.json");

    // A private file, refused over an existing one unless --force, with nothing in clear.
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    source
        .kestrel(&["export", "backup.json"])
        .output()
        .assert_code(2);
    source.ok(&["export", "backup.json", "--force"], None);
    let text = std::fs::read_to_string(&file).unwrap();
    for (_, _, values) in VALUES {
        for value in values {
            assert!(!text.contains(value), "the export holds {value:?}");
            assert!(!text.contains(&util::base64(value)), "{value:?} as base64");
        }
    }
    for clear in [token.as_str(), PASSWORD, KEY] {
        assert!(!text.contains(clear), "the export holds {clear:?}");
    }
    assert_eq!(exported["format"], "kestrel-export");
    assert_eq!(
        exported["tokens"].as_array().unwrap().len(),
        1,
        "the live token only"
    );
    let secrets = exported["secrets"].as_array().unwrap();
    let db = secrets.iter().find(|s| s["key"] == "DB_PASSWORD").unwrap();
    assert_eq!(
        db["versions"].as_array().unwrap().len(),
        2,
        "a destroyed version is not carried"
    );

    // A wrong master key: refused, nothing written.
    let wrong = Store::sqlite(OTHER_KEY);
    let output = wrong.kestrel(&["import", file.to_str().unwrap()]).output();
    output.assert_code(2);
    assert!(output.stderr.contains("does not open"), "{output:#?}");
    assert!(
        !wrong.sandbox.path("data/kestrel.db").exists(),
        "nothing written"
    );

    // The same key: the same flows, values, users and tokens.
    let output = target.kestrel(&["import", file.to_str().unwrap()]).output();
    output.assert_code(0);
    assert!(output.stderr.contains("imported 2 flow(s)"), "{output:#?}");
    assert_eq!(
        comparable(&export(target, "again.json")),
        comparable(&exported)
    );
    for (namespace, key, values) in VALUES {
        let kept = if key == "DB_PASSWORD" {
            2
        } else {
            values.len()
        };
        let first = values.len() - kept;
        for (index, value) in values[first..].iter().enumerate() {
            let source_version = u64::try_from(first + index + 1).unwrap();
            let target_version = u64::try_from(index + 1).unwrap();
            assert_eq!(source.digest(namespace, key, source_version), sha256(value));
            assert_eq!(target.digest(namespace, key, target_version), sha256(value));
        }
    }

    // Again: refused for the users and tokens it has, unless told to skip them.
    let output = target.kestrel(&["import", file.to_str().unwrap()]).output();
    output.assert_code(2);
    assert!(output.stderr.contains("user ada"), "{output:#?}");
    target.ok(&["import", file.to_str().unwrap(), "--skip-existing"], None);

    // The token and the password work against a server on the imported store.
    let server = target.server();
    let flows = server.json(
        "GET",
        "/api/v1/main/flows/search?namespace=dev",
        &format!("Bearer {token}"),
        None,
    );
    assert_eq!(flows["total"], 1, "{flows}");
    let flows = server.json(
        "GET",
        "/api/v1/main/flows/search?namespace=prod",
        &basic("ada", PASSWORD),
        None,
    );
    assert_eq!(flows["total"], 1, "{flows}");
}

#[test]
fn sqlite_to_sqlite() {
    story(&Store::sqlite(KEY));
}

/// SQLite to PostgreSQL, when `KESTREL_TEST_POSTGRES` names a server. Passes only once
/// `kestrel-store-postgres` implements the store traits (issue 11).
#[test]
fn sqlite_to_postgres() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let Some(url) = runtime.block_on(kestrel_store_postgres::testing::fresh_database()) else {
        return;
    };
    let target = Store {
        sandbox: Sandbox::new(),
        options: vec!["--database".into(), url],
        key: KEY,
    };
    story(&target);
}
