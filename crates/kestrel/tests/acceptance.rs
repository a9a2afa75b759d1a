//! The Secret concept page's examples, as the acceptance checks run them: each check here
//! re-implements one of them against the real binary.

mod util;

use util::{MASK, Sandbox, log_flow, sha256};

const PAGE_ENV: &str = "MYPASSWORD=password\nGITHUB_ACCESS_TOKEN=mypat\nAWS_ACCESS_KEY_ID=myawsaccesskey\nAWS_SECRET_ACCESS_KEY=myawssecretaccesskey";
const PAGE_ENV_ENCODED: &str = "SECRET_MYPASSWORD=cGFzc3dvcmQ=\nSECRET_GITHUB_ACCESS_TOKEN=bXlwYXQ=\nSECRET_AWS_ACCESS_KEY_ID=bXlhd3NhY2Nlc3NrZXk=\nSECRET_AWS_SECRET_ACCESS_KEY=bXlhd3NzZWNyZXRhY2Nlc3NrZXk=\n";

#[test]
fn a_secret_resolves_and_is_masked() {
    let sandbox = Sandbox::new();
    let out = sandbox.run_json(
        &log_flow("\"{{ secret('MYPASSWORD') }}\""),
        &[("SECRET_MYPASSWORD", "cGFzc3dvcmQ=")],
    );
    out.assert_code(0).assert_hides("password");
    let doc = out.json();
    assert_eq!(doc["state"], "SUCCESS");
    assert_eq!(doc["logs"][0]["message"], MASK);
}

#[test]
fn the_decoded_value_is_the_right_one() {
    let sandbox = Sandbox::new();
    let out = sandbox.run_json(
        &log_flow("\"{{ secret('MYPASSWORD') | sha256 }}\""),
        &[("SECRET_MYPASSWORD", "cGFzc3dvcmQ=")],
    );
    assert_eq!(out.messages(), [sha256("password")]);
}

#[test]
fn the_base64_form_of_a_secret_is_masked() {
    let sandbox = Sandbox::new();
    let out = sandbox.run_json(
        &log_flow("\"{{ secret('MYPASSWORD') | base64encode }}\""),
        &[("SECRET_MYPASSWORD", "cGFzc3dvcmQ=")],
    );
    out.assert_hides("cGFzc3dvcmQ");
    assert_eq!(out.messages(), [MASK]);
}

#[test]
fn encode_env_matches_the_page() {
    let sandbox = Sandbox::new();
    sandbox.write(".env", &format!("{PAGE_ENV}\n"));
    let out = sandbox.kestrel(["secrets", "encode-env", ".env"]).output();
    out.assert_code(0);
    assert_eq!(out.stdout, PAGE_ENV_ENCODED);
}

#[test]
fn encode_env_keeps_a_last_line_without_newline() {
    let sandbox = Sandbox::new();
    sandbox.write("nonl.env", PAGE_ENV);
    let out = sandbox
        .kestrel(["secrets", "encode-env", "nonl.env"])
        .output();
    out.assert_code(0);
    assert_eq!(out.stdout, PAGE_ENV_ENCODED);
}

#[test]
fn four_secrets_from_an_env_file() {
    let sandbox = Sandbox::new();
    sandbox.write("want.env", PAGE_ENV_ENCODED);
    sandbox.write(
        "flow.yml",
        "id: secretTest\nnamespace: dev\ntasks:\n  - id: hello\n    type: io.kestra.core.tasks.log.Log\n    message: |\n      {{ secret('MYPASSWORD') }}\n      {{ secret('GITHUB_ACCESS_TOKEN') }}\n      {{ secret('AWS_ACCESS_KEY_ID') }}\n      {{ secret('AWS_SECRET_ACCESS_KEY') }}\n  - id: check\n    type: io.kestra.plugin.core.log.Log\n    message: \"{{ secret('AWS_SECRET_ACCESS_KEY') | sha256 }}\"\n",
    );
    let out = sandbox
        .kestrel([
            "run",
            "flow.yml",
            "--env-file",
            "want.env",
            "--output",
            "json",
        ])
        .output();
    out.assert_code(0);
    for value in [
        "password",
        "mypat",
        "myawsaccesskey",
        "myawssecretaccesskey",
    ] {
        assert!(!out.stdout.contains(value), "{value} shown: {}", out.stdout);
    }
    let messages = out.messages();
    let first: Vec<&str> = messages[0].split_whitespace().collect();
    assert_eq!(first, [MASK; 4]);
    assert_eq!(messages.last().unwrap(), &sha256("myawssecretaccesskey"));
}

#[test]
fn an_env_file_value_may_be_a_base64encode_macro() {
    let sandbox = Sandbox::new();
    sandbox.write(
        "macro.env",
        "SECRET_MYPASSWORD={{ \"password\" | base64encode }}\n",
    );
    sandbox.write(
        "flow.yml",
        &log_flow("\"{{ secret('MYPASSWORD') | sha256 }}\""),
    );
    let out = sandbox
        .kestrel([
            "run",
            "flow.yml",
            "--env-file",
            "macro.env",
            "--output",
            "json",
        ])
        .output();
    assert_eq!(out.messages(), [sha256("password")]);
}

#[test]
fn plain_variables_reach_envs() {
    let sandbox = Sandbox::new();
    let out = sandbox.run_json(
        &log_flow("\"{{ envs.my_var }}\""),
        &[("ENV_MY_VAR", "hello")],
    );
    assert_eq!(out.messages(), ["hello"]);
}

#[test]
fn a_missing_secret_fails_with_kestras_message() {
    let sandbox = Sandbox::new();
    sandbox.write("flow.yml", &log_flow("\"{{ secret('NOPE') }}\""));
    let out = sandbox.kestrel(["run", "flow.yml"]).output();
    out.assert_code(1);
    let both = format!("{}{}", out.stdout, out.stderr);
    assert!(
        both.contains("Cannot find secret for key 'NOPE'."),
        "{out:#?}"
    );
}

#[test]
fn an_undecodable_secret_is_reported_by_name_and_the_rest_works() {
    let sandbox = Sandbox::new();
    let out = sandbox.run_json(
        &log_flow("\"{{ secret('MYPASSWORD') | sha256 }}\""),
        &[
            ("SECRET_BAD", "some secret value"),
            ("SECRET_MYPASSWORD", "cGFzc3dvcmQ="),
        ],
    );
    out.assert_code(0).assert_hides("some secret value");
    assert!(
        out.stderr.contains("Could not decode secret 'SECRET_BAD'"),
        "{out:#?}"
    );
}

#[test]
fn duplicate_task_ids_are_rejected_in_kestras_words() {
    let sandbox = Sandbox::new();
    sandbox.write(
        "f10.yml",
        "id: dup\nnamespace: dev\ntasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n    message: x\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n    message: y\n",
    );
    let out = sandbox.kestrel(["validate", "f10.yml"]).output();
    out.assert_code(2);
    assert!(
        out.stderr.contains("Duplicate task id with name [a]"),
        "{out:#?}"
    );
    assert_eq!(out.stdout, "");
}

#[test]
fn render_applies_base64encode() {
    let sandbox = Sandbox::new();
    let out = sandbox
        .kestrel(["render", "{{ 'password' | base64encode }}"])
        .output();
    out.assert_code(0);
    assert_eq!(out.stdout, "cGFzc3dvcmQ=\n");
}
