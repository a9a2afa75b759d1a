//! `validate`, `render`, `secrets encode-env`, `config`, and the global options.

mod util;

use util::{MASK, Sandbox, base64, log_flow};

#[test]
fn validate_accepts_valid_flows() {
    let sandbox = Sandbox::new();
    sandbox.write("a.yml", &log_flow("hi"));
    sandbox.write("b.yml", &log_flow("there"));
    let out = sandbox.kestrel(["validate", "a.yml", "b.yml"]).output();
    out.assert_code(0);
    assert_eq!(out.stderr, "");
}

#[test]
fn validate_prints_each_violation_as_file_line_col() {
    let sandbox = Sandbox::new();
    sandbox.write("good.yml", &log_flow("hi"));
    sandbox.write(
        "bad.yml",
        "id: bad\nnamespace: dev\ntasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n    message: x\n    colour: red\n",
    );
    let out = sandbox
        .kestrel(["validate", "good.yml", "bad.yml"])
        .output();
    out.assert_code(2);
    assert_eq!(
        out.stdout, "",
        "nothing on stdout when something is invalid"
    );
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert!(!lines.is_empty(), "{out:#?}");
    for line in &lines {
        let mut parts = line.splitn(4, ':');
        assert_eq!(parts.next(), Some("bad.yml"), "{line}");
        let line_no: usize = parts.next().unwrap().parse().expect("a line number");
        let column: usize = parts.next().unwrap().parse().expect("a column");
        assert!(line_no >= 1 && column >= 1, "{line}");
        assert!(parts.next().unwrap().starts_with(' '), "{line}");
    }
    assert!(out.stderr.contains("colour"), "{out:#?}");
}

#[test]
fn validate_reports_yaml_errors_with_their_position() {
    let sandbox = Sandbox::new();
    sandbox.write("broken.yml", "id: x\nnamespace: dev\ntasks:\n  - id: [a\n");
    let out = sandbox.kestrel(["validate", "broken.yml"]).output();
    out.assert_code(2);
    assert!(out.stderr.starts_with("broken.yml:"), "{out:#?}");
}

#[test]
fn validate_and_run_refuse_a_template_that_does_not_parse_before_any_task() {
    let sandbox = Sandbox::new();
    sandbox.write(
        "typo.yml",
        "id: typo\nnamespace: dev\ntasks:\n  - id: first\n    type: io.kestra.plugin.core.log.Log\n    message: ran\n  - id: later\n    type: io.kestra.plugin.core.log.Log\n    message: \"{{ foo( }}\"\n",
    );
    let out = sandbox.kestrel(["validate", "typo.yml"]).output();
    out.assert_code(2);
    assert!(
        out.stderr.starts_with("typo.yml:9:14: tasks[1].message: "),
        "{out:#?}"
    );
    let run = sandbox.kestrel(["run", "typo.yml"]).output();
    run.assert_code(2);
    assert!(!run.stdout.contains("ran"), "no task ran: {run:#?}");
}

#[test]
fn render_masks_a_secret_and_fails_with_exit_1() {
    let sandbox = Sandbox::new();
    let out = sandbox
        .kestrel(["render", "token: {{ secret('T') }}"])
        .env("SECRET_T", base64("s3cr3t-t0ken"))
        .output();
    out.assert_code(0).assert_hides("s3cr3t");
    assert_eq!(out.stdout, format!("token: {MASK}\n"));

    let out = sandbox
        .kestrel(["render", "{{ secret('ABSENT') }}"])
        .output();
    out.assert_code(1);
    assert_eq!(out.stdout, "");
    assert!(
        out.stderr.contains("Cannot find secret for key 'ABSENT'."),
        "{out:#?}"
    );
}

#[test]
fn render_reads_secrets_and_envs_from_an_env_file() {
    let sandbox = Sandbox::new();
    sandbox.write("vars.env", "SECRET_T=c2VjcmV0LXZhbHVl\nENV_WHO=world\n");
    let out = sandbox
        .kestrel([
            "render",
            "{{ envs.who }} {{ secret('t') }}",
            "--env-file",
            "vars.env",
        ])
        .output();
    out.assert_code(0);
    assert_eq!(out.stdout, format!("world {MASK}\n"));
}

#[test]
fn encode_env_reads_stdin_and_keeps_key_case() {
    let sandbox = Sandbox::new();
    let out = sandbox
        .kestrel(["secrets", "encode-env"])
        .stdin("# a comment\nexport my_Key=\"abc def\"\nSECRET_ALREADY=x1\n\nQUOTED='p=q'")
        .output();
    out.assert_code(0);
    assert_eq!(
        out.stdout,
        format!(
            "SECRET_my_Key={}\nSECRET_ALREADY={}\nSECRET_QUOTED={}\n",
            base64("abc def"),
            base64("x1"),
            base64("p=q")
        )
    );
    let dash = sandbox
        .kestrel(["secrets", "encode-env", "-"])
        .stdin("A=b")
        .output();
    assert_eq!(dash.stdout, format!("SECRET_A={}\n", base64("b")));
}

#[test]
fn encode_env_refuses_a_syntax_error_without_output() {
    let sandbox = Sandbox::new();
    sandbox.write("bad.env", "GOOD=x\nBAD='never closed\n");
    let out = sandbox
        .kestrel(["secrets", "encode-env", "bad.env"])
        .output();
    out.assert_code(2);
    assert_eq!(out.stdout, "");
    assert!(out.stderr.contains("bad.env"), "{out:#?}");
}

#[test]
fn config_unknown_keys_are_named_with_their_line() {
    let sandbox = Sandbox::new();
    sandbox.write("flow.yml", &log_flow("hi"));
    sandbox.write(
        "kestrel.yml",
        "secret:\n  mask-min-length: 6\n  colour: blue\n",
    );
    let out = sandbox
        .kestrel(["run", "flow.yml", "--config", "kestrel.yml"])
        .output();
    out.assert_code(2);
    assert_eq!(out.stdout, "");
    assert!(out.stderr.contains("colour"), "{out:#?}");
    assert!(out.stderr.contains("line 3"), "{out:#?}");
}

#[test]
fn config_variables_are_substituted_and_an_unset_one_is_named() {
    let sandbox = Sandbox::new();
    sandbox.write(
        "flow.yml",
        &log_flow("\"{{ envs.name }} {{ globals.team }}\""),
    );
    sandbox.write(
        "kestrel.yml",
        "variables:\n  env-vars-prefix: ${PREFIX}\n  globals:\n    team: ${TEAM}\n",
    );
    let out = sandbox
        .kestrel(["run", "flow.yml", "--output", "json"])
        .env("KESTREL_CONFIG", "kestrel.yml")
        .env("PREFIX", "MY_")
        .env("TEAM", "data")
        .env("MY_NAME", "ada")
        .output();
    out.assert_code(0);
    assert_eq!(out.messages(), ["ada data"]);

    let out = sandbox
        .kestrel(["run", "flow.yml", "--config", "kestrel.yml"])
        .env("PREFIX", "MY_")
        .output();
    out.assert_code(2);
    assert!(out.stderr.contains("TEAM"), "{out:#?}");
}

#[test]
fn config_mask_min_length_applies() {
    let sandbox = Sandbox::new();
    sandbox.write("flow.yml", &log_flow("\"{{ secret('S') }}\""));
    sandbox.write("kestrel.yml", "secret:\n  mask-min-length: 2\n");
    let run = |config: bool| {
        let mut args = vec!["run", "flow.yml", "--output", "json"];
        if config {
            args.extend(["--config", "kestrel.yml"]);
        }
        sandbox
            .kestrel(args)
            .env("SECRET_S", base64("abc"))
            .output()
    };
    let default = run(false);
    assert_eq!(default.messages(), ["abc"], "too short to mask by default");
    assert!(
        default.stderr.contains('S'),
        "a warning names the key: {default:#?}"
    );
    assert_eq!(run(true).messages(), [MASK]);
}

#[test]
fn data_dir_precedence_is_flag_then_env_then_config_then_default() {
    let sandbox = Sandbox::new();
    sandbox.write(
        "kestrel.yml",
        "data-dir: /from/config\ndatabase: postgres://u:pw@db/k\n",
    );
    let data_dir = |args: &[&str], env: Option<&str>| {
        let mut all = vec!["config"];
        all.extend_from_slice(args);
        let mut invocation = sandbox.kestrel(all).env_remove("KESTREL_DATA_DIR");
        if let Some(dir) = env {
            invocation = invocation.env("KESTREL_DATA_DIR", dir);
        }
        let out = invocation.output();
        out.assert_code(0);
        let line = out
            .stdout
            .lines()
            .find(|line| line.starts_with("data-dir:"))
            .unwrap_or_else(|| panic!("no data-dir: {out:#?}"))
            .to_owned();
        (line, out.stdout)
    };
    let config = ["--config", "kestrel.yml"];
    let with_flag = ["--config", "kestrel.yml", "--data-dir", "/from/flag"];
    assert_eq!(
        data_dir(&with_flag, Some("/from/env")).0,
        "data-dir: /from/flag"
    );
    assert_eq!(
        data_dir(&config, Some("/from/env")).0,
        "data-dir: /from/env"
    );
    let (line, shown) = data_dir(&config, None);
    assert_eq!(line, "data-dir: /from/config");
    assert!(
        shown.contains("database: postgres://u:******@db/k"),
        "{shown}"
    );
    assert!(!shown.contains("pw@"), "{shown}");
    let (line, _) = data_dir(&[], None);
    assert!(line.ends_with("kestrel"), "{line}");
}

#[test]
fn global_options_go_before_or_after_the_subcommand() {
    let sandbox = Sandbox::new();
    sandbox.write("flow.yml", &log_flow("hi"));
    sandbox.write("kestrel.yml", "secret:\n  nope: 1\n");
    let before = sandbox
        .kestrel(["--config", "kestrel.yml", "validate", "flow.yml"])
        .output();
    let after = sandbox
        .kestrel(["validate", "flow.yml", "--config", "kestrel.yml"])
        .output();
    for out in [before, after] {
        out.assert_code(2);
        assert!(out.stderr.contains("nope"), "{out:#?}");
    }
}
