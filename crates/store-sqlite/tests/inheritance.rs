//! Inheritance is the resolver's job, over the store's exact-namespace answers: a child sees its
//! parents' keys, its own shadow theirs, and the environment comes last.

#![allow(clippy::unwrap_used)] // Test code: a failure is a failed test.

mod common;

use base64::Engine as _;
use common::{id, open, set};
use kestrel_crypto::MasterKey;
use kestrel_secrets::{EnvBackend, EnvOptions, Reader, Resolver};
use kestrel_store::{Actor, AuditAction, AuditFilter, SecretStore};
use std::sync::Arc;

fn env_backend() -> EnvBackend {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let vars = vec![
        ("SECRET_ENV_ONLY".to_owned(), b64("from-env")),
        ("SECRET_SHARED".to_owned(), b64("env-shared")),
    ];
    EnvBackend::load(vars, None, &EnvOptions::default(), &|s| Ok(s.to_owned()))
        .unwrap()
        .backend
}

/// What an execution of a flow in `namespace` resolves.
fn resolve(resolver: &Resolver, namespace: &str, key: &str) -> Option<String> {
    let reader = Reader::Execution {
        id: "exec-1".into(),
        namespace: namespace.into(),
        flow_id: "f".into(),
        triggered_by: "user:ada".into(),
    };
    resolver
        .resolve(&reader, "main", namespace, key)
        .unwrap()
        .map(|v| v.expose_secret().to_owned())
}

#[test]
fn three_levels_inherit_and_a_child_shadows_its_parent() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), &MasterKey::generate().unwrap());
    set(&store, &id("company", "SHARED"), "root");
    set(&store, &id("company", "ONLY_ROOT"), "r");
    set(&store, &id("company.team", "SHARED"), "team");
    set(&store, &id("company.team", "ONLY_TEAM"), "t");
    set(&store, &id("company.team.project", "SHARED"), "project");
    let execution = Actor::Execution("exec-1 by user:ada".into());
    let resolver = Resolver::new(Some(Arc::new(store.backend())), Arc::new(env_backend()));

    let leaf = "company.team.project";
    assert_eq!(
        resolve(&resolver, leaf, "SHARED").as_deref(),
        Some("project")
    );
    assert_eq!(
        resolve(&resolver, "company.team", "SHARED").as_deref(),
        Some("team")
    );
    assert_eq!(
        resolve(&resolver, "company", "SHARED").as_deref(),
        Some("root")
    );
    assert_eq!(resolve(&resolver, leaf, "ONLY_ROOT").as_deref(), Some("r"));
    assert_eq!(resolve(&resolver, leaf, "ONLY_TEAM").as_deref(), Some("t"));
    assert_eq!(
        resolve(&resolver, "company", "ONLY_TEAM"),
        None,
        "no walk downwards"
    );
    assert_eq!(
        resolve(&resolver, leaf, "ENV_ONLY").as_deref(),
        Some("from-env")
    );
    assert_eq!(
        resolve(&resolver, "other", "SHARED").as_deref(),
        Some("env-shared")
    );
    assert_eq!(resolve(&resolver, leaf, "MISSING"), None);

    // Deleting the child's key uncovers the parent's, at once.
    common::wait(store.delete(&common::actor(), &id(leaf, "SHARED"))).unwrap();
    assert_eq!(resolve(&resolver, leaf, "SHARED").as_deref(), Some("team"));

    // Every value the store handed out was recorded as read by the execution, where found.
    let filter = AuditFilter {
        namespace: Some("company.team".into()),
        ..AuditFilter::default()
    };
    let reads: Vec<_> = common::wait(store.audit(&filter))
        .unwrap()
        .into_iter()
        .filter(|e| e.action == AuditAction::Read)
        .collect();
    assert_eq!(reads.len(), 3, "SHARED twice and ONLY_TEAM once: {reads:?}");
    assert!(reads.iter().all(|e| e.actor == execution));
}
