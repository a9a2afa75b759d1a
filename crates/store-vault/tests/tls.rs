//! Vault over TLS with a certificate a private CA signed (OpenBao's `-dev-tls`): trusted with
//! that CA, refused without it, the message naming the certificate, never the token.
//!
//! Without `bao` on PATH the test says so and passes, unless `KESTREL_REQUIRE_OPENBAO` is set.

#![allow(clippy::unwrap_used)] // Test code: a failure is a failed test.

mod common;

use common::*;
use kestrel_store::SecretManager;
use kestrel_store_vault::VaultManager;
use kestrel_store_vault::testing::dev_tls_vault_or_skip;

#[test]
fn a_server_signed_by_a_private_ca_is_trusted_with_that_ca_only() {
    let Some(vault) = dev_tls_vault_or_skip("tls") else {
        return;
    };
    assert!(
        vault.address().starts_with("https://"),
        "{}",
        vault.address()
    );
    let ca = vault.ca_certificate().unwrap();
    let trusting = VaultManager::with_ca_certificates(vault.settings(), &ca).unwrap();
    let key = id("company.team", "API_KEY");
    set(&trusting, &key, "over tls");
    assert_eq!(value(&trusting, &key, None).as_deref(), Some("over tls"));
    wait(trusting.check()).unwrap();

    let message = try_value(&manager(vault.settings()), &key, None)
        .unwrap_err()
        .to_string();
    for expected in ["vault", "'API_KEY'", "certificate"] {
        assert!(message.contains(expected), "{expected} in {message}");
    }
    assert!(!message.contains(vault.root_token()), "{message}");

    let refused = VaultManager::with_ca_certificates(vault.settings(), b"not a certificate");
    let message = refused.unwrap_err().to_string();
    assert!(message.contains("CA certificates"), "{message}");
}
