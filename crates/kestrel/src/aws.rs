//! `secret.aws-secret-manager`: the configuration of an AWS Secrets Manager backend, turned
//! into its manager. Without keys in the file (written `${VAR}`), the standard AWS chain finds
//! credentials: the `AWS_*` variables, profile files, web identity, instance metadata.

use crate::config::AwsConfig;
use crate::error::CliError;
use kestrel_store::SecretManager;
use kestrel_store_aws::{AwsManager, AwsSettings};
use std::sync::Arc;
use zeroize::Zeroizing;

/// The manager `config` describes.
pub(crate) fn manager(config: &AwsConfig) -> Result<Arc<dyn SecretManager>, CliError> {
    let hidden = |value: &Option<crate::config::Hidden>| {
        value
            .as_ref()
            .map(|v| Zeroizing::new(v.expose_secret().to_owned()))
    };
    let settings = AwsSettings {
        region: config.region.0.clone(),
        endpoint_override: config.endpoint_override.as_ref().map(|e| e.0.clone()),
        access_key_id: config.access_key_id.as_ref().map(|k| k.0.clone()),
        secret_access_key: hidden(&config.secret_key_id),
        session_token: hidden(&config.session_token),
        prefix: config.prefix.0.clone(),
    };
    if settings.access_key_id.is_some() != settings.secret_access_key.is_some() {
        return Err(CliError::usage(
            "secret.aws-secret-manager: access-key-id and secret-key-id go together",
        ));
    }
    let manager = AwsManager::new(&settings)
        .map_err(|error| CliError::usage(format!("secret.aws-secret-manager: {error}")))?;
    Ok(Arc::new(manager))
}
