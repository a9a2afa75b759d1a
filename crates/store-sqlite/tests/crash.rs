//! kill -9 of a real process in the middle of 10,000 writes: every write it acknowledged is
//! readable afterwards, and the file opens.

#![allow(clippy::unwrap_used)] // Test code: a failure is a failed test.

mod common;

use common::{get, id, open};
use kestrel_crypto::MasterKey;
use kestrel_store_sqlite::FILE_NAME;
use rusqlite::Connection;
use std::io::{BufRead as _, BufReader, Read as _};
use std::os::unix::process::ExitStatusExt as _;
use std::process::{Command, Stdio};

const WRITES: u64 = 10_000;
const KILL_AFTER: usize = 1_000;

#[test]
fn kill_9_mid_writes_keeps_every_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kestrel-store-writer"))
        .arg(dir.path())
        .arg(WRITES.to_string())
        .env("KESTREL_MASTER_KEY", key.expose_secret_base64().as_str())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut acked = Vec::new();
    let mut line = String::new();
    while acked.len() < KILL_AFTER {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "the writer stopped early"
        );
        acked.push(line.trim().parse::<u64>().unwrap());
    }
    child.kill().unwrap(); // SIGKILL
    // Acknowledgements already in the pipe count too; a torn last line does not.
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    acked.extend(
        rest.split_inclusive('\n')
            .filter(|l| l.ends_with('\n'))
            .map(|l| l.trim().parse::<u64>().unwrap()),
    );
    let status = child.wait().unwrap();
    assert_eq!(
        status.signal(),
        Some(9),
        "killed mid-way, not finished: {status:?}"
    );
    assert!((acked.len() as u64) < WRITES);
    eprintln!("killed after {} acknowledged writes", acked.len());

    let conn = Connection::open(dir.path().join(FILE_NAME)).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    drop(conn);
    let store = open(dir.path(), &key);
    for i in &acked {
        let value = get(&store, &id("crash.test", &format!("k{i}")), None);
        assert_eq!(value, Some(format!("value-{i}")), "acknowledged write {i}");
    }
}
