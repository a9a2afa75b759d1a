//! The Vault manager against a real OpenBao dev server on 127.0.0.1: values, versions,
//! listings, the KV v2 lifecycle, metadata, the map rule, credentials and `check`.
//!
//! Without `bao` on PATH each test says so and passes, unless `KESTREL_REQUIRE_OPENBAO` is set
//! (scripts/services/openbao-install installs it).

#![allow(clippy::unwrap_used)] // Test code: a failure is a failed test.

mod common;

use common::*;
use kestrel_store::{SecretManager, SecretMeta, Tag};
use kestrel_store_vault::VaultAuth;
use serde_json::{Value, json};

#[test]
fn values_versions_and_listings_round_trip() {
    let Some((_vault, _, vault_manager)) =
        vault_and_manager("values_versions_and_listings_round_trip")
    else {
        return;
    };
    let m = &vault_manager;
    let api = id("company.team", "API_KEY");
    assert_eq!(value(m, &api, None), None, "absent");
    assert!(wait(m.versions(&api)).unwrap().is_empty());
    assert_eq!(wait(m.get_meta(&api)).unwrap(), None);

    assert_eq!(set(m, &api, "one"), 1);
    assert_eq!(set(m, &api, "two\nlines é"), 2);
    let current = wait(m.get(&api, None)).unwrap().unwrap();
    assert_eq!(
        (current.version, current.value.expose_secret()),
        (2, "two\nlines é")
    );
    assert_eq!(value(m, &api, Some(1)).as_deref(), Some("one"));
    assert_eq!(value(m, &api, Some(9)), None, "a version never written");
    assert_eq!(
        value(m, &api, Some(0)),
        None,
        "not Vault's alias of the current one"
    );
    let versions = wait(m.versions(&api)).unwrap();
    let numbers: Vec<u64> = versions.iter().map(|v| v.version).collect();
    assert_eq!(numbers, [1, 2]);
    assert!(
        versions
            .iter()
            .all(|v| v.is_readable() && v.label.is_none())
    );
    assert_eq!(versions[0].created_by.to_string(), "system:vault");

    set(m, &id("company.team", "B_KEY"), "b");
    set(m, &id("company.team.child", "C_KEY"), "c");
    set(m, &id("other", "D_KEY"), "d");
    let keys: Vec<String> = wait(m.list("main", "company.team"))
        .unwrap()
        .into_iter()
        .map(|info| info.key)
        .collect();
    assert_eq!(
        keys,
        ["API_KEY", "B_KEY"],
        "sorted, without the child namespace"
    );
    let info = wait(m.get_meta(&api)).unwrap().unwrap();
    assert!(info.readable && info.version == 2 && info.created_at <= info.updated_at);
    assert!(wait(m.list("main", "company")).unwrap().is_empty());
    assert!(wait(m.list("main", "absent.ns")).unwrap().is_empty());
    assert_eq!(
        wait(m.list_namespaces("main")).unwrap(),
        ["company.team", "company.team.child", "other"],
        "folders without a readable key are not namespaces"
    );
    assert!(
        wait(m.list_namespaces("acme")).unwrap().is_empty(),
        "tenants apart"
    );
    assert!(wait(m.list("main", "../escape")).is_err());
}

#[test]
fn delete_undelete_and_destroy_map_to_kv_v2() {
    let Some((_vault, _, vault_manager)) =
        vault_and_manager("delete_undelete_and_destroy_map_to_kv_v2")
    else {
        return;
    };
    let m = &vault_manager;
    let key = id("lifecycle", "K");
    set(m, &key, "v1");
    set(m, &key, "v2");
    assert_eq!(wait(m.delete(&key)).unwrap(), 2);
    assert_eq!(value(m, &key, None), None, "deleted current");
    assert_eq!(value(m, &key, Some(1)).as_deref(), Some("v1"));
    assert!(wait(m.list("main", "lifecycle")).unwrap().is_empty());
    assert!(wait(m.list_namespaces("main")).unwrap().is_empty());
    let info = wait(m.get_meta(&key)).unwrap().unwrap();
    assert!(!info.readable && info.version == 2);
    assert!(is_not_found(wait(m.delete(&key))), "twice");
    assert!(wait(m.versions(&key)).unwrap()[1].deleted_at.is_some());

    assert_eq!(wait(m.undelete(&key, None)).unwrap(), 2);
    assert_eq!(value(m, &key, None).as_deref(), Some("v2"));

    assert_eq!(wait(m.destroy(&key, Some(1))).unwrap(), [1]);
    assert_eq!(value(m, &key, Some(1)), None);
    let versions = wait(m.versions(&key)).unwrap();
    assert!(versions[0].destroyed_at.is_some() && versions[1].is_readable());
    assert!(is_not_found(wait(m.undelete(&key, Some(1)))));
    assert!(is_not_found(wait(m.destroy(&key, Some(1)))));
    assert!(is_not_found(wait(m.destroy(&key, Some(7)))));

    assert_eq!(wait(m.destroy(&key, None)).unwrap(), [2]);
    assert_eq!(value(m, &key, None), None);
    assert!(wait(m.versions(&key)).unwrap().is_empty());
    assert!(is_not_found(wait(m.destroy(&key, None))));
    assert!(is_not_found(wait(m.undelete(&key, None))));
    let absent = id("lifecycle", "NONE");
    assert!(is_not_found(wait(m.delete(&absent))));
}

#[test]
fn description_and_tags_live_in_custom_metadata() {
    let Some((vault, settings, vault_manager)) =
        vault_and_manager("description_and_tags_live_in_custom_metadata")
    else {
        return;
    };
    let m = &vault_manager;
    let key = id("meta", "API_KEY");
    let meta = SecretMeta {
        description: Some("the partner API".into()),
        tags: vec![Tag {
            key: "team".into(),
            value: "data".into(),
        }],
    };
    set_with(m, &key, "k1", &meta);
    assert_eq!(wait(m.get_meta(&key)).unwrap().unwrap().meta, meta);
    let raw = vault
        .request(
            "GET",
            &format!("secret/metadata/{}/main/meta/API_KEY", settings.prefix),
            None,
        )
        .unwrap();
    assert_eq!(
        raw["data"]["custom_metadata"],
        json!({"description": "the partner API", "tag.team": "data"})
    );

    set(m, &key, "k2");
    assert_eq!(
        wait(m.get_meta(&key)).unwrap().unwrap().meta,
        meta,
        "a set without meta keeps it"
    );
    assert_eq!(wait(m.list("main", "meta")).unwrap()[0].meta, meta);
    let cleared = SecretMeta::default();
    wait(m.update_meta(&key, &cleared)).unwrap();
    assert_eq!(wait(m.get_meta(&key)).unwrap().unwrap().meta, cleared);
    assert_eq!(value(m, &key, None).as_deref(), Some("k2"));
    assert_eq!(wait(m.versions(&key)).unwrap().len(), 2, "versions kept");
    assert!(is_not_found(wait(
        m.update_meta(&id("meta", "NONE"), &meta)
    )));
    assert_eq!(
        wait(m.get_meta(&id("meta", "NONE"))).unwrap(),
        None,
        "update_meta of an absent key creates nothing"
    );
}

#[test]
fn a_secret_with_fields_of_its_own_reads_as_a_json_object_and_value_alone_as_a_string() {
    let Some((vault, settings, vault_manager)) = vault_and_manager("map rule") else {
        return;
    };
    let m = &vault_manager;
    let db = id("company", "DB");
    vault
        .write_fields(&settings, &db, json!({"value": "pw", "user": "ada"}))
        .unwrap();
    let read: Value = serde_json::from_str(&value(m, &db, None).unwrap()).unwrap();
    assert_eq!(read, json!({"value": "pw", "user": "ada"}));

    let plain = id("company", "PLAIN");
    vault
        .write_fields(&settings, &plain, json!({"value": "only"}))
        .unwrap();
    assert_eq!(value(m, &plain, None).as_deref(), Some("only"));

    let written = id("company", "JSON");
    set(m, &written, r#"{"user":"admin"}"#);
    assert_eq!(
        value(m, &written, None).as_deref(),
        Some(r#"{"user":"admin"}"#),
        "kestrel's own JSON value comes back as written"
    );
}

#[test]
fn a_wrong_token_fails_naming_vault_and_the_key_never_the_token() {
    let Some(vault) = dev_vault_or_skip("wrong token") else {
        return;
    };
    let mut settings = vault.settings();
    settings.auth = VaultAuth::token("hvs.WRONG-TOKEN-4f2a");
    let m = manager(settings);
    let message = wait(m.get(&id("company.team", "API_KEY"), None))
        .unwrap_err()
        .to_string();
    for expected in ["vault", "'API_KEY'", "'company.team'", "permission denied"] {
        assert!(message.contains(expected), "{expected} in {message}");
    }
    let check = wait(m.check()).unwrap_err().to_string();
    assert!(
        check.contains(&vault.address()) && check.contains("permission denied"),
        "{check}"
    );
    for shown in [&message, &check, &format!("{m:?}")] {
        assert!(!shown.contains("WRONG-TOKEN"), "{shown}");
        assert!(!shown.contains(vault.root_token()), "{shown}");
    }
}

#[test]
fn check_proves_the_kv_v2_mount_and_names_what_is_wrong() {
    let Some(vault) = dev_vault_or_skip("check") else {
        return;
    };
    wait(manager(vault.settings()).check()).unwrap();
    let mut settings = vault.settings();
    settings.mount = "cubbyhole".into();
    let message = wait(manager(settings).check()).unwrap_err().to_string();
    assert!(
        message.contains("vault at http://127.0.0.1") && message.contains("not kv version 2"),
        "{message}"
    );
    let mut settings = vault.settings();
    settings.mount = "absent".into();
    assert!(wait(manager(settings).check()).is_err());
}

#[test]
fn debug_of_settings_and_manager_never_shows_the_token() {
    let Some((vault, settings, m)) = vault_and_manager("debug") else {
        return;
    };
    set(&m, &id("ns", "K"), "v");
    let shown = format!("{settings:?} {m:?} {vault:?}");
    assert!(!shown.contains(vault.root_token()), "{shown}");
    assert!(shown.contains(&vault.address()), "{shown}");
}

#[test]
fn an_openbao_namespace_is_sent_as_the_vault_namespace_header() {
    let Some(vault) = dev_vault_or_skip("namespace header") else {
        return;
    };
    let settings = vault.namespace("team-a").unwrap();
    let in_namespace = manager(settings.clone());
    let key = id("company", "K");
    set(&in_namespace, &key, "in team-a");
    assert_eq!(
        value(&in_namespace, &key, None).as_deref(),
        Some("in team-a")
    );
    wait(in_namespace.check()).unwrap();
    let path = format!("secret/data/{}/main/company/K", settings.prefix);
    let read = vault
        .request_in(Some("team-a"), "GET", &path, None)
        .unwrap();
    assert_eq!(read["data"]["data"]["value"], "in team-a");

    let mut root = settings;
    root.namespace = None;
    assert_eq!(
        value(&manager(root), &key, None),
        None,
        "not in the root namespace"
    );
}
