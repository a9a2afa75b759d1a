//! Faults against a real OpenBao dev server: the server stopped in the middle of a run,
//! tokens that expire (renewed, or replaced by a new login), revoked, or never granted.
//!
//! Without `bao` on PATH each test says so and passes, unless `KESTREL_REQUIRE_OPENBAO` is set.

#![allow(clippy::unwrap_used)] // Test code: a failure is a failed test.

mod common;

use common::*;
use kestrel_store::{SecretId, SecretManager};
use kestrel_store_vault::testing::DevVault;
use kestrel_store_vault::{VaultAuth, VaultManager};
use std::time::{Duration, Instant};

/// A token TTL the tests outlive.
const SHORT: Duration = Duration::from_secs(2);
/// A token TTL no test reaches.
const LONG: Duration = Duration::from_secs(600);

/// Reads `key` every 100 ms for `span`: every read must answer `expected`. The span outlives
/// the token's TTL, which is what is tested; the loop is bounded by it.
fn reads_keep_working(m: &VaultManager, key: &SecretId, span: Duration) {
    let start = Instant::now();
    let mut reads = 0;
    while start.elapsed() < span {
        let read = try_value(m, key, None);
        assert_eq!(
            read.as_ref()
                .map(Option::as_deref)
                .map_err(ToString::to_string),
            Ok(Some("v")),
            "read {reads} at {:?}",
            start.elapsed()
        );
        reads += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_stopped_server_fails_reads_naming_vault_and_the_key_then_serves_again_once_back() {
    let Some(mut vault) = dev_vault_or_skip("stopped server") else {
        return;
    };
    let m = manager(vault.settings());
    let key = id("company.team", "API_KEY");
    set(&m, &key, "v");
    assert_eq!(value(&m, &key, None).as_deref(), Some("v"));

    vault.stop();
    let message = try_value(&m, &key, None).unwrap_err().to_string();
    for expected in [
        "vault",
        "'API_KEY'",
        "'company.team'",
        "unreachable",
        &vault.address(),
    ] {
        assert!(message.contains(expected), "{expected} in {message}");
    }
    assert!(!message.contains(vault.root_token()), "{message}");
    let check = wait(m.check()).unwrap_err().to_string();
    assert!(check.contains("unreachable"), "{check}");

    vault.start_again().unwrap();
    // Dev mode kept nothing: the secret is gone, the same manager writes and reads again.
    assert_eq!(value(&m, &key, None), None);
    assert_eq!(set(&m, &key, "v"), 1);
    assert_eq!(value(&m, &key, None).as_deref(), Some("v"));
    wait(m.check()).unwrap();
}

/// A manager logged in through a new AppRole `name` (see [`DevVault::app_role`]), with
/// `v` written under `name`/`K`.
fn app_role_manager(
    vault: &DevVault,
    name: &str,
    ttl: Duration,
    max_ttl: Duration,
    logins: u32,
) -> (VaultManager, SecretId) {
    let mut settings = vault.settings();
    settings.auth = vault.app_role(name, ttl, max_ttl, logins).unwrap();
    let m = manager(settings);
    let key = id(name, "K");
    set(&m, &key, "v");
    (m, key)
}

#[test]
fn an_app_role_token_with_a_short_ttl_is_renewed_before_it_expires() {
    let Some(vault) = dev_vault_or_skip("renewal") else {
        return;
    };
    // One login only: past the 2 s TTL, reads work only if the token was renewed.
    let (m, key) = app_role_manager(&vault, "renewed", SHORT, LONG, 1);
    reads_keep_working(&m, &key, Duration::from_secs(5));
}

#[test]
fn an_app_role_token_at_its_max_ttl_is_replaced_by_a_new_login() {
    let Some(vault) = dev_vault_or_skip("max ttl") else {
        return;
    };
    // Renewal cannot pass 3 s: kestrel must log in again, before or when Vault refuses.
    let (m, key) = app_role_manager(&vault, "relogin", SHORT, Duration::from_secs(3), 0);
    reads_keep_working(&m, &key, Duration::from_secs(7));
}

#[test]
fn a_revoked_app_role_token_is_replaced_by_a_new_login_and_the_read_retried() {
    let Some(vault) = dev_vault_or_skip("revoked") else {
        return;
    };
    let (m, key) = app_role_manager(&vault, "revoked", LONG, LONG, 0);
    vault.revoke_app_role_tokens().unwrap();
    assert_eq!(value(&m, &key, None).as_deref(), Some("v"));
}

#[test]
fn a_wrong_secret_id_fails_the_login_naming_the_method_never_the_secret_id() {
    let Some(vault) = dev_vault_or_skip("wrong secret id") else {
        return;
    };
    let VaultAuth::AppRole { role_id, .. } = vault.app_role("wrong", LONG, LONG, 0).unwrap() else {
        panic!("an AppRole login")
    };
    let mut settings = vault.settings();
    settings.auth = VaultAuth::app_role(role_id.clone(), "00000000-WRONG-SECRET-ID");
    let m = manager(settings);
    let message = try_value(&m, &id("ns", "K"), None).unwrap_err().to_string();
    for expected in ["vault", "'K'", "logging in with approle at auth/approle"] {
        assert!(message.contains(expected), "{expected} in {message}");
    }
    assert!(
        !message.contains("WRONG-SECRET-ID") && !message.contains(&role_id),
        "{message}"
    );
}
