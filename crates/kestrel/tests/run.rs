//! `kestrel run`: how secrets are read, masked and reported, exit statuses, and both output
//! formats.

mod util;

use util::{MASK, Sandbox, base64, log_flow, sha256};

/// Runs a flow logging the digest of secret P, with SECRET_P set to `raw`.
fn digest_of(raw: &str) -> util::Output {
    Sandbox::new().run_json(
        &log_flow("\"{{ secret('P') | sha256 }}\""),
        &[("SECRET_P", raw)],
    )
}

#[test]
fn base64_without_padding_is_accepted() {
    let out = digest_of("cGFzc3dvcmQ");
    out.assert_code(0);
    assert_eq!(out.messages(), [sha256("password")]);
}

#[test]
fn crlf_wrapped_base64_is_accepted() {
    let out = digest_of("cGFzc3\r\ndvcmQ=\r\n");
    out.assert_code(0);
    assert_eq!(out.messages(), [sha256("password")]);
}

#[test]
fn a_value_ending_in_a_newline_is_kept_with_a_warning() {
    // `echo password | base64`, without -n.
    let out = digest_of("cGFzc3dvcmQK");
    out.assert_code(0);
    assert_eq!(out.messages(), [sha256("password\n")]);
    assert!(
        out.stderr.contains("SECRET_P"),
        "the warning names it: {out:#?}"
    );
    out.assert_hides("password");
}

#[test]
fn a_64_kib_secret_is_read_and_masked() {
    let value: String = "0123456789abcdef".repeat(4096);
    let sandbox = Sandbox::new();
    let out = sandbox.run_json(
        "id: big\nnamespace: dev\ntasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n    message:\n      - \"{{ secret('BIG') }}\"\n      - \"{{ secret('BIG') | sha256 }}\"\n",
        &[("SECRET_BIG", &base64(&value))],
    );
    out.assert_code(0).assert_hides("0123456789abcdef0123");
    assert_eq!(out.messages(), [MASK.to_string(), sha256(&value)]);
}

#[test]
fn a_unicode_secret_is_masked() {
    let value = "pässwörd-🔑-秘密";
    let sandbox = Sandbox::new();
    let out = sandbox.run_json(
        "id: uni\nnamespace: dev\ntasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n    message:\n      - \"before {{ secret('U') }} after\"\n      - \"{{ secret('U') | sha256 }}\"\n",
        &[("SECRET_U", &base64(value))],
    );
    out.assert_code(0).assert_hides("pässwörd");
    assert_eq!(
        out.messages(),
        [format!("before {MASK} after"), sha256(value)]
    );
}

#[test]
fn each_line_of_a_multi_line_secret_is_masked_alone() {
    let sandbox = Sandbox::new();
    sandbox.write(
        "flow.yml",
        "id: ml\nnamespace: dev\ninputs:\n  - id: note\n    type: STRING\ntasks:\n  - id: resolve\n    type: io.kestra.plugin.core.log.Log\n    message: \"{{ secret('ML') }}\"\n  - id: echo\n    type: io.kestra.plugin.core.log.Log\n    message: \"note: {{ inputs.note }}\"\n",
    );
    let out = sandbox
        .kestrel([
            "run",
            "flow.yml",
            "--output",
            "json",
            "--input",
            "note=second line",
        ])
        .env("SECRET_ML", base64("first line\nsecond line"))
        .output();
    out.assert_code(0)
        .assert_hides("second line")
        .assert_hides("first line");
    assert_eq!(out.messages(), [MASK.to_string(), format!("note: {MASK}")]);
}

#[test]
fn a_secret_stays_masked_through_every_filter() {
    let sandbox = Sandbox::new();
    let messages = [
        "{{ secret('P') | upper }}",
        "{{ secret('P') | lower }}",
        "{{ secret('P') | replace({'word': 'WORD'}) }}",
        "{{ secret('P') | base64encode }}",
        "{{ secret('P') | urlencode }}",
        "{{ secret('P') | toJson }}",
        "{{ secret('P') | trim }}",
        "{{ secret('P') | capitalize }}",
        "{{ 'Bearer ' ~ secret('P') | base64encode }}",
        "{{ secret('J') | jq('.user') }}",
        "{{ secret('J', subkey='user') }}",
        "{{ fromJson(secret('J')).user }}",
    ];
    let list: String = messages
        .iter()
        .map(|message| format!("      - \"{message}\"\n"))
        .collect();
    let out = sandbox.run_json(
        &format!(
            "id: filters\nnamespace: dev\ntasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n    message:\n{list}"
        ),
        &[
            ("SECRET_P", &base64("  Pass word&more  ")),
            ("SECRET_J", &base64(r#"{"user": "alice-the-admin", "n": 1}"#)),
        ],
    );
    out.assert_code(0);
    let shown = out.messages();
    assert_eq!(shown.len(), messages.len(), "{out:#?}");
    for (template, message) in messages.iter().zip(&shown) {
        assert!(message.contains(MASK), "{template} gave {message:?}");
        for fragment in ["ass", "ASS", "word", "WORD", "alice", "UGFzc", "%26"] {
            assert!(!message.contains(fragment), "{template} gave {message:?}");
        }
    }
}

#[test]
fn a_secret_output_is_masked_for_readers_and_real_for_later_tasks() {
    let sandbox = Sandbox::new();
    let out = sandbox.run_json(
        "id: ret\nnamespace: dev\ntasks:\n  - id: ret\n    type: io.kestra.plugin.core.debug.Return\n    format: \"{{ secret('P') }}\"\n  - id: check\n    type: io.kestra.plugin.core.log.Log\n    message: \"{{ outputs.ret.value | sha256 }}\"\n",
        &[("SECRET_P", &base64("password"))],
    );
    out.assert_code(0).assert_hides("password");
    let doc = out.json();
    assert_eq!(doc["taskRuns"][0]["taskId"], "ret");
    assert_eq!(doc["taskRuns"][0]["outputs"]["value"], MASK);
    assert_eq!(out.messages(), [sha256("password")]);
}

#[test]
fn a_missing_secret_inside_coalescing_still_fails() {
    let sandbox = Sandbox::new();
    let out = sandbox.run_json(&log_flow("\"{{ secret('NOPE') ?? 'fallback' }}\""), &[]);
    out.assert_code(1);
    let doc = out.json();
    assert_eq!(doc["state"], "FAILED");
    let error = doc["taskRuns"][0]["error"].as_str().unwrap();
    assert!(
        error.contains("Cannot find secret for key 'NOPE'."),
        "{error}"
    );
    let last = doc["logs"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["level"], "ERROR");
    assert_eq!(last["message"], error);
}

#[test]
fn an_undecodable_secret_is_named_never_shown_and_missing() {
    let sandbox = Sandbox::new();
    let out = sandbox.run_json(
        &log_flow("\"{{ secret('TOKEN') }}\""),
        &[("SECRET_TOKEN", "not base64 at all!")],
    );
    out.assert_code(1).assert_hides("not base64 at all!");
    assert!(
        out.stderr
            .contains("Could not decode secret 'SECRET_TOKEN'"),
        "{out:#?}"
    );
    assert!(
        out.stdout.contains("Cannot find secret for key 'TOKEN'."),
        "{out:#?}"
    );
}

#[test]
fn a_failed_task_stops_the_execution() {
    let sandbox = Sandbox::new();
    let out = sandbox.run_json(
        "id: stop\nnamespace: dev\ntasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n    message: \"{{ secret('NOPE') }}\"\n  - id: b\n    type: io.kestra.plugin.core.log.Log\n    message: never\n",
        &[],
    );
    out.assert_code(1);
    let doc = out.json();
    assert_eq!(doc["taskRuns"].as_array().unwrap().len(), 1);
    assert_eq!(doc["taskRuns"][0]["state"], "FAILED");
}

#[test]
fn log_level_drops_entries_below_it_and_trace_is_kept_by_default() {
    let sandbox = Sandbox::new();
    let out = sandbox.run_json(
        "id: levels\nnamespace: dev\ntasks:\n  - id: quiet\n    type: io.kestra.plugin.core.log.Log\n    level: DEBUG\n    logLevel: INFO\n    message: dropped\n  - id: loud\n    type: io.kestra.plugin.core.log.Log\n    level: TRACE\n    message: kept\n",
        &[],
    );
    out.assert_code(0);
    let doc = out.json();
    assert_eq!(doc["logs"].as_array().unwrap().len(), 1, "{doc}");
    assert_eq!(doc["logs"][0]["taskId"], "loud");
    assert_eq!(doc["logs"][0]["level"], "TRACE");
}

#[test]
fn text_output_shows_log_lines_then_the_summary() {
    let sandbox = Sandbox::new();
    sandbox.write("flow.yml", &log_flow("\"{{ secret('P') }}\\nsecond line\""));
    let out = sandbox
        .kestrel(["run", "flow.yml"])
        .env("SECRET_P", base64("password"))
        .output();
    out.assert_code(0).assert_hides("password");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{out:#?}");
    let (time, rest) = lines[0].split_once(' ').unwrap();
    let digits: Vec<usize> = [0, 1, 3, 4, 6, 7, 9, 10, 11].to_vec();
    assert_eq!(time.len(), 12, "{time}");
    assert!(
        digits.iter().all(|&i| time.as_bytes()[i].is_ascii_digit()),
        "{time}"
    );
    assert_eq!(&time[2..3], ":");
    assert_eq!(&time[8..9], ".");
    assert_eq!(rest, format!("INFO  hello {MASK}"));
    assert_eq!(lines[1], "second line");
    let summary: Vec<&str> = lines[2].split(' ').collect();
    assert_eq!(summary.len(), 6, "{}", lines[2]);
    assert_eq!(
        (summary[0], summary[2], summary[3], summary[5]),
        ("Execution", "SUCCESS", "in", "ms")
    );
    assert!(summary[4].parse::<u64>().is_ok(), "{}", lines[2]);
    assert_eq!(summary[1].len(), 22);
    assert!(summary[1].chars().all(|c| c.is_ascii_alphanumeric()));
}

#[test]
fn a_secret_input_from_a_file_is_masked() {
    let sandbox = Sandbox::new();
    sandbox.write("pw.txt", "hunter2-secret");
    sandbox.write(
        "flow.yml",
        "id: in\nnamespace: dev\ninputs:\n  - id: pw\n    type: SECRET\ntasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n    message: \"pw={{ inputs.pw }} {{ inputs.pw | sha256 }}\"\n",
    );
    let out = sandbox
        .kestrel([
            "run",
            "flow.yml",
            "--output",
            "json",
            "--input",
            "pw=@pw.txt",
        ])
        .output();
    out.assert_code(0).assert_hides("hunter2");
    assert_eq!(
        out.messages(),
        [format!("pw={MASK} {}", sha256("hunter2-secret"))]
    );
}

#[test]
fn a_secret_input_from_stdin_is_masked() {
    let sandbox = Sandbox::new();
    sandbox.write(
        "flow.yml",
        "id: in\nnamespace: dev\ninputs:\n  - id: pw\n    type: SECRET\ntasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n    message: \"{{ inputs.pw }}\"\n",
    );
    let out = sandbox
        .kestrel(["run", "flow.yml", "--output", "json", "--input", "pw=-"])
        .stdin("from-stdin-secret")
        .output();
    out.assert_code(0).assert_hides("from-stdin-secret");
    assert_eq!(out.messages(), [MASK]);
}

/// Asserts nothing ran: exit 2, stdout empty, and a message on stderr.
fn assert_nothing_ran(out: &util::Output, expected: &str) {
    out.assert_code(2);
    assert_eq!(out.stdout, "", "{out:#?}");
    assert!(
        out.stderr.contains(expected),
        "expected {expected:?}: {out:#?}"
    );
}

#[test]
fn a_secret_input_given_inline_is_refused() {
    let sandbox = Sandbox::new();
    sandbox.write(
        "flow.yml",
        "id: in\nnamespace: dev\ninputs:\n  - id: pw\n    type: SECRET\ntasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n    message: x\n",
    );
    let out = sandbox
        .kestrel(["run", "flow.yml", "--input", "pw=hunter2"])
        .output();
    assert_nothing_ran(&out, "'pw' is a SECRET");
    out.assert_hides("hunter2");
}

#[test]
fn bad_inputs_are_refused_by_name() {
    let sandbox = Sandbox::new();
    sandbox.write(
        "flow.yml",
        "id: in\nnamespace: dev\ninputs:\n  - id: count\n    type: INT\ntasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n    message: \"{{ inputs.count + 1 }}\"\n",
    );
    let run = |args: &[&str]| {
        let mut all = vec!["run", "flow.yml", "--output", "json"];
        all.extend_from_slice(args);
        sandbox.kestrel(all).output()
    };
    assert_nothing_ran(&run(&["--input", "count=many"]), "'count'");
    assert_nothing_ran(&run(&[]), "'count'");
    assert_nothing_ran(
        &run(&["--input", "count=1", "--input", "other=2"]),
        "'other'",
    );
    assert_nothing_ran(&run(&["--input", "novalue"]), "KEY=VALUE");
    let out = run(&["--input", "count=41"]);
    out.assert_code(0);
    assert_eq!(out.messages(), ["42"]);
}

#[test]
fn an_invalid_flow_runs_nothing() {
    let sandbox = Sandbox::new();
    sandbox.write("flow.yml", "id: x\nnamespace: dev\ntasks: []\n");
    assert_nothing_ran(&sandbox.kestrel(["run", "flow.yml"]).output(), "flow.yml:");
    assert_nothing_ran(
        &sandbox.kestrel(["run", "missing.yml"]).output(),
        "cannot read missing.yml",
    );
}

#[test]
fn usage_errors_exit_2_with_an_empty_stdout() {
    let sandbox = Sandbox::new();
    assert_nothing_ran(&sandbox.kestrel(["run"]).output(), "FLOW");
    assert_nothing_ran(&sandbox.kestrel(["frobnicate"]).output(), "frobnicate");
    sandbox.write("flow.yml", &log_flow("hi"));
    assert_nothing_ran(
        &sandbox
            .kestrel(["run", "flow.yml", "--output", "xml"])
            .output(),
        "xml",
    );
}

#[test]
fn both_master_key_variables_set_stop_every_command() {
    let sandbox = Sandbox::new();
    sandbox.write("flow.yml", &log_flow("hi"));
    for args in [
        &["run", "flow.yml"][..],
        &["render", "x"],
        &["validate", "flow.yml"],
    ] {
        let out = sandbox
            .kestrel(args)
            .env("KESTREL_MASTER_KEY", base64(&"k".repeat(32)))
            .env("KESTREL_MASTER_KEY_FILE", "/nonexistent")
            .output();
        assert_nothing_ran(&out, "KESTREL_MASTER_KEY_FILE");
    }
}

#[test]
fn an_env_file_syntax_error_names_its_line() {
    let sandbox = Sandbox::new();
    sandbox.write("flow.yml", &log_flow("hi"));
    sandbox.write("bad.env", "SECRET_A=YWJjZA==\nSECRET_B='unterminated\n");
    let out = sandbox
        .kestrel(["run", "flow.yml", "--env-file", "bad.env"])
        .output();
    assert_nothing_ran(&out, "bad.env:2:");
}

/// A render that fuel of [`LOTS_OF_FUEL`] stops only after about a minute (debug build).
const ENDLESS: &str =
    "{% for i in range(0, 90000) %}{% for j in range(0, 90000) %}{% endfor %}{% endfor %}done";

/// A configuration whose renders may run a thousand million instructions.
const LOTS_OF_FUEL: &str = "expression:\n  fuel: 1000000000\n";

/// A render fuel does not stop in time is abandoned at `expression.render-timeout`: the task
/// fails naming the limit, and kestrel exits without waiting for the render.
#[test]
fn issue_9_1_a_render_past_expression_render_timeout_fails_naming_it() {
    let sandbox = Sandbox::new();
    sandbox.write(
        "kestrel.yml",
        &format!("{LOTS_OF_FUEL}  render-timeout: 1s\n"),
    );
    sandbox.write("flow.yml", &log_flow(&format!("\"{ENDLESS}\"")));
    let started = std::time::Instant::now();
    let out = sandbox
        .kestrel([
            "run",
            "flow.yml",
            "--config",
            "kestrel.yml",
            "--output",
            "json",
        ])
        .output();
    out.assert_code(1);
    let error = out.json()["taskRuns"][0]["error"].to_string();
    assert!(error.contains("expression.render-timeout (1s)"), "{out:#?}");
    // Generous: only a render holding kestrel takes anywhere near this long.
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
}

/// Ctrl-C while a task is busy: the execution ends KILLED, no later task runs, exit 130.
#[cfg(unix)]
#[test]
fn ctrl_c_kills_the_execution_with_exit_130() {
    use std::io::{BufRead, BufReader, Read};
    use std::process::Stdio;

    let sandbox = Sandbox::new();
    // The busy task renders a loop that its fuel stops only long after the signal lands.
    sandbox.write("kestrel.yml", LOTS_OF_FUEL);
    sandbox.write(
        "flow.yml",
        &format!("id: slow\nnamespace: dev\ntasks:\n  - id: first\n    type: io.kestra.plugin.core.log.Log\n    message: started\n  - id: busy\n    type: io.kestra.plugin.core.log.Log\n    message: \"{ENDLESS}\"\n  - id: never\n    type: io.kestra.plugin.core.log.Log\n    message: never\n"),
    );
    let mut child = sandbox
        .kestrel(["run", "flow.yml", "--config", "kestrel.yml"])
        .command()
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(first.ends_with("INFO  first started\n"), "{first}");
    let killed = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{rest}");
    assert!(!rest.contains("never"), "{rest}");
    let summary = rest.lines().last().unwrap();
    assert!(summary.contains(" KILLED in "), "{summary}");
}

/// `errorLogs()` gives a task the failure's entries as readers see them: a secret in a failure
/// message reaches the `errors` branch masked, so no task can carry it elsewhere.
#[test]
fn error_logs_are_masked_for_the_task_reading_them() {
    let flow = concat!(
        "id: failing\nnamespace: dev\ntasks:\n",
        "  - id: broken\n    type: io.kestra.plugin.core.execution.Fail\n",
        "    errorMessage: \"refused {{ secret('API_TOKEN') }}\"\n",
        "errors:\n  - id: report\n    type: io.kestra.plugin.core.debug.Return\n",
        "    format: \"{% for log in errorLogs() %}{{ log.message | base64encode }}{% endfor %}\"\n",
    );
    let sandbox = Sandbox::new();
    let output = sandbox.run_json(flow, &[("SECRET_API_TOKEN", "ZXJyLXQwa2VuLTQ0")]);
    let document = output.json();
    let report = &document["taskRuns"][1]["outputs"]["value"];
    let decoded = base64_decode(report.as_str().expect("a text"));
    assert_eq!(decoded, "refused ******");
}

fn base64_decode(text: &str) -> String {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .expect("base64");
    String::from_utf8(bytes).expect("UTF-8")
}
