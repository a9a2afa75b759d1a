//! The story every [`SecretManager`] runs from its own tests against a real server:
//! `kestrel_store::conformance::manager::run_all(&manager).await`, on a manager whose prefix
//! holds nothing yet. Each step uses its own namespace under `conformance.`.

use crate::{SecretId, SecretManager, SecretMeta, Tag};
use kestrel_secrets::SecretValue;

fn id(namespace: &str, key: &str) -> SecretId {
    SecretId::main(namespace, key).expect("conformance names are valid")
}

async fn set(manager: &dyn SecretManager, id: &SecretId, value: &str) -> u64 {
    manager
        .set(id, &SecretValue::new(value.into()), None)
        .await
        .expect("set")
}

async fn value(manager: &dyn SecretManager, id: &SecretId, version: Option<u64>) -> Option<String> {
    manager
        .get(id, version)
        .await
        .expect("get")
        .map(|r| r.value.expose_secret().to_owned())
}

/// Runs every step.
pub async fn run_all(manager: &dyn SecretManager) {
    values_and_versions(manager).await;
    json_values_round_trip(manager).await;
    list_and_namespaces(manager).await;
    delete_restore_destroy(manager).await;
    metadata_round_trip(manager).await;
    manager.check().await.expect("check of a reachable manager");
}

/// Each set makes a version, numbered from 1 oldest first; the current or a given one reads.
pub async fn values_and_versions(manager: &dyn SecretManager) {
    let id = id("conformance.versions", "DB_PASSWORD");
    assert_eq!(value(manager, &id, None).await, None, "absent key");
    assert!(manager.versions(&id).await.expect("versions").is_empty());
    let first = set(manager, &id, "one").await;
    let second = set(manager, &id, "two\nlines").await;
    assert!(second > first, "versions grow: {first} then {second}");
    let current = manager.get(&id, None).await.expect("get").expect("set");
    assert_eq!(current.value.expose_secret(), "two\nlines");
    assert_eq!(current.version, second);
    assert_eq!(
        value(manager, &id, Some(first)).await.as_deref(),
        Some("one")
    );
    let numbers: Vec<u64> = manager
        .versions(&id)
        .await
        .expect("versions")
        .iter()
        .map(|v| v.version)
        .collect();
    assert_eq!(numbers, [first, second], "oldest first");
    assert_eq!(
        manager
            .version_named(&id, &second.to_string())
            .await
            .expect("named"),
        Some(second)
    );
}

/// A JSON value comes back as written, so `secret('K', subkey='f')` reaches its fields.
pub async fn json_values_round_trip(manager: &dyn SecretManager) {
    let id = id("conformance.json", "DB");
    let json = r#"{"user":"admin","password":"s3cr3t-pw"}"#;
    set(manager, &id, json).await;
    let read = value(manager, &id, None).await.expect("set");
    let parsed: serde_json::Value = serde_json::from_str(&read).expect("JSON");
    assert_eq!(parsed["password"], "s3cr3t-pw");
}

/// `list` names exactly one namespace's readable keys, sorted; namespaces are listed.
pub async fn list_and_namespaces(manager: &dyn SecretManager) {
    set(manager, &id("conformance.list", "B_KEY"), "b").await;
    set(manager, &id("conformance.list", "A_KEY"), "a").await;
    set(manager, &id("conformance.list.child", "C_KEY"), "c").await;
    let keys: Vec<String> = manager
        .list("main", "conformance.list")
        .await
        .expect("list")
        .into_iter()
        .map(|info| info.key)
        .collect();
    assert_eq!(keys, ["A_KEY", "B_KEY"]);
    let namespaces = manager.list_namespaces("main").await.expect("namespaces");
    for ns in ["conformance.list", "conformance.list.child"] {
        assert!(namespaces.iter().any(|n| n == ns), "{ns} in {namespaces:?}");
    }
    assert!(
        manager
            .list("main", "conformance.none")
            .await
            .expect("list")
            .is_empty(),
        "an empty namespace lists nothing"
    );
}

/// Delete is soft (restorable); destroy removes every version for good.
pub async fn delete_restore_destroy(manager: &dyn SecretManager) {
    let id = id("conformance.delete", "TOKEN");
    set(manager, &id, "t-1").await;
    manager.delete(&id).await.expect("delete");
    assert_eq!(value(manager, &id, None).await, None, "deleted");
    let listed = manager
        .list("main", "conformance.delete")
        .await
        .expect("list");
    assert!(listed.is_empty(), "a deleted key is not listed: {listed:?}");
    manager.undelete(&id, None).await.expect("undelete");
    assert_eq!(value(manager, &id, None).await.as_deref(), Some("t-1"));
    manager.destroy(&id, None).await.expect("destroy");
    assert_eq!(value(manager, &id, None).await, None, "destroyed");
    assert!(
        manager.undelete(&id, None).await.is_err(),
        "a destroyed secret cannot be restored"
    );
}

/// Description and tags survive a round trip.
pub async fn metadata_round_trip(manager: &dyn SecretManager) {
    let id = id("conformance.meta", "API_KEY");
    let meta = SecretMeta {
        description: Some("the partner API".into()),
        tags: vec![Tag {
            key: "team".into(),
            value: "data".into(),
        }],
    };
    manager
        .set(&id, &SecretValue::new("k".into()), Some(&meta))
        .await
        .expect("set");
    let info = manager.get_meta(&id).await.expect("meta").expect("set");
    assert_eq!(info.meta.description, meta.description);
    assert!(
        info.meta.tags.contains(&meta.tags[0]),
        "{:?}",
        info.meta.tags
    );
    let changed = SecretMeta {
        description: Some("rotated monthly".into()),
        tags: Vec::new(),
    };
    manager
        .update_meta(&id, &changed)
        .await
        .expect("update meta");
    let info = manager.get_meta(&id).await.expect("meta").expect("set");
    assert_eq!(info.meta.description, changed.description);
    assert_eq!(value(manager, &id, None).await.as_deref(), Some("k"));
}
