//! `io.kestra.plugin.scripts.shell.Commands`: its properties, read into [`ShellCommands`].

use super::read::{text_map, texts};
use crate::TaskKind;
use crate::context::{Ctx, Props};

/// Kestra's class name of the task.
pub(crate) const CLASS: &str = "io.kestra.plugin.scripts.shell.Commands";

/// The properties of the task. `containerImage`, `taskRunner`, `docker` and `runner` choose
/// where Kestra runs the commands; kestrel always runs them on the host and only notes them.
pub(crate) const PROPERTIES: &[&str] = &[
    "commands",
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
];

/// The task runner that runs commands on the host, as kestrel does: naming it is no warning.
const PROCESS_RUNNER: &str = "io.kestra.plugin.core.runner.Process";

/// The shell (or other interpreter) commands of a `Commands` task, templates unrendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellCommands {
    /// `commands`, each a template; run in order from one script file.
    pub commands: Vec<String>,
    /// `beforeCommands`, run before `commands` in the same script.
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
    /// Properties set that choose a container or a runner kestrel does not use
    /// (`containerImage`...), in source order, to warn about when the task runs.
    pub ignored: Vec<String>,
}

/// Builds a `Commands` task.
pub(crate) fn build(ctx: &mut Ctx<'_>, props: &Props<'_>) -> Option<TaskKind> {
    let commands = texts(ctx, props, "commands");
    if props.get("commands").is_none() {
        props.missing(ctx, "commands");
    }
    let before_commands = texts(ctx, props, "beforeCommands");
    let env = text_map(ctx, props, "env");
    let interpreter = texts(ctx, props, "interpreter");
    let fail_fast = props.flag(ctx, "failFast");
    let output_files = texts(ctx, props, "outputFiles");
    let input_files = text_map(ctx, props, "inputFiles");
    let warning_on_stderr = props.flag(ctx, "warningOnStdErr");
    let ignored = ignored(props);
    Some(TaskKind::Commands(Box::new(ShellCommands {
        commands: commands?,
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

/// The container and runner properties set, but a `taskRunner` of type Process or a
/// `runner: PROCESS`, which say what kestrel does anyway.
fn ignored(props: &Props<'_>) -> Vec<String> {
    let on_host = |key: &str| match props.json(key) {
        Some(serde_json::Value::Object(runner)) => {
            runner.get("type").and_then(serde_json::Value::as_str) == Some(PROCESS_RUNNER)
        }
        Some(serde_json::Value::String(runner)) => runner == "PROCESS",
        _ => false,
    };
    ["containerImage", "taskRunner", "docker", "runner"]
        .into_iter()
        .filter(|key| props.get(key).is_some() && !on_host(key))
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::ShellCommands;
    use crate::{TaskKind, parse_flow};

    fn commands(properties: &str) -> ShellCommands {
        let source = format!(
            "id: f\nnamespace: dev\ntasks:\n  - id: t\n    type: io.kestra.plugin.scripts.shell.Commands\n{properties}"
        );
        match parse_flow(&source).unwrap().tasks.remove(0).kind {
            TaskKind::Commands(commands) => *commands,
            _ => panic!("not a Commands task"),
        }
    }

    fn violations(properties: &str) -> Vec<String> {
        let source = format!(
            "id: f\nnamespace: dev\ntasks:\n  - id: t\n    type: io.kestra.plugin.scripts.shell.Commands\n{properties}"
        );
        let found = parse_flow(&source).unwrap_err();
        found.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn defaults_are_kestras() {
        let task = commands("    commands:\n      - echo hi\n");
        assert_eq!(task.commands, ["echo hi"]);
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
        assert_eq!(task.commands, ["echo {{ 1 }}", "exit 0"]);
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
        assert_eq!(commands("    commands: echo hi\n").commands, ["echo hi"]);
    }

    #[test]
    fn container_settings_are_noted_but_the_process_runner_is_not() {
        let task = commands(concat!(
            "    commands: [true]\n    containerImage: ubuntu\n",
            "    taskRunner:\n      type: io.kestra.plugin.scripts.runner.docker.Docker\n",
        ));
        assert_eq!(task.ignored, ["containerImage", "taskRunner"]);
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
}
