//! Flows: Kestra's YAML, parsed into a typed [`Flow`] and validated with Kestra's messages.
//!
//! [`parse_flow`] turns a flow's source into a [`Flow`] (its [`Task`]s, each a [`TaskKind`]
//! under Kestra's old or new class name, with the properties every task shares in
//! [`TaskCommon`]), or into every [`Violation`] found, each with its line and column where one
//! is known. Property values stay as written (templates are rendered by the engine at run time).
//!
//! ```
//! let flow = kestrel_flow::parse_flow(
//!     "id: hello\nnamespace: dev\ntasks:\n  - id: log\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n",
//! ).unwrap();
//! assert_eq!(flow.namespace, "dev");
//! assert_eq!(flow.tasks[0].id, "log");
//! ```

mod condition;
mod context;
mod cron;
mod dag;
mod defaults;
mod duration;
mod flowable;
mod flowprops;
mod inputs;
mod model;
mod parse;
mod retry;
mod tasks;
mod templates;
mod trigger;
mod typed;
mod yaml;

pub use condition::{
    Comparison, Condition, FINAL_STATES, Facts, Filter, Multiple, Render, TimeWindow,
};
pub use cron::Cron;
pub use duration::parse_iso8601 as parse_duration;
pub use flowable::{CheckFrequency, Flowable, FlowableKind};
pub use flowprops::{Concurrency, ConcurrencyBehavior, Sla, SlaBehavior, SlaKind};
pub use model::{
    Flow, InputDef, InputRules, InputType, Level, OutputDef, Task, TaskCommon, TaskKind, Violation,
};
pub use parse::{FLOW_PROPERTIES, TemplateCheck, parse_flow, parse_flow_checking};
pub use retry::{Backoff, DEFAULT_MAX_ATTEMPTS, Retry};
pub use tasks::files::{WorkCache, WorkingDirectory};
pub use tasks::http::{Download, HttpAuth, HttpOptions, HttpRequest};
pub use tasks::jdbc::{FetchType, PostgresQuery};
pub use tasks::scripts::{Body, Language, ScriptTask};
pub use tasks::state::{StateCall, StateOp};
pub use tasks::subflow::SubflowCall;
pub use tasks::task_catalog;
pub use trigger::{FlowTrigger, Schedule, Webhook};
pub use typed::{java_duration, read_value};
