//! `secret.vault`: the configuration of a Vault/OpenBao KV v2 backend.

use crate::config::VaultConfig;
use crate::error::CliError;
use kestrel_store::SecretManager;
use std::sync::Arc;

/// The manager `config` describes.
pub(crate) fn manager(config: &VaultConfig) -> Result<Arc<dyn SecretManager>, CliError> {
    let _ = config;
    Err(CliError::usage("secret.type vault: not built yet"))
}
