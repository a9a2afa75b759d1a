//! The manager conformance story every external secret manager runs, here against moto's
//! server on 127.0.0.1. Without `moto_server` on PATH it says so and passes, unless
//! `KESTREL_REQUIRE_MOTO` is set.

#![allow(clippy::unwrap_used)] // Test code: a failure is a failed test.

use kestrel_store::SecretManager as _;
use kestrel_store_aws::AwsManager;
use kestrel_store_aws::AwsSettings;
use kestrel_store_aws::testing::{DevAws, dev_aws_or_skip};

#[tokio::test]
async fn aws_runs_the_manager_conformance_story() {
    let Some(dev) = dev_aws_or_skip("the manager conformance story") else {
        return;
    };
    let manager = AwsManager::new(&dev.settings()).unwrap();
    kestrel_store::conformance::manager::run_all(&manager).await;
}

/// moto checking signatures as AWS does: every operation of the story is signed right, and
/// a wrong secret key is refused with a message naming the backend, never the key.
#[tokio::test]
async fn aws_runs_the_story_against_a_server_that_checks_signatures() {
    let test = "the story against a server that checks signatures";
    if dev_aws_or_skip(test).is_none() {
        return;
    }
    let dev = DevAws::start_checking_signatures().unwrap();
    let manager = AwsManager::new(&dev.settings()).unwrap();
    kestrel_store::conformance::manager::run_all(&manager).await;

    let wrong = AwsSettings {
        secret_access_key: Some(zeroize::Zeroizing::new("wrong-secret-key".into())),
        ..dev.settings()
    };
    let refused = AwsManager::new(&wrong).unwrap().check().await.unwrap_err();
    let message = refused.to_string();
    assert!(
        message.starts_with("aws-secret-manager at http://127.0.0.1:"),
        "{message}"
    );
    assert!(message.contains("SignatureDoesNotMatch"), "{message}");
    assert!(!message.contains("wrong-secret-key"), "{message}");
}
