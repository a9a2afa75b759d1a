//! rotate-key while everything keeps running: readers (in this process and another), writers,
//! and an interrupted rotation resumed later.

#![allow(clippy::unwrap_used)] // Test code: a failure is a failed test.

mod common;

use common::{actor, get, id, open_with, set};
use kestrel_crypto::MasterKey;
use kestrel_store::{SecretId, SecretStore};
use kestrel_store_sqlite::{FILE_NAME, SqliteStore, StoreOptions};
use rusqlite::Connection;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

fn options(cache_capacity: usize) -> StoreOptions {
    StoreOptions {
        rotate_batch: 16,
        cache_capacity,
        ..StoreOptions::default()
    }
}

/// (key id, how many stored versions use it), from the file.
fn key_ids(dir: &Path) -> Vec<(u32, i64)> {
    let conn = Connection::open(dir.join(FILE_NAME)).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT key_id, count(*) FROM secret_versions WHERE sealed IS NOT NULL
             GROUP BY key_id ORDER BY key_id",
        )
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn fill(store: &SqliteStore, n: usize) -> Vec<SecretId> {
    let ids: Vec<SecretId> = (0..n).map(|i| id("rot.ns", &format!("K{i}"))).collect();
    for (i, id) in ids.iter().enumerate() {
        for v in 1..=3 {
            set(store, id, &format!("{i}@{v}"));
        }
    }
    ids
}

/// Reads every secret (latest and version 1) until `done`, checking each value; counts reads.
fn reader(store: SqliteStore, ids: Vec<SecretId>, done: Arc<AtomicBool>, reads: Arc<AtomicUsize>) {
    loop {
        let finished = done.load(Ordering::SeqCst);
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(get(&store, id, None), Some(format!("{i}@3")));
            assert_eq!(get(&store, id, Some(1)), Some(format!("{i}@1")));
            reads.fetch_add(2, Ordering::Relaxed);
        }
        if finished {
            return;
        }
    }
}

#[test]
fn rotate_key_under_concurrent_reads_and_writes_loses_nothing() {
    for cache_capacity in [0, 10_000] {
        let dir = tempfile::tempdir().unwrap();
        let key = MasterKey::generate().unwrap();
        let store = open_with(dir.path(), &key, options(cache_capacity));
        let ids = fill(&store, 200);
        // A second handle stands for another process: its keyring learns the new key on its own.
        let other = open_with(dir.path(), &key, options(cache_capacity));
        let done = Arc::new(AtomicBool::new(false));
        let reads = Arc::new(AtomicUsize::new(0));
        let readers: Vec<_> = [&store, &other, &other]
            .into_iter()
            .map(|s| {
                let (s, ids, done, reads) = (s.clone(), ids.clone(), done.clone(), reads.clone());
                std::thread::spawn(move || reader(s, ids, done, reads))
            })
            .collect();
        let writer = {
            let (other, done) = (other.clone(), done.clone());
            std::thread::spawn(move || {
                let mut written = Vec::new();
                while !done.load(Ordering::SeqCst) || written.is_empty() {
                    let id = id("rot.new", &format!("N{}", written.len()));
                    set(&other, &id, "fresh");
                    written.push(id);
                }
                written
            })
        };
        let report = common::wait(store.rotate_key(&actor())).unwrap();
        done.store(true, Ordering::SeqCst);
        for r in readers {
            r.join().unwrap();
        }
        let written = writer.join().unwrap();
        assert!(report.reencrypted >= 600, "{report:?}");
        assert!(reads.load(Ordering::Relaxed) > 0);
        assert_eq!(
            key_ids(dir.path()),
            [(report.key_id, 600 + written.len() as i64)]
        );
        for (i, id) in ids.iter().enumerate() {
            for v in 1..=3 {
                assert_eq!(get(&store, id, Some(v)), Some(format!("{i}@{v}")));
            }
        }
        for id in &written {
            assert_eq!(get(&store, id, None).as_deref(), Some("fresh"));
        }
    }
}

#[test]
fn an_interrupted_rotation_is_finished_by_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate().unwrap();
    let opts = StoreOptions {
        rotate_batch: 4,
        ..StoreOptions::default()
    };
    let ids = {
        let store = open_with(dir.path(), &key, opts.clone());
        let ids = fill(&store, 10);
        assert!(store.rotate_key_partially(&actor(), 2).unwrap().is_none());
        ids
    };
    let halfway = key_ids(dir.path());
    assert_eq!(
        halfway,
        [(1, 22), (2, 8)],
        "two batches of 4 moved to key 2"
    );
    // A new process picks the rotation up where it stopped.
    let store = open_with(dir.path(), &key, opts);
    set(&store, &ids[0], "written meanwhile");
    let report = common::wait(store.rotate_key(&actor())).unwrap();
    assert!(report.resumed);
    assert_eq!((report.key_id, report.reencrypted), (2, 22));
    assert_eq!(key_ids(dir.path()), [(2, 31)]);
    assert_eq!(
        get(&store, &ids[0], None).as_deref(),
        Some("written meanwhile")
    );
    assert_eq!(get(&store, &ids[9], Some(1)).as_deref(), Some("9@1"));
    let next = common::wait(store.rotate_key(&actor())).unwrap();
    assert_eq!((next.key_id, next.resumed), (3, false));
}
