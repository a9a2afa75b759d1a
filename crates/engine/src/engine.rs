//! The engine: what every execution shares (configuration, expressions, secrets, `envs`).

use crate::edge::Edge;
use crate::runner::{Run, plan};
use crate::tasks::HttpClients;
use crate::{CancelToken, Execution, Inputs, Listener, TaskError};
use kestrel_expr::{Context, Expressions};
use kestrel_flow::Flow;
use kestrel_secrets::{
    DotenvError, EnvBackend, EnvOptions, MaskRegistry, Resolver, SecretBackend, SecretScope,
};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

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

/// Namespaced secret backends that record who reads (the embedded store). The engine asks for
/// them once per execution, with the execution's id, so that the audit trail names the
/// execution behind every read; they come before the environment in every resolver.
pub trait ReaderBackends: Send + Sync {
    /// The backends reads outside any execution go through ([`Engine::render_once`], on the
    /// operator's behalf).
    fn for_operator(&self) -> Vec<Arc<dyn SecretBackend>>;

    /// The backends the execution `execution_id` reads through.
    fn for_execution(&self, execution_id: &str) -> Vec<Arc<dyn SecretBackend>>;
}

/// Runs executions of flows. Cheap to share: one per process.
pub struct Engine {
    pub(crate) config: EngineConfig,
    pub(crate) expressions: Arc<Expressions>,
    /// What reads outside executions go through, and executions too without `readers`.
    pub(crate) resolver: Arc<Resolver>,
    /// Backends after the namespaced ones in each execution's resolver (the environment).
    global: Vec<Arc<dyn SecretBackend>>,
    /// Namespaced backends built per execution, when there are any.
    readers: Option<Arc<dyn ReaderBackends>>,
    pub(crate) envs: BTreeMap<String, String>,
    /// The HTTP clients of Request tasks, shared so that connections are reused.
    pub(crate) http: HttpClients,
    /// How many output values render contexts were given (copied), over the engine's life:
    /// its work per task run, which tests hold to growing linearly with the task runs.
    context_values: AtomicUsize,
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.config)
            .field("resolver", &self.resolver)
            .field("per_execution_backends", &self.readers.is_some())
            .finish_non_exhaustive()
    }
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
            global: Vec::new(),
            readers: None,
            envs,
            http: HttpClients::default(),
            context_values: AtomicUsize::new(0),
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
        Self::load(config, process, env_file, None)
    }

    /// [`Engine::from_env`], with the namespaced backends of `readers` before the environment:
    /// each execution reads through the ones built for its id, other reads through the
    /// operator's.
    pub fn from_env_with(
        config: EngineConfig,
        process: impl IntoIterator<Item = (String, String)>,
        env_file: Option<&str>,
        readers: Arc<dyn ReaderBackends>,
    ) -> Result<(Self, Vec<String>), DotenvError> {
        Self::load(config, process, env_file, Some(readers))
    }

    fn load(
        config: EngineConfig,
        process: impl IntoIterator<Item = (String, String)>,
        env_file: Option<&str>,
        readers: Option<Arc<dyn ReaderBackends>>,
    ) -> Result<(Self, Vec<String>), DotenvError> {
        let expressions = Arc::new(Expressions::new(config.globals.clone()));
        let render = |template: &str| {
            expressions
                .render_pure(template)
                .map_err(|error| error.to_string())
        };
        let load = EnvBackend::load(process, env_file, &config.env, &render)?;
        let global: Vec<Arc<dyn SecretBackend>> = vec![Arc::new(load.backend)];
        let namespaced = readers.as_ref().map(|r| r.for_operator());
        let resolver = Arc::new(chain(namespaced.unwrap_or_default(), &global));
        let engine = Self {
            global,
            readers,
            ..Self::new(config, expressions, resolver, load.envs)
        };
        Ok((engine, load.warnings))
    }

    /// The resolver the execution `execution_id` reads through.
    pub(crate) fn resolver_for(&self, execution_id: &str) -> Arc<Resolver> {
        match &self.readers {
            Some(readers) => Arc::new(chain(readers.for_execution(execution_id), &self.global)),
            None => Arc::clone(&self.resolver),
        }
    }

    /// `inputs` as readers see them before their execution starts (see [`Listener::on_inputs`]
    /// for after): SECRET inputs as the mask, every other masked with the values registered at
    /// start, those given no value left out.
    pub fn shown_inputs(&self, inputs: &Inputs) -> Map<String, Value> {
        inputs.shown(self.config.mask_min_length)
    }

    /// Counts `values` output values given to a render context.
    pub(crate) fn count_context_values(&self, values: usize) {
        self.context_values.fetch_add(values, Ordering::Relaxed);
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
        self.execute(flow, inputs, None, listener, cancel).await
    }

    /// [`Engine::run`] for an execution a trigger started: its expressions see `trigger`
    /// (a Schedule's `{date, next, previous}`).
    pub async fn run_triggered(
        &self,
        flow: &Flow,
        inputs: Inputs,
        trigger: Value,
        listener: &dyn Listener,
        cancel: &CancelToken,
    ) -> Execution {
        self.execute(flow, inputs, Some(trigger), listener, cancel)
            .await
    }

    async fn execute(
        &self,
        flow: &Flow,
        inputs: Inputs,
        trigger: Option<Value>,
        listener: &dyn Listener,
        cancel: &CancelToken,
    ) -> Execution {
        let tasks = plan(&flow.tasks);
        let errors = plan(&flow.errors);
        Run::start(self, flow, &inputs, trigger, listener)
            .execute(flow, &tasks, &errors, cancel)
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
        let edge = Edge::new(&registry);
        match result {
            Ok(text) => Ok(edge.text(&text).into_inner()),
            Err(error) => Err(TaskError::new(edge.text(&error.to_string()).into_inner())),
        }
    }
}

/// A resolver over `namespaced` backends, then `global` ones.
fn chain(
    mut namespaced: Vec<Arc<dyn SecretBackend>>,
    global: &[Arc<dyn SecretBackend>],
) -> Resolver {
    namespaced.extend(global.iter().cloned());
    Resolver::new(namespaced)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CancelToken, Inputs, NoListener, State};
    use async_trait::async_trait;
    use kestrel_secrets::{BackendError, SecretValue};
    use std::sync::Mutex;

    /// A namespaced backend holding `K` in namespace `a`, answering for one reader and
    /// recording who read what.
    struct Recording {
        reader: String,
        reads: Arc<Mutex<Vec<String>>>,
    }

    #[async_trait]
    impl SecretBackend for Recording {
        fn name(&self) -> &str {
            "recording"
        }

        fn is_namespaced(&self) -> bool {
            true
        }

        async fn get(
            &self,
            _tenant: &str,
            namespace: &str,
            key: &str,
        ) -> Result<Option<SecretValue>, BackendError> {
            if (namespace, key) != ("a", "K") {
                return Ok(None);
            }
            let read = format!("{}:{namespace}/{key}", self.reader);
            self.reads.lock().unwrap().push(read);
            Ok(Some(SecretValue::new("from-the-store".into())))
        }

        async fn list(&self, _tenant: &str, _namespace: &str) -> Result<Vec<String>, BackendError> {
            Ok(Vec::new())
        }
    }

    #[derive(Default)]
    struct Readers {
        reads: Arc<Mutex<Vec<String>>>,
    }

    impl Readers {
        fn backend(&self, reader: String) -> Vec<Arc<dyn SecretBackend>> {
            let reads = Arc::clone(&self.reads);
            vec![Arc::new(Recording { reader, reads })]
        }
    }

    impl ReaderBackends for Readers {
        fn for_operator(&self) -> Vec<Arc<dyn SecretBackend>> {
            self.backend("operator".into())
        }

        fn for_execution(&self, execution_id: &str) -> Vec<Arc<dyn SecretBackend>> {
            self.backend(format!("execution {execution_id}"))
        }
    }

    fn engine(readers: &Arc<Readers>) -> Engine {
        let process = [("SECRET_ENV_ONLY".to_owned(), "ZnJvbS1lbnY=".to_owned())];
        let readers: Arc<dyn ReaderBackends> = readers.clone();
        Engine::from_env_with(EngineConfig::default(), process, None, readers)
            .unwrap()
            .0
    }

    #[test]
    fn an_execution_reads_the_store_under_its_own_id_then_the_environment() {
        let readers = Arc::new(Readers::default());
        let engine = engine(&readers);
        let flow = kestrel_flow::parse_flow(
            "id: f\nnamespace: a.b.c\ntasks:\n  - id: log\n    type: io.kestra.plugin.core.log.Log\n    message: \"{{ secret('K') | length }} {{ secret('ENV_ONLY') | length }}\"\n",
        )
        .unwrap();
        let inputs = Inputs::parse(&flow.inputs, Vec::new()).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let execution =
            runtime.block_on(engine.run(&flow, inputs, &NoListener, &CancelToken::new()));
        assert_eq!(execution.state, State::Success, "{execution:?}");
        // `from-the-store` from the store, `from-env` from the environment.
        assert_eq!(execution.logs[0].message, "14 8");
        let reads = readers.reads.lock().unwrap().clone();
        assert_eq!(reads, [format!("execution {}:a/K", execution.id)]);
    }

    /// The output values render contexts were given while `yaml` ran.
    fn context_values_of(yaml: &str) -> usize {
        let engine = Engine::new(
            EngineConfig::default(),
            Arc::new(Expressions::new(json!({}))),
            Arc::new(Resolver::new(Vec::new())),
            BTreeMap::new(),
        );
        let flow = kestrel_flow::parse_flow(yaml).unwrap();
        let inputs = Inputs::parse(&flow.inputs, Vec::new()).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let execution =
            runtime.block_on(engine.run(&flow, inputs, &NoListener, &CancelToken::new()));
        assert_eq!(execution.state, State::Success, "{execution:?}");
        engine.context_values.load(Ordering::Relaxed)
    }

    const RETURN: &str = "io.kestra.plugin.core.debug.Return";

    /// `n` tasks, each reading the output of the one before.
    fn chain(n: usize) -> String {
        let mut yaml = "id: f\nnamespace: dev\ntasks:\n".to_owned();
        yaml.push_str(&format!("  - id: t0\n    type: {RETURN}\n    format: x\n"));
        for i in 1..n {
            let format = format!("{{{{ outputs.t{}.value }}}}", i - 1);
            yaml.push_str(&format!(
                "  - id: t{i}\n    type: {RETURN}\n    format: \"{format}\"\n"
            ));
        }
        yaml
    }

    /// A ForEach over `n` values whose iterations read the output of a task before it.
    fn for_each(n: usize) -> String {
        let values: Vec<String> = (0..n).map(|i| i.to_string()).collect();
        format!(
            "id: f\nnamespace: dev\ntasks:\n  - id: first\n    type: {RETURN}\n    format: x\n  - id: each\n    type: io.kestra.plugin.core.flow.ForEach\n    values: [{}]\n    tasks:\n      - id: child\n        type: {RETURN}\n        format: \"{{{{ taskrun.value }}}} {{{{ outputs.first.value }}}}\"\n",
            values.join(", ")
        )
    }

    #[test]
    fn the_engines_work_per_task_run_does_not_grow_with_the_task_runs_before_it() {
        for flow in [chain, for_each] {
            let small = context_values_of(&flow(200));
            let large = context_values_of(&flow(400));
            assert!(small > 0);
            assert!(
                large <= 2 * small + 8,
                "twice the task runs, {large} output values copied instead of {small}"
            );
        }
    }

    #[test]
    fn a_task_reading_outputs_dynamically_is_given_them_all() {
        let yaml = format!(
            "id: f\nnamespace: dev\ntasks:\n  - id: a\n    type: {RETURN}\n    format: x\n  - id: b\n    type: {RETURN}\n    format: \"{{{{ outputs['a'].value }}}} {{{{ outputs | length }}}}\"\n"
        );
        assert!(context_values_of(&yaml) >= 2);
    }

    #[test]
    fn a_render_outside_executions_reads_as_the_operator() {
        let readers = Arc::new(Readers::default());
        let engine = engine(&readers);
        let text = engine
            .render_once("{{ secret('K') | length }}", "a.b", &NoListener)
            .unwrap();
        assert_eq!(text, "14");
        assert_eq!(*readers.reads.lock().unwrap(), ["operator:a/K"]);
    }
}
