//! Documentation that cannot rot: every `sh` block of the README and of `docs/` runs, as
//! written, and succeeds; every `sh-norun` block (docker, systemctl, a real Vault...) is at
//! least valid shell (`bash -n`); every flow shown in a `yaml` block, and every flow under
//! `examples/`, validates.
//!
//! How a file's `sh` blocks run: concatenated in order into one `bash -euo pipefail` script,
//! with a fresh `HOME` (so a fresh data directory, configuration and master key), none of the
//! caller's `KESTREL_`, `SECRET_` or `ENV_` variables, `kestrel` on `PATH`, and every process
//! the script left in the background killed at its end. A file of `docs/` runs in a fresh
//! directory holding a copy of `examples/`. The README runs at the repository's root, as a
//! newcomer would after a clone, except its test command (this test is part of it): its
//! `cargo install` builds into this workspace's target folder, with cargo's own home (so that
//! it reuses the registry), and installs into a temporary root (or the one
//! `KESTREL_README_INSTALL_ROOT` names, where CI keeps it) whose `bin` comes first on `PATH`,
//! so the README's later commands use the binary it installed.

#![allow(clippy::unwrap_used)] // Test code: a failure is a failed test.

mod util;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The README's test command: not run by a test it runs.
const TEST_COMMAND: &str = "./scripts/test";

/// The longest a file's blocks may take together.
// A bound against a hang, not a figure: the README script builds the release binary (thin LTO)
// with `cargo install`, which took over 600 s on CI's 2 cores once other work shared them.
const SCRIPT_LIMIT: Duration = Duration::from_secs(1800);

fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// A fenced block of a Markdown file: its info string, its text (without the indentation of
/// a block nested in a list) and its first line.
struct Block {
    info: String,
    text: String,
    line: usize,
}

fn blocks(markdown: &str) -> Vec<Block> {
    let mut found = Vec::new();
    let mut open: Option<(Block, usize)> = None;
    for (number, line) in markdown.lines().enumerate() {
        let indent = line.len() - line.trim_start().len();
        let fence = line.trim_start().strip_prefix("```");
        match (&mut open, fence) {
            (None, Some(info)) => {
                let block = Block {
                    info: info.trim().to_owned(),
                    text: String::new(),
                    line: number + 1,
                };
                open = Some((block, indent));
            }
            (Some(_), Some("")) => found.extend(open.take().map(|(block, _)| block)),
            (Some((block, indent)), _) => {
                let unindented = line.get(*indent..).filter(|_| line.len() > *indent);
                block.text.push_str(unindented.unwrap_or(line.trim_start()));
                block.text.push('\n');
            }
            (None, None) => {}
        }
    }
    found
}

/// The Markdown files whose blocks are checked: the README and every file of `docs/`.
fn documents() -> Vec<PathBuf> {
    let root = repository();
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "md"))
        .collect();
    files.sort();
    files.insert(0, root.join("README.md"));
    files
}

fn name(path: &Path) -> String {
    path.strip_prefix(repository())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// The folder of the kestrel binary the tests built, and the target folder it is in.
fn built() -> (PathBuf, PathBuf) {
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_kestrel"));
    let bin_dir = binary.parent().unwrap().to_owned();
    let target = bin_dir.parent().unwrap().to_owned();
    (bin_dir, target)
}

/// Runs `script` with `bash -euo pipefail` in `dir`, as the module says; its output on
/// failure.
fn run_script(script: &str, dir: &Path, path_first: &[&Path], extra: &[(&str, &Path)]) {
    let home = tempfile::tempdir().unwrap();
    let path = std::env::join_paths(
        path_first
            .iter()
            .map(|p| p.to_path_buf())
            .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
    )
    .unwrap();
    let mut command = Command::new("bash");
    command
        .args(["-euo", "pipefail", "-c", script])
        .current_dir(dir)
        .env("HOME", home.path())
        .env("PATH", path)
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("XDG_DATA_HOME")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy().into_owned();
        if ["KESTREL_", "SECRET_", "ENV_"]
            .iter()
            .any(|prefix| name.starts_with(prefix))
        {
            command.env_remove(name);
        }
    }
    for (name, value) in extra {
        command.env(name, value);
    }
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let (status, stdout, stderr) = run_group(command, SCRIPT_LIMIT);
    assert!(
        status == Some(0),
        "the script exited {status:?}\n--- script\n{script}\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
}

/// Runs `command` (the leader of its own process group) until it exits or `limit` passes,
/// then kills what is left of its group (a server the script started in the background,
/// which holds the output pipes open); its exit status and output.
fn run_group(mut command: Command, limit: Duration) -> (Option<i32>, String, String) {
    let mut child = command.spawn().expect("bash starts");
    let group = rustix::process::Pid::from_child(&child);
    let stdout = collect(child.stdout.take());
    let stderr = collect(child.stderr.take());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if started.elapsed() > limit {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
    let _ = child.wait();
    (status, stdout.join().unwrap(), stderr.join().unwrap())
}

/// Everything `pipe` gives until it closes, read on a thread of its own.
fn collect<R: Read + Send + 'static>(pipe: Option<R>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut text);
        }
        String::from_utf8_lossy(&text).into_owned()
    })
}

/// The `sh` blocks of `file`, in order, as one script (the README's test command left out).
fn script_of(file: &Path) -> String {
    let markdown = std::fs::read_to_string(file).unwrap();
    blocks(&markdown)
        .into_iter()
        .filter(|block| block.info == "sh")
        .map(|block| {
            let kept: Vec<&str> = block
                .text
                .lines()
                .filter(|line| line.trim() != TEST_COMMAND)
                .collect();
            format!("# {}:{}\n{}\n", name(file), block.line, kept.join("\n"))
        })
        .collect()
}

#[test]
fn the_readme_runs_as_written_from_the_install_to_a_server_reading_a_secret() {
    let root = repository();
    let script = script_of(&root.join("README.md"));
    assert!(
        script.contains("cargo install --path crates/kestrel --locked"),
        "the README shows how to install kestrel"
    );
    let (_, target) = built();
    let temporary_root = tempfile::tempdir().unwrap();
    // CI names a root to keep the binary in, for its acceptance stage: one optimised build
    // where there were two.
    let install_root = std::env::var_os("KESTREL_README_INSTALL_ROOT")
        .map_or_else(|| temporary_root.path().to_owned(), PathBuf::from);
    let bin = install_root.join("bin");
    // The script's HOME is a fresh one (for kestrel's data); cargo and rustup keep theirs, so
    // that the install reuses the registry, and with it most of the workspace's build.
    let home = PathBuf::from(std::env::var_os("HOME").unwrap());
    let cargo_home =
        std::env::var_os("CARGO_HOME").map_or_else(|| home.join(".cargo"), PathBuf::from);
    let rustup_home =
        std::env::var_os("RUSTUP_HOME").map_or_else(|| home.join(".rustup"), PathBuf::from);
    run_script(
        &script,
        &root,
        &[&bin],
        &[
            ("CARGO_TARGET_DIR", &target),
            ("CARGO_INSTALL_ROOT", &install_root),
            ("CARGO_HOME", &cargo_home),
            ("RUSTUP_HOME", &rustup_home),
        ],
    );
}

#[test]
fn every_sh_block_of_the_docs_runs() {
    let (bin_dir, _) = built();
    for file in documents().into_iter().skip(1) {
        let script = script_of(&file);
        if script.is_empty() {
            continue;
        }
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&repository().join("examples"), &dir.path().join("examples"));
        run_script(&script, dir.path(), &[&bin_dir], &[]);
    }
}

#[test]
fn every_sh_norun_block_is_valid_shell() {
    for file in documents() {
        let markdown = std::fs::read_to_string(&file).unwrap();
        for block in blocks(&markdown).iter().filter(|b| b.info == "sh-norun") {
            let checked = Command::new("bash")
                .args(["-n", "-c", &block.text])
                .output()
                .unwrap();
            assert!(
                checked.status.success(),
                "{}:{}: {}",
                name(&file),
                block.line,
                String::from_utf8_lossy(&checked.stderr)
            );
        }
    }
}

#[test]
fn every_block_is_sh_sh_norun_or_not_shell() {
    for file in documents() {
        let markdown = std::fs::read_to_string(&file).unwrap();
        for block in blocks(&markdown) {
            assert!(
                !["bash", "shell", "console", "shell-session"].contains(&block.info.as_str()),
                "{}:{}: use ```sh (run by tests) or ```sh-norun (syntax-checked)",
                name(&file),
                block.line
            );
        }
    }
}

#[test]
fn every_flow_shown_or_given_as_an_example_validates() {
    let sandbox = util::Sandbox::new();
    let mut flows = Vec::new();
    for file in documents() {
        let markdown = std::fs::read_to_string(&file).unwrap();
        for block in blocks(&markdown).iter().filter(|b| is_flow(b)) {
            let place = format!("{}:{}", name(&file), block.line);
            flows.push((place, block.text.clone()));
        }
    }
    for entry in std::fs::read_dir(repository().join("examples")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yml" || e == "yaml") {
            flows.push((name(&path), std::fs::read_to_string(&path).unwrap()));
        }
    }
    assert!(flows.len() > 5, "{} flows found", flows.len());
    for (place, text) in flows {
        sandbox.write("shown.yml", &text);
        let out = sandbox.kestrel(["validate", "shown.yml"]).output();
        assert_eq!(out.code, Some(0), "{place}: {}", out.stderr);
    }
}

/// A `yaml` block holding a whole flow: `id`, `namespace` and `tasks` at its top level.
fn is_flow(block: &Block) -> bool {
    block.info == "yaml"
        && ["id:", "namespace:", "tasks:"]
            .iter()
            .all(|key| block.text.lines().any(|line| line.starts_with(key)))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
