//! `secret.aws-secret-manager`: the configuration of an AWS Secrets Manager backend.

use crate::config::AwsConfig;
use crate::environment::Environment;
use crate::error::CliError;
use kestrel_store::SecretManager;
use std::sync::Arc;

/// The manager `config` describes.
pub(crate) fn manager(
    config: &AwsConfig,
    env: &Environment,
) -> Result<Arc<dyn SecretManager>, CliError> {
    let _ = (config, env);
    Err(CliError::usage(
        "secret.type aws-secret-manager: not built yet",
    ))
}
