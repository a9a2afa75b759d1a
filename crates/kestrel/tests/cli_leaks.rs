//! Regression tests of issue 8 for what the command line itself shows or exposes: its own
//! process environment (leak 6), `kestrel config` (leak 10) and the terminal (control
//! characters in `kestrel run`'s text output). Each runs the real binary.

mod util;

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::Command;
use util::{MASK, Sandbox, base64};

/// The user tasks run as in the leak-6 test when the tests run as root: `nobody`.
const NOBODY: &str = "65534";

/// The variables kestrel consumes that must stay out of reach of its tasks, with values no
/// other variable holds.
fn consumed_variables() -> Vec<(&'static str, String)> {
    vec![
        ("SECRET_DB_PASSWORD", base64("pr0c-envir0n-db-passw0rd")),
        ("SECRET_UNUSED_TOKEN", base64("pr0c-envir0n-unused-t0ken")),
        (
            "KESTREL_MASTER_KEY",
            base64("pr0c-envir0n-master-key-32bytes!"),
        ),
        ("VAULT_TOKEN", "pr0c-envir0n-vault-t0ken".to_owned()),
        (
            "AWS_SECRET_ACCESS_KEY",
            "pr0c-envir0n-aws-access-key".to_owned(),
        ),
        ("AWS_SESSION_TOKEN", "pr0c-envir0n-aws-sessi0n".to_owned()),
    ]
}

/// A script that walks from its own process up to the first process (kestrel need not be
/// its direct parent) and copies every ancestor's environment it can read into `out`.
fn environ_thief_flow(out: &Path) -> String {
    let out = out.display();
    format!(
        r#"id: thief
namespace: dev
tasks:
  - id: steal
    type: io.kestra.plugin.scripts.shell.Commands
    env:
      USED: "{{{{ secret('DB_PASSWORD') }}}}"
    commands:
      - pid=$$
      - |
        while [ "$pid" -gt 1 ]; do
          echo "$pid $(cat /proc/$pid/comm)" >> {out}/ancestors
          cat /proc/$pid/environ > {out}/environ.$pid 2>/dev/null || echo "$pid" >> {out}/refused
          pid=$(sed -n 's/^PPid:[[:space:]]*//p' /proc/$pid/status)
        done
"#
    )
}

fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|meta| meta.uid() == 0)
}

/// A directory anyone may enter and read (`0755`), or write (`0777`).
fn open_dir(path: PathBuf, mode: u32) -> PathBuf {
    std::fs::create_dir_all(&path).expect("create a directory");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    path
}

/// `kestrel run` of the thief flow as a user other than root (through `setpriv` when the
/// tests run as root, since root may read any process's environment), with only `env` and
/// the basics in its environment, and `task.sandbox` set to `sandbox`. Returns what the
/// script left in its output directory.
fn run_thief_as_non_root(
    env: &[(&str, String)],
    sandbox: &str,
) -> (util::Output, PathBuf, tempfile::TempDir) {
    let room = tempfile::tempdir().expect("a temporary directory");
    let root = open_dir(room.path().to_path_buf(), 0o755);
    let out = open_dir(root.join("out"), 0o777);
    let flow = root.join("flow.yml");
    std::fs::write(&flow, environ_thief_flow(&out)).expect("write the flow");
    std::fs::set_permissions(&flow, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let config = root.join("kestrel.yml");
    std::fs::write(&config, format!("task:\n  sandbox: {sandbox}\n")).expect("write config");
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let mut command = if running_as_root() {
        // A binary nobody may read and run: an unreadable binary would make the process
        // non-dumpable by itself, and the test would prove nothing.
        let binary = util::kestrel_at(&open_dir(root.join("bin"), 0o755).join("kestrel"));
        let mut setpriv = Command::new("setpriv");
        setpriv.args([
            &format!("--reuid={NOBODY}"),
            &format!("--regid={NOBODY}"),
            "--clear-groups",
            "--",
        ]);
        setpriv.arg(binary);
        setpriv
    } else {
        Command::new(env!("CARGO_BIN_EXE_kestrel"))
    };
    command
        .arg("run")
        .arg(&flow)
        .current_dir(&root)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", open_dir(root.join("home"), 0o777))
        .env("KESTREL_DATA_DIR", open_dir(root.join("data"), 0o777))
        .env("KESTREL_CONFIG", &config)
        .envs(env.iter().map(|(name, value)| (name, value)));
    let output = command
        .output()
        .expect("kestrel starts (as root: through setpriv, from util-linux)");
    let output = util::Output {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    (output, out, room)
}

/// Without the sandbox, kestrel is in the task's sight: that it is not dumpable is what keeps
/// its environment unreadable. With the sandbox, the task does not see it at all.
#[test]
fn leak_6_a_task_cannot_read_the_secrets_of_kestrels_own_environment() {
    let variables = consumed_variables();
    let (output, out, _room) = run_thief_as_non_root(&variables, "off");
    let ancestors = std::fs::read_to_string(out.join("ancestors"))
        .unwrap_or_else(|error| panic!("the script walked no process ({error}): {output:#?}"));
    assert_nothing_stolen(&variables, &output, &out, &ancestors);
    let (output, out, _room) = run_thief_as_non_root(&variables, "auto");
    let ancestors = std::fs::read_to_string(out.join("ancestors")).unwrap_or_default();
    assert!(!ancestors.contains("kestrel"), "sandboxed: {ancestors}");
    assert_nothing_stolen(&variables, &output, &out, &ancestors);
}

fn assert_nothing_stolen(
    variables: &[(&str, String)],
    output: &util::Output,
    out: &Path,
    ancestors: &str,
) {
    output.assert_code(0);
    let mut stolen = String::new();
    for entry in std::fs::read_dir(out).expect("list the script's output") {
        let path = entry.expect("an entry").path();
        if path.to_string_lossy().contains("environ.") {
            stolen.push_str(&String::from_utf8_lossy(
                &std::fs::read(&path).expect("read"),
            ));
        }
    }
    // Where kestrel is in sight (no sandbox hides it), its environment was refused.
    let refused = std::fs::read_to_string(out.join("refused")).unwrap_or_default();
    for (pid, _) in ancestors
        .lines()
        .filter_map(|line| line.split_once(' '))
        .filter(|(_, command)| *command == "kestrel")
    {
        assert!(
            refused.lines().any(|line| line == pid),
            "kestrel's environment was readable (processes: {ancestors})"
        );
    }
    for (name, value) in variables {
        assert!(
            !stolen.contains(value.as_str()),
            "a task read {name} from kestrel's environment (processes: {ancestors})"
        );
        output.assert_hides(value);
    }
}

#[test]
fn leak_10_config_hides_the_credentials_of_every_url() {
    let sandbox = Sandbox::new();
    sandbox.write(
        "kestrel.yml",
        concat!(
            "database: postgres://kestrel:url-cred-1@db:5432/k?sslmode=require&password=url-cred-2\n",
            "secret:\n",
            "  vault:\n",
            "    address: https://admin:url-cred-3@vault.local:8200/?token=url-cred-4\n",
            "  aws-secret-manager:\n",
            "    endpoint-override: http://127.0.0.1:5000/?X-Amz-Security-Token=url-cred-5\n",
            "namespaces:\n",
            "  company.finance:\n",
            "    secret:\n",
            "      vault: {address: 'https://ops:url-cred-6@vault.finance:8200'}\n",
            "server:\n",
            "  public-url: https://kestrel.local/?api_key=url-cred-7\n",
        ),
    );
    let out = sandbox
        .kestrel(["config", "--config", "kestrel.yml"])
        .output();
    out.assert_code(0);
    for n in 1..=7 {
        out.assert_hides(&format!("url-cred-{n}"));
    }
    for shown in [
        "database: postgres://kestrel:******@db:5432/k?sslmode=require&password=******",
        "address: https://admin:******@vault.local:8200/?token=******",
        "https://ops:******@vault.finance:8200",
        "public-url: https://kestrel.local/?api_key=******",
    ] {
        assert!(out.stdout.contains(shown), "{shown} not in {out:#?}");
    }
}

#[test]
fn leak_10_config_type_errors_name_the_key_and_type_never_the_value() {
    let sandbox = Sandbox::new();
    for (config, key, expected) in [
        (
            "worker:\n  threads: typed-cred-1\n",
            "worker.threads",
            "usize",
        ),
        ("secret:\n  type: typed-cred-1\n", "secret.type", "embedded"),
        (
            "secret:\n  read-only: ${TYPED}\n",
            "secret.read-only",
            "boolean",
        ),
        (
            "server:\n  auth:\n    users: [{username: a, password-hash: [typed-cred-1]}]\n",
            "server.auth.users[0].password-hash",
            "string",
        ),
    ] {
        sandbox.write("kestrel.yml", config);
        let out = sandbox
            .kestrel(["config", "--config", "kestrel.yml"])
            .env("TYPED", "typed-cred-1")
            .output();
        out.assert_code(2).assert_hides("typed-cred-1");
        assert!(out.stderr.contains(key), "{config}: {out:#?}");
        assert!(out.stderr.contains("expected"), "{config}: {out:#?}");
        assert!(out.stderr.contains(expected), "{config}: {out:#?}");
    }
}

/// A secret split by a script into pieces the masker cannot recognise, joined again by the
/// terminal: with an ANSI sequence, a backspace, a carriage return.
const SPLIT_SECRET: &str = "t3rminal-s3cret";

#[test]
fn terminal_safety_control_characters_in_messages_are_escaped() {
    let flow = concat!(
        "id: splitter\nnamespace: dev\ntasks:\n",
        "  - id: split\n",
        "    type: io.kestra.plugin.scripts.shell.Commands\n",
        "    env:\n      TOKEN: \"{{ secret('SPLIT') }}\"\n",
        "    commands:\n",
        "      - a=$(printf %s \"$TOKEN\" | cut -c1-5); b=$(printf %s \"$TOKEN\" | cut -c6-)\n",
        "      - printf '%s\\033[0m%s\\n' \"$a\" \"$b\"\n",
        "      - printf '%sX\\b%s\\n' \"$a\" \"$b\"\n",
        "      - printf 'XXXXX%s\\r%s\\n' \"$b\" \"$a\"\n",
        "      - printf 'line\\r\\n'\n",
        "      - printf '%s\\177%s\\302\\233%s\\n' \"$a\" \"$b\" \"$a\"\n",
    );
    let sandbox = Sandbox::new();
    sandbox.write("flow.yml", flow);
    let secret = base64(SPLIT_SECRET);
    let text = sandbox
        .kestrel(["run", "flow.yml"])
        .env("SECRET_SPLIT", &secret)
        .output();
    text.assert_code(0).assert_hides(SPLIT_SECRET);
    for escaped in [
        r"t3rmi\x1b[0mnal-s3cret",
        r"t3rmiX\x08nal-s3cret",
        r"XXXXXnal-s3cret\rt3rmi",
        r"t3rmi\x7fnal-s3cret\u{9b}t3rmi",
    ] {
        assert!(text.stdout.contains(escaped), "{escaped} not in {text:#?}");
    }
    assert!(
        text.stdout.contains(" line\n"),
        "a CRLF line end stays a line end"
    );
    assert_no_terminal_controls(&text.stdout);
    // JSON escapes the C0 controls itself, and kestrel the others.
    let json = sandbox
        .kestrel(["run", "flow.yml", "--output", "json"])
        .env("SECRET_SPLIT", &secret)
        .output();
    json.assert_code(0).assert_hides(SPLIT_SECRET);
    assert_no_terminal_controls(&json.stdout);
    assert!(
        json.messages()
            .contains(&"t3rmi\u{1b}[0mnal-s3cret".to_owned())
    );
    // `render` prints what it renders just as safely, and masked.
    let render = sandbox
        .kestrel(["render", "{{ secret('SPLIT') }}: a\u{1b}[0mb\rc\u{9b}d"])
        .env("SECRET_SPLIT", &secret)
        .output();
    render.assert_code(0).assert_hides(SPLIT_SECRET);
    assert_eq!(render.stdout, format!("{MASK}: a\\x1b[0mb\\rc\\u{{9b}}d\n"));
}

/// No character on `stdout` a terminal would act on but line breaks and tabs.
fn assert_no_terminal_controls(stdout: &str) {
    let control = stdout
        .chars()
        .find(|&c| c.is_control() && c != '\n' && c != '\t');
    assert_eq!(control, None, "a raw control character in {stdout:?}");
}
