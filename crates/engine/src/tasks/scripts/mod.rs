//! Kestra's script tasks (`io.kestra.plugin.scripts.shell`, `.python` and `.node`, each as
//! `Commands` and `Script`): one task, run the same way whatever its language.
//!
//! Each task run gets a private directory in kestrel's work root, or works in its
//! WorkingDirectory's ([`crate::workdir`]); the rendered
//! `beforeCommands` and commands go into a sealed memory file ([`script`],
//! [`kestrel_sandbox::Script`]), which the shell interpreter runs by path. A Python or Node
//! `Script` goes into a second sealed file, run by the language's interpreter from a line of
//! the first ([`language`]), as Kestra runs `python <file>` after `beforeCommands`; so no
//! secret ever reaches a disk or a process's arguments. The process runs in a process group
//! of its own, sandboxed where the machine allows, and dies with kestrel ([`process`],
//! [`kestrel_sandbox::Sandbox`]); its stdout (INFO) and stderr (WARN) reach the task's log
//! line by line through the masker, and lines of Kestra's `::{...}::` protocol ([`protocol`])
//! set outputs, metrics and log entries. Properties kestrel does not honour on the host
//! (`containerImage`, `taskRunner`, `docker`, `runner`, Python's `dependencies`...) are
//! accepted for Kestra's flows and ignored with a warning saying why.

mod language;
mod process;
mod protocol;
mod script;

use crate::workdir::{TaskDir, WorkDir};
use crate::{Task, TaskContext, TaskError};
use async_trait::async_trait;
use kestrel_flow::{Body, Level, ScriptTask};
use kestrel_sandbox::Script;
use process::{Event, Launch, Running, Stream};
use serde_json::{Map, Value};
use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

/// Runs a script task.
#[derive(Debug, Clone)]
pub(crate) struct ScriptRunner {
    spec: ScriptTask,
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

impl ScriptRunner {
    pub(crate) fn new(spec: ScriptTask) -> Self {
        Self { spec }
    }
}

/// What a task run needs once its properties are rendered.
struct Rendered {
    interpreter: Vec<String>,
    before: Vec<String>,
    body: Body,
    env: Vec<(String, String)>,
    input_files: Vec<(String, String)>,
}

/// What starts the process: its working directory, its scripts (the shell script first) and
/// its command line.
struct Prepared {
    dir: TaskDir,
    scripts: Vec<Script>,
    program: String,
    args: Vec<OsString>,
}

#[async_trait]
impl Task for ScriptRunner {
    async fn run(&self, ctx: &mut TaskContext<'_>) -> Result<(), TaskError> {
        for (name, reason) in &self.spec.ignored {
            ctx.log(Level::Warn, &format!("{name} is ignored: {reason}"));
        }
        let mut rendered = self.render(ctx).await?;
        if let Some(refusal) = kestrel_sandbox::current().refusal() {
            return Err(TaskError::new(refusal));
        }
        let Prepared {
            dir,
            scripts,
            program,
            args,
        } = self.prepare(ctx, &mut rendered)?;
        let hidden = hidden_variables(ctx);
        let launch = Launch {
            program: &program,
            args: &args,
            dir: dir.work(),
            hidden: &hidden,
            env: &rendered.env,
        };
        let mut running = Running::start(&launch, scripts).map_err(|error| {
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

impl ScriptRunner {
    /// The working directory with the input files (and the language's own) in it, the
    /// scripts, and the command line that runs the shell script.
    fn prepare(
        &self,
        ctx: &TaskContext<'_>,
        rendered: &mut Rendered,
    ) -> Result<Prepared, TaskError> {
        let dir = TaskDir::of(ctx)?;
        for (name, content) in &rendered.input_files {
            ctx.place().write_input(&dir, name, content)?;
        }
        language::prepare(self.spec.language, &dir, &mut rendered.env)?;
        let mut scripts = Vec::with_capacity(2);
        let commands = self.commands(rendered, &mut scripts)?;
        let text = script::script_text(
            &rendered.interpreter,
            self.spec.fail_fast,
            &rendered.before,
            &commands,
        );
        let shell = new_script(&text)?;
        let (program, args) = script::command_line(&rendered.interpreter, &shell.path())
            .ok_or_else(|| TaskError::new("interpreter: must not be empty"))?;
        scripts.insert(0, shell);
        Ok(Prepared {
            dir,
            scripts,
            program,
            args,
        })
    }

    /// The shell commands after `beforeCommands`: `commands` as they are; a shell `script`
    /// as one command; a Python or Node `script` put in a sealed file of its own (added to
    /// `scripts`) and run by the language's interpreter, found on the process's `PATH`.
    fn commands(
        &self,
        rendered: &Rendered,
        scripts: &mut Vec<Script>,
    ) -> Result<Vec<String>, TaskError> {
        let text = match &rendered.body {
            Body::Commands(commands) => return Ok(commands.clone()),
            Body::Script(text) => text,
        };
        let path = rendered
            .env
            .iter()
            .find(|(name, _)| name == "PATH")
            .map(|(_, value)| OsString::from(value))
            .or_else(|| std::env::var_os("PATH"));
        let program = new_script(text)?;
        let location = program.path().to_string_lossy().into_owned();
        match language::script_command(self.spec.language, path.as_deref(), &location)? {
            Some(command) => {
                scripts.push(program);
                Ok(vec![command])
            }
            None => Ok(vec![text.clone()]),
        }
    }
}

/// A sealed memory file holding `text`.
fn new_script(text: &str) -> Result<Script, TaskError> {
    Script::new(text).map_err(|error| TaskError::new(format!("Cannot write the script: {error}")))
}

impl ScriptRunner {
    /// Renders the commands or the script, `env`, the interpreter and the input files. An interpreter word
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
        let body = match &spec.body {
            Body::Commands(commands) => Body::Commands(render_all(ctx, commands).await?),
            Body::Script(script) => Body::Script(ctx.render(script).await?),
        };
        Ok(Rendered {
            before: render_all(ctx, &spec.before_commands).await?,
            body,
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
        // kestrel's Python module is the task's, not one of the directory's files.
        dir.remove(language::MODULE_DIR).map_err(TaskError::new)?;
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
