//! The engine: what every execution shares (configuration, expressions, secrets, `envs`).

use crate::edge::Edge;
use crate::pause::Resumes;
use crate::runner::{Plans, Run};
use crate::tasks::HttpClients;
use crate::{CancelToken, Execution, Inputs, Listener, SubflowLauncher, TaskError};
use chrono::{DateTime, Utc};
use kestrel_expr::{Context, ExpressionLimits, Expressions};
use kestrel_flow::Flow;
use kestrel_secrets::{
    DotenvError, EnvBackend, EnvLoad, EnvOptions, MaskRegistry, ReadPolicy, Reader, Resolver,
    SecretBackend, SecretScope,
};
use kestrel_storage::{ExecutionFiles, Storage};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

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
    /// Which flows may read which namespaces' secrets (`namespaces.<ns>.allowed-namespaces`).
    pub policy: ReadPolicy,
    /// What every render may use (`expression`): fuel, the largest value, the wall-clock
    /// backstop the engine enforces on the renders of executions.
    pub limits: ExpressionLimits,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            tenant: "main".into(),
            mask_min_length: 4,
            env: EnvOptions::default(),
            globals: json!({}),
            policy: ReadPolicy::default(),
            limits: ExpressionLimits::default(),
        }
    }
}

/// Who and what starts an execution: the reader its secret reads are checked and audited as.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    /// The execution's id when the caller has given it one (the server's record); otherwise
    /// the engine draws one.
    pub id: Option<String>,
    /// Who triggered it: `user:ada`, `token:ci`, `cli:ada`, `schedule`, `webhook`.
    pub triggered_by: String,
    /// The `trigger` variable, for an execution a trigger started (a Schedule's `{date, next,
    /// previous}`, a webhook's request, a Subflow's parent).
    pub trigger: Option<Value>,
    /// Labels of the execution besides its flow's (a subflow's, from its parent); one of the
    /// same key as the flow's replaces it.
    pub labels: Vec<(String, String)>,
    /// Its place in a chain of retries in new executions, when the host starts it in a
    /// failed one's place (none for the first of a chain, and for any other execution).
    pub retry_chain: Option<RetryChain>,
    /// The task runs of an execution restarted in place (Kestra's restart), as
    /// [`crate::plan_restart`] planned them: those RESTARTED or RUNNING run again under their
    /// ids, the others are kept as they are. Empty for an execution that starts afresh.
    pub restarted: Vec<crate::TaskRun>,
}

/// Where an execution sits in a chain of retries with `behavior: CREATE_NEW_EXECUTION`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryChain {
    /// Kestra's `attemptNumber`: 2 for the first new execution.
    pub number: u32,
    /// When the chain's first execution started: the retry's `maxDuration` counts from it.
    pub first_started: DateTime<Utc>,
    /// The first execution's `system.correlationId`, every execution's of the chain.
    pub correlation_id: String,
}

/// The execution a retry with `behavior: CREATE_NEW_EXECUTION` asks for in a RETRIED one's
/// place, for a host that starts it ([`Engine::run_one_hosted`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewExecution {
    /// Its place in the chain, for its [`Origin`].
    pub chain: RetryChain,
    /// How long after the RETRIED one's end it is to start.
    pub after: Duration,
}

impl Origin {
    /// An execution `triggered_by` someone, with no trigger variable.
    pub fn by(triggered_by: impl Into<String>) -> Self {
        Self {
            triggered_by: triggered_by.into(),
            ..Self::default()
        }
    }
}

/// Where an engine's secrets and `envs` come from, composed once by its host (the CLI or the
/// server): one namespaced backend (the store, whatever backends it routes to, each read
/// audited), one environment backend.
pub struct Sources {
    /// The store as a secret backend, when the host has one.
    pub namespaced: Option<Arc<dyn SecretBackend>>,
    /// The environment's secrets (`SECRET_*` variables and the env file).
    pub env: Arc<EnvBackend>,
    /// The `envs` map.
    pub envs: BTreeMap<String, String>,
}

impl Sources {
    /// The environment alone, no store: `process` variables and an env file's text loaded as
    /// [`load_environment`] does, with the load's warnings (undecodable values by name).
    pub fn environment(
        config: &EngineConfig,
        process: impl IntoIterator<Item = (String, String)>,
        env_file: Option<&str>,
    ) -> Result<(Self, Vec<String>), DotenvError> {
        let load = load_environment(config, process, env_file, None)?;
        let sources = Self {
            namespaced: None,
            env: Arc::new(load.backend),
            envs: load.envs,
        };
        Ok((sources, load.warnings))
    }
}

/// Loads the environment's secrets and `envs` from `process` variables and an env file's text
/// (the file wins on a clash; its expression values rendered with pure filters, under
/// `config`'s globals and limits), again over `previous` on a reload (a value a reload cannot
/// decode keeps its previous one). Fails only on an env-file syntax error.
pub fn load_environment(
    config: &EngineConfig,
    process: impl IntoIterator<Item = (String, String)>,
    env_file: Option<&str>,
    previous: Option<&EnvBackend>,
) -> Result<EnvLoad, DotenvError> {
    let expressions = Expressions::with_limits(config.globals.clone(), config.limits);
    let render = |template: &str| {
        expressions
            .render_pure(template)
            .map_err(|error| error.to_string())
    };
    match previous {
        Some(previous) => previous.reload(process, env_file, &config.env, &render),
        None => EnvBackend::load(process, env_file, &config.env, &render),
    }
}

/// What the host of an execution (the CLI, the server) gives it beyond the engine.
#[derive(Default)]
pub struct Host<'a> {
    /// Starts the executions of Subflow tasks.
    pub subflows: Option<&'a dyn SubflowLauncher>,
    /// Where Pause tasks wait for the host's resumes.
    pub resumes: Option<Resumes>,
}

/// Runs executions of flows. Cheap to share: one per process.
pub struct Engine {
    pub(crate) config: EngineConfig,
    pub(crate) expressions: Arc<Expressions>,
    /// Every secret read goes through it, naming its reader: the one policy point.
    pub(crate) resolver: Arc<Resolver>,
    pub(crate) envs: BTreeMap<String, String>,
    /// The HTTP clients of Request tasks, shared so that connections are reused.
    pub(crate) http: HttpClients,
    /// The internal storage executions keep their files in; none for an engine that runs no
    /// task with files (tasks needing one then fail, saying so).
    pub(crate) storage: Option<Arc<dyn Storage>>,
    /// How many output values render contexts were given (copied), over the engine's life:
    /// its work per task run, which tests hold to growing linearly with the task runs.
    context_values: AtomicUsize,
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.config)
            .field("resolver", &self.resolver)
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
            envs,
            http: HttpClients::default(),
            storage: None,
            context_values: AtomicUsize::new(0),
        }
    }

    /// An engine over `sources`, which its host composed: the namespaced backend, then the
    /// environment, under `config.policy`. The engine loads nothing itself.
    pub fn with_sources(config: EngineConfig, sources: Sources) -> Self {
        let expressions = Arc::new(Expressions::with_limits(
            config.globals.clone(),
            config.limits,
        ));
        let resolver =
            Resolver::new(sources.namespaced, sources.env).with_policy(config.policy.clone());
        Self::new(config, expressions, Arc::new(resolver), sources.envs)
    }

    /// This engine, keeping executions' files in `storage`.
    pub fn with_storage(mut self, storage: Arc<dyn Storage>) -> Self {
        self.storage = Some(storage);
        self
    }

    /// The files of execution `execution_id` of `flow`; none when the engine has no storage.
    pub(crate) fn execution_files(
        &self,
        flow: &Flow,
        execution_id: &str,
    ) -> Option<ExecutionFiles> {
        let storage = Arc::clone(self.storage.as_ref()?);
        ExecutionFiles::new(storage, &flow.namespace, &flow.id, execution_id).ok()
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

    /// Runs one execution of `flow`, started by `origin`, to its end (or until `cancel`),
    /// telling `listener` as it goes, and returns it with everything masked. Its secret reads
    /// name it, and who triggered it, as their reader.
    pub async fn run(
        &self,
        flow: &Flow,
        inputs: Inputs,
        origin: Origin,
        listener: &dyn Listener,
        cancel: &CancelToken,
    ) -> Execution {
        self.run_hosted(flow, inputs, origin, listener, cancel, Host::default())
            .await
    }

    /// [`Engine::run`] in `host`: the execution's Subflow tasks start children through its
    /// launcher, its Pause tasks wait for its resumes (without them, a Subflow task fails and
    /// a Pause waits only for its `delay` or `timeout`).
    pub async fn run_hosted(
        &self,
        flow: &Flow,
        inputs: Inputs,
        origin: Origin,
        listener: &dyn Listener,
        cancel: &CancelToken,
        host: Host<'_>,
    ) -> Execution {
        Run::chain(self, flow, &inputs, origin, listener, cancel, host).await
    }

    /// One execution of [`Engine::run_hosted`]'s chain, for a host that records each one (the
    /// server): when it ends RETRIED, the new execution the host is to start in its place,
    /// with `origin.retry_chain` set from it, instead of the engine running it.
    pub async fn run_one_hosted(
        &self,
        flow: &Flow,
        inputs: Inputs,
        origin: Origin,
        listener: &dyn Listener,
        cancel: &CancelToken,
        host: Host<'_>,
    ) -> (Execution, Option<NewExecution>) {
        let plans = Plans::of(flow);
        Run::start(self, flow, &inputs, origin, listener)
            .hosted(flow, host)
            .execute(flow, &plans, cancel)
            .await
    }

    /// A scope whose `secret()` calls read as `reader`, from `namespace` by default, masking
    /// into `registry` (for renders outside executions, such as a webhook's key).
    pub fn scope(
        &self,
        reader: Reader,
        namespace: &str,
        registry: &Arc<MaskRegistry>,
    ) -> SecretScope {
        SecretScope::new(
            Arc::clone(&self.resolver),
            reader,
            &self.config.tenant,
            namespace,
            Arc::clone(registry),
        )
    }

    /// Renders one template for `reader` (an operator, a trigger) the way a task of a flow in
    /// `namespace` would, outside any execution: secrets resolve and the result (or the error)
    /// comes back masked. Warnings (values too short to mask) go to `listener`. It renders on
    /// the caller's thread, bounded by `expression.fuel` (no wall-clock backstop).
    pub fn render_once(
        &self,
        template: &str,
        namespace: &str,
        reader: Reader,
        listener: &dyn Listener,
    ) -> Result<String, TaskError> {
        let registry = Arc::new(MaskRegistry::new(self.config.mask_min_length));
        let scope = self.scope(reader, namespace, &registry);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CancelToken, Inputs, NoListener, State};
    use async_trait::async_trait;
    use kestrel_secrets::{BackendError, SecretValue};
    use std::sync::Mutex;

    /// A namespaced backend holding `K` in namespaces `a` and `team.b`, recording who read
    /// what.
    #[derive(Default)]
    struct Recording {
        reads: Mutex<Vec<String>>,
    }

    #[async_trait]
    impl SecretBackend for Recording {
        fn name(&self) -> &str {
            "recording"
        }

        async fn get(
            &self,
            reader: &Reader,
            _tenant: &str,
            namespace: &str,
            key: &str,
        ) -> Result<Option<SecretValue>, BackendError> {
            if key != "K" || !["a", "team.b"].contains(&namespace) {
                return Ok(None);
            }
            let by = match reader {
                Reader::Execution { triggered_by, .. } => format!("{reader} by {triggered_by}"),
                other => other.to_string(),
            };
            self.reads
                .lock()
                .unwrap()
                .push(format!("{by}:{namespace}/{key}"));
            Ok(Some(SecretValue::new("from-the-store".into())))
        }

        async fn list(&self, _tenant: &str, _namespace: &str) -> Result<Vec<String>, BackendError> {
            Ok(Vec::new())
        }
    }

    fn engine(store: &Arc<Recording>) -> Engine {
        let process = [("SECRET_ENV_ONLY".to_owned(), "ZnJvbS1lbnY=".to_owned())];
        let config = EngineConfig::default();
        let (mut sources, _) = Sources::environment(&config, process, None).unwrap();
        sources.namespaced = Some(store.clone());
        Engine::with_sources(config, sources)
    }

    fn run_log(engine: &Engine, namespace: &str, message: &str, origin: Origin) -> Execution {
        let flow = kestrel_flow::parse_flow(&format!(
            "id: f\nnamespace: {namespace}\ntasks:\n  - id: log\n    type: io.kestra.plugin.core.log.Log\n    message: \"{message}\"\n"
        ))
        .unwrap();
        let inputs = Inputs::parse(&flow.inputs, Vec::new()).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(engine.run(&flow, inputs, origin, &NoListener, &CancelToken::new()))
    }

    #[test]
    fn an_execution_reads_the_store_as_itself_and_who_triggered_it_then_the_environment() {
        let store = Arc::new(Recording::default());
        let engine = engine(&store);
        let origin = Origin {
            id: Some("given-id".into()),
            ..Origin::by("user:ada")
        };
        let message = "{{ secret('K') | length }} {{ secret('ENV_ONLY') | length }}";
        let execution = run_log(&engine, "a.b.c", message, origin);
        assert_eq!(execution.state, State::Success, "{execution:?}");
        assert_eq!(execution.id, "given-id");
        // `from-the-store` from the store, `from-env` from the environment.
        assert_eq!(execution.logs[0].message, "14 8");
        let reads = store.reads.lock().unwrap().clone();
        assert_eq!(reads, ["execution:given-id by user:ada:a/K"]);
    }

    #[test]
    fn issue_9_4_a_flow_cannot_read_another_namespace_through_secret_namespace() {
        let store = Arc::new(Recording::default());
        let engine = engine(&store);
        let message = "{{ secret('K', namespace='team.b') }}";
        let execution = run_log(&engine, "team.a", message, Origin::by("token:ci"));
        assert_eq!(execution.state, State::Failed);
        let error = execution.task_runs[0].error.clone().unwrap_or_default();
        assert!(
            error.contains(
                "namespace 'team.b' does not allow flows of namespace 'team.a' to read its \
                 secrets (namespaces.team.b.allowed-namespaces)"
            ),
            "{error}"
        );
        assert!(store.reads.lock().unwrap().is_empty(), "nothing was read");
    }

    #[test]
    fn a_render_outside_executions_reads_as_its_reader() {
        let store = Arc::new(Recording::default());
        let engine = engine(&store);
        let operator = Reader::Operator("ada".into());
        let text = engine
            .render_once("{{ secret('K') | length }}", "a.b", operator, &NoListener)
            .unwrap();
        assert_eq!(text, "14");
        assert_eq!(*store.reads.lock().unwrap(), ["cli:ada:a/K"]);
    }

    /// The output values render contexts were given while `yaml` ran.
    fn context_values_of(yaml: &str) -> usize {
        let engine = Engine::new(
            EngineConfig::default(),
            Arc::new(Expressions::new(json!({}))),
            Arc::new(Resolver::new(None, Arc::new(EnvBackend::default()))),
            BTreeMap::new(),
        );
        let flow = kestrel_flow::parse_flow(yaml).unwrap();
        let inputs = Inputs::parse(&flow.inputs, Vec::new()).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let origin = Origin::by("test");
        let execution =
            runtime.block_on(engine.run(&flow, inputs, origin, &NoListener, &CancelToken::new()));
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
    fn issue_9_8_the_engines_work_per_task_run_does_not_grow_with_the_task_runs_before_it() {
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
}
