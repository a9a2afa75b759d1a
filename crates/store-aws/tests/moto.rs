//! The manager against moto's server on 127.0.0.1: values and AWS's versions, listings,
//! delete and restore, metadata, and a backend that stops and starts again.

#![allow(clippy::unwrap_used)] // Test code: a failure is a failed test.

use kestrel_secrets::SecretValue;
use kestrel_store::{SecretId, SecretManager, SecretMeta, StoreError, Tag};
use kestrel_store_aws::AwsManager;
use kestrel_store_aws::testing::dev_aws_or_skip;

fn id(namespace: &str, key: &str) -> SecretId {
    SecretId::main(namespace, key).unwrap()
}

async fn set(manager: &AwsManager, id: &SecretId, value: &str) -> u64 {
    manager
        .set(id, &SecretValue::new(value.into()), None)
        .await
        .unwrap()
}

async fn value(manager: &AwsManager, id: &SecretId, version: Option<u64>) -> Option<String> {
    let read = manager.get(id, version).await.unwrap();
    read.map(|r| r.value.expose_secret().to_owned())
}

#[tokio::test]
async fn versions_are_aws_own_and_read_by_number_version_id_or_stage() {
    let Some(dev) = dev_aws_or_skip("versions_are_aws_own_and_read_by_number_version_id_or_stage")
    else {
        return;
    };
    let manager = AwsManager::new(&dev.settings()).unwrap();
    let key = id("company.team", "API_KEY");
    assert_eq!(value(&manager, &key, None).await, None);
    assert!(manager.versions(&key).await.unwrap().is_empty());

    assert_eq!(set(&manager, &key, "first").await, 1);
    assert_eq!(set(&manager, &key, "second").await, 2);
    assert_eq!(set(&manager, &key, "third").await, 3);

    let current = manager.get(&key, None).await.unwrap().unwrap();
    assert_eq!(
        (current.version, current.value.expose_secret()),
        (3, "third")
    );
    assert_eq!(
        value(&manager, &key, Some(1)).await.as_deref(),
        Some("first")
    );
    assert_eq!(value(&manager, &key, Some(9)).await, None);

    let versions = manager.versions(&key).await.unwrap();
    let numbers: Vec<u64> = versions.iter().map(|v| v.version).collect();
    assert_eq!(numbers, [1, 2, 3]);
    assert!(
        versions
            .iter()
            .all(|v| v.label.is_some() && v.is_readable())
    );
    assert_eq!(versions[2].stages, ["AWSCURRENT"]);
    assert_eq!(versions[1].stages, ["AWSPREVIOUS"]);

    let first_id = versions[0].label.clone().unwrap();
    let named = |name: String| {
        let (manager, key) = (&manager, &key);
        async move { manager.version_named(key, &name).await.unwrap() }
    };
    assert_eq!(named(first_id).await, Some(1));
    assert_eq!(named("AWSCURRENT".into()).await, Some(3));
    assert_eq!(named("AWSPREVIOUS".into()).await, Some(2));
    assert_eq!(named("2".into()).await, Some(2));
    assert_eq!(named("no-such-version".into()).await, None);
}

#[tokio::test]
async fn a_json_value_round_trips_for_subkeys() {
    let Some(dev) = dev_aws_or_skip("a_json_value_round_trips_for_subkeys") else {
        return;
    };
    let manager = AwsManager::new(&dev.settings()).unwrap();
    let key = id("company.team", "DB");
    let json = r#"{"user":"admin","password":"p@ss \"quoted\"\nline"}"#;
    set(&manager, &key, json).await;
    let read = value(&manager, &key, None).await.unwrap();
    assert_eq!(read, json);
    let parsed: serde_json::Value = serde_json::from_str(&read).unwrap();
    assert_eq!(parsed["password"], "p@ss \"quoted\"\nline");
}

#[tokio::test]
async fn list_names_exactly_one_namespace_and_namespaces_are_listed() {
    let Some(dev) = dev_aws_or_skip("list_names_exactly_one_namespace_and_namespaces_are_listed")
    else {
        return;
    };
    let manager = AwsManager::new(&dev.settings()).unwrap();
    set(&manager, &id("company", "ROOT"), "r").await;
    set(&manager, &id("company.team", "B_KEY"), "b").await;
    set(&manager, &id("company.team", "A_KEY"), "a").await;
    set(&manager, &id("company.team.child", "C_KEY"), "c").await;
    let listed = manager.list("main", "company.team").await.unwrap();
    let keys: Vec<&str> = listed.iter().map(|i| i.key.as_str()).collect();
    assert_eq!(keys, ["A_KEY", "B_KEY"]);
    assert!(listed.iter().all(|i| i.readable && i.version == 1));
    assert_eq!(
        manager.list_namespaces("main").await.unwrap(),
        ["company", "company.team", "company.team.child"]
    );
    assert!(manager.list_namespaces("other").await.unwrap().is_empty());
    assert!(
        manager
            .list("main", "company.none")
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn delete_is_restorable_destroy_is_final_and_one_version_cannot_be_destroyed() {
    let Some(dev) = dev_aws_or_skip(
        "delete_is_restorable_destroy_is_final_and_one_version_cannot_be_destroyed",
    ) else {
        return;
    };
    let manager = AwsManager::new(&dev.settings()).unwrap();
    let key = id("company.team", "TOKEN");
    set(&manager, &key, "t-1").await;
    set(&manager, &key, "t-2").await;

    assert_eq!(manager.delete(&key).await.unwrap(), 2);
    assert_eq!(value(&manager, &key, None).await, None);
    assert_eq!(value(&manager, &key, Some(1)).await, None);
    assert!(
        manager
            .versions(&key)
            .await
            .unwrap()
            .iter()
            .all(|v| !v.is_readable())
    );
    assert!(
        manager
            .list("main", "company.team")
            .await
            .unwrap()
            .is_empty()
    );
    let info = manager.get_meta(&key).await.unwrap().unwrap();
    assert!(!info.readable);
    assert!(matches!(
        manager.delete(&key).await,
        Err(StoreError::NotFound { .. })
    ));

    assert_eq!(manager.undelete(&key, None).await.unwrap(), 2);
    assert_eq!(value(&manager, &key, None).await.as_deref(), Some("t-2"));

    let one = manager.destroy(&key, Some(1)).await.unwrap_err();
    assert!(matches!(one, StoreError::Unsupported { .. }), "{one}");
    assert!(one.to_string().contains("aws-secret-manager"), "{one}");

    assert_eq!(manager.destroy(&key, None).await.unwrap(), [1, 2]);
    assert_eq!(value(&manager, &key, None).await, None);
    assert!(manager.get_meta(&key).await.unwrap().is_none());
    assert!(matches!(
        manager.undelete(&key, None).await,
        Err(StoreError::NotFound { .. })
    ));
}

#[tokio::test]
async fn a_set_on_a_deleted_secret_restores_it_with_a_new_version() {
    let Some(dev) = dev_aws_or_skip("a_set_on_a_deleted_secret_restores_it_with_a_new_version")
    else {
        return;
    };
    let manager = AwsManager::new(&dev.settings()).unwrap();
    let key = id("company.team", "ROTATED");
    set(&manager, &key, "old").await;
    manager.delete(&key).await.unwrap();
    assert_eq!(set(&manager, &key, "new").await, 2);
    assert_eq!(value(&manager, &key, None).await.as_deref(), Some("new"));
}

#[tokio::test]
async fn description_and_tags_round_trip_and_kestrel_tags_are_its_own() {
    let Some(dev) = dev_aws_or_skip("description_and_tags_round_trip_and_kestrel_tags_are_its_own")
    else {
        return;
    };
    let manager = AwsManager::new(&dev.settings()).unwrap();
    let key = id("company.team", "PARTNER");
    let tag = |k: &str, v: &str| Tag {
        key: k.into(),
        value: v.into(),
    };
    let meta = SecretMeta {
        description: Some("the partner API".into()),
        tags: vec![tag("team", "data"), tag("cost", "42")],
    };
    manager
        .set(&key, &SecretValue::new("k".into()), Some(&meta))
        .await
        .unwrap();
    let info = manager.get_meta(&key).await.unwrap().unwrap();
    assert_eq!(info.meta, meta);
    assert_eq!((info.version, info.readable), (1, true));

    // A changed description (moto keeps the old one when asked for none, AWS clears it).
    let changed = SecretMeta {
        description: Some("rotated monthly".into()),
        tags: vec![tag("team", "platform")],
    };
    manager.update_meta(&key, &changed).await.unwrap();
    assert_eq!(manager.get_meta(&key).await.unwrap().unwrap().meta, changed);
    // kestrel's own tags stay for AWS's tools, which is also how listings find the key.
    assert_eq!(manager.list("main", "company.team").await.unwrap().len(), 1);

    let reserved = SecretMeta {
        description: None,
        tags: vec![tag("namespace", "elsewhere")],
    };
    let refused = manager.update_meta(&key, &reserved).await.unwrap_err();
    assert!(
        matches!(refused, StoreError::Unsupported { .. }),
        "{refused}"
    );
    let absent = manager
        .update_meta(&id("company.team", "NONE"), &changed)
        .await;
    assert!(matches!(absent, Err(StoreError::NotFound { .. })));
}

#[tokio::test]
async fn a_stopped_backend_fails_naming_aws_secret_manager_and_the_key_then_works_again() {
    let Some(mut dev) = dev_aws_or_skip(
        "a_stopped_backend_fails_naming_aws_secret_manager_and_the_key_then_works_again",
    ) else {
        return;
    };
    let manager = AwsManager::new(&dev.settings()).unwrap();
    let key = id("company.team", "API_KEY");
    set(&manager, &key, "s3cr3t-value").await;
    manager.check().await.unwrap();

    dev.stop();
    let error = manager.get(&key, None).await.unwrap_err().to_string();
    assert!(
        error.starts_with(
            "aws-secret-manager: reading secret 'API_KEY' of namespace 'company.team'"
        ),
        "{error}"
    );
    assert!(
        !error.contains("s3cr3t-value") && !error.contains("testing-secret-key"),
        "{error}"
    );
    let check = manager.check().await.unwrap_err().to_string();
    assert!(check.contains(&dev.endpoint()), "{check}");
    let write = manager
        .set(&key, &SecretValue::new("s3cr3t-new".into()), None)
        .await;
    let write = write.unwrap_err().to_string();
    assert!(
        write.contains("writing secret 'API_KEY'") && !write.contains("s3cr3t-new"),
        "{write}"
    );

    // moto forgets everything when it stops: the same manager works again, from empty.
    dev.start_again().unwrap();
    manager.check().await.unwrap();
    assert_eq!(value(&manager, &key, None).await, None);
    assert_eq!(set(&manager, &key, "again").await, 1);
    assert_eq!(value(&manager, &key, None).await.as_deref(), Some("again"));
}

#[test]
fn debug_shows_neither_the_secret_key_nor_the_token() {
    let settings = kestrel_store_aws::AwsSettings {
        access_key_id: Some("AKIDVISIBLE".into()),
        secret_access_key: Some(zeroize::Zeroizing::new("wJalrXUtnFEMI-secret".into())),
        session_token: Some(zeroize::Zeroizing::new("FwoGZXIvYXdz-token".into())),
        ..Default::default()
    };
    let shown = format!("{settings:?}");
    assert!(shown.contains("AKIDVISIBLE"), "{shown}");
    assert!(
        !shown.contains("wJalrXUtnFEMI") && !shown.contains("FwoGZXIvYXdz"),
        "{shown}"
    );
    let manager = format!("{:?}", AwsManager::new(&settings).unwrap());
    assert!(
        !manager.contains("wJalrXUtnFEMI") && !manager.contains("FwoGZXIvYXdz"),
        "{manager}"
    );
}

#[tokio::test]
async fn listings_follow_aws_pages_beyond_the_first_hundred() {
    let Some(dev) = dev_aws_or_skip("listings_follow_aws_pages_beyond_the_first_hundred") else {
        return;
    };
    let manager = AwsManager::new(&dev.settings()).unwrap();
    for n in 0..105 {
        set(&manager, &id("company.many", &format!("KEY_{n:03}")), "v").await;
    }
    let listed = manager.list("main", "company.many").await.unwrap();
    assert_eq!(listed.len(), 105);
    assert_eq!(listed[104].key, "KEY_104");
    assert_eq!(
        manager.list_namespaces("main").await.unwrap(),
        ["company.many"]
    );
}
