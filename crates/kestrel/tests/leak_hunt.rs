//! The leak hunt: secrets of every awkward kind (4 characters, 64 KiB, unicode, multi-line,
//! JSON with string and number leaves, URL-special characters, a common word, a webhook key)
//! pushed through every channel a person or a program can read, and each channel searched
//! for every value and every encoded form of it. One test per group of channels, so that a
//! failure names where a value escaped; a finding names the channel, the secret's label and
//! the form, never the value.

#![allow(clippy::unwrap_used)] // Test code: a failure is a failed test.

#[path = "util/mod.rs"]
mod util;

#[path = "leak_hunt/mod.rs"]
mod hunt;

use hunt::flows;
use hunt::http::echo_server;
use hunt::leftovers::{Leftovers, marker};
use hunt::procs::{self, Guard};
use hunt::scan::Collected;
use hunt::secrets::{Needle, Secret, catalogue, needles, value_of};
use hunt::served::served;
use std::time::Duration;
use util::{Invocation, Sandbox};

/// A master key given to `kestrel run` (base64 of the bytes 0 to 31), found nowhere either.
const MASTER_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// How long a run may take before the test gives up on it.
const RUN_LIMIT: Duration = Duration::from_secs(90);

/// `SECRET_*` variables of every catalogued secret.
fn secret_env(secrets: &[Secret]) -> Vec<(String, String)> {
    secrets.iter().map(Secret::env).collect()
}

/// `kestrel ARGS` in `sandbox`, with `TMPDIR` its `tmp` and every secret in its environment.
fn with_secrets(sandbox: &Sandbox, args: &[&str], secrets: &[Secret]) -> Invocation {
    let mut invocation = sandbox.kestrel(args).env("TMPDIR", sandbox.path("tmp"));
    for (name, value) in secret_env(secrets) {
        invocation = invocation.env(&name, value);
    }
    invocation
}

/// Runs `kestrel ARGS` in `sandbox` with the secrets in its environment; keeps both streams.
fn kestrel(sandbox: &Sandbox, args: &[&str], secrets: &[Secret], seen: &mut Collected) {
    let out = with_secrets(sandbox, args, secrets).output();
    let what = args.join(" ");
    if args.contains(&"json") {
        seen.json(format!("kestrel {what} stdout"), out.stdout);
    } else {
        seen.plain(format!("kestrel {what} stdout"), out.stdout);
    }
    seen.plain(format!("kestrel {what} stderr"), out.stderr);
}

fn render_template(key: &str) -> String {
    format!(
        "{{{{ secret('{key}') }}}} {{{{ secret('{key}') | base64encode }}}} {{{{ secret('{key}') | urlencode }}}} {{{{ secret('{key}') | toJson }}}} {{{{ secret('{key}') | upper }}}}"
    )
}

#[test]
fn cli_run_render_and_config_show_no_secret() {
    let secrets = catalogue();
    let sandbox = Sandbox::new();
    std::fs::create_dir(sandbox.path("tmp")).unwrap();
    sandbox.write("note.txt", value_of(&secrets, "WORD"));
    sandbox.write("everything.yml", &flows::everything("dev"));
    sandbox.write("calls.yml", &flows::calls("dev", &echo_server()));
    sandbox.write("failing.yml", &flows::failing("dev"));
    let mut seen = Collected::default();
    for output in ["text", "json"] {
        let args = [
            "run",
            "everything.yml",
            "--input",
            "note=@note.txt",
            "--output",
            output,
        ];
        kestrel(&sandbox, &args, &secrets, &mut seen);
        for flow in ["calls.yml", "failing.yml"] {
            let args = ["run", flow, "--output", output];
            kestrel(&sandbox, &args, &secrets, &mut seen);
        }
    }
    for secret in secrets.iter().filter(|secret| secret.key != "BIG") {
        let template = render_template(secret.key);
        kestrel(&sandbox, &["render", &template], &secrets, &mut seen);
    }
    for other in [
        "{{ secret('BIG') }}",
        "{{ secret('NOPE_' ~ secret('WORD')) }}",
        "{{ secret('URLISH') | number }}",
    ] {
        kestrel(&sandbox, &["render", other], &secrets, &mut seen);
    }
    for (name, config) in configs(&secrets) {
        sandbox.write(name, &config);
        kestrel(&sandbox, &["config", "--config", name], &secrets, &mut seen);
    }
    seen.assert_no_secret("kestrel run, render and config", &needles(&secrets));
}

/// Configuration files holding secret values where people write credentials: a database
/// URL's userinfo and `?password=`, a Vault address's userinfo, and values of the wrong type.
fn configs(secrets: &[Secret]) -> Vec<(&'static str, String)> {
    let bank: serde_json::Value = serde_json::from_str(value_of(secrets, "BANK")).unwrap();
    let first_line = value_of(secrets, "MULTI").lines().next().unwrap();
    let password = bank["password"].as_str().unwrap();
    vec![
        (
            "credentials.yml",
            format!(
                "database: \"postgres://svc:{}@db.internal:5432/k?password={first_line}&sslmode=require\"\nsecret:\n  vault:\n    address: \"http://ops:{password}@vault.internal:8200\"\n",
                value_of(secrets, "WORD")
            ),
        ),
        (
            "wrong-type.yml",
            format!("worker:\n  threads: {}\n", value_of(secrets, "WORD")),
        ),
        (
            "wrong-type-quoted.yml",
            format!("expression:\n  fuel: \"{password}\"\n"),
        ),
    ]
}

#[test]
fn server_api_and_event_streams_show_no_secret() {
    let served = served();
    assert!(served.api_gaps.is_empty(), "{:#?}", served.api_gaps);
    served
        .api
        .assert_no_secret("REST API and Server-Sent Events", &needles(&catalogue()));
}

#[test]
fn ui_pages_and_the_server_log_show_no_secret() {
    let served = served();
    assert!(served.ui_gaps.is_empty(), "{:#?}", served.ui_gaps);
    let mut seen = Collected::default();
    seen.extend_from(&served.ui);
    seen.extend_from(&served.log);
    seen.assert_no_secret("UI pages and the server's log", &needles(&catalogue()));
}

#[test]
fn stored_rows_hold_no_secret() {
    let served = served();
    served.store.assert_no_secret(
        "database rows and `kestrel secrets`",
        &needles(&catalogue()),
    );
}

/// While a task waits, kestrel's process and every process under it: argument vectors, and
/// environments where the process lets a reader of the same user see them. When the test
/// runs as root (which sees everything), kestrel runs as an unprivileged user and that user
/// reads.
#[cfg(target_os = "linux")]
#[test]
fn the_process_tree_shows_no_secret_while_a_task_runs() {
    let secrets = catalogue();
    let sandbox = Sandbox::new();
    let marker = marker("process-tree");
    let mut invocation =
        waiting_run(&sandbox, &secrets, &marker, "").env("KESTREL_MASTER_KEY", MASTER_KEY);
    let marks = sandbox.path("marks");
    let mut command = if procs::is_root() {
        procs::give_to_nobody(&sandbox.path(""));
        procs::as_nobody(invocation.command())
    } else {
        // The invocation's own command, taken out of it to be spawned as it is.
        std::mem::replace(invocation.command(), std::process::Command::new("true"))
    };
    let mut run = Guard::spawn(&mut command);
    assert!(
        procs::wait_for_file(&marks.join("started"), RUN_LIMIT),
        "the task never started (exit {:?})",
        run.wait(Duration::from_secs(5)).map(|output| output.status)
    );
    let mut seen = Collected::default();
    let environments = procs::read_tree(run.pid(), "kestrel run", &mut seen);
    std::fs::write(marks.join("ok"), "").unwrap();
    std::fs::write(marks.join("go"), "").unwrap();
    let ended = run.wait(RUN_LIMIT).expect("the run ends once released");
    procs::left_running(&marker, Duration::from_secs(3));
    assert!(seen.len() >= 2, "no process of the tree was read");
    seen.extend_from(&served().processes);
    let mut needles = needles(&secrets);
    needles.push(Needle {
        label: "KESTREL_MASTER_KEY",
        form: "raw".to_owned(),
        text: MASTER_KEY.to_owned(),
    });
    seen.assert_no_secret(
        &format!("process trees ({environments} environments of kestrel run's readable)"),
        &needles,
    );
    // Its streams are not shown: they may hold what this test hunts for.
    assert_eq!(ended.status.code(), Some(0), "the released run failed");
}

/// `kestrel run` of the waiting flow (`flows::waiting`, `extra` added to its task) in
/// `sandbox`, its marks and temporary directories created, with every secret.
fn waiting_run(sandbox: &Sandbox, secrets: &[Secret], marker: &str, extra: &str) -> Invocation {
    let marks = sandbox.path("marks");
    std::fs::create_dir(&marks).unwrap();
    std::fs::create_dir(sandbox.path("tmp")).unwrap();
    let flow = flows::waiting(
        "dev",
        "waiting",
        &marks.display().to_string(),
        marker,
        extra,
    );
    sandbox.write("flow.yml", &flow);
    with_secrets(sandbox, &["run", "flow.yml", "--output", "json"], secrets)
}

/// Each way a run can end, what it does to the waiting task.
#[derive(Clone, Copy, Debug)]
enum End {
    Success,
    Failure,
    Timeout,
    Signal(&'static str),
}

/// After every way a run ends (and a kill through the API, in the served hunt): nothing left
/// in `TMPDIR`, no secret in the data directory's files, no task process left running.
#[cfg(target_os = "linux")]
#[test]
fn no_leftovers_after_any_end_of_a_run() {
    let ends = [
        End::Success,
        End::Failure,
        End::Timeout,
        End::Signal("TERM"),
        End::Signal("INT"),
        End::Signal("HUP"),
    ];
    let mut leftovers = Leftovers::default();
    let results: Vec<Leftovers> = std::thread::scope(|scope| {
        let runs: Vec<_> = ends
            .iter()
            .map(|end| scope.spawn(|| end_a_run(*end)))
            .collect();
        runs.into_iter().map(|run| run.join().unwrap()).collect()
    });
    for result in results {
        leftovers.extend(result);
    }
    let served = served();
    leftovers
        .problems
        .extend(served.leftovers.problems.iter().cloned());
    leftovers.files.extend_from(&served.leftovers.files);
    assert!(leftovers.problems.is_empty(), "{:#?}", leftovers.problems);
    leftovers
        .files
        .assert_no_secret("files left after a run", &needles(&catalogue()));
}

/// One run of the waiting flow ended as `end` says; what it left.
fn end_a_run(end: End) -> Leftovers {
    let secrets = catalogue();
    let sandbox = Sandbox::new();
    let how = format!("{end:?}");
    let marker = marker(&how.replace(['(', ')', '"'], ""));
    let extra = match end {
        End::Timeout => "    timeout: PT2S\n",
        _ => "",
    };
    let mut invocation = waiting_run(&sandbox, &secrets, &marker, extra);
    let (marks, tmp) = (sandbox.path("marks"), sandbox.path("tmp"));
    let mut run = Guard::spawn(invocation.command());
    let mut leftovers = Leftovers::default();
    // A timeout may end the task before it wrote its mark: nothing to wait for then.
    let started =
        matches!(end, End::Timeout) || procs::wait_for_file(&marks.join("started"), RUN_LIMIT);
    match end {
        End::Success => {
            std::fs::write(marks.join("ok"), "").unwrap();
            std::fs::write(marks.join("go"), "").unwrap();
        }
        End::Failure => std::fs::write(marks.join("go"), "").unwrap(),
        End::Timeout => {}
        End::Signal(signal) => procs::signal(run.pid(), signal),
    }
    match run.wait(RUN_LIMIT) {
        Some(output) => {
            leftovers.files.json(
                format!("run stdout after {how}"),
                String::from_utf8_lossy(&output.stdout),
            );
            leftovers.files.plain(
                format!("run stderr after {how}"),
                String::from_utf8_lossy(&output.stderr),
            );
        }
        None => leftovers
            .problems
            .push(format!("{how}: the run did not end")),
    }
    if !started {
        leftovers
            .problems
            .push(format!("{how}: the task never started"));
    }
    leftovers.check(&how, &tmp, &sandbox.path("data"), &marker);
    leftovers
}
