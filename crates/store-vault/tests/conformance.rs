//! The manager conformance story every external secret manager runs, here against a real
//! OpenBao dev server: with the root token, and logged in through AppRole with only the policy
//! the crate's doc lists. Without `bao` on PATH it says so and passes, unless
//! `KESTREL_REQUIRE_OPENBAO` is set.

#![allow(clippy::unwrap_used)] // Test code: a failure is a failed test.

mod common;

use common::{dev_vault_or_skip, manager, wait};
use kestrel_store_vault::testing::MANAGED_POLICY;
use std::time::Duration;

#[test]
fn vault_runs_the_manager_conformance_story() {
    let Some(vault) = dev_vault_or_skip("the manager conformance story") else {
        return;
    };
    let m = manager(vault.settings());
    wait(kestrel_store::conformance::manager::run_all(&m));
}

#[test]
fn vault_runs_the_story_with_only_the_documented_managed_policy() {
    let Some(vault) = dev_vault_or_skip("the story with the managed policy") else {
        return;
    };
    let long = Duration::from_secs(600);
    let mut settings = vault.settings();
    settings.auth = vault
        .app_role_with_policy("kestrel", MANAGED_POLICY, long, long, 0)
        .unwrap();
    wait(kestrel_store::conformance::manager::run_all(&manager(
        settings,
    )));
}
