//! Fixture tests: each `tests/fixtures/*.txt` is a flow, the environment it runs in, and
//! everything a reader of its execution sees, masked.
//!
//! A file holds, after any leading `#` comment lines (what the case pins), three sections
//! separated by lines `---`:
//! 1. the environment, a JSON object: `"secrets"` maps each key to its plain value (given to
//!    the engine as a `SECRET_<KEY>` variable holding its base64, as the environment backend
//!    reads them), `"inputs"` maps each input id to the raw text given for it (`--input`);
//! 2. the flow's YAML;
//! 3. what a reader sees of the execution, in the layout of [`readable`]: its state, then
//!    each task run in the order it started with its ForEach value, outputs (JSON), error and
//!    log entries, then the flow's outputs.
//!
//! Besides the expected text, no case may show any of its secrets (of 4 characters or more)
//! anywhere in the execution.

#![allow(clippy::unwrap_used)] // Test code: a failure is a failed test.

use base64::Engine as _;
use kestrel_engine::{
    CancelToken, Engine, EngineConfig, Execution, Inputs, NoListener, Origin, Sources, TaskRun,
};
use kestrel_secrets::SecretValue;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// The environment of a case.
struct Environment {
    secrets: BTreeMap<String, String>,
    inputs: BTreeMap<String, String>,
}

impl Environment {
    fn parse(text: &str) -> Result<Self, String> {
        let json: Value = serde_json::from_str(text).map_err(|e| format!("bad JSON: {e}"))?;
        let Value::Object(mut sections) = json else {
            return Err("not a JSON object".into());
        };
        let mut texts = |name: &str| match sections.remove(name) {
            None => Ok(BTreeMap::new()),
            Some(Value::Object(map)) => map
                .into_iter()
                .map(|(key, value)| match value {
                    Value::String(text) => Ok((key, text)),
                    _ => Err(format!("{name}.{key}: not a string")),
                })
                .collect(),
            Some(_) => Err(format!("{name}: not an object")),
        };
        let environment = Self {
            secrets: texts("secrets")?,
            inputs: texts("inputs")?,
        };
        match sections.keys().next() {
            Some(unknown) => Err(format!("unknown section {unknown}")),
            None => Ok(environment),
        }
    }
}

struct Case {
    environment: Environment,
    flow: String,
    expected: String,
}

fn read_case(text: &str) -> Result<Case, String> {
    let body: String = text
        .lines()
        .skip_while(|line| line.starts_with('#'))
        .map(|line| format!("{line}\n"))
        .collect();
    let sections: Vec<&str> = body.split("\n---\n").collect();
    let [environment, flow, expected] = sections[..] else {
        return Err("expected three sections separated by `---` lines".into());
    };
    let environment = Environment::parse(environment).map_err(|e| format!("environment: {e}"))?;
    Ok(Case {
        environment,
        flow: format!("{flow}\n"),
        expected: expected.trim_end().to_owned(),
    })
}

/// Runs the case's flow to its end in its environment.
fn execute(case: &Case) -> Result<Execution, String> {
    let process = case.environment.secrets.iter().map(|(key, value)| {
        let encoded = base64::engine::general_purpose::STANDARD.encode(value);
        (format!("SECRET_{key}"), encoded)
    });
    let config = EngineConfig::default();
    let (sources, _warnings) =
        Sources::environment(&config, process, None).map_err(|e| format!("no engine: {e}"))?;
    let engine = Engine::with_sources(config, sources);
    let flow = kestrel_flow::parse_flow(&case.flow).map_err(|found| format!("{found:?}"))?;
    let raw = case.environment.inputs.iter();
    let raw = raw.map(|(id, text)| (id.clone(), SecretValue::new(text.clone())));
    let inputs = Inputs::parse(&flow.inputs, raw).map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    Ok(runtime.block_on(engine.run(
        &flow,
        inputs,
        Origin::by("test"),
        &NoListener,
        &CancelToken::new(),
    )))
}

/// What a reader sees of `execution`, without what changes from run to run (ids, times).
fn readable(execution: &Execution) -> String {
    let mut text = format!("execution: {}\n", execution.state);
    for run in &execution.task_runs {
        write_task_run(&mut text, execution, run);
    }
    if !execution.outputs.is_empty() {
        let outputs = serde_json::to_string(&execution.outputs).unwrap();
        writeln!(text, "outputs: {outputs}").unwrap();
    }
    text.trim_end().to_owned()
}

fn write_task_run(text: &mut String, execution: &Execution, run: &TaskRun) {
    writeln!(text, "task {}: {}", run.task_id, run.state).unwrap();
    if let Some(value) = &run.value {
        write_field(text, "value", value);
    }
    if !run.outputs.is_empty() {
        write_field(
            text,
            "outputs",
            &serde_json::to_string(&run.outputs).unwrap(),
        );
    }
    if let Some(error) = &run.error {
        write_field(text, "error", error);
    }
    let entries = execution.logs.iter();
    for entry in entries.filter(|entry| entry.task_run_id == run.id) {
        write_field(text, &format!("log {}", entry.level), &entry.message);
    }
}

/// Every text a reader of `execution` sees (`readable` with its inputs, trigger, labels and
/// every log entry) but its ids and times (`system.correlationId` is an id), where a short secret (a 4-digit PIN) would turn up
/// by chance.
fn readers_text(execution: &Execution, readable: &str) -> String {
    let mut text = readable.to_owned();
    let seen = serde_json::json!({
        "inputs": execution.inputs,
        "trigger": execution.trigger,
        "labels": execution
            .labels
            .iter()
            .filter(|(key, _)| !key.starts_with("system."))
            .collect::<Vec<_>>(),
    });
    writeln!(text, "\n{seen}").unwrap();
    for entry in &execution.logs {
        writeln!(text, "{}", entry.message).unwrap();
    }
    text
}

/// `  name: value`, the lines after the first of `value` indented by four.
fn write_field(text: &mut String, name: &str, value: &str) {
    writeln!(text, "  {name}: {}", value.replace('\n', "\n    ")).unwrap();
}

fn run_case(case: &Case) -> Result<(), String> {
    let execution = execute(case)?;
    let got = readable(&execution);
    let everything = readers_text(&execution, &got);
    let secrets = case.environment.secrets.iter();
    for (key, value) in secrets.filter(|(_, value)| value.chars().count() >= 4) {
        if everything.contains(value.as_str()) {
            return Err(format!("secret {key} shows in the execution:\n{got}"));
        }
    }
    if got != case.expected {
        return Err(format!("got\n{got}\nexpected\n{}", case.expected));
    }
    Ok(())
}

/// Every case under `tests/fixtures/`: its file name and text, in name order.
fn case_files() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut cases: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "txt"))
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&path).unwrap())
        })
        .collect();
    cases.sort();
    cases
}

#[test]
fn fixtures() {
    let cases = case_files();
    assert!(!cases.is_empty(), "no case under tests/fixtures");
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|(name, text)| {
            let outcome = read_case(text).and_then(|case| run_case(&case));
            outcome.err().map(|why| format!("{name}: {why}"))
        })
        .collect();
    let failed = failures.len();
    assert!(
        failed == 0,
        "{failed} of {} cases failed:\n\n{}",
        cases.len(),
        failures.join("\n\n")
    );
}
