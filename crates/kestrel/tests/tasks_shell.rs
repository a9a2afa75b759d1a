//! `kestrel run` of flows with `io.kestra.plugin.scripts.shell.Commands`: what the command
//! line shows of a secret a script prints and what the script inherits. Ctrl-C and the other
//! stop signals are in `task_sandbox.rs`.

mod util;

use util::{MASK, Sandbox, base64};

const TOKEN: &str = "sh3ll-s3cret-v4lue";

/// A flow `shell` in namespace `dev` with one Commands task `sh` of the YAML `properties`.
fn shell_flow(properties: &str) -> String {
    format!(
        "id: shell\nnamespace: dev\ntasks:\n  - id: sh\n    type: io.kestra.plugin.scripts.shell.Commands\n{properties}"
    )
}

#[test]
fn a_secret_printed_by_a_script_is_masked_in_both_output_formats() {
    let flow = shell_flow(concat!(
        "    env:\n      TOKEN: \"{{ secret('API_TOKEN') }}\"\n",
        "    commands:\n",
        "      - echo \"$TOKEN\"\n",
        "      - printf '%s' \"$TOKEN\" | base64\n",
        "      - echo \"::{\\\"outputs\\\":{\\\"seen\\\":\\\"$TOKEN\\\"}}::\"\n",
    ));
    let sandbox = Sandbox::new();
    let secret = [("SECRET_API_TOKEN", base64(TOKEN))];
    let env: Vec<(&str, &str)> = secret.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = sandbox.run_json(&flow, &env);
    out.assert_code(0)
        .assert_hides(TOKEN)
        .assert_hides(&base64(TOKEN));
    assert_eq!(out.messages(), [MASK, MASK]);
    let json = out.json();
    assert_eq!(json["taskRuns"][0]["outputs"]["vars"]["seen"], MASK);
    assert_eq!(json["taskRuns"][0]["outputs"]["exitCode"], 0);
    let text = sandbox
        .kestrel(["run", "flow.yml"])
        .env("SECRET_API_TOKEN", base64(TOKEN))
        .output();
    text.assert_code(0)
        .assert_hides(TOKEN)
        .assert_hides(&base64(TOKEN));
    assert!(
        text.stdout.contains(&format!("INFO  sh {MASK}")),
        "{text:#?}"
    );
}

#[test]
fn a_script_inherits_neither_secrets_nor_kestrel_settings() {
    let flow = shell_flow(
        "    commands:\n      - env | cut -d= -f1 | grep -E '^(SECRET_|KESTREL_|VAULT_TOKEN|ENV_)' | sort\n",
    );
    let out = Sandbox::new().run_json(
        &flow,
        &[
            ("SECRET_OTHER", &base64("not-for-scripts")),
            ("VAULT_TOKEN", "vault"),
            ("ENV_GREETING", "hello"),
        ],
    );
    out.assert_code(0);
    assert_eq!(out.messages(), ["ENV_GREETING"]);
}

#[test]
fn a_failing_command_fails_the_run_with_its_exit_code() {
    let out = Sandbox::new().run_json(&shell_flow("    commands:\n      - exit 7\n"), &[]);
    out.assert_code(1);
    let json = out.json();
    assert_eq!(json["state"], "FAILED");
    assert_eq!(
        json["taskRuns"][0]["error"],
        "Command failed with exit code 7"
    );
    assert_eq!(json["taskRuns"][0]["outputs"]["exitCode"], 7);
}
