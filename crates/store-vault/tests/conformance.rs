//! The manager conformance story every external secret manager runs, here against a real
//! OpenBao dev server. Without `bao` on PATH it says so and passes, unless
//! `KESTREL_REQUIRE_OPENBAO` is set.

#![allow(clippy::unwrap_used)] // Test code: a failure is a failed test.

mod common;

use common::{dev_vault_or_skip, manager, wait};

#[test]
fn vault_runs_the_manager_conformance_story() {
    let Some(vault) = dev_vault_or_skip("the manager conformance story") else {
        return;
    };
    let m = manager(vault.settings());
    wait(kestrel_store::conformance::manager::run_all(&m));
}
