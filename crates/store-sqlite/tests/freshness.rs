//! A value set by any process is what every process's next get sees: own writes at
//! once, other processes' within the freshness interval.

#![allow(clippy::unwrap_used)] // Test code: a failure is a failed test.

mod common;

use common::{get, id, open_with, set};
use kestrel_crypto::MasterKey;
use kestrel_store_sqlite::StoreOptions;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn with_interval(interval: Duration) -> StoreOptions {
    StoreOptions {
        freshness_interval: interval,
        ..StoreOptions::default()
    }
}

#[test]
fn own_writes_are_seen_at_once_and_others_after_the_freshness_check() {
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate().unwrap();
    let hour = with_interval(Duration::from_secs(3600));
    let writer = open_with(dir.path(), &key, hour.clone());
    let lazy = open_with(dir.path(), &key, hour);
    let eager = open_with(dir.path(), &key, with_interval(Duration::ZERO));
    let k = id("app", "TOKEN");
    set(&writer, &k, "v1");
    assert_eq!(get(&lazy, &k, None).as_deref(), Some("v1"));
    assert_eq!(get(&eager, &k, None).as_deref(), Some("v1"));
    set(&writer, &k, "v2");
    assert_eq!(get(&writer, &k, None).as_deref(), Some("v2"), "own write");
    assert_eq!(
        get(&eager, &k, None).as_deref(),
        Some("v2"),
        "checked on this get"
    );
    assert_eq!(
        get(&lazy, &k, None).as_deref(),
        Some("v1"),
        "cached until its next check: the check is what makes reads fresh"
    );
}

#[test]
fn a_value_set_by_another_process_is_seen_by_the_next_gets() {
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate().unwrap();
    let store = open_with(dir.path(), &key, StoreOptions::default());
    let k = id("crash.test", "k0");
    assert_eq!(get(&store, &k, None), None, "a miss, now cached");
    let status = Command::new(env!("CARGO_BIN_EXE_kestrel-store-writer"))
        .arg(dir.path())
        .arg("1")
        .env("KESTREL_MASTER_KEY", key.expose_secret_base64().as_str())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    // Wait for readiness (the default check runs every 100 ms), bounded generously.
    let deadline = Instant::now() + Duration::from_secs(30);
    while get(&store, &k, None).is_none() {
        assert!(
            Instant::now() < deadline,
            "never saw the other process's write"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(get(&store, &k, None).as_deref(), Some("value-0"));
}
