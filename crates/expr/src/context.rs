//! What a render sees.

use kestrel_secrets::SecretScope;
use std::sync::Arc;

/// The variables of one render and the secret scope `secret()` resolves through. Build it
/// once per task run and reuse it for every property.
#[derive(Debug, Clone)]
pub struct Context {
    vars: minijinja::Value,
    scope: Option<Arc<SecretScope>>,
}

impl Context {
    /// A context over `vars` (a JSON object); without a scope, `secret()` fails.
    pub fn new(vars: serde_json::Value, scope: Option<Arc<SecretScope>>) -> Self {
        Self {
            vars: minijinja::Value::from_serialize(&vars),
            scope,
        }
    }
}
