//! What lies on disk: ciphertexts bound to their record, a keyring only the master key opens,
//! and never a plaintext value in the database file or its WAL.

#![allow(clippy::unwrap_used)] // Test code: a failure is a failed test.

mod common;

use common::{contains, get, id, open, set};
use kestrel_crypto::MasterKey;
use kestrel_store::{SecretId, SecretStore, StoreError};
use kestrel_store_sqlite::{FILE_NAME, SqliteStore, StoreOptions};
use rusqlite::Connection;
use std::path::Path;

fn db_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    ["", "-wal", "-shm"]
        .iter()
        .filter_map(|suffix| {
            let name = format!("{FILE_NAME}{suffix}");
            std::fs::read(dir.join(&name)).ok().map(|b| (name, b))
        })
        .collect()
}

fn assert_absent(dir: &Path, needles: &[String]) {
    let files = db_files(dir);
    assert!(!files.is_empty());
    for (name, bytes) in &files {
        for needle in needles {
            assert!(
                !contains(bytes, needle.as_bytes()),
                "{needle} found in {name}"
            );
        }
    }
}

#[test]
fn neither_the_file_nor_its_wal_holds_a_plaintext_value() {
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate().unwrap();
    let store = open(dir.path(), &key);
    for k in 0..20 {
        let id = id("company.team", &format!("KEY_{k}"));
        // More versions than are kept: pruned rows must not leave plaintext behind either.
        for v in 0..15 {
            set(&store, &id, &format!("plaintext-{k}-{v}-0123456789abcdef"));
        }
        common::wait(store.read(&common::actor(), &id, None)).unwrap();
    }
    let deleted = id("company.team", "KEY_0");
    common::wait(store.delete(&common::actor(), &deleted)).unwrap();
    common::wait(store.destroy(&common::actor(), &deleted, None)).unwrap();
    let wal = std::fs::metadata(dir.path().join(format!("{FILE_NAME}-wal"))).unwrap();
    assert!(wal.len() > 0, "the WAL holds the writes");
    // Every value starts with "plaintext-" and ends with the same 16 characters: neither
    // occurring means no value (nor a fragment of one) does. Nor does the master key.
    let values = [
        "plaintext-".to_owned(),
        "0123456789abcdef".to_owned(),
        key.expose_secret_base64().to_string(),
    ];
    assert_absent(dir.path(), &values);
    // The scan does see what is stored in clear: the key names.
    let all: Vec<u8> = db_files(dir.path())
        .into_iter()
        .flat_map(|(_, b)| b)
        .collect();
    assert!(contains(&all, b"KEY_19"));
    drop(store);
    assert_absent(dir.path(), &values);
}

#[test]
fn the_database_file_is_private_to_its_owner() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let store = open(&data, &MasterKey::generate().unwrap());
    set(&store, &id("a", "K"), "v");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join(FILE_NAME)), 0o600);
    assert_eq!(mode(&data.join(format!("{FILE_NAME}-wal"))), 0o600);
}

/// Copies the ciphertext of `from` onto the row of `to` (both must exist), as an attacker with
/// write access to the file could.
fn copy_ciphertext(dir: &Path, from: (&str, &SecretId, i64), to: (&str, &SecretId, i64)) {
    let conn = Connection::open(dir.join(FILE_NAME)).unwrap();
    let n = conn
        .execute(
            "UPDATE secret_versions SET (key_id, sealed) = (
               SELECT key_id, sealed FROM secret_versions
               WHERE tenant = ?1 AND namespace = ?2 AND key = ?3 AND version = ?4)
             WHERE tenant = ?5 AND namespace = ?6 AND key = ?7 AND version = ?8",
            rusqlite::params![
                from.0,
                from.1.namespace(),
                from.1.key(),
                from.2,
                to.0,
                to.1.namespace(),
                to.1.key(),
                to.2
            ],
        )
        .unwrap();
    assert_eq!(n, 1);
}

#[test]
fn a_ciphertext_copied_onto_another_record_does_not_decrypt() {
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate().unwrap();
    let source = id("company.team", "DB_PASSWORD");
    let other_key = id("company.team", "API_TOKEN");
    let other_ns = id("company", "DB_PASSWORD");
    let acme = SecretId::new("acme", "company.team", "DB_PASSWORD").unwrap();
    {
        let store = open(dir.path(), &key);
        set(&store, &source, "secret-v1");
        set(&store, &source, "secret-v2");
        for target in [&other_key, &other_ns, &acme] {
            set(&store, target, "victim");
        }
    }
    let src = ("main", &source, 1);
    copy_ciphertext(dir.path(), src, ("main", &other_key, 1));
    copy_ciphertext(dir.path(), src, ("main", &other_ns, 1));
    copy_ciphertext(dir.path(), src, ("acme", &acme, 1));
    copy_ciphertext(dir.path(), src, ("main", &source, 2));
    let store = open(dir.path(), &key);
    for (target, version) in [(&other_key, 1), (&other_ns, 1), (&acme, 1), (&source, 2)] {
        let err = common::wait(store.get(target, Some(version))).unwrap_err();
        assert!(matches!(err, StoreError::Undecryptable { .. }), "{err}");
        let msg = err.to_string();
        assert!(msg.contains("copied from another record"), "{msg}");
        assert!(!msg.contains("secret-v1"));
    }
    assert_eq!(get(&store, &source, Some(1)).as_deref(), Some("secret-v1"));
}

#[test]
fn a_wrong_master_key_fails_clearly_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let right = MasterKey::generate().unwrap();
    let secret = id("company", "K");
    set(&open(dir.path(), &right), &secret, "value");
    let wrong = MasterKey::generate().unwrap();
    let err = SqliteStore::open(dir.path(), wrong, StoreOptions::default()).unwrap_err();
    assert!(matches!(err, StoreError::WrongMasterKey(_)), "{err}");
    assert!(
        err.to_string()
            .contains("the master key does not open this data directory's keyring"),
        "{err}"
    );
    assert_eq!(
        get(&open(dir.path(), &right), &secret, None).as_deref(),
        Some("value")
    );
}

#[test]
fn after_rekey_only_the_new_master_key_opens_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let old = MasterKey::generate().unwrap();
    let new = MasterKey::generate().unwrap();
    let secret = id("company", "K");
    {
        let store = open(dir.path(), &old);
        set(&store, &secret, "v1");
        set(&store, &secret, "v2");
        common::wait(store.rekey(&common::actor(), &new)).unwrap();
        set(&store, &secret, "v3");
    }
    assert!(SqliteStore::open(dir.path(), old, StoreOptions::default()).is_err());
    let store = open(dir.path(), &new);
    assert_eq!(get(&store, &secret, Some(1)).as_deref(), Some("v1"));
    assert_eq!(get(&store, &secret, None).as_deref(), Some("v3"));
}
