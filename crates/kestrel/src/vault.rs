//! `secret.vault`: the configuration of a Vault/OpenBao KV v2 backend, turned into its manager.
//! Credentials come from the file (written `${VAR}`) or, for a token, the `VAULT_TOKEN`
//! variable; kestrel never stores them.

use crate::config::{JwtLogin, VaultConfig};
use crate::environment::Environment;
use crate::error::CliError;
use kestrel_store::SecretManager;
use kestrel_store_vault::{VaultAuth, VaultManager, VaultSettings};
use std::path::PathBuf;
use std::sync::Arc;
use zeroize::Zeroizing;

/// The manager `config` describes.
pub(crate) fn manager(
    config: &VaultConfig,
    env: &Environment,
) -> Result<Arc<dyn SecretManager>, CliError> {
    let settings = VaultSettings {
        address: config.address.0.clone(),
        auth: auth(config, env)?,
        namespace: config.namespace.as_ref().map(|ns| ns.0.clone()),
        mount: config.mount.0.clone(),
        prefix: config.prefix.0.clone(),
    };
    let manager = VaultManager::new(settings)
        .map_err(|error| CliError::usage(format!("secret.vault: {error}")))?;
    Ok(Arc::new(manager))
}

/// The one login method configured, else the `VAULT_TOKEN` variable.
fn auth(config: &VaultConfig, env: &Environment) -> Result<VaultAuth, CliError> {
    let given = [
        config.token.is_some(),
        config.app_role.is_some(),
        config.kubernetes.is_some(),
        config.jwt.is_some(),
    ];
    if given.iter().filter(|given| **given).count() > 1 {
        return Err(CliError::usage(
            "secret.vault: give one way to log in: token, app-role, kubernetes or jwt",
        ));
    }
    if let Some(token) = &config.token {
        return Ok(VaultAuth::Token(Zeroizing::new(
            token.expose_secret().to_owned(),
        )));
    }
    if let Some(role) = &config.app_role {
        return Ok(VaultAuth::AppRole {
            path: role.path.0.clone(),
            role_id: role.role_id.0.clone(),
            secret_id: Zeroizing::new(role.secret_id.expose_secret().to_owned()),
        });
    }
    if let Some(login) = &config.kubernetes {
        let (path, role, jwt_file) = jwt_login(login, "kubernetes")?;
        return Ok(VaultAuth::Kubernetes {
            path,
            role,
            jwt_file,
        });
    }
    if let Some(login) = &config.jwt {
        let (path, role, jwt_file) = jwt_login(login, "jwt")?;
        return Ok(VaultAuth::Jwt {
            path,
            role,
            jwt_file,
        });
    }
    match env
        .text("VAULT_TOKEN")
        .ok()
        .flatten()
        .filter(|t| !t.is_empty())
    {
        Some(token) => Ok(VaultAuth::Token(Zeroizing::new(token.to_owned()))),
        None => Err(CliError::usage(
            "secret.vault: no credentials: set secret.vault.token (or the VAULT_TOKEN \
             variable), app-role, kubernetes or jwt",
        )),
    }
}

/// The mount, role and JWT file of `secret.vault.<method>`.
fn jwt_login(login: &JwtLogin, method: &str) -> Result<(String, String, PathBuf), CliError> {
    let path = login
        .path
        .as_ref()
        .map_or_else(|| method.to_owned(), |path| path.0.clone());
    let jwt_file = match (&login.jwt_file, method) {
        (Some(file), _) => file.0.clone(),
        (None, "kubernetes") => PathBuf::from(VaultAuth::DEFAULT_KUBERNETES_JWT_FILE),
        (None, _) => {
            return Err(CliError::usage(format!(
                "secret.vault.{method}.jwt-file: required: the file holding the JWT"
            )));
        }
    };
    Ok((path, login.role.0.clone(), jwt_file))
}
