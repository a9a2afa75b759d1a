//! `kestrel run FLOW.yml`: one execution in this process, its logs as they happen or its JSON
//! at the end. SIGINT (Ctrl-C), SIGTERM and SIGHUP kill the execution: its tasks' processes
//! are killed and their working directories removed before the process exits, and the
//! execution ends KILLED.

use crate::commands::leftovers::RunClaim;
use crate::commands::subflows::{Catalog, FolderLauncher};
use crate::commands::{read_flow, read_text};
use crate::error::{CliError, EXIT_FAILED, EXIT_INTERRUPTED};
use crate::output::{LogLines, Quiet, execution_json, note, summary_line, warn};
use crate::settings::Settings;
use crate::sources::load_engine;
use crate::store::operator;
use clap::{Args, ValueEnum};
use kestrel_engine::{CancelToken, Execution, Host, Inputs, Listener, Origin};
use kestrel_flow::{Flow, InputType};
use kestrel_secrets::SecretValue;
use kestrel_storage::ExecutionFiles;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::signal::unix::{Signal, SignalKind, signal};

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// The flow's YAML file.
    flow: PathBuf,
    /// An input: KEY=VALUE, KEY=@PATH (read from a file) or KEY=- (read from stdin).
    /// SECRET inputs must come from a file or stdin. A FILE input takes the file to store,
    /// KEY=PATH or KEY=@PATH (KEY=- for stdin), or a stored file's kestra:/// URI.
    #[arg(long = "input", value_name = "KEY=VALUE", value_parser = parse_input)]
    inputs: Vec<InputArg>,
    /// A dotenv file of SECRET_* values and plain variables (overrides `secret.env-file`).
    #[arg(long, value_name = "FILE")]
    env_file: Option<PathBuf>,
    /// A folder of flows Subflow tasks may start (each `*.yml` and `*.yaml` in it), besides
    /// the flow file's own folder; repeatable.
    #[arg(long = "flows", value_name = "DIR")]
    flows: Vec<PathBuf>,
    /// How to show the execution.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    output: OutputFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum OutputFormat {
    /// Each log line as it happens, then a summary line.
    Text,
    /// One JSON document at the end.
    Json,
}

/// One `--input`, as given.
#[derive(Debug, Clone)]
struct InputArg {
    key: String,
    source: InputSource,
}

#[derive(Debug, Clone)]
enum InputSource {
    Inline(String),
    File(PathBuf),
    Stdin,
}

fn parse_input(arg: &str) -> Result<InputArg, String> {
    let (key, value) = arg
        .split_once('=')
        .ok_or_else(|| "expected KEY=VALUE, KEY=@PATH or KEY=-".to_owned())?;
    if key.is_empty() {
        return Err("the input's KEY is empty".into());
    }
    let source = match value {
        "-" => InputSource::Stdin,
        _ => match value.strip_prefix('@') {
            Some(path) => InputSource::File(PathBuf::from(path)),
            None => InputSource::Inline(value.to_owned()),
        },
    };
    Ok(InputArg {
        key: key.to_owned(),
        source,
    })
}

pub(crate) fn run(args: &RunArgs, settings: &Settings) -> Result<u8, CliError> {
    let flow = read_flow(&args.flow)?;
    if flow.disabled {
        return Err(CliError::usage(format!(
            "the flow {}.{} is disabled; remove `disabled: true` to run it",
            flow.namespace, flow.id
        )));
    }
    let catalog = catalog(&flow, args)?;
    let id = kestrel_engine::new_id();
    let storage = settings.storage();
    let files = ExecutionFiles::new(Arc::clone(&storage), &flow.namespace, &flow.id, &id)
        .map_err(|error| CliError::usage(error.to_string()))?;
    let claim = RunClaim::take(&settings.storage_root(), storage.as_ref(), &files)
        .map_err(|error| CliError::failed("cannot claim the execution's files").caused_by(error))?;
    let inputs = typed_inputs(&flow, &args.inputs, &files)?;
    check_master_key(&args.flow, settings)?;
    let engine = load_engine(settings, args.env_file.as_deref())?;
    let sandbox =
        crate::sandbox::install(settings, args.env_file.as_deref(), flow.runs_processes())?;
    let listener: &dyn Listener = match args.output {
        OutputFormat::Text => &LogLines,
        OutputFormat::Json => &Quiet,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|error| CliError::failed("cannot start the runtime").caused_by(error))?;
    let children = Mutex::new(Vec::new());
    let (execution, stopped) = runtime.block_on(async {
        let stops = Stops::watch()
            .map_err(|error| CliError::failed("cannot watch for signals").caused_by(error))?;
        let cancel = CancelToken::new();
        let on_stop = tokio::spawn(kill_on(stops, cancel.clone()));
        let triggered_by = operator(&settings.env).to_string();
        let launcher = FolderLauncher {
            engine: &engine,
            catalog: &catalog,
            listener,
            cancel: &cancel,
            triggered_by: &triggered_by,
            depth: 1,
            children: &children,
            claim: &claim,
            storage: &storage,
        };
        let origin = Origin {
            id: Some(id),
            ..Origin::by(triggered_by.clone())
        };
        let host = Host {
            subflows: Some(&launcher),
            resumes: None,
        };
        let execution = engine
            .run_hosted(&flow, inputs, origin, listener, &cancel, host)
            .await;
        on_stop.abort();
        let stopped = on_stop.await.ok();
        Ok::<_, CliError>((execution, stopped))
    })?;
    // Nothing of the execution is left running: a task killed on the way was dropped with
    // its process group and working directory. The runtime goes before the work root.
    super::shut_down(runtime);
    sandbox.close();
    let children = children
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner);
    remove_files(&files);
    // The files of the executions after the first (a retry's new ones) and of the subflows'.
    for other in std::iter::once(&execution).chain(&children) {
        let other_files = ExecutionFiles::new(
            settings.storage(),
            &other.namespace,
            &other.flow_id,
            &other.id,
        );
        if let Ok(other_files) = other_files {
            remove_files(&other_files);
        }
    }
    // Nothing is left for a later run to clean.
    drop(claim);
    print_result(&execution, &children, args.output);
    let env_file = settings.env_file(args.env_file.as_deref()).is_some();
    hint_missing_secrets(&execution, env_file);
    Ok(match stopped {
        Some(Stop::Interrupt) => EXIT_INTERRUPTED,
        _ if execution.state.is_successful() => 0,
        _ => EXIT_FAILED,
    })
}

/// Before any task starts: the master key opens the store, when the flow reads secrets and a
/// store exists (the store itself is then opened at the first read, as ever). Without this,
/// a wrong key would surface only once tasks had run.
fn check_master_key(flow_file: &Path, settings: &Settings) -> Result<(), CliError> {
    let reads_secrets = read_text(flow_file)?.contains("secret(");
    if reads_secrets {
        crate::store::StoreAccess::new(settings)?.open_existing()?;
    }
    Ok(())
}

/// A signal that stops `kestrel run`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// SIGINT: Ctrl-C, exit 130.
    Interrupt,
    /// SIGTERM: what `timeout`, systemd and container runtimes send.
    Terminate,
    /// SIGHUP: the terminal went away.
    HangUp,
}

/// The handlers of the signals that stop `kestrel run`, in place from creation, so that none
/// sent during the execution is missed (and none kills the process before the cleanup).
struct Stops {
    interrupt: Signal,
    terminate: Signal,
    hang_up: Signal,
}

impl Stops {
    fn watch() -> std::io::Result<Self> {
        Ok(Self {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
            hang_up: signal(SignalKind::hangup())?,
        })
    }

    /// The first stop signal received.
    async fn next(&mut self) -> Stop {
        tokio::select! {
            _ = self.interrupt.recv() => Stop::Interrupt,
            _ = self.terminate.recv() => Stop::Terminate,
            _ = self.hang_up.recv() => Stop::HangUp,
        }
    }
}

/// Kills the execution on the first stop signal, says so, and returns it. Later signals are
/// received and ignored, so that the cleanup finishes.
async fn kill_on(mut stops: Stops, cancel: CancelToken) -> Stop {
    let stop = stops.next().await;
    let name = match stop {
        Stop::Interrupt => "interrupted",
        Stop::Terminate => "terminated (SIGTERM)",
        Stop::HangUp => "hung up (SIGHUP)",
    };
    warn(&format!("{name}: killing the execution"));
    cancel.cancel();
    stop
}

/// The flows Subflow tasks may start: those of the flow file's folder and of each `--flows`
/// folder, read only when the flow has a Subflow task.
fn catalog(flow: &Flow, args: &RunArgs) -> Result<Catalog, CliError> {
    if !flow.calls_subflows() {
        return Ok(Catalog::default());
    }
    let mut folders = Vec::new();
    if args.flow != Path::new("-") {
        let folder = args.flow.parent().unwrap_or(Path::new("."));
        let folder = if folder.as_os_str().is_empty() {
            Path::new(".")
        } else {
            folder
        };
        folders.push(folder.to_path_buf());
    }
    folders.extend(args.flows.iter().cloned());
    Catalog::read(&folders)
}

/// The execution's summary line, or its JSON document with its subflows' (`children`).
fn print_result(execution: &Execution, children: &[Execution], format: OutputFormat) {
    let text = match format {
        OutputFormat::Text => summary_line(execution),
        OutputFormat::Json => execution_json(execution)
            .with_subflows(children)
            .to_string(),
    };
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}

/// The error line a task gets for a key no source holds (its exact words are a contract).
const MISSING_SECRET: &str = "Cannot find secret for key '";

/// After each key a task could not find, a line on stderr saying how to store it and where
/// kestrel looked: the flow's namespace and its parents, then the `SECRET_*` variables of the
/// environment (and of the env file, when there is one).
fn hint_missing_secrets(execution: &Execution, env_file: bool) {
    let keys: std::collections::BTreeSet<&str> = execution
        .task_runs
        .iter()
        .filter_map(|run| run.error.as_deref())
        .flat_map(|error| error.split(MISSING_SECRET).skip(1))
        .filter_map(|rest| rest.split_once("'.").map(|(key, _)| key))
        .collect();
    let namespaces = namespace_and_parents(&execution.namespace).join(", ");
    let env = if env_file {
        "the environment and the env file"
    } else {
        "the environment"
    };
    for key in keys {
        note(&format!(
            "hint: kestrel secrets set {} {key}  (kestrel looked in namespaces {namespaces}, \
             then for SECRET_{key} in {env})",
            execution.namespace
        ));
    }
}

/// `namespace`, then each parent, closest first (`a.b.c`, `a.b`, `a`).
fn namespace_and_parents(namespace: &str) -> Vec<&str> {
    let mut chain = vec![namespace];
    let mut rest = namespace;
    while let Some((parent, _)) = rest.rsplit_once('.') {
        chain.push(parent);
        rest = parent;
    }
    chain
}

/// Nothing reads the files of a `kestrel run` execution once it ended (no server shows
/// them): they go with it.
fn remove_files(files: &ExecutionFiles) {
    if let Err(error) = files.storage().delete_all(files.execution_prefix()) {
        warn(&format!("cannot remove the execution's files: {error}"));
    }
}

/// The `--input` values read and typed by the flow's inputs, FILE inputs stored in `files`. A
/// SECRET input given inline is refused: command lines are visible to every user of the
/// machine.
fn typed_inputs(
    flow: &Flow,
    given: &[InputArg],
    files: &ExecutionFiles,
) -> Result<Inputs, CliError> {
    let mut raw = Vec::with_capacity(given.len());
    for input in given {
        let input_type = flow
            .inputs
            .iter()
            .find(|def| def.id == input.key)
            .map(|def| def.input_type);
        let is_secret = input_type == Some(InputType::Secret);
        let value = match &input.source {
            _ if input_type == Some(InputType::File) => {
                store_input(&input.key, &input.source, files)?
            }
            InputSource::Inline(_) if is_secret => {
                return Err(CliError::usage(format!(
                    "input '{key}' is a SECRET: pass it with --input {key}=@PATH or --input {key}=- \
                     (command lines are visible to every user of the machine)",
                    key = input.key
                )));
            }
            InputSource::Inline(value) => value.clone(),
            InputSource::File(path) => read_input(&input.key, path)?,
            InputSource::Stdin => read_input(&input.key, Path::new("-"))?,
        };
        raw.push((input.key.clone(), SecretValue::new(value)));
    }
    Inputs::parse(&flow.inputs, raw).map_err(|error| CliError::usage(error.to_string()))
}

/// A FILE input's value: the URI of the file it names (KEY=PATH, KEY=@PATH, or stdin for
/// KEY=-), once stored; a `kestra:///` URI is taken as it is. The stored file keeps its name
/// (stdin's is Kestra's default, `<KEY>.upl`).
fn store_input(
    key: &str,
    source: &InputSource,
    files: &ExecutionFiles,
) -> Result<String, CliError> {
    let path = match source {
        InputSource::Inline(uri) if uri.starts_with(kestrel_storage::SCHEME) => {
            return Ok(uri.clone());
        }
        InputSource::Inline(path) => Some(PathBuf::from(path)),
        InputSource::File(path) => Some(path.clone()),
        InputSource::Stdin => None,
    };
    let (name, mut content): (String, Box<dyn Read>) = match &path {
        Some(path) => {
            let file = std::fs::File::open(path).map_err(|error| {
                CliError::usage(format!("input '{key}': cannot read {}", path.display()))
                    .caused_by(error)
            })?;
            let name = path.file_name().map_or_else(
                || format!("{key}.upl"),
                |name| name.to_string_lossy().into_owned(),
            );
            (name, Box::new(file))
        }
        None => (format!("{key}.upl"), Box::new(std::io::stdin())),
    };
    let stored = files
        .input_file(key, &name)
        .and_then(|uri| files.put(&uri, &mut content).map(|_| uri));
    stored
        .map(|uri| uri.to_string())
        .map_err(|error| CliError::usage(format!("input '{key}': {error}")))
}

/// An input's value from a file or stdin, byte for byte (a final newline kept, with a warning).
fn read_input(key: &str, path: &Path) -> Result<String, CliError> {
    let value = read_text(path)?;
    if value.ends_with('\n') {
        warn(&format!(
            "input '{key}' ends with a newline, which is kept as part of the value"
        ));
    }
    Ok(value)
}
