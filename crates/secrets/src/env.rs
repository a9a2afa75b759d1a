//! The environment-variable backend: `SECRET_*` variables holding base64 values (spec §2),
//! and the plain `envs` map (spec §3).

use crate::{BackendError, SecretBackend, SecretValue};
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap};

/// Which plain variables `envs` exposes.
#[derive(Debug, Clone)]
pub struct EnvOptions {
    /// Prefix of the variables `envs` exposes (`ENV_`); empty exposes all but the redacted ones.
    pub env_prefix: String,
    /// Names never exposed in `envs` (besides `KESTREL_*` and `SECRET_*`).
    pub redacted: Vec<String>,
}

impl Default for EnvOptions {
    fn default() -> Self {
        Self {
            env_prefix: "ENV_".into(),
            redacted: vec![
                "VAULT_TOKEN".into(),
                "AWS_SECRET_ACCESS_KEY".into(),
                "AWS_SESSION_TOKEN".into(),
            ],
        }
    }
}

/// What loading the environment (and an optional env file) produced.
#[derive(Debug)]
pub struct EnvLoad {
    /// The `SECRET_*` values, decoded.
    pub backend: EnvBackend,
    /// The `envs` map: key lower-cased without the prefix, raw value.
    pub envs: BTreeMap<String, String>,
    /// Messages for stderr: undecodable values (by variable name), values ending in a newline,
    /// names the file overrides. Never a value.
    pub warnings: Vec<String>,
}

/// The `SECRET_*` variables of the process and of an env file, decoded once at load.
#[derive(Debug, Default)]
pub struct EnvBackend {
    secrets: HashMap<String, SecretValue>,
}

impl EnvBackend {
    /// Loads `process` variables and the env file's `file_text` (the file wins on a clash).
    /// `render` renders expression values of the file (pure filters only). Fails only on an
    /// env-file syntax error, whose message names the line.
    pub fn load(
        process: impl IntoIterator<Item = (String, String)>,
        file_text: Option<&str>,
        options: &EnvOptions,
        render: &dyn Fn(&str) -> Result<String, String>,
    ) -> Result<EnvLoad, crate::DotenvError> {
        todo!("{:?}{:?}{:?}{:?}", process.into_iter().count(), file_text, options, render("x"))
    }

    /// The decoded value for `key` (upper-cased before lookup).
    pub fn lookup(&self, key: &str) -> Option<SecretValue> {
        todo!("{key}{:?}", self.secrets.len())
    }
}

#[async_trait]
impl SecretBackend for EnvBackend {
    fn name(&self) -> &str {
        "environment"
    }

    fn is_namespaced(&self) -> bool {
        false
    }

    async fn get(
        &self,
        _tenant: &str,
        _namespace: &str,
        key: &str,
    ) -> Result<Option<SecretValue>, BackendError> {
        Ok(self.lookup(key))
    }

    async fn list(&self, _tenant: &str, _namespace: &str) -> Result<Vec<String>, BackendError> {
        let mut keys: Vec<String> = self.secrets.keys().cloned().collect();
        keys.sort();
        Ok(keys)
    }
}

/// Decodes one `SECRET_*` value: line breaks removed, standard base64 with optional padding,
/// UTF-8. The error is the reason only, never the value.
pub fn decode_secret_value(raw: &str) -> Result<SecretValue, String> {
    todo!("{raw}")
}
