//! The manager conformance story every external secret manager runs, here against moto's
//! server on 127.0.0.1. Without `moto_server` on PATH it says so and passes, unless
//! `KESTREL_REQUIRE_MOTO` is set.

#![allow(clippy::unwrap_used)] // Test code: a failure is a failed test.

mod common;

use kestrel_store_aws::AwsManager;

#[tokio::test]
async fn aws_runs_the_manager_conformance_story() {
    let Some(dev) = common::moto() else { return };
    let manager = AwsManager::new(&dev.settings()).unwrap();
    kestrel_store::conformance::manager::run_all(&manager).await;
}
