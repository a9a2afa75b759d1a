//! A new user's first hour at the command line: values never on the command line, typed
//! without echo on a terminal, too-short values refused, `destroy` confirmed, a missing
//! secret's hint, an inherited key's parent named, and a wrong master key stopping `run`
//! before any task.
//!
//! Terminal sessions run under `script` (util-linux), which gives kestrel a pseudo-terminal;
//! the test answers each prompt only once it is shown, so nothing depends on timing.

#![allow(clippy::unwrap_used)] // Test code: a failure is a failed test.

mod util;

use std::io::{Read as _, Write as _};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use util::Sandbox;

const VALUE: &str = "correct-horse-battery-42";

fn set(sandbox: &Sandbox, namespace: &str, key: &str, value: &str) {
    sandbox
        .kestrel(["secrets", "set", namespace, key])
        .stdin(value)
        .output()
        .assert_code(0);
}

#[test]
fn a_value_on_the_command_line_is_refused_and_never_echoed() {
    let sandbox = Sandbox::new();
    let out = sandbox
        .kestrel(["secrets", "set", "company.team", "DB", VALUE])
        .output();
    out.assert_code(2).assert_hides(VALUE);
    assert!(
        out.stderr.contains(
            "values are read from standard input or --from-file, never from the command line"
        ),
        "{out:#?}"
    );
    let get = sandbox
        .kestrel(["secrets", "get", "company.team", "DB"])
        .output();
    get.assert_code(1);
}

#[test]
fn a_value_too_short_to_mask_is_refused_unless_allowed() {
    let sandbox = Sandbox::new();
    let out = sandbox
        .kestrel(["secrets", "set", "dev", "PIN"])
        .stdin("123")
        .output();
    out.assert_code(2);
    assert!(out.stderr.contains("secret.mask-min-length"), "{out:#?}");
    assert!(out.stderr.contains("--allow-short"), "{out:#?}");
    let allowed = sandbox
        .kestrel(["secrets", "set", "dev", "PIN", "--allow-short"])
        .stdin("123")
        .output();
    allowed.assert_code(0);
    let get = sandbox.kestrel(["secrets", "get", "dev", "PIN"]).output();
    assert_eq!(get.stdout, "123");
}

#[test]
fn destroy_without_a_terminal_needs_yes() {
    let sandbox = Sandbox::new();
    set(&sandbox, "dev", "K", VALUE);
    let refused = sandbox.kestrel(["secrets", "destroy", "dev", "K"]).output();
    refused.assert_code(2);
    assert!(refused.stderr.contains("--yes"), "{refused:#?}");
    let still = sandbox.kestrel(["secrets", "get", "dev", "K"]).output();
    assert_eq!(still.stdout, VALUE, "nothing was destroyed");
    sandbox
        .kestrel(["secrets", "destroy", "dev", "K", "--yes"])
        .output()
        .assert_code(0);
    let gone = sandbox.kestrel(["secrets", "get", "dev", "K"]).output();
    gone.assert_code(1);
    assert!(gone.stderr.contains("destroyed"), "{gone:#?}");
}

#[test]
fn an_inherited_key_names_the_parent_that_holds_it() {
    let sandbox = Sandbox::new();
    set(&sandbox, "company", "DB", VALUE);
    let out = sandbox
        .kestrel(["secrets", "get", "company.team.project", "DB"])
        .output();
    out.assert_code(1).assert_hides(VALUE);
    assert!(
        out.stderr.contains(
            "hint: namespace 'company' holds it, and flows of 'company.team.project' inherit it"
        ),
        "{out:#?}"
    );
}

#[test]
fn a_missing_secret_keeps_its_error_and_hints_where_kestrel_looked() {
    let sandbox = Sandbox::new();
    sandbox.write(
        "flow.yml",
        "id: f\nnamespace: company.team\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.log.Log\n    message: \"{{ secret('API_TOKEN') }}\"\n",
    );
    let out = sandbox.kestrel(["run", "flow.yml"]).output();
    out.assert_code(1);
    assert!(
        out.stdout.contains(
            "ERROR t Cannot find secret for key 'API_TOKEN'. ({{ secret('API_TOKEN') }}:1)"
        ),
        "{out:#?}"
    );
    assert!(
        out.stderr.contains(
            "hint: kestrel secrets set company.team API_TOKEN  (kestrel looked in namespaces \
             company.team, company, then for SECRET_API_TOKEN in the environment)"
        ),
        "{out:#?}"
    );
}

#[test]
fn a_wrong_master_key_stops_run_before_any_task() {
    let sandbox = Sandbox::new();
    set(&sandbox, "dev", "K", VALUE);
    sandbox.write(
        "flow.yml",
        "id: f\nnamespace: dev\ntasks:\n  - id: first\n    type: io.kestra.plugin.core.debug.Return\n    format: ran\n  - id: t\n    type: io.kestra.plugin.core.log.Log\n    message: \"{{ secret('K') }}\"\n",
    );
    let wrong = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    let out = sandbox
        .kestrel(["run", "flow.yml"])
        .env("KESTREL_MASTER_KEY", wrong)
        .output();
    out.assert_code(2);
    assert!(out.stdout.is_empty(), "no task ran: {out:#?}");
    assert!(out.stderr.contains("master key"), "{out:#?}");
}

/// A kestrel command on a pseudo-terminal, its screen read as it comes.
struct Terminal {
    child: Child,
    keyboard: Option<ChildStdin>,
    screen: Arc<Mutex<Vec<u8>>>,
}

impl Terminal {
    /// `kestrel ARGS...` in `sandbox`, under `script` (which gives it a terminal).
    fn open(sandbox: &Sandbox, args: &[&str]) -> Self {
        let mut invocation = sandbox.kestrel(args);
        let kestrel = invocation.command();
        let line: Vec<String> = std::iter::once(kestrel.get_program())
            .chain(kestrel.get_args())
            .map(|word| format!("'{}'", word.to_string_lossy()))
            .collect();
        let mut script = Command::new("script");
        script.args(["-qec", &line.join(" "), "/dev/null"]);
        for (name, value) in kestrel.get_envs() {
            match value {
                Some(value) => script.env(name, value),
                None => script.env_remove(name),
            };
        }
        script.current_dir(kestrel.get_current_dir().unwrap());
        let mut child = script
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("script (util-linux) starts");
        let screen = Arc::new(Mutex::new(Vec::new()));
        let mut output = child.stdout.take().unwrap();
        let filled = Arc::clone(&screen);
        std::thread::spawn(move || {
            let mut chunk = [0_u8; 512];
            while let Ok(n @ 1..) = output.read(&mut chunk) {
                filled.lock().unwrap().extend_from_slice(&chunk[..n]);
            }
        });
        let keyboard = child.stdin.take();
        Self {
            child,
            keyboard,
            screen,
        }
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.screen.lock().unwrap()).into_owned()
    }

    /// Waits until the screen shows `text` `times` times (a generous bound, never a timing
    /// assumption: the answer goes only once the prompt is there).
    fn wait_for(&self, text: &str, times: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.screen().matches(text).count() < times {
            assert!(
                Instant::now() < deadline,
                "never showed {text:?}: {}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn type_line(&mut self, line: &str) {
        let keyboard = self.keyboard.as_mut().unwrap();
        keyboard.write_all(format!("{line}\n").as_bytes()).unwrap();
        keyboard.flush().unwrap();
    }

    /// The exit status once the command ended, and the whole screen.
    fn finish(mut self) -> (i32, String) {
        drop(self.keyboard.take());
        let status = self.child.wait().unwrap();
        // The reader has the last bytes once the pipe closed.
        let deadline = Instant::now() + Duration::from_secs(10);
        while Arc::strong_count(&self.screen) > 1 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        (status.code().unwrap_or(-1), self.screen())
    }
}

#[test]
fn on_a_terminal_a_value_is_typed_twice_and_never_shown() {
    let sandbox = Sandbox::new();
    let mut terminal = Terminal::open(&sandbox, &["secrets", "set", "dev", "TYPED"]);
    terminal.wait_for("value of TYPED: ", 1);
    terminal.type_line(VALUE);
    terminal.wait_for("value of TYPED again: ", 1);
    terminal.type_line(VALUE);
    let (code, screen) = terminal.finish();
    assert_eq!(code, 0, "{screen}");
    assert!(!screen.contains(VALUE), "the value was echoed: {screen}");
    let get = sandbox.kestrel(["secrets", "get", "dev", "TYPED"]).output();
    assert_eq!(get.stdout, VALUE, "stored without its line break");

    let mut mistyped = Terminal::open(&sandbox, &["secrets", "set", "dev", "OTHER"]);
    mistyped.wait_for("value of OTHER: ", 1);
    mistyped.type_line(VALUE);
    mistyped.wait_for("value of OTHER again: ", 1);
    mistyped.type_line("correct-horse-battery-43");
    let (code, screen) = mistyped.finish();
    assert_eq!(code, 2, "{screen}");
    assert!(screen.contains("differ"), "{screen}");
    let absent = sandbox.kestrel(["secrets", "get", "dev", "OTHER"]).output();
    absent.assert_code(1);
}

#[test]
fn on_a_terminal_a_password_is_typed_twice_and_never_shown() {
    let sandbox = Sandbox::new();
    let mut terminal = Terminal::open(&sandbox, &["users", "add", "alice"]);
    terminal.wait_for("password: ", 1);
    terminal.type_line(VALUE);
    terminal.wait_for("password again: ", 1);
    terminal.type_line(VALUE);
    let (code, screen) = terminal.finish();
    assert_eq!(code, 0, "{screen}");
    assert!(!screen.contains(VALUE), "the password was echoed: {screen}");
    let users = sandbox.kestrel(["users", "list"]).output();
    assert!(users.stdout.contains("alice"), "{users:#?}");
}

#[test]
fn on_a_terminal_destroy_asks_for_the_key() {
    let sandbox = Sandbox::new();
    set(&sandbox, "dev", "K", VALUE);
    let mut declined = Terminal::open(&sandbox, &["secrets", "destroy", "dev", "K"]);
    declined.wait_for("Type the key (K) to confirm: ", 1);
    declined.type_line("no");
    let (code, screen) = declined.finish();
    assert_eq!(code, 2, "{screen}");
    let still = sandbox.kestrel(["secrets", "get", "dev", "K"]).output();
    assert_eq!(still.stdout, VALUE, "nothing was destroyed");

    let mut confirmed = Terminal::open(&sandbox, &["secrets", "destroy", "dev", "K"]);
    confirmed.wait_for("Type the key (K) to confirm: ", 1);
    confirmed.type_line("K");
    let (code, screen) = confirmed.finish();
    assert_eq!(code, 0, "{screen}");
    sandbox
        .kestrel(["secrets", "get", "dev", "K"])
        .output()
        .assert_code(1);
}
