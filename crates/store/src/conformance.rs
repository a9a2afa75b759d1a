//! The story every [`SecretStore`] implementation runs from its own tests (feature
//! `conformance`): `kestrel_store::conformance::run_all(store).await` on a new, empty store.
//!
//! Each step is a public function too, so an implementation can run one alone; each uses its own
//! namespaces under `conformance.`. A failed expectation panics with what a user would notice.

pub mod backend;
pub mod manager;
pub mod queue;
pub mod server;

use crate::{
    Actor, AuditAction, AuditFilter, AuditedBackend, SecretId, SecretMeta, SecretStore, StoreError,
    Tag,
};
use kestrel_crypto::MasterKey;
use kestrel_secrets::{Reader, SecretBackend, SecretValue};
use std::sync::Arc;

fn id(namespace: &str, key: &str) -> SecretId {
    SecretId::main(namespace, key).expect("conformance names are valid")
}

fn user() -> Actor {
    Actor::User("conformance".into())
}

async fn set(store: &dyn SecretStore, id: &SecretId, value: &str) -> u64 {
    store
        .set(&user(), id, &SecretValue::new(value.into()), None)
        .await
        .expect("set")
}

async fn value(store: &dyn SecretStore, id: &SecretId, version: Option<u64>) -> Option<String> {
    store
        .get(id, version)
        .await
        .expect("get")
        .map(|r| r.value.expose_secret().to_owned())
}

fn is_not_found<T>(result: Result<T, StoreError>) -> bool {
    matches!(result, Err(StoreError::NotFound { .. }))
}

/// Runs every step on `store`, which must be new and empty.
pub async fn run_all(store: Arc<dyn SecretStore>) {
    set_get_and_versions(store.as_ref()).await;
    metadata_round_trip(store.as_ref()).await;
    namespaces_are_isolated(store.as_ref()).await;
    keys_are_validated_and_case_sensitive(store.as_ref()).await;
    delete_undelete_destroy(store.as_ref()).await;
    old_versions_are_pruned(store.as_ref()).await;
    audit_records_reads_and_changes_never_values(store.as_ref()).await;
    audited_backend_reads_one_namespace(Arc::clone(&store)).await;
    rotate_and_rekey_keep_every_version(store.as_ref()).await;
    the_audit_trail_is_an_unbroken_chain(store.as_ref()).await;
}

/// Every row written so far (sets, reads, deletes, rotations, a rekey) verifies against its
/// link: the chain key outlives key rotations and master-key changes.
pub async fn the_audit_trail_is_an_unbroken_chain(store: &dyn SecretStore) {
    let id = id("conformance.chain", "CHAINED");
    set(store, &id, "chained-value").await;
    let report = store.verify_audit().await.expect("verify the audit trail");
    assert!(report.breaks.is_empty(), "{report:?}");
    assert!(report.chained > 0, "{report:?}");
    assert_eq!(report.unchained, 0, "{report:?}");
}

/// Each set makes a version; the latest or a given one can be read.
pub async fn set_get_and_versions(store: &dyn SecretStore) {
    let id = id("conformance.versions", "DB_PASSWORD");
    assert_eq!(value(store, &id, None).await, None, "absent key");
    assert!(store.versions(&id).await.expect("versions").is_empty());
    assert!(store.get_meta(&id).await.expect("meta").is_none());
    assert_eq!(set(store, &id, "one").await, 1);
    assert_eq!(set(store, &id, "two\n").await, 2);
    let latest = store.get(&id, None).await.expect("get").expect("set");
    assert_eq!((latest.version, latest.value.expose_secret()), (2, "two\n"));
    assert_eq!(value(store, &id, Some(1)).await.as_deref(), Some("one"));
    assert_eq!(value(store, &id, Some(3)).await, None, "no version 3");
    let versions = store.versions(&id).await.expect("versions");
    let numbers: Vec<u64> = versions.iter().map(|v| v.version).collect();
    assert_eq!(numbers, [1, 2]);
    assert!(
        versions
            .iter()
            .all(|v| v.is_readable() && v.created_by == user())
    );
}

/// Description and tags, Kestra's shape, survive a round trip; `set` without them keeps them.
pub async fn metadata_round_trip(store: &dyn SecretStore) {
    let id = id("conformance.meta", "API_TOKEN");
    let meta = SecretMeta {
        description: Some("the billing API".into()),
        tags: vec![
            Tag {
                key: "env".into(),
                value: "prod".into(),
            },
            Tag {
                key: "team".into(),
                value: "core".into(),
            },
        ],
    };
    let value = SecretValue::new("t0".into());
    store
        .set(&user(), &id, &value, Some(&meta))
        .await
        .expect("set");
    let info = store.get_meta(&id).await.expect("meta").expect("set");
    assert_eq!(info.meta, meta);
    assert_eq!((info.version, info.readable), (1, true));
    set(store, &id, "t1").await;
    let listed = store.list("main", "conformance.meta").await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].meta, meta, "set without metadata keeps it");
    let changed = SecretMeta {
        description: None,
        tags: vec![Tag {
            key: "env".into(),
            value: "dev".into(),
        }],
    };
    store
        .update_meta(&user(), &id, &changed)
        .await
        .expect("update");
    let info = store.get_meta(&id).await.expect("meta").expect("set");
    assert_eq!((info.meta, info.version), (changed.clone(), 2));
    let absent = crate::conformance::id("conformance.meta", "NOPE");
    assert!(is_not_found(
        store.update_meta(&user(), &absent, &changed).await
    ));
}

/// A namespace lists its own keys only; a child does not see its parent's in the store.
pub async fn namespaces_are_isolated(store: &dyn SecretStore) {
    set(store, &id("conformance.tree", "B"), "b").await;
    set(store, &id("conformance.tree", "A"), "a").await;
    set(store, &id("conformance.tree.child", "C"), "c").await;
    let listed = store.list("main", "conformance.tree").await.expect("list");
    let keys: Vec<&str> = listed.iter().map(|i| i.key.as_str()).collect();
    assert_eq!(keys, ["A", "B"]);
    assert!(listed.iter().all(|i| i.namespace == "conformance.tree"));
    assert_eq!(
        value(store, &id("conformance.tree.child", "A"), None).await,
        None,
        "the store does not walk to parents"
    );
    let namespaces = store.list_namespaces("main").await.expect("namespaces");
    assert!(namespaces.contains(&"conformance.tree".to_owned()));
    assert!(namespaces.contains(&"conformance.tree.child".to_owned()));
    assert!(namespaces.windows(2).all(|w| w[0] < w[1]), "sorted");
    assert!(matches!(
        store.list("main", "Not/Valid").await,
        Err(StoreError::InvalidNamespace(_))
    ));
}

/// Keys follow `^[A-Za-z0-9_.-]{1,255}$` and `Key` is not `key`.
pub async fn keys_are_validated_and_case_sensitive(store: &dyn SecretStore) {
    let upper = id("conformance.case", "Key");
    let lower = id("conformance.case", "key");
    set(store, &upper, "upper").await;
    set(store, &lower, "lower").await;
    assert_eq!(value(store, &upper, None).await.as_deref(), Some("upper"));
    assert_eq!(value(store, &lower, None).await.as_deref(), Some("lower"));
    for bad in ["", "has space", "a/b", "é"] {
        assert!(matches!(
            SecretId::main("conformance.case", bad),
            Err(StoreError::InvalidKey(_))
        ));
    }
    assert!(SecretId::main("conformance.case", &"k".repeat(256)).is_err());
}

/// Soft delete hides the latest version until undeleted; destroy is final.
pub async fn delete_undelete_destroy(store: &dyn SecretStore) {
    let id = id("conformance.lifecycle", "K");
    set(store, &id, "v1").await;
    set(store, &id, "v2").await;
    assert_eq!(store.delete(&user(), &id).await.expect("delete"), 2);
    assert_eq!(value(store, &id, None).await, None, "deleted latest");
    assert_eq!(value(store, &id, Some(2)).await, None);
    assert_eq!(value(store, &id, Some(1)).await.as_deref(), Some("v1"));
    assert!(
        store
            .list("main", "conformance.lifecycle")
            .await
            .expect("list")
            .is_empty()
    );
    let info = store.get_meta(&id).await.expect("meta").expect("exists");
    assert!(!info.readable);
    assert!(is_not_found(store.delete(&user(), &id).await), "twice");

    assert_eq!(
        store.undelete(&user(), &id, None).await.expect("undelete"),
        2
    );
    assert_eq!(value(store, &id, None).await.as_deref(), Some("v2"));

    assert_eq!(
        store.destroy(&user(), &id, Some(1)).await.expect("destroy"),
        [1]
    );
    assert_eq!(value(store, &id, Some(1)).await, None);
    let versions = store.versions(&id).await.expect("versions");
    assert!(versions[0].destroyed_at.is_some() && versions[1].is_readable());
    assert!(is_not_found(store.undelete(&user(), &id, Some(1)).await));
    assert!(is_not_found(store.destroy(&user(), &id, Some(1)).await));

    assert_eq!(store.destroy(&user(), &id, None).await.expect("all"), [2]);
    assert_eq!(value(store, &id, None).await, None);
    assert!(is_not_found(store.destroy(&user(), &id, None).await));
    assert_eq!(
        set(store, &id, "v3").await,
        3,
        "numbers go on after destroy"
    );
    let absent = crate::conformance::id("conformance.lifecycle", "NONE");
    assert!(is_not_found(store.delete(&user(), &absent).await));
    assert!(is_not_found(store.undelete(&user(), &absent, None).await));
}

/// Beyond `versions_kept`, the oldest versions go.
pub async fn old_versions_are_pruned(store: &dyn SecretStore) {
    let id = id("conformance.prune", "K");
    let kept = u64::from(store.versions_kept());
    for i in 1..=kept + 3 {
        set(store, &id, &format!("v{i}")).await;
    }
    let versions = store.versions(&id).await.expect("versions");
    assert_eq!(versions.len() as u64, kept);
    assert_eq!(versions.first().map(|v| v.version), Some(4));
    assert_eq!(value(store, &id, Some(3)).await, None, "pruned");
    assert_eq!(
        value(store, &id, None).await,
        Some(format!("v{}", kept + 3))
    );
}

/// Reads by someone and every change are recorded: who, what, when; never the value.
pub async fn audit_records_reads_and_changes_never_values(store: &dyn SecretStore) {
    let ns = "conformance.audit";
    let id = id(ns, "K");
    let secret = "audit-value-must-not-appear";
    let exec = Actor::Execution("exec-42".into());
    set(store, &id, secret).await;
    store.get(&id, None).await.expect("get");
    let read = store
        .read(&exec, &id, None)
        .await
        .expect("read")
        .expect("set");
    assert_eq!(read.version, 1);
    store.delete(&user(), &id).await.expect("delete");
    assert!(store.read(&exec, &id, None).await.expect("read").is_none());
    store.undelete(&user(), &id, None).await.expect("undelete");
    store
        .update_meta(&user(), &id, &SecretMeta::default())
        .await
        .expect("meta");
    store.destroy(&user(), &id, Some(1)).await.expect("destroy");
    let filter = AuditFilter {
        namespace: Some(ns.into()),
        ..AuditFilter::default()
    };
    let entries = store.audit(&filter).await.expect("audit");
    let actions: Vec<AuditAction> = entries.iter().map(|e| e.action).collect();
    use AuditAction::*;
    assert_eq!(
        actions,
        [Destroy, UpdateMeta, Undelete, Delete, Read, Set],
        "newest first; get and a read of nothing are not recorded"
    );
    let read_entry = &entries[4];
    assert_eq!(read_entry.actor, exec);
    assert_eq!(read_entry.tenant.as_deref(), Some("main"));
    assert_eq!(read_entry.namespace.as_deref(), Some(ns));
    assert_eq!(read_entry.key.as_deref(), Some("K"));
    assert_eq!(read_entry.version, Some(1));
    assert!(
        entries
            .windows(2)
            .all(|w| w[0].at >= w[1].at && w[0].id > w[1].id)
    );
    assert!(!format!("{entries:?}").contains(secret));
    let limited = AuditFilter {
        limit: 2,
        key: Some("K".into()),
        ..filter
    };
    assert_eq!(store.audit(&limited).await.expect("audit").len(), 2);
}

/// The backend view reads exactly one namespace, records each value it hands out under the
/// reader (an execution with who triggered it), and records refusals.
pub async fn audited_backend_reads_one_namespace(store: Arc<dyn SecretStore>) {
    let ns = "conformance.backend";
    set(store.as_ref(), &id(ns, "TOKEN"), "tok").await;
    set(store.as_ref(), &id(ns, "A_FIRST"), "a").await;
    let reader = Reader::Execution {
        id: "exec-backend".into(),
        namespace: ns.into(),
        flow_id: "f".into(),
        triggered_by: "user:ada".into(),
    };
    let backend = AuditedBackend::new(Arc::clone(&store));
    let get = |namespace: &'static str, key: &'static str| {
        let (backend, reader) = (backend.clone(), reader.clone());
        async move {
            let got = backend.get(&reader, "main", namespace, key).await;
            got.expect("get").map(|v| v.expose_secret().to_owned())
        }
    };
    assert_eq!(get(ns, "TOKEN").await.as_deref(), Some("tok"));
    assert!(get(ns, "MISSING").await.is_none());
    assert!(get(ns, "not valid!").await.is_none());
    assert!(get("conformance", "TOKEN").await.is_none());
    assert_eq!(
        backend.list("main", ns).await.expect("list"),
        ["A_FIRST", "TOKEN"]
    );
    backend
        .record_refusal(&reader, "main", ns, "A_FIRST")
        .await
        .expect("refusal");
    let filter = AuditFilter {
        namespace: Some(ns.into()),
        ..AuditFilter::default()
    };
    let entries = store.audit(&filter).await.expect("audit");
    let of = |action| entries.iter().filter(move |e| e.action == action);
    let reads: Vec<_> = of(AuditAction::Read).collect();
    assert_eq!(reads.len(), 1, "one value handed out, one read recorded");
    let expected = Actor::Execution("exec-backend by user:ada".into());
    assert_eq!(reads[0].actor, expected);
    let refused: Vec<_> = of(AuditAction::Refused).collect();
    assert_eq!(refused.len(), 1);
    assert_eq!(
        (
            &refused[0].actor,
            refused[0].key.as_deref(),
            refused[0].version
        ),
        (&expected, Some("A_FIRST"), None)
    );
}

/// A rotation re-encrypts every version under a new data key, a rekey re-wraps the keyring;
/// every version stays readable, and both are audited.
pub async fn rotate_and_rekey_keep_every_version(store: &dyn SecretStore) {
    let ns = "conformance.rotate";
    let ids: Vec<SecretId> = (0..5).map(|i| id(ns, &format!("K{i}"))).collect();
    for (i, id) in ids.iter().enumerate() {
        set(store, id, &format!("{i}-old")).await;
        set(store, id, &format!("{i}-new")).await;
    }
    store.delete(&user(), &ids[0]).await.expect("delete");
    let first = store.rotate_key(&user()).await.expect("rotate");
    assert!(!first.resumed);
    assert!(first.reencrypted >= 10, "every stored version: {first:?}");
    let second = store.rotate_key(&user()).await.expect("rotate again");
    assert!(second.key_id > first.key_id);
    store
        .rekey(&user(), &MasterKey::generate().expect("random"))
        .await
        .expect("rekey");
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(value(store, id, Some(1)).await, Some(format!("{i}-old")));
        assert_eq!(value(store, id, Some(2)).await.is_some(), i != 0);
    }
    store
        .undelete(&user(), &ids[0], None)
        .await
        .expect("undelete");
    assert_eq!(value(store, &ids[0], None).await.as_deref(), Some("0-new"));
    let entries = store.audit(&AuditFilter::default()).await.expect("audit");
    let keyring_actions: Vec<AuditAction> = entries
        .iter()
        .filter(|e| e.namespace.is_none())
        .map(|e| e.action)
        .collect();
    assert_eq!(
        keyring_actions,
        [
            AuditAction::Rekey,
            AuditAction::RotateKey,
            AuditAction::RotateKey
        ]
    );
}
