//! Runs the real `kestrel` binary in a clean room: a temporary directory as its working
//! directory, home and data directory, and none of the caller's SECRET_, ENV_ or KESTREL_
//! variables.

#![allow(dead_code, unreachable_pub)] // Each test file uses its own part of these helpers.

pub mod server;

use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use tempfile::TempDir;

/// The fixed mask.
pub const MASK: &str = "******";

/// A temporary directory to run kestrel in.
pub struct Sandbox {
    dir: TempDir,
}

impl Sandbox {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("a temporary directory"),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `content` to `name` in the sandbox.
    pub fn write(&self, name: &str, content: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, content).expect("write a sandbox file");
        path
    }

    /// `kestrel ARGS...` in the sandbox, ready for more environment or stdin.
    pub fn kestrel<I, S>(&self, args: I) -> Invocation
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut command = Command::new(env!("CARGO_BIN_EXE_kestrel"));
        command.args(args).current_dir(self.dir.path());
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy();
            if ["SECRET_", "ENV_", "KESTREL_"]
                .iter()
                .any(|p| name.starts_with(p))
            {
                command.env_remove(name.as_ref());
            }
        }
        let home = self.dir.path();
        command
            .env("HOME", home.join("home"))
            .env("XDG_CONFIG_HOME", home.join("config"))
            .env("XDG_DATA_HOME", home.join("share"))
            .env("XDG_CACHE_HOME", home.join("cache"))
            .env("KESTREL_DATA_DIR", home.join("data"));
        Invocation {
            command,
            stdin: None,
        }
    }

    /// `kestrel run FLOW --output json` of a flow written from `yaml`, with `env`.
    pub fn run_json(&self, yaml: &str, env: &[(&str, &str)]) -> Output {
        self.write("flow.yml", yaml);
        let mut invocation = self.kestrel(["run", "flow.yml", "--output", "json"]);
        for (name, value) in env {
            invocation = invocation.env(name, value);
        }
        invocation.output()
    }
}

/// One command about to run.
pub struct Invocation {
    command: Command,
    stdin: Option<String>,
}

impl Invocation {
    pub fn env(mut self, name: &str, value: impl AsRef<std::ffi::OsStr>) -> Self {
        self.command.env(name, value);
        self
    }

    pub fn env_remove(mut self, name: &str) -> Self {
        self.command.env_remove(name);
        self
    }

    pub fn stdin(mut self, text: &str) -> Self {
        self.stdin = Some(text.to_owned());
        self
    }

    /// The command itself, for a test that drives the process (signals, streaming output).
    pub fn command(&mut self) -> &mut Command {
        &mut self.command
    }

    pub fn output(mut self) -> Output {
        self.command
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = self.command.spawn().expect("kestrel starts");
        if let Some(text) = &self.stdin {
            let mut stdin = child.stdin.take().expect("a stdin pipe");
            stdin.write_all(text.as_bytes()).expect("write stdin");
        }
        let output = child.wait_with_output().expect("kestrel ends");
        Output {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// What a run left: exit status and both streams.
#[derive(Debug)]
pub struct Output {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// stdout as the JSON document of `--output json`.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|error| panic!("stdout is not JSON ({error}): {self:?}"))
    }

    /// Asserts the exit status, showing everything when it differs.
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, Some(code), "{self:#?}");
        self
    }

    /// Asserts `text` appears in neither stream.
    pub fn assert_hides(&self, text: &str) -> &Self {
        assert!(
            !self.stdout.contains(text),
            "stdout shows {text:?}: {self:#?}"
        );
        assert!(
            !self.stderr.contains(text),
            "stderr shows {text:?}: {self:#?}"
        );
        self
    }

    /// The messages of the JSON document's `logs`.
    pub fn messages(&self) -> Vec<String> {
        self.json()["logs"]
            .as_array()
            .expect("logs")
            .iter()
            .map(|entry| entry["message"].as_str().expect("a message").to_owned())
            .collect()
    }
}

/// A one-task flow `secretTest` in namespace `dev` logging `message` (a YAML scalar).
pub fn log_flow(message: &str) -> String {
    format!(
        "id: secretTest\nnamespace: dev\ntasks:\n  - id: hello\n    type: io.kestra.plugin.core.log.Log\n    message: {message}\n"
    )
}

/// Hex SHA-256 of `text`.
pub fn sha256(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Standard base64 of `text`.
pub fn base64(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// kestrel's binary placed at `dest`, executable by anyone (for runs as another user). A hard
/// link where the file system allows one: a copy holds a write descriptor while it is made,
/// and a child that another test forks in that moment inherits it, so exec'ing the copy
/// then fails with "text file busy".
pub fn kestrel_at(dest: &std::path::Path) -> PathBuf {
    let original = env!("CARGO_BIN_EXE_kestrel");
    if std::fs::hard_link(original, dest).is_err() {
        std::fs::copy(original, dest).expect("copy kestrel");
    }
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(dest, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    dest.to_owned()
}
