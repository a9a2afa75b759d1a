//! Kestra's script tasks, read into one [`ScriptTask`]: `io.kestra.plugin.scripts.shell`,
//! `.python` and `.node`, each as `Commands` (shell commands) and `Script` (one inline
//! script run by the language's interpreter). They share every property but the body, so one
//! reader builds them all and the engine runs them all the same way.

use super::TaskType;
use super::read::{text_map, texts};
use crate::TaskKind;
use crate::context::{Ctx, Props};

/// The task runner that runs commands on the host, as kestrel does: naming it is no warning.
const PROCESS_RUNNER: &str = "io.kestra.plugin.core.runner.Process";

/// Properties that choose where Kestra runs the commands (a container, a task runner):
/// kestrel always runs them on the host and only notes them.
const CONTAINER: &[&str] = &["containerImage", "taskRunner", "docker", "runner"];

/// Properties of the Python tasks that install packages before the run: kestrel installs
/// none and only notes them.
const PYTHON_PACKAGES: &[&str] = &[
    "dependencies",
    "pythonVersion",
    "dependencyCacheEnabled",
    "packageManager",
];

/// The properties of a script task: those every script task has, then the type's own.
macro_rules! script_properties {
    ($($own:literal),*) => {
        &[
            "beforeCommands",
            "env",
            "interpreter",
            "failFast",
            "outputFiles",
            "inputFiles",
            "warningOnStdErr",
            "containerImage",
            "taskRunner",
            "docker",
            "runner",
            $($own),*
        ]
    };
}

/// The properties of the Python tasks: a script task's, with [`PYTHON_PACKAGES`].
macro_rules! python_properties {
    ($body:literal) => {
        script_properties!(
            $body,
            "dependencies",
            "pythonVersion",
            "dependencyCacheEnabled",
            "packageManager"
        )
    };
}

/// A script task type of Kestra's class `class`.
const fn script_type(
    class: &'static str,
    properties: &'static [&'static str],
    build: fn(&mut Ctx<'_>, &Props<'_>) -> Option<TaskKind>,
) -> TaskType {
    TaskType {
        class,
        aliases: &[],
        properties,
        build,
    }
}

pub(crate) const SHELL_COMMANDS: TaskType = script_type(
    "io.kestra.plugin.scripts.shell.Commands",
    script_properties!("commands"),
    |ctx, props| build(ctx, props, Language::Shell, Form::Commands),
);

pub(crate) const SHELL_SCRIPT: TaskType = script_type(
    "io.kestra.plugin.scripts.shell.Script",
    script_properties!("script"),
    |ctx, props| build(ctx, props, Language::Shell, Form::Script),
);

pub(crate) const PYTHON_COMMANDS: TaskType = script_type(
    "io.kestra.plugin.scripts.python.Commands",
    python_properties!("commands"),
    |ctx, props| build(ctx, props, Language::Python, Form::Commands),
);

pub(crate) const PYTHON_SCRIPT: TaskType = script_type(
    "io.kestra.plugin.scripts.python.Script",
    python_properties!("script"),
    |ctx, props| build(ctx, props, Language::Python, Form::Script),
);

pub(crate) const NODE_COMMANDS: TaskType = script_type(
    "io.kestra.plugin.scripts.node.Commands",
    script_properties!("commands"),
    |ctx, props| build(ctx, props, Language::Node, Form::Commands),
);

pub(crate) const NODE_SCRIPT: TaskType = script_type(
    "io.kestra.plugin.scripts.node.Script",
    script_properties!("script"),
    |ctx, props| build(ctx, props, Language::Node, Form::Script),
);

/// The language of a script task: which interpreter runs a `Script`, and what the process's
/// environment gets for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    /// `io.kestra.plugin.scripts.shell`: the `interpreter` itself runs the script.
    Shell,
    /// `io.kestra.plugin.scripts.python`: `python3` (or `python`) runs the script.
    Python,
    /// `io.kestra.plugin.scripts.node`: `node` runs the script.
    Node,
}

/// Which body a task type has.
#[derive(Debug, Clone, Copy)]
enum Form {
    Commands,
    Script,
}

/// What the task runs, its templates unrendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// `commands` of a `Commands` task: shell commands run in order from one script file.
    Commands(Vec<String>),
    /// `script` of a `Script` task: one program of the task's language.
    Script(String),
}

/// A script task (`Commands` or `Script` of the shell, Python or Node plugin), templates
/// unrendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptTask {
    /// The plugin the task type belongs to.
    pub language: Language,
    /// `commands` or `script`.
    pub body: Body,
    /// `beforeCommands`, shell commands run first in the same shell script.
    pub before_commands: Vec<String>,
    /// `env`: variables for the process, values templates (the way to pass a secret).
    pub env: Vec<(String, String)>,
    /// `interpreter`, default `["/bin/sh", "-c"]`; the script file replaces the trailing `-c`.
    pub interpreter: Vec<String>,
    /// `failFast`, default true: a POSIX shell's script starts with `set -e`.
    pub fail_fast: bool,
    /// `outputFiles`: glob patterns of files to collect from the working directory.
    pub output_files: Vec<String>,
    /// `inputFiles`: files written into the working directory first (name, content template).
    pub input_files: Vec<(String, String)>,
    /// `warningOnStdErr`, default true: stderr lines are logged at WARN, else at INFO.
    pub warning_on_stderr: bool,
    /// Properties set that kestrel does not honour on the host (`containerImage`,
    /// `dependencies`...), each with why, to warn about when the task runs.
    pub ignored: Vec<(String, &'static str)>,
}

/// Builds a script task of `language` whose body has the `form` of its type.
fn build(ctx: &mut Ctx<'_>, props: &Props<'_>, language: Language, form: Form) -> Option<TaskKind> {
    let body = match form {
        Form::Commands => commands(ctx, props).map(Body::Commands),
        Form::Script => props.required_text(ctx, "script").map(Body::Script),
    };
    let before_commands = texts(ctx, props, "beforeCommands");
    let env = text_map(ctx, props, "env");
    let interpreter = texts(ctx, props, "interpreter");
    let fail_fast = props.flag(ctx, "failFast");
    let output_files = texts(ctx, props, "outputFiles");
    let input_files = text_map(ctx, props, "inputFiles");
    let warning_on_stderr = props.flag(ctx, "warningOnStdErr");
    let ignored = ignored(props);
    Some(TaskKind::Script(Box::new(ScriptTask {
        language,
        body: body?,
        before_commands: before_commands.unwrap_or_default(),
        env: env.unwrap_or_default(),
        interpreter: interpreter
            .filter(|words| !words.is_empty())
            .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()]),
        fail_fast: fail_fast.unwrap_or(true),
        output_files: output_files.unwrap_or_default(),
        input_files: input_files.unwrap_or_default(),
        warning_on_stderr: warning_on_stderr.unwrap_or(true),
        ignored,
    })))
}

/// `commands`, which must be there.
fn commands(ctx: &mut Ctx<'_>, props: &Props<'_>) -> Option<Vec<String>> {
    let commands = texts(ctx, props, "commands");
    if props.get("commands").is_none() {
        props.missing(ctx, "commands");
    }
    commands
}

/// The properties set that kestrel does not honour, each with why: the container and runner
/// properties (but a `taskRunner` of type Process or a `runner: PROCESS`, which say what
/// kestrel does anyway) and the Python package properties.
fn ignored(props: &Props<'_>) -> Vec<(String, &'static str)> {
    let on_host = |key: &str| match props.json(key) {
        Some(serde_json::Value::Object(runner)) => {
            runner.get("type").and_then(serde_json::Value::as_str) == Some(PROCESS_RUNNER)
        }
        Some(serde_json::Value::String(runner)) => runner == "PROCESS",
        _ => false,
    };
    let container = CONTAINER.iter().filter(|key| !on_host(key)).map(|key| {
        (
            *key,
            "kestrel runs the commands on this host, without a container",
        )
    });
    let packages = PYTHON_PACKAGES.iter().map(|key| {
        (
            *key,
            "kestrel installs no packages: the host's Python runs the script with what is installed there (install more with beforeCommands)",
        )
    });
    container
        .chain(packages)
        .filter(|(key, _)| props.get(key).is_some())
        .map(|(key, reason)| (key.to_owned(), reason))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{Body, Language, ScriptTask};
    use crate::{TaskKind, parse_flow};

    fn source(class: &str, properties: &str) -> String {
        format!(
            "id: f\nnamespace: dev\ntasks:\n  - id: t\n    type: io.kestra.plugin.scripts.{class}\n{properties}"
        )
    }

    fn task(class: &str, properties: &str) -> ScriptTask {
        match parse_flow(&source(class, properties))
            .unwrap()
            .tasks
            .remove(0)
            .kind
        {
            TaskKind::Script(task) => *task,
            _ => panic!("not a script task"),
        }
    }

    fn commands(properties: &str) -> ScriptTask {
        task("shell.Commands", properties)
    }

    fn violations_of(class: &str, properties: &str) -> Vec<String> {
        let found = parse_flow(&source(class, properties)).unwrap_err();
        found.iter().map(ToString::to_string).collect()
    }

    fn violations(properties: &str) -> Vec<String> {
        violations_of("shell.Commands", properties)
    }

    #[test]
    fn defaults_are_kestras() {
        let task = commands("    commands:\n      - echo hi\n");
        assert_eq!(task.body, Body::Commands(vec!["echo hi".into()]));
        assert_eq!(task.language, Language::Shell);
        assert_eq!(task.interpreter, ["/bin/sh", "-c"]);
        assert!(task.fail_fast && task.warning_on_stderr);
        assert!(task.env.is_empty() && task.before_commands.is_empty());
        assert!(task.output_files.is_empty() && task.ignored.is_empty());
    }

    #[test]
    fn every_property_is_read() {
        let task = commands(concat!(
            "    commands: [\"echo {{ 1 }}\", 'exit 0']\n",
            "    beforeCommands: [set -x]\n",
            "    env:\n      TOKEN: \"{{ secret('T') }}\"\n      PORT: 8080\n",
            "    interpreter: [/bin/bash, -e, -c]\n",
            "    failFast: false\n",
            "    outputFiles: [\"*.txt\", out/data.json]\n",
            "    inputFiles:\n      in.txt: hello\n",
            "    warningOnStdErr: false\n",
        ));
        assert_eq!(
            task.body,
            Body::Commands(vec!["echo {{ 1 }}".into(), "exit 0".into()])
        );
        assert_eq!(task.before_commands, ["set -x"]);
        assert_eq!(
            task.env,
            [
                ("TOKEN".to_owned(), "{{ secret('T') }}".to_owned()),
                ("PORT".to_owned(), "8080".to_owned())
            ]
        );
        assert_eq!(task.interpreter, ["/bin/bash", "-e", "-c"]);
        assert!(!task.fail_fast && !task.warning_on_stderr);
        assert_eq!(task.output_files, ["*.txt", "out/data.json"]);
        assert_eq!(
            task.input_files,
            [("in.txt".to_owned(), "hello".to_owned())]
        );
    }

    #[test]
    fn one_command_may_be_written_as_a_text() {
        assert_eq!(
            commands("    commands: echo hi\n").body,
            Body::Commands(vec!["echo hi".into()])
        );
    }

    #[test]
    fn container_settings_are_noted_but_the_process_runner_is_not() {
        let task = commands(concat!(
            "    commands: [true]\n    containerImage: ubuntu\n",
            "    taskRunner:\n      type: io.kestra.plugin.scripts.runner.docker.Docker\n",
        ));
        let names: Vec<&str> = task.ignored.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, ["containerImage", "taskRunner"]);
        let task = commands(concat!(
            "    commands: [true]\n    runner: PROCESS\n",
            "    taskRunner:\n      type: io.kestra.plugin.core.runner.Process\n",
        ));
        assert!(task.ignored.is_empty(), "{:?}", task.ignored);
    }

    #[test]
    fn commands_must_be_there_and_be_texts() {
        assert_eq!(violations(""), ["4:5: tasks[0].commands: must not be null"]);
        assert_eq!(
            violations("    commands: [a, [b]]\n    env: [x]\n    failFast: sometimes\n"),
            [
                "6:19: tasks[0].commands[1]: must be a string",
                "7:10: tasks[0].env: must be a map",
                "8:15: tasks[0].failFast: must be a boolean",
            ]
        );
        assert_eq!(
            violations("    commands: [a]\n    env:\n      A: [1]\n"),
            ["8:10: tasks[0].env.A: must be a string"]
        );
    }

    #[test]
    fn unknown_properties_name_the_class() {
        assert_eq!(
            violations("    commands: [a]\n    script: b\n"),
            [
                "7:5: Unrecognized field \"script\" (class io.kestra.plugin.scripts.shell.Commands), not marked as ignorable"
            ]
        );
    }

    #[test]
    fn each_language_has_a_commands_and_a_script_type() {
        for (plugin, language) in [
            ("shell", Language::Shell),
            ("python", Language::Python),
            ("node", Language::Node),
        ] {
            let script = task(&format!("{plugin}.Script"), "    script: print(1)\n");
            assert_eq!(script.language, language);
            assert_eq!(script.body, Body::Script("print(1)".into()));
            let commands = task(&format!("{plugin}.Commands"), "    commands: [x]\n");
            assert_eq!(commands.language, language);
            assert_eq!(commands.body, Body::Commands(vec!["x".into()]));
        }
    }

    #[test]
    fn a_script_must_be_there_and_commands_are_not_its_property() {
        assert_eq!(
            violations_of("python.Script", ""),
            ["4:5: tasks[0].script: must not be null"]
        );
        assert_eq!(
            violations_of("node.Script", "    script: x\n    commands: [y]\n"),
            [
                "7:5: Unrecognized field \"commands\" (class io.kestra.plugin.scripts.node.Script), not marked as ignorable"
            ]
        );
    }

    #[test]
    fn python_package_properties_are_noted_with_their_reason() {
        let task = task(
            "python.Script",
            "    script: x\n    dependencies: [requests]\n    containerImage: python:3.12\n",
        );
        let names: Vec<&str> = task.ignored.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, ["containerImage", "dependencies"]);
        assert!(task.ignored[1].1.contains("installs no packages"));
        assert_eq!(
            violations_of("shell.Script", "    script: x\n    dependencies: [a]\n")[0],
            "7:5: Unrecognized field \"dependencies\" (class io.kestra.plugin.scripts.shell.Script), not marked as ignorable"
        );
    }
}
