//! What a Commands task can reach and what it leaves behind, with the real binary: the task
//! sandbox (`task.sandbox`), the signals that stop `kestrel run`, and a SIGKILLed kestrel.

mod util;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};
use util::{Sandbox, base64};

/// How long anything a test waits for may take.
const BOUND: Duration = Duration::from_secs(60);

/// A flow `sandbox` in namespace `dev` with one Commands task `sh` running `commands` (YAML
/// list items, indented by six).
fn commands_flow(commands: &str) -> String {
    format!(
        "id: sandbox\nnamespace: dev\ntasks:\n  - id: sh\n    type: io.kestra.plugin.scripts.shell.Commands\n    commands:\n{commands}"
    )
}

/// A duration for `sleep` no other process of the machine uses: the test finds the task's
/// job by it, from outside the task's PID namespace.
fn marker(test: u32) -> String {
    format!("900.{}{test}", std::process::id())
}

/// Commands that start `sleep <marker>`, wait until it runs, print the working directory
/// (`dir PATH`, with the shell redirection `to`) and wait for the job.
fn stuck_commands(marker: &str, to: &str) -> String {
    format!(
        concat!(
            "      - sleep {marker} >/dev/null 2>&1 &\n",
            "      - until grep -q {marker} /proc/$!/cmdline 2>/dev/null; do sleep 0.01; done\n",
            "      - echo \"dir $(pwd)\"{to}\n",
            "      - wait\n",
        ),
        marker = marker,
        to = to
    )
}

/// The pid of the running (not zombie) process `sleep <marker>`, if any.
fn job_pid(marker: &str) -> Option<u32> {
    let wanted = format!("sleep\0{marker}\0");
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .find(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|line| line == wanted.as_bytes())
                && std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .is_ok_and(|stat| !stat.contains(") Z "))
        })
}

/// Polls `done` every 20 ms until it holds or [`BOUND`] passes; whether it held.
fn eventually(mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + BOUND;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    done()
}

/// A running kestrel whose stdout (`kestrel run` in text mode) or stderr (`kestrel server`)
/// lines are read as they come; killed if still running when dropped.
struct Started {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Started {
    fn new(mut command: Command, read_stderr: bool) -> Self {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("kestrel starts");
        let pipe: Box<dyn std::io::Read + Send> = if read_stderr {
            Box::new(child.stderr.take().expect("a stderr pipe"))
        } else {
            Box::new(child.stdout.take().expect("a stdout pipe"))
        };
        let (sender, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The rest of the first line holding `needle`, after it.
    fn after(&mut self, needle: &str) -> String {
        loop {
            let line = match self.lines.recv_timeout(BOUND) {
                Ok(line) => line,
                Err(error) => panic!("no line with {needle:?} ({error}): {:?}", self.seen),
            };
            self.seen.push(line.clone());
            if let Some((_, rest)) = line.split_once(needle) {
                return rest.to_owned();
            }
        }
    }

    /// The working directory the task printed (`dir PATH`).
    fn task_dir(&mut self) -> PathBuf {
        PathBuf::from(self.after(" sh dir "))
    }

    fn signal(&self, signal: &str) {
        let sent = Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "kill -{signal}");
    }

    /// Waits for kestrel to exit; its status and every line read.
    fn finish(&mut self) -> (ExitStatus, Vec<String>) {
        if !eventually(|| matches!(self.child.try_wait(), Ok(Some(_)))) {
            let _ = self.child.kill();
            panic!("kestrel did not exit: {:?}", self.seen);
        }
        let status = self.child.wait().expect("kestrel's status");
        loop {
            match self.lines.recv_timeout(BOUND) {
                Ok(line) => self.seen.push(line),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => panic!("stdout stays open: {:?}", self.seen),
            }
        }
        (status, std::mem::take(&mut self.seen))
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn leak_5_sigterm_sigint_and_sighup_kill_the_task_group_and_remove_its_directory() {
    for (number, signal, code) in [(1, "TERM", 1), (2, "INT", 130), (3, "HUP", 1)] {
        let sandbox = Sandbox::new();
        let marker = marker(number);
        sandbox.write("flow.yml", &commands_flow(&stuck_commands(&marker, "")));
        let mut invocation = sandbox.kestrel(["run", "flow.yml"]);
        let mut started = Started::new(
            std::mem::replace(invocation.command(), Command::new("true")),
            false,
        );
        let dir = started.task_dir();
        let job = job_pid(&marker).expect("the task's job runs");
        started.signal(signal);
        let (status, lines) = started.finish();
        assert_eq!(status.code(), Some(code), "SIG{signal}: {lines:?}");
        let summary = lines.last().expect("a summary line");
        assert!(summary.contains(" KILLED "), "SIG{signal}: {lines:?}");
        assert!(
            eventually(|| job_pid(&marker).is_none()),
            "SIG{signal}: the task's job {job} survived"
        );
        assert!(
            !dir.exists(),
            "SIG{signal}: {} is left behind",
            dir.display()
        );
    }
}

/// A flow whose task tries to read the master key file and the database of `home`.
fn reader_flow(home: &Path) -> String {
    let key = home.join("config/kestrel/master.key");
    let db = home.join("data/kestrel.db");
    commands_flow(&format!(
        concat!(
            "      - if cat '{key}' >/dev/null 2>&1; then echo key-readable; else echo key-hidden; fi\n",
            "      - if head -c 1 '{db}' >/dev/null 2>&1; then echo db-readable; else echo db-hidden; fi\n",
            "      - ls -A '{data}'\n",
        ),
        key = key.display(),
        db = db.display(),
        data = home.join("data").display(),
    ))
}

/// `program ARGS` in a clean environment whose home, config and data directories are under
/// `home`.
fn clean_command(program: &mut Command, home: &Path) {
    program
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home.join("home"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("KESTREL_DATA_DIR", home.join("data"))
        .current_dir(home);
}

/// Stores a secret (creating the key file and the database), then runs the reader flow:
/// what the task printed.
fn task_reads(kestrel: impl Fn() -> Command, home: &Path) -> Vec<String> {
    std::fs::write(home.join("flow.yml"), reader_flow(home)).expect("write the flow");
    let mut set = kestrel();
    set.args(["secrets", "set", "dev", "TOKEN"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = set.spawn().expect("kestrel secrets set starts");
    std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), b"s3cret-value")
        .expect("write the value");
    assert!(child.wait().expect("secrets set ends").success());
    assert!(home.join("config/kestrel/master.key").exists());
    assert!(home.join("data/kestrel.db").exists());
    let mut run = kestrel();
    let output = run
        .args(["run", "flow.yml"])
        .stdin(Stdio::null())
        .output()
        .expect("kestrel run");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{output:?}");
    stdout
        .lines()
        .filter_map(|line| line.split_once(" sh ").map(|(_, text)| text.to_owned()))
        .collect()
}

#[test]
fn failure_3_a_commands_task_cannot_read_the_master_key_or_the_database() {
    let home = tempfile::tempdir().expect("a temporary directory");
    let seen = task_reads(
        || {
            let mut command = Command::new(env!("CARGO_BIN_EXE_kestrel"));
            clean_command(&mut command, home.path());
            command
        },
        home.path(),
    );
    assert_eq!(seen, ["key-hidden", "db-hidden", "work"]);
    if is_root() {
        failure_3_as_an_unprivileged_user();
    }
}

/// The same, kestrel running as `nobody` from a copy of the binary it can execute.
fn failure_3_as_an_unprivileged_user() {
    let home = tempfile::tempdir().expect("a temporary directory");
    let root = home.path();
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let binary = util::kestrel_at(&root.join("kestrel"));
    for dir in ["home", "config", "data"] {
        std::fs::create_dir(root.join(dir)).expect("mkdir");
        std::os::unix::fs::chown(root.join(dir), Some(65534), Some(65534)).expect("chown");
    }
    std::os::unix::fs::chown(root, Some(65534), Some(65534)).expect("chown");
    let seen = task_reads(
        || {
            let mut command = Command::new("setpriv");
            command
                .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .arg(&binary);
            clean_command(&mut command, root);
            command
        },
        root,
    );
    assert_eq!(seen, ["key-hidden", "db-hidden", "work"], "as nobody");
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .any(|line| line.starts_with("Uid:") && line.split_whitespace().nth(2) == Some("0"))
    })
}

#[test]
fn a_machine_that_cannot_sandbox_says_so_and_required_refuses_tasks() {
    let sandbox = Sandbox::new();
    sandbox.write("flow.yml", &commands_flow("      - echo ran\n"));
    let auto = sandbox
        .kestrel(["run", "flow.yml"])
        .env("KESTREL_SANDBOX_FORCE_UNAVAILABLE", "1")
        .output();
    auto.assert_code(0);
    assert!(
        auto.stderr.contains(
            "warning: tasks run without a sandbox (KESTREL_SANDBOX_FORCE_UNAVAILABLE is set)"
        ),
        "{auto:#?}"
    );
    assert!(auto.stdout.contains("INFO  sh ran"), "{auto:#?}");
    // A flow that starts no process is not held up by the check, nor warned about.
    sandbox.write("log.yml", &util::log_flow("no process"));
    let logging = sandbox
        .kestrel(["run", "log.yml"])
        .env("KESTREL_SANDBOX_FORCE_UNAVAILABLE", "1")
        .output();
    logging.assert_code(0);
    assert!(!logging.stderr.contains("sandbox"), "{logging:#?}");
    let config = sandbox
        .kestrel(["config"])
        .env("KESTREL_SANDBOX_FORCE_UNAVAILABLE", "1")
        .output();
    config.assert_code(0);
    assert!(
        config.stdout.contains(
            "# task sandbox in effect: unavailable: KESTREL_SANDBOX_FORCE_UNAVAILABLE is set"
        ),
        "{config:#?}"
    );
    let sandboxed = sandbox.kestrel(["run", "flow.yml"]).output();
    sandboxed.assert_code(0);
    assert!(!sandboxed.stderr.contains("sandbox"), "{sandboxed:#?}");
    let config = sandbox.kestrel(["config"]).output();
    assert!(
        config.stdout.contains("# task sandbox in effect: on"),
        "{config:#?}"
    );
    sandbox.write("kestrel.yml", "task:\n  sandbox: required\n");
    let required = sandbox
        .kestrel(["--config", "kestrel.yml", "run", "flow.yml"])
        .env("KESTREL_SANDBOX_FORCE_UNAVAILABLE", "1")
        .output();
    required.assert_code(1);
    assert!(!required.stdout.contains("INFO  sh ran"), "{required:#?}");
    assert!(
        required
            .stdout
            .contains("task.sandbox is required, but this machine cannot sandbox tasks"),
        "{required:#?}"
    );
}

/// SIGKILLs kestrel while the task's job `sleep <marker>` runs; asserts the job ends too.
fn sigkill_ends_the_job(kestrel: &mut Started, marker: &str) {
    let job = job_pid(marker).expect("the task's job runs");
    kestrel.signal("KILL");
    let _ = kestrel.finish();
    assert!(
        eventually(|| job_pid(marker).is_none()),
        "the task's job {job} survived a SIGKILLed kestrel"
    );
}

/// Every file under `dir` holding `needle`.
fn files_holding(dir: &Path, needle: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(kind) if kind.is_dir() => found.extend(files_holding(&path, needle)),
            Ok(kind) if kind.is_file() => {
                let holds = std::fs::read(&path).is_ok_and(|bytes| {
                    bytes
                        .windows(needle.len())
                        .any(|window| window == needle.as_bytes())
                });
                if holds {
                    found.push(path);
                }
            }
            _ => {}
        }
    }
    found
}

#[test]
fn failure_7_a_sigkilled_kestrel_run_leaves_no_task_process_nor_script_and_a_restart_cleans_up() {
    const TOKEN: &str = "k1ll3d-s3cret-v4lue";
    let sandbox = Sandbox::new();
    let marker = marker(7);
    let tmp = sandbox.path("tmp");
    std::fs::create_dir(&tmp).expect("mkdir tmp");
    let commands = format!(
        "      - export SEEN=\"{{{{ secret('TOKEN') }}}}\"\n{}",
        stuck_commands(&marker, "")
    );
    sandbox.write("flow.yml", &commands_flow(&commands));
    let mut invocation = sandbox
        .kestrel(["run", "flow.yml"])
        .env("SECRET_TOKEN", base64(TOKEN))
        .env("TMPDIR", &tmp);
    let mut started = Started::new(
        std::mem::replace(invocation.command(), Command::new("true")),
        false,
    );
    let dir = started.task_dir();
    sigkill_ends_the_job(&mut started, &marker);
    let holding = files_holding(&sandbox.path(""), TOKEN);
    assert!(
        holding.is_empty(),
        "the secret stays on disk in {holding:?}"
    );
    sandbox.write("log.yml", &util::log_flow("restarted"));
    sandbox.kestrel(["run", "log.yml"]).output().assert_code(0);
    assert!(!dir.exists(), "the restart left {} behind", dir.display());
}

/// `kestrel server` on a free port of 127.0.0.1, once it listens; its address.
fn start_server(sandbox: &Sandbox) -> (Started, String) {
    let mut invocation = sandbox.kestrel(["server", "--bind", "127.0.0.1:0"]);
    let mut server = Started::new(
        std::mem::replace(invocation.command(), Command::new("true")),
        true,
    );
    let address = server.after("listening on http://").trim().to_owned();
    (server, address)
}

/// `POST path` as `auth`, with `body` of `content_type` when given; the whole response.
fn post(address: &str, path: &str, auth: &str, body: Option<(&str, &str)>) -> String {
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nAuthorization: {auth}\r\n"
    );
    let text = match body {
        Some((content_type, text)) => {
            request.push_str(&format!("Content-Type: {content_type}\r\n"));
            text
        }
        None => "",
    };
    request.push_str(&format!("Content-Length: {}\r\n\r\n{text}", text.len()));
    let mut stream = std::net::TcpStream::connect(address).expect("the server answers");
    stream
        .write_all(request.as_bytes())
        .expect("send the request");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read the answer");
    answer
}

#[test]
fn failure_7_a_sigkilled_server_leaves_no_task_process_and_a_restart_cleans_up() {
    let sandbox = Sandbox::new();
    let ada = format!("Basic {}", base64("ada:pa55-word"));
    let added = sandbox
        .kestrel(["users", "add", "ada"])
        .stdin("pa55-word\n");
    added.output().assert_code(0);
    let marker = marker(8);
    let report = sandbox.path("dir.txt");
    let to = format!(" > '{}'", report.display());
    let (mut server, address) = start_server(&sandbox);
    let flow = commands_flow(&stuck_commands(&marker, &to));
    let created = post(
        &address,
        "/api/v1/main/flows",
        &ada,
        Some(("application/x-yaml", &flow)),
    );
    assert!(created.starts_with("HTTP/1.1 200"), "{created}");
    let started = post(&address, "/api/v1/main/executions/dev/sandbox", &ada, None);
    assert!(started.starts_with("HTTP/1.1 200"), "{started}");
    assert!(
        eventually(|| std::fs::read_to_string(&report).is_ok_and(|text| text.ends_with('\n'))),
        "the task never ran"
    );
    let text = std::fs::read_to_string(&report).expect("the report");
    let dir = PathBuf::from(text.trim().trim_start_matches("dir "));
    sigkill_ends_the_job(&mut server, &marker);
    assert!(
        dir.exists(),
        "a SIGKILLed server cannot clean up: the restart does"
    );
    let (_restarted, _) = start_server(&sandbox);
    assert!(!dir.exists(), "the restart left {} behind", dir.display());
}

#[test]
fn failure_7_without_the_sandbox_a_restart_kills_what_a_sigkilled_kestrel_left_running() {
    let sandbox = Sandbox::new();
    let marker = marker(9);
    sandbox.write("flow.yml", &commands_flow(&stuck_commands(&marker, "")));
    sandbox.write("kestrel.yml", "task:\n  sandbox: off\n");
    let mut invocation = sandbox.kestrel(["--config", "kestrel.yml", "run", "flow.yml"]);
    let mut started = Started::new(
        std::mem::replace(invocation.command(), Command::new("true")),
        false,
    );
    let dir = started.task_dir();
    let job = job_pid(&marker).expect("the task's job runs");
    started.signal("KILL");
    let _ = started.finish();
    assert_eq!(
        job_pid(&marker),
        Some(job),
        "without the sandbox, the job outlives kestrel"
    );
    sandbox.write("log.yml", &util::log_flow("restarted"));
    sandbox.kestrel(["run", "log.yml"]).output().assert_code(0);
    assert!(
        eventually(|| job_pid(&marker).is_none()),
        "the restart left the task's job {job} running"
    );
    assert!(!dir.exists(), "the restart left {} behind", dir.display());
}
