//! Without keys in the settings, credentials come from the standard chain: the AWS
//! environment variables, a profile file, web identity (EKS). The environment cannot be
//! changed safely in a threaded test, so each test runs itself again as a child process with
//! the environment it needs (and every `AWS_*` variable of the parent removed, instance
//! metadata disabled), against moto.

#![allow(clippy::unwrap_used)] // Test code: a failure is a failed test.

use kestrel_secrets::SecretValue;
use kestrel_store::{SecretId, SecretManager};
use kestrel_store_aws::testing::{DevAws, dev_aws_or_skip};
use kestrel_store_aws::{AwsManager, AwsSettings};
use std::process::Command;

/// Set in the child: the endpoint to use.
const CHILD_ENDPOINT: &str = "KESTREL_TEST_AWS_ENDPOINT";

/// The child's manager: moto's endpoint, no keys of its own.
fn chain_manager() -> Option<AwsManager> {
    let endpoint = std::env::var(CHILD_ENDPOINT).ok()?;
    let settings = AwsSettings {
        endpoint_override: Some(endpoint),
        prefix: "kestrel-chain".into(),
        ..AwsSettings::default()
    };
    Some(AwsManager::new(&settings).unwrap())
}

/// Runs `test` again in a child with only `env` for AWS, and answers its output.
fn in_child(dev: &DevAws, test: &str, env: &[(&str, String)]) -> String {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command.args([test, "--exact", "--nocapture", "--test-threads=1"]);
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("AWS_")) {
        command.env_remove(name);
    }
    command
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/nonexistent/kestrel-test/config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/kestrel-test/credentials",
        )
        .env(CHILD_ENDPOINT, dev.endpoint())
        .envs(env.iter().map(|(k, v)| (k, v)));
    let output = command.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "the child failed:\n{text}");
    assert!(text.contains("1 passed"), "the child ran no test:\n{text}");
    text
}

/// What the child does when credentials are expected: a write and a read.
async fn write_and_read(manager: &AwsManager) {
    let id = SecretId::main("company.team", "FROM_CHAIN").unwrap();
    let value = SecretValue::new("v".into());
    manager.set(&id, &value, None).await.unwrap();
    let read = manager.get(&id, None).await.unwrap().unwrap();
    assert_eq!(read.value.expose_secret(), "v");
}

#[tokio::test]
async fn the_chain_reads_the_standard_environment_variables() {
    if let Some(manager) = chain_manager() {
        return write_and_read(&manager).await;
    }
    let test = "the_chain_reads_the_standard_environment_variables";
    let Some(dev) = dev_aws_or_skip(test) else {
        return;
    };
    let env = [
        ("AWS_ACCESS_KEY_ID", "AKIDFROMENV".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "secret-from-env".to_owned()),
    ];
    in_child(&dev, test, &env);
}

#[tokio::test]
async fn the_chain_reads_a_named_profile_of_the_credentials_file() {
    if let Some(manager) = chain_manager() {
        return write_and_read(&manager).await;
    }
    let test = "the_chain_reads_a_named_profile_of_the_credentials_file";
    let Some(dev) = dev_aws_or_skip(test) else {
        return;
    };
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        file.path(),
        "[work]\naws_access_key_id = AKIDFROMPROFILE\naws_secret_access_key = secret-from-profile\n",
    )
    .unwrap();
    let env = [
        ("AWS_PROFILE", "work".to_owned()),
        (
            "AWS_SHARED_CREDENTIALS_FILE",
            file.path().display().to_string(),
        ),
    ];
    in_child(&dev, test, &env);
}

#[tokio::test]
async fn without_credentials_the_error_names_the_backend_the_key_and_the_chain() {
    if let Some(manager) = chain_manager() {
        let id = SecretId::main("company.team", "API_KEY").unwrap();
        let error = manager.get(&id, None).await.unwrap_err().to_string();
        assert!(
            error.starts_with("aws-secret-manager: reading secret 'API_KEY'"),
            "{error}"
        );
        assert!(error.contains("no usable AWS credentials"), "{error}");
        return;
    }
    let test = "without_credentials_the_error_names_the_backend_the_key_and_the_chain";
    let Some(dev) = dev_aws_or_skip(test) else {
        return;
    };
    in_child(&dev, test, &[]);
}

#[tokio::test]
async fn the_chain_assumes_a_role_with_a_web_identity_token_as_on_eks() {
    if let Some(manager) = chain_manager() {
        return write_and_read(&manager).await;
    }
    let test = "the_chain_assumes_a_role_with_a_web_identity_token_as_on_eks";
    let Some(dev) = dev_aws_or_skip(test) else {
        return;
    };
    let token = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(token.path(), "eyJhbGciOiJSUzI1NiJ9.e30.signature").unwrap();
    let env = [
        (
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            token.path().display().to_string(),
        ),
        (
            "AWS_ROLE_ARN",
            "arn:aws:iam::123456789012:role/kestrel".to_owned(),
        ),
        ("AWS_ROLE_SESSION_NAME", "kestrel-test".to_owned()),
        // STS is moto too.
        ("AWS_ENDPOINT_URL_STS", dev.endpoint()),
    ];
    in_child(&dev, test, &env);
}
