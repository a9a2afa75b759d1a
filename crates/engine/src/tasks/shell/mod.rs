//! `io.kestra.plugin.scripts.shell.Commands`: commands run by an interpreter on this host.
//!
//! Each task run gets a private directory in kestrel's work root ([`crate::workdir`]); the rendered
//! commands go into a sealed memory file ([`script`], [`kestrel_sandbox::Script`]), which the
//! interpreter runs by path, so no secret ever reaches a disk or a process's arguments. The
//! process runs in a process group of its own, sandboxed where the machine allows, and dies
//! with kestrel ([`process`], [`kestrel_sandbox::Sandbox`]); its stdout (INFO) and stderr
//! (WARN) reach the task's log line by line through the masker, and lines of Kestra's
//! `::{...}::` protocol ([`protocol`]) set outputs, metrics and log entries. `containerImage`, `taskRunner` and `docker` are
//! accepted for Kestra's flows and ignored with a warning: kestrel has no containers.

mod process;
mod protocol;
mod script;

use crate::workdir::{TaskDir, WorkDir};
use crate::{Task, TaskContext, TaskError};
use async_trait::async_trait;
use kestrel_flow::{Level, ShellCommands};
use kestrel_sandbox::Script;
use process::{Event, Launch, Running, Stream};
use serde_json::{Map, Value};
use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

/// Runs a `Commands` task.
#[derive(Debug, Clone)]
pub(crate) struct ShellTask {
    spec: ShellCommands,
}

/// Each of `templates`, rendered.
async fn render_all(ctx: &TaskContext<'_>, templates: &[String]) -> Result<Vec<String>, TaskError> {
    let mut rendered = Vec::with_capacity(templates.len());
    for template in templates {
        rendered.push(ctx.render(template).await?);
    }
    Ok(rendered)
}

/// Each pair's template rendered, under its name.
async fn render_map(
    ctx: &TaskContext<'_>,
    pairs: &[(String, String)],
) -> Result<Vec<(String, String)>, TaskError> {
    let mut rendered = Vec::with_capacity(pairs.len());
    for (name, template) in pairs {
        rendered.push((name.clone(), ctx.render(template).await?));
    }
    Ok(rendered)
}

impl ShellTask {
    pub(crate) fn new(spec: ShellCommands) -> Self {
        Self { spec }
    }
}

/// What a task run needs once its properties are rendered.
struct Rendered {
    interpreter: Vec<String>,
    script: String,
    env: Vec<(String, String)>,
    input_files: Vec<(String, String)>,
}

#[async_trait]
impl Task for ShellTask {
    async fn run(&self, ctx: &mut TaskContext<'_>) -> Result<(), TaskError> {
        for name in &self.spec.ignored {
            let message = format!(
                "{name} is ignored: kestrel runs the commands on this host, without a container"
            );
            ctx.log(Level::Warn, &message);
        }
        let rendered = self.render(ctx).await?;
        if let Some(refusal) = kestrel_sandbox::current().refusal() {
            return Err(TaskError::new(refusal));
        }
        let (dir, script, program, args) = prepare(ctx, &rendered)?;
        let hidden = hidden_variables(ctx);
        let launch = Launch {
            program: &program,
            args: &args,
            dir: dir.work(),
            hidden: &hidden,
            env: &rendered.env,
        };
        let mut running = Running::start(&launch, script).map_err(|error| {
            TaskError::new(format!("Cannot start the interpreter '{program}': {error}"))
        })?;
        let mut vars = Map::new();
        let status = self.stream(ctx, &mut running, &mut vars).await;
        drop(running);
        let status = status.map_err(|error| {
            TaskError::new(format!("Cannot read the output of the commands: {error}"))
        })?;
        self.finish(ctx, &dir, status, vars).await
    }
}

/// The working directory with the input files in it, the script, and the command line that
/// runs the script.
fn prepare(
    ctx: &TaskContext<'_>,
    rendered: &Rendered,
) -> Result<(TaskDir, Script, String, Vec<OsString>), TaskError> {
    let dir = TaskDir::of(ctx)?;
    for (name, content) in &rendered.input_files {
        ctx.place().write_input(&dir, name, content)?;
    }
    let script = Script::new(&rendered.script)
        .map_err(|error| TaskError::new(format!("Cannot write the script: {error}")))?;
    let (program, args) = script::command_line(&rendered.interpreter, &script.path())
        .ok_or_else(|| TaskError::new("interpreter: must not be empty"))?;
    Ok((dir, script, program, args))
}

impl ShellTask {
    /// Renders the commands, `env`, the interpreter and the input files. An interpreter word
    /// holding a secret is refused: the interpreter's words are the process's arguments.
    async fn render(&self, ctx: &TaskContext<'_>) -> Result<Rendered, TaskError> {
        let spec = &self.spec;
        let interpreter = render_all(ctx, &spec.interpreter).await?;
        if interpreter
            .iter()
            .any(|word| ctx.registry().contains_secret(word))
        {
            return Err(TaskError::new(
                "interpreter: must not hold a secret (a process's arguments are visible to every user of the machine); pass secrets through env",
            ));
        }
        let before = render_all(ctx, &spec.before_commands).await?;
        let commands = render_all(ctx, &spec.commands).await?;
        Ok(Rendered {
            script: script::script_text(&interpreter, spec.fail_fast, &before, &commands),
            interpreter,
            env: render_map(ctx, &spec.env).await?,
            input_files: render_map(ctx, &spec.input_files).await?,
        })
    }

    /// Logs every line until the process exits; protocol lines set `vars`, metrics and
    /// entries instead.
    async fn stream(
        &self,
        ctx: &mut TaskContext<'_>,
        running: &mut Running,
        vars: &mut Map<String, Value>,
    ) -> std::io::Result<ExitStatus> {
        let stderr_level = if self.spec.warning_on_stderr {
            Level::Warn
        } else {
            Level::Info
        };
        loop {
            let (stream, line) = match running.next().await? {
                Event::Exit(status) => return Ok(status),
                Event::Line(stream, line) => (stream, line),
            };
            if let Some(message) = protocol::parse(&line) {
                protocol::apply(ctx, vars, message);
                continue;
            }
            let level = match stream {
                Stream::Stdout => Level::Info,
                Stream::Stderr => stderr_level,
            };
            ctx.log(level, &line);
        }
    }

    /// Sets the outputs; a failed run is the task's failure, a good one stores the output
    /// files in the internal storage, their URIs as the `outputFiles` output.
    async fn finish(
        &self,
        ctx: &mut TaskContext<'_>,
        dir: &WorkDir,
        status: ExitStatus,
        vars: Map<String, Value>,
    ) -> Result<(), TaskError> {
        let code = exit_code(status);
        ctx.output("exitCode", Value::from(code));
        ctx.output("vars", Value::Object(vars));
        if !status.success() {
            return Err(TaskError::new(match status.signal() {
                Some(signal) => format!("Command was killed by signal {signal}"),
                None => format!("Command failed with exit code {code}"),
            }));
        }
        if !self.spec.output_files.is_empty() {
            let files = ctx
                .place()
                .store_outputs(dir, &self.spec.output_files)
                .await?;
            ctx.output("outputFiles", Value::Object(files));
        }
        Ok(())
    }
}

/// The exit code, or 128 plus the signal that ended the process, as a shell reports it.
fn exit_code(status: ExitStatus) -> i32 {
    status
        .code()
        .or_else(|| status.signal().map(|signal| 128 + signal))
        .unwrap_or(-1)
}

/// Inherited variables the commands must not see: secrets (`SECRET_*`), kestrel's own
/// settings (`KESTREL_*`, the master key among them) and the redacted names of the
/// configuration (`variables.redacted-env-vars`).
fn hidden_variables(ctx: &TaskContext<'_>) -> Vec<OsString> {
    let redacted = &ctx.engine().config.env.redacted;
    std::env::vars_os()
        .map(|(name, _)| name)
        .filter(|name| {
            let text = name.to_string_lossy();
            text.starts_with("SECRET_")
                || text.starts_with("KESTREL_")
                || redacted.iter().any(|hidden| *hidden == text)
        })
        .collect()
}
