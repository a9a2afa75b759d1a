//! The engine: runs an execution of a flow, task by task, through the masker.
//!
//! An [`Engine`] (configured by [`EngineConfig`], holding the expression environment, the
//! secret resolver and the `envs` map) runs a [`kestrel_flow::Flow`] with typed [`Inputs`] and
//! returns an [`Execution`]: its [`State`], its [`TaskRun`]s and their [`LogEntry`]s. Each task
//! is a [`Task`] (the [`LogTask`] and [`ReturnTask`] here) run with a [`TaskContext`] that
//! renders its properties, logs and sets outputs. A [`Listener`] follows the execution as it
//! runs; a [`CancelToken`] stops it (KILLED).
//!
//! Flowable tasks (Sequential, Parallel, If, ForEach) run their children as task runs of their
//! own, listed under theirs; every task run honours `runIf`, `allowFailure`, `retry` (each
//! attempt kept) and `timeout`, and the flow's `outputs` are rendered at the end. Every render
//! of an execution runs on a blocking thread, under `expression.render-timeout`: a long render
//! never holds the async runtime's threads, so a task's `timeout` and a kill end it. A
//! [`Scheduler`] starts executions when their Schedule triggers fire, on a [`Clock`].
//!
//! Every execution has one mask registry: each secret a render resolves, each SECRET input,
//! each value [`Inputs::register_secret`] adds (a Webhook trigger's key) and each value
//! derived from them is registered. What the engine holds while it runs is real; one
//! component, the edge, builds everything a reader can see from it (log entries, task runs
//! with every field, metrics, the execution with its inputs, trigger variables, labels and
//! outputs) and masks it, numbers included. It is the only way out: a [`Listener`] receives
//! [`Shown`] values, which nothing else can build, and [`Engine::run`] returns the execution
//! the edge built at the end, with everything registered. Later tasks' expressions alone see
//! real values.
//!
//! ```
//! use kestrel_engine::{CancelToken, Engine, EngineConfig, Inputs, NoListener, Origin, Sources, State};
//! let flow = kestrel_flow::parse_flow(
//!     "id: hello\nnamespace: dev\ntasks:\n  - id: log\n    type: io.kestra.plugin.core.log.Log\n    message: \"{{ secret('MYPASSWORD') }}\"\n",
//! ).unwrap();
//! let process = [("SECRET_MYPASSWORD".to_string(), "cGFzc3dvcmQ=".to_string())];
//! let config = EngineConfig::default();
//! let (sources, _warnings) = Sources::environment(&config, process, None).unwrap();
//! let engine = Engine::with_sources(config, sources);
//! let inputs = Inputs::parse(&flow.inputs, Vec::new()).unwrap();
//! // Renders run on blocking threads under a timer: the runtime needs its time driver.
//! let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
//! let origin = Origin::by("cli:ada");
//! let execution = runtime.block_on(engine.run(&flow, inputs, origin, &NoListener, &CancelToken::new()));
//! assert_eq!(execution.state, State::Success);
//! assert_eq!(execution.logs[0].message, "******");
//! ```
//!
//! The flows under `examples/` at the repository's root run with `kestrel run`.

mod attempts;
mod cache;
mod dag;
mod edge;
mod engine;
mod execution;
mod files;
mod flowable;
mod held;
mod id;
mod inputs;
mod listener;
mod metric;
mod outputs;
mod pause;
mod render;
mod runner;
mod schedule;
mod state;
mod subflow;
mod task;
mod tasks;
mod validate;
mod workdir;

pub use edge::Shown;
pub use engine::{
    Engine, EngineConfig, Host, NewExecution, Origin, RetryChain, Sources, load_environment,
};
pub use execution::{Attempt, Execution, LogEntry, TaskRun};
pub use id::new_id;
pub use inputs::{InputError, Inputs};
pub use listener::{CancelToken, Listener, NoListener};
pub use metric::{Metric, MetricKind, MetricValue, ShownMetric};
pub use pause::{Resumer, Resumes, resume_channel};
pub use runner::{NOTHING_TO_RESTART, execution_labels, plan_replay, plan_restart};
pub use schedule::{Clock, Fire, ManualClock, ScheduleSink, Scheduler, SystemClock};
pub use state::State;
pub use subflow::{
    ResumeRequest, SUBFLOW_MAX_DEPTH, SubflowEnd, SubflowLauncher, SubflowRequest, task_outputs,
    too_deep,
};
pub use task::{Task, TaskContext, TaskError};
pub use tasks::{LogTask, ReturnTask, TaskProvider, register_tasks};
pub use validate::check_flow;
