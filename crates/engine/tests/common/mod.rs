//! Running flows through a real engine for the task tests: secrets given as plain values
//! (encoded the way `SECRET_*` variables hold them), a listener that reports log entries as
//! they happen, and a local HTTP server that records what it receives.

#![allow(dead_code, unreachable_pub)] // Each test file uses its own part of these helpers.

pub mod server;

use base64::Engine as _;
use kestrel_engine::{
    CancelToken, Engine, EngineConfig, Execution, Inputs, Listener, LogEntry, NoListener, Origin,
    Shown, Sources,
};
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, Sender, channel};

/// The fixed mask.
pub const MASK: &str = "******";

/// An engine whose secrets are `secrets` (key, plain value).
pub fn engine(secrets: &[(&str, &str)]) -> Engine {
    let process = secrets.iter().map(|(key, value)| {
        let encoded = base64::engine::general_purpose::STANDARD.encode(value);
        (format!("SECRET_{key}"), encoded)
    });
    {
        let (sources, _) =
            Sources::environment(&EngineConfig::default(), process, None).expect("an engine");
        Engine::with_sources(EngineConfig::default(), sources)
    }
}

/// Runs the flow `yaml` to its end with `secrets`.
pub fn run(yaml: &str, secrets: &[(&str, &str)]) -> Execution {
    run_with(&engine(secrets), yaml, &NoListener, &CancelToken::new())
}

/// Runs the flow `yaml` on `engine`, telling `listener`, until it ends or `cancel`.
pub fn run_with(
    engine: &Engine,
    yaml: &str,
    listener: &dyn Listener,
    cancel: &CancelToken,
) -> Execution {
    let flow = kestrel_flow::parse_flow(yaml).unwrap_or_else(|found| panic!("{found:?}"));
    let inputs = Inputs::parse(&flow.inputs, Vec::new()).expect("inputs");
    runtime().block_on(engine.run(&flow, inputs, Origin::by("test"), listener, cancel))
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

/// A flow `f` in namespace `dev` with `tasks` (YAML list items, indented by two).
pub fn flow(tasks: &str) -> String {
    format!("id: f\nnamespace: dev\ntasks:\n{tasks}")
}

/// The messages logged by task `task_id`.
pub fn messages(execution: &Execution, task_id: &str) -> Vec<String> {
    execution
        .logs
        .iter()
        .filter(|entry| entry.task_id == task_id)
        .map(|entry| entry.message.clone())
        .collect()
}

/// Everything a reader of the execution can see, as one text.
pub fn readable(execution: &Execution) -> String {
    format!("{execution:?}")
}

/// A listener that sends each log message as it is logged.
pub struct Lines(Mutex<Sender<String>>);

impl Lines {
    pub fn new() -> (Self, Receiver<String>) {
        let (sender, receiver) = channel();
        (Self(Mutex::new(sender)), receiver)
    }
}

impl Listener for Lines {
    fn on_log(&self, entry: &Shown<LogEntry>) {
        let _ = self
            .0
            .lock()
            .expect("the sender")
            .send(entry.message.clone());
    }
}
