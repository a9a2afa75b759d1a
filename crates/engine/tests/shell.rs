//! `io.kestra.plugin.scripts.shell.Commands` run by the engine: secrets stay masked and out
//! of every process's arguments, Kestra's line protocol, exit codes, the process group and
//! the working directory.

mod common;

use base64::Engine as _;
use common::{Lines, MASK, engine, flow, messages, readable, run, run_with};
use kestrel_engine::{CancelToken, Execution, MetricKind, MetricValue, State};
use kestrel_flow::Level;
use serde_json::json;
use std::path::PathBuf;
use std::time::Duration;

/// A Commands task `sh` with the YAML `properties` (indented by four).
fn shell(properties: &str) -> String {
    format!("  - id: sh\n    type: io.kestra.plugin.scripts.shell.Commands\n{properties}")
}

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

const TOKEN: &str = "s3cr3t-T0ken-value";

#[test]
fn a_secret_passed_through_env_is_masked_however_the_script_prints_it() {
    let execution = run(
        &flow(&shell(concat!(
            "    env:\n      TOKEN: \"{{ secret('API_TOKEN') }}\"\n",
            "    commands:\n",
            "      - echo \"token=$TOKEN\"\n",
            "      - printf '%s' \"$TOKEN\" | base64\n",
            "      - echo \"$TOKEN\" >&2\n",
        ))),
        &[("API_TOKEN", TOKEN)],
    );
    assert_eq!(execution.state, State::Success, "{execution:?}");
    // stdout and stderr are two pipes read side by side: only the order within each is fixed.
    let logged = |level: Level| -> Vec<String> {
        let entries = execution.logs.iter();
        let entries = entries.filter(|entry| entry.task_id == "sh" && entry.level == level);
        entries.map(|entry| entry.message.clone()).collect()
    };
    assert_eq!(
        logged(Level::Info),
        [format!("token={MASK}"), MASK.to_owned()]
    );
    assert_eq!(logged(Level::Warn), [MASK]);
    let seen = readable(&execution);
    assert!(
        !seen.contains(TOKEN) && !seen.contains(&b64(TOKEN)),
        "{seen}"
    );
}

#[test]
fn each_line_of_a_multi_line_secret_is_masked_and_so_is_its_base64() {
    let secret = "first-line-of-key\nsecond-line-of-key\nthird-line-of-key";
    let execution = run(
        &flow(&shell(concat!(
            "    env:\n      KEY: \"{{ secret('KEY') }}\"\n",
            "    commands:\n",
            "      - printf '%s\\n' \"$KEY\"\n",
            "      - printf '%s\\n' \"$KEY\" | while IFS= read -r line; do echo \"line $line\"; done\n",
            "      - printf '%s' \"$KEY\" | base64 -w0; echo\n",
            "      - printf '%s' \"$KEY\" | base64\n",
            "      - echo \"$KEY\" | base64 -w0; echo\n",
        ))),
        &[("KEY", secret)],
    );
    assert_eq!(execution.state, State::Success, "{execution:?}");
    let seen = readable(&execution);
    for line in secret.lines() {
        assert!(!seen.contains(line), "{line} shows in {seen}");
    }
    assert!(!seen.contains(&b64(secret)), "{seen}");
    let logged = messages(&execution, "sh");
    assert_eq!(
        logged[..6],
        [
            MASK,
            MASK,
            MASK,
            "line ******",
            "line ******",
            "line ******"
        ]
    );
    assert_eq!(logged[6..8], [MASK, MASK]);
    // `echo` adds a line break: only its own encoding is left (`Cg==`).
    assert_eq!(logged[8], format!("{MASK}Cg=="));
}

/// Every process's arguments on this machine, as one text per process.
fn every_cmdline() -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|entry| {
            entry
                .file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|entry| std::fs::read(entry.path().join("cmdline")).ok())
        .map(|bytes| String::from_utf8_lossy(&bytes).replace('\0', " "))
        .collect()
}

#[test]
fn the_secret_is_in_no_process_arguments_while_the_commands_run() {
    let dir = tempfile::tempdir().unwrap();
    let go = dir.path().join("go");
    let yaml = flow(&shell(&format!(
        concat!(
            "    env:\n      TOKEN: \"{{{{ secret('API_TOKEN') }}}}\"\n",
            "    commands:\n",
            // The secret is in the commands themselves too: were they an argument of the
            // interpreter, its command line would show it for as long as the script runs.
            "      - echo \"ready $TOKEN {{{{ secret('API_TOKEN') }}}}\"\n",
            "      - while [ ! -e '{go}' ]; do sleep 0.05; done\n",
        ),
        go = go.display()
    )));
    // The script waits for the scan: the interpreter and its `sleep` children are running.
    let engine = engine(&[("API_TOKEN", TOKEN)]);
    let (lines, received) = Lines::new();
    let scan = std::thread::spawn(move || {
        let first = received.recv_timeout(Duration::from_secs(60)).unwrap();
        assert_eq!(first, format!("ready {MASK} {MASK}"));
        let cmdlines = every_cmdline();
        std::fs::write(go, "").unwrap();
        cmdlines
    });
    let execution = run_with(&engine, &yaml, &lines, &CancelToken::new());
    let cmdlines = scan.join().unwrap();
    assert_eq!(execution.state, State::Success, "{execution:?}");
    assert!(
        cmdlines
            .iter()
            .any(|line| line.starts_with("/bin/sh /proc/self/fd/")),
        "the interpreter was running: {cmdlines:?}"
    );
    for line in &cmdlines {
        assert!(!line.contains(TOKEN), "a process shows the secret: {line}");
    }
}

#[test]
fn a_non_zero_exit_fails_the_task_with_its_code() {
    let execution = run(
        &flow(&shell(
            "    commands:\n      - echo before\n      - exit 3\n",
        )),
        &[],
    );
    assert_eq!(execution.state, State::Failed);
    let run = &execution.task_runs[0];
    assert_eq!(
        run.error.as_deref(),
        Some("Command failed with exit code 3")
    );
    assert_eq!(run.outputs["exitCode"], 3);
    assert_eq!(
        messages(&execution, "sh"),
        ["before", "Command failed with exit code 3"]
    );
}

#[test]
fn outputs_lines_become_vars_that_later_tasks_read() {
    let execution = run(
        &flow(&format!(
            "{}  - id: use\n    type: io.kestra.plugin.core.log.Log\n    message: \"{{{{ outputs.sh.vars.x }}}} {{{{ outputs.sh.vars.y.z }}}} {{{{ outputs.sh.exitCode }}}}\"\n",
            shell(concat!(
                "    commands:\n",
                "      - echo '::{\"outputs\":{\"x\":1,\"y\":{\"z\":\"a\"}}}::'\n",
                "      - echo '::{\"outputs\":{\"x\":2}}::'\n",
            ))
        )),
        &[],
    );
    assert_eq!(execution.state, State::Success, "{execution:?}");
    assert_eq!(
        execution.task_runs[0].outputs["vars"],
        json!({"x": 2, "y": {"z": "a"}})
    );
    assert!(
        messages(&execution, "sh").is_empty(),
        "protocol lines are not logged"
    );
    assert_eq!(messages(&execution, "use"), ["2 a 0"]);
}

#[test]
fn a_secret_in_an_output_is_masked_for_readers_but_real_for_later_tasks() {
    let execution = run(
        &flow(&format!(
            "{}  - id: use\n    type: io.kestra.plugin.core.log.Log\n    message: \"{{{{ outputs.sh.vars.t | length }}}}\"\n",
            shell(concat!(
                "    env:\n      TOKEN: \"{{ secret('API_TOKEN') }}\"\n",
                "    commands:\n      - echo \"::{\\\"outputs\\\":{\\\"t\\\":\\\"$TOKEN\\\"}}::\"\n",
            ))
        )),
        &[("API_TOKEN", TOKEN)],
    );
    assert_eq!(execution.state, State::Success, "{execution:?}");
    assert_eq!(execution.task_runs[0].outputs["vars"]["t"], MASK);
    assert_eq!(messages(&execution, "use"), [TOKEN.len().to_string()]);
}

#[test]
fn metrics_lines_are_recorded_with_masked_tags() {
    let execution = run(
        &flow(&shell(concat!(
            "    env:\n      TOKEN: \"{{ secret('API_TOKEN') }}\"\n",
            "    commands:\n",
            "      - echo \"::{\\\"metrics\\\":[{\\\"name\\\":\\\"rows\\\",\\\"type\\\":\\\"counter\\\",\\\"value\\\":5,\\\"tags\\\":{\\\"who\\\":\\\"$TOKEN\\\"}},{\\\"name\\\":\\\"took\\\",\\\"type\\\":\\\"timer\\\",\\\"value\\\":0.5}]}::\"\n",
            "      - echo '::{\"metrics\":[{\"name\":\"bad\",\"type\":\"histogram\",\"value\":1}]}::'\n",
        ))),
        &[("API_TOKEN", TOKEN)],
    );
    assert_eq!(execution.state, State::Success, "{execution:?}");
    let metrics = &execution.task_runs[0].metrics;
    assert_eq!(metrics.len(), 2, "{metrics:?}");
    assert_eq!(
        (metrics[0].name.as_str(), metrics[0].kind, metrics[0].value),
        ("rows", MetricKind::Counter, MetricValue::Number(5.0))
    );
    assert_eq!(metrics[0].tags["who"], MASK);
    assert_eq!(
        (metrics[1].kind, metrics[1].value),
        (MetricKind::Timer, MetricValue::Number(0.5))
    );
    let logged = messages(&execution, "sh");
    assert_eq!(logged.len(), 1);
    assert!(
        logged[0].starts_with("Ignored an unreadable metric"),
        "{logged:?}"
    );
}

#[test]
fn logs_lines_become_entries_at_their_level() {
    let execution = run(
        &flow(&shell(
            "    commands:\n      - echo '::{\"logs\":[{\"level\":\"ERROR\",\"message\":\"bad\"},{\"level\":\"debug\",\"message\":\"detail\"},{\"message\":\"plain\"}]}::'\n",
        )),
        &[],
    );
    let entries: Vec<(Level, &str)> = execution
        .logs
        .iter()
        .map(|entry| (entry.level, entry.message.as_str()))
        .collect();
    assert_eq!(
        entries,
        [
            (Level::Error, "bad"),
            (Level::Debug, "detail"),
            (Level::Info, "plain")
        ]
    );
    assert_eq!(
        execution.state,
        State::Success,
        "an ERROR entry does not fail the task"
    );
}

#[test]
fn a_line_that_only_looks_like_the_protocol_stays_text() {
    let execution = run(
        &flow(&shell(
            "    commands:\n      - echo '::{not json}::'\n      - echo '::{\"a\":'\n",
        )),
        &[],
    );
    assert_eq!(messages(&execution, "sh"), ["::{not json}::", "::{\"a\":"]);
}

#[test]
fn stderr_is_logged_at_warn_unless_told_otherwise() {
    // The two streams are read side by side: entries are sorted, their order is not pinned.
    let levels = |properties: &str| {
        let execution = run(&flow(&shell(properties)), &[]);
        let mut levels: Vec<(String, Level)> = execution
            .logs
            .iter()
            .map(|entry| (entry.message.clone(), entry.level))
            .collect();
        levels.sort();
        levels
    };
    let commands = "    commands:\n      - echo out\n      - echo err >&2\n";
    assert_eq!(
        levels(commands),
        [
            ("err".to_owned(), Level::Warn),
            ("out".to_owned(), Level::Info)
        ]
    );
    assert_eq!(
        levels(&format!("{commands}    warningOnStdErr: false\n")),
        [
            ("err".to_owned(), Level::Info),
            ("out".to_owned(), Level::Info)
        ]
    );
}

#[test]
fn fail_fast_stops_at_the_first_failing_command() {
    let commands = "    commands:\n      - \"false\"\n      - echo after\n";
    let execution = run(&flow(&shell(commands)), &[]);
    assert_eq!(execution.state, State::Failed);
    assert_eq!(
        messages(&execution, "sh"),
        ["Command failed with exit code 1"]
    );
    let execution = run(
        &flow(&shell(&format!("{commands}    failFast: false\n"))),
        &[],
    );
    assert_eq!(execution.state, State::Success);
    assert_eq!(messages(&execution, "sh"), ["after"]);
}

#[test]
fn before_commands_run_first_in_the_same_shell() {
    let execution = run(
        &flow(&shell(
            "    beforeCommands:\n      - GREETING=hello\n    commands:\n      - echo \"$GREETING world\"\n",
        )),
        &[],
    );
    assert_eq!(messages(&execution, "sh"), ["hello world"]);
}

#[test]
fn the_interpreter_is_the_one_asked_for() {
    let execution = run(
        &flow(&shell(
            "    interpreter: [/bin/bash, -c]\n    commands:\n      - echo \"${BASH_VERSION:+bash}\"\n",
        )),
        &[],
    );
    assert_eq!(messages(&execution, "sh"), ["bash"]);
}

#[test]
fn an_interpreter_holding_a_secret_is_refused() {
    let execution = run(
        &flow(&shell(
            "    interpreter: [/bin/sh, \"-c\", \"{{ secret('API_TOKEN') }}\"]\n    commands: [\"true\"]\n",
        )),
        &[("API_TOKEN", TOKEN)],
    );
    assert_eq!(execution.state, State::Failed);
    let error = execution.task_runs[0].error.clone().unwrap();
    assert!(
        error.starts_with("interpreter: must not hold a secret"),
        "{error}"
    );
}

/// Output files go to the internal storage (tests/storage.rs of the CLI collects them): an
/// engine without one fails the task run, naming it, once its commands ran.
#[test]
fn output_files_need_the_internal_storage() {
    let execution = run(
        &flow(&shell(concat!(
            "    inputFiles:\n      in.txt: \"{{ 6 * 7 }}\"\n",
            "    outputFiles: [\"*.csv\", out/result.json]\n",
            "    commands:\n",
            "      - mkdir out && echo '{\"n\":1}' > out/result.json\n",
            "      - printf 'a,b\\n' > data.csv && cat in.txt\n",
        ))),
        &[],
    );
    assert_eq!(execution.state, State::Failed, "{execution:?}");
    assert_eq!(messages(&execution, "sh")[0], "42");
    assert_eq!(
        execution.task_runs[0].error.as_deref(),
        Some("this task needs the internal storage, which this engine does not have")
    );
}

/// The working directory a task printed (`pwd` as its first line).
fn printed_dir(execution: &Execution) -> PathBuf {
    PathBuf::from(&messages(execution, "sh")[0])
}

#[test]
fn the_working_directory_is_private_and_removed_after_the_task() {
    let execution = run(
        &flow(&shell("    commands:\n      - pwd\n      - stat -c %a .\n")),
        &[],
    );
    assert_eq!(execution.state, State::Success, "{execution:?}");
    let dir = printed_dir(&execution);
    assert_eq!(messages(&execution, "sh")[1], "700");
    assert!(dir.is_absolute() && !dir.exists(), "{dir:?} is left behind");
    let failed = run(
        &flow(&shell("    commands:\n      - pwd\n      - exit 1\n")),
        &[],
    );
    assert!(!printed_dir(&failed).exists());
}

#[test]
fn container_settings_are_ignored_with_a_warning() {
    let execution = run(
        &flow(&shell(
            "    containerImage: ubuntu:22.04\n    commands:\n      - echo ran\n",
        )),
        &[],
    );
    assert_eq!(execution.state, State::Success);
    assert_eq!(execution.logs[0].level, Level::Warn);
    assert_eq!(
        execution.logs[0].message,
        "containerImage is ignored: kestrel runs the commands on this host, without a container"
    );
    assert_eq!(messages(&execution, "sh")[1], "ran");
}

/// A duration for `sleep` that no other process of the machine uses: the test finds its
/// background job by it, from outside the task's PID namespace.
fn marker(test: u32) -> String {
    format!("600.{}{test}", std::process::id())
}

/// Commands that start `sleep <marker>` in the background and go on once it runs.
fn background(marker: &str) -> String {
    format!(
        "      - sleep {marker} >/dev/null 2>&1 &\n      - until grep -q {marker} /proc/$!/cmdline 2>/dev/null; do sleep 0.01; done\n"
    )
}

/// Whether no process runs `sleep <marker>` (zombies nobody reaped yet aside) within a
/// minute.
fn ends(marker: &str) -> bool {
    let running = || {
        let wanted = format!("sleep\0{marker}\0");
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .any(|entry| {
                let path = entry.path();
                std::fs::read(path.join("cmdline")).is_ok_and(|line| line == wanted.as_bytes())
                    && std::fs::read_to_string(path.join("stat"))
                        .is_ok_and(|stat| !stat.contains(") Z "))
            })
    };
    (0..3000).any(|_| {
        !running() || {
            std::thread::sleep(Duration::from_millis(20));
            false
        }
    })
}

/// A task that starts a background job, prints its working directory and waits forever.
fn stuck(extra: &str, marker: &str) -> String {
    flow(&shell(&format!(
        "{extra}    commands:\n{}      - pwd\n      - wait\n",
        background(marker)
    )))
}

#[test]
fn a_timeout_kills_the_whole_process_group() {
    let marker = marker(1);
    let execution = run(&stuck("    timeout: PT2S\n", &marker), &[]);
    assert_eq!(execution.state, State::Failed, "{execution:?}");
    assert!(ends(&marker), "the background job survived the timeout");
    assert!(!printed_dir(&execution).exists());
}

#[test]
fn killing_the_execution_kills_the_whole_process_group() {
    let marker = marker(2);
    let engine = engine(&[]);
    let cancel = CancelToken::new();
    let (lines, received) = Lines::new();
    let canceller = cancel.clone();
    let watcher = std::thread::spawn(move || {
        // The directory is printed once the job runs.
        let _dir = received.recv_timeout(Duration::from_secs(60)).unwrap();
        canceller.cancel();
    });
    let execution = run_with(&engine, &stuck("", &marker), &lines, &cancel);
    watcher.join().unwrap();
    assert_eq!(execution.state, State::Killed);
    assert!(ends(&marker), "the background job survived the kill");
    assert!(!printed_dir(&execution).exists());
}

#[test]
fn background_jobs_end_with_the_task() {
    let marker = marker(3);
    let execution = run(
        &flow(&shell(&format!(
            "    timeout: PT60S\n    commands:\n{}",
            background(&marker)
        ))),
        &[],
    );
    assert_eq!(execution.state, State::Success, "{execution:?}");
    assert!(ends(&marker));
}

#[test]
fn the_rendered_script_never_touches_the_disk() {
    let execution = run(
        &flow(&shell(
            "    commands:\n      - readlink \"$0\"\n      - ls -A | wc -l\n",
        )),
        &[],
    );
    assert_eq!(execution.state, State::Success, "{execution:?}");
    let logged = messages(&execution, "sh");
    assert!(logged[0].starts_with("/memfd:kestrel-script"), "{logged:?}");
    assert_eq!(logged[1], "0", "the working directory holds nothing");
}

#[test]
fn a_task_sees_only_its_own_processes() {
    let execution = run(
        &flow(&shell(&format!(
            "    commands:\n      - echo $$\n      - '[ -e /proc/{} ] || echo unseen'\n",
            std::process::id()
        ))),
        &[],
    );
    assert_eq!(messages(&execution, "sh"), ["1", "unseen"], "{execution:?}");
}

#[test]
fn an_unknown_interpreter_fails_with_its_name() {
    let execution = run(
        &flow(&shell(
            "    interpreter: [/nonexistent/shell]\n    commands: [\"true\"]\n",
        )),
        &[],
    );
    let error = execution.task_runs[0].error.clone().unwrap();
    assert!(
        error.starts_with("Cannot start the interpreter '/nonexistent/shell'"),
        "{error}"
    );
}

#[test]
fn a_last_line_without_a_line_break_is_logged_whole() {
    let execution = run(
        &flow(&shell("    commands:\n      - printf 'no newline'\n")),
        &[],
    );
    assert_eq!(messages(&execution, "sh"), ["no newline"]);
}
