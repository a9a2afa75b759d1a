//! The engine: what every execution shares (configuration, expressions, secrets, `envs`).

use crate::runner::{Run, plan};
use crate::{CancelToken, Execution, Inputs, Listener, TaskError};
use kestrel_expr::{Context, Expressions};
use kestrel_flow::Flow;
use kestrel_secrets::{DotenvError, EnvBackend, EnvOptions, MaskRegistry, Resolver, SecretScope};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

/// How the engine runs executions.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The tenant secrets are resolved in (`main`).
    pub tenant: String,
    /// Values shorter than this many characters are not masked (`secret.mask-min-length`).
    pub mask_min_length: usize,
    /// Which variables `envs` exposes (`variables.env-vars-prefix`, `redacted-env-vars`).
    pub env: EnvOptions,
    /// The `globals` map of expressions (`variables.globals`).
    pub globals: Value,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            tenant: "main".into(),
            mask_min_length: 4,
            env: EnvOptions::default(),
            globals: json!({}),
        }
    }
}

/// Runs executions of flows. Cheap to share: one per process.
#[derive(Debug)]
pub struct Engine {
    pub(crate) config: EngineConfig,
    pub(crate) expressions: Arc<Expressions>,
    pub(crate) resolver: Arc<Resolver>,
    pub(crate) envs: BTreeMap<String, String>,
}

impl Engine {
    /// An engine over its parts: the expression environment, the secret resolver, and the
    /// `envs` map every render sees.
    pub fn new(
        config: EngineConfig,
        expressions: Arc<Expressions>,
        resolver: Arc<Resolver>,
        envs: BTreeMap<String, String>,
    ) -> Self {
        Self {
            config,
            expressions,
            resolver,
            envs,
        }
    }

    /// An engine whose secrets and `envs` come from `process` variables and an env file's
    /// text (the file wins on a clash; its expression values are rendered with pure filters),
    /// with the environment as the only secret backend. Also returns the load's warnings
    /// (undecodable values by name, overridden names), for stderr. Fails only on an env-file
    /// syntax error.
    pub fn from_env(
        config: EngineConfig,
        process: impl IntoIterator<Item = (String, String)>,
        env_file: Option<&str>,
    ) -> Result<(Self, Vec<String>), DotenvError> {
        let expressions = Arc::new(Expressions::new(config.globals.clone()));
        let render = |template: &str| {
            expressions
                .render_pure(template)
                .map_err(|error| error.to_string())
        };
        let load = EnvBackend::load(process, env_file, &config.env, &render)?;
        let resolver = Arc::new(Resolver::new(vec![Arc::new(load.backend)]));
        let engine = Self::new(config, expressions, resolver, load.envs);
        Ok((engine, load.warnings))
    }

    /// The expression environment (for pure renders outside executions).
    pub fn expressions(&self) -> &Arc<Expressions> {
        &self.expressions
    }

    /// Runs one execution of `flow` to its end (or until `cancel`), telling `listener` as it
    /// goes, and returns it with everything masked.
    pub async fn run(
        &self,
        flow: &Flow,
        inputs: Inputs,
        listener: &dyn Listener,
        cancel: &CancelToken,
    ) -> Execution {
        let tasks = plan(&flow.tasks);
        let errors = plan(&flow.errors);
        Run::start(self, flow, &inputs, listener, cancel)
            .execute(&tasks, &errors)
            .await
    }

    /// Renders one template the way a task of a flow in `namespace` would, outside any
    /// execution: secrets resolve and the result (or the error) comes back masked. Warnings
    /// (values too short to mask) go to `listener`.
    pub fn render_once(
        &self,
        template: &str,
        namespace: &str,
        listener: &dyn Listener,
    ) -> Result<String, TaskError> {
        let registry = Arc::new(MaskRegistry::new(self.config.mask_min_length));
        let scope = SecretScope::new(
            Arc::clone(&self.resolver),
            &self.config.tenant,
            namespace,
            Arc::clone(&registry),
        );
        let vars = json!({
            "flow": {"namespace": namespace},
            "envs": self.envs,
            "inputs": {},
            "outputs": {},
            "labels": {},
            "vars": {},
        });
        let result = self
            .expressions
            .render(template, &Context::new(vars, Some(Arc::new(scope))));
        for warning in registry.take_warnings() {
            listener.on_warning(&warning);
        }
        match result {
            Ok(text) => Ok(registry.mask(&text).into_owned()),
            Err(error) => Err(TaskError::new(registry.mask(&error.to_string()))),
        }
    }
}
