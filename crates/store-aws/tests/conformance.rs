//! The manager conformance story every external secret manager runs, here against moto's
//! server on 127.0.0.1. Without `moto_server` on PATH it says so and passes, unless
//! `KESTREL_REQUIRE_MOTO` is set.

#![allow(clippy::unwrap_used)] // Test code: a failure is a failed test.

use kestrel_store_aws::AwsManager;
use kestrel_store_aws::testing::dev_aws_or_skip;

#[tokio::test]
async fn aws_runs_the_manager_conformance_story() {
    let Some(dev) = dev_aws_or_skip("the manager conformance story") else {
        return;
    };
    let manager = AwsManager::new(&dev.settings()).unwrap();
    kestrel_store::conformance::manager::run_all(&manager).await;
}
