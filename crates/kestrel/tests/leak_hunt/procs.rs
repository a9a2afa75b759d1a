//! Processes: a guard that kills what a test started, the process tree under a pid, what
//! `/proc` shows of each process to an unprivileged reader, and processes left running.

use super::scan::Collected;
use std::path::Path;
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

/// The user an unprivileged reader (and, when the test runs as root, kestrel) runs as.
const NOBODY: &str = "65534";

/// A child process killed and reaped when the guard goes, however the test ends.
pub(crate) struct Guard(pub(crate) Option<Child>);

impl Guard {
    /// Spawns `command` with no stdin and both output streams piped.
    pub(crate) fn spawn(command: &mut Command) -> Self {
        let child = command
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the process starts");
        Self(Some(child))
    }

    pub(crate) fn pid(&self) -> u32 {
        self.0.as_ref().map_or(0, Child::id)
    }

    /// Waits for the exit, at most `limit`; its output, or `None` when it did not end.
    pub(crate) fn wait(&mut self, limit: Duration) -> Option<Output> {
        let deadline = Instant::now() + limit;
        let child = self.0.as_mut()?;
        while child.try_wait().ok()?.is_none() {
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.0.take()?.wait_with_output().ok()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Sends `signal` (a name such as `TERM`) to `pid`.
pub(crate) fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{signal} {pid}");
}

/// Waits until `path` exists, at most `limit`; whether it does.
pub(crate) fn wait_for_file(path: &Path, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while !path.exists() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// Whether this test runs as root (then `/proc` hides nothing from it, and an unprivileged
/// user stands in for the reader).
pub(crate) fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().next().map(|uid| uid == "0"))
        })
        .unwrap_or(false)
}

/// `command` run as the unprivileged user, through `setpriv`, with the same arguments,
/// environment and directory.
pub(crate) fn as_nobody(command: &Command) -> Command {
    let mut wrapped = Command::new("setpriv");
    wrapped
        .args([
            &format!("--reuid={NOBODY}"),
            &format!("--regid={NOBODY}"),
            "--clear-groups",
            "--",
        ])
        .arg(command.get_program())
        .args(command.get_args());
    if let Some(dir) = command.get_current_dir() {
        wrapped.current_dir(dir);
    }
    for (name, value) in command.get_envs() {
        match value {
            Some(value) => wrapped.env(name, value),
            None => wrapped.env_remove(name),
        };
    }
    wrapped
}

/// Gives every file and directory under `dir` to the unprivileged user.
pub(crate) fn give_to_nobody(dir: &Path) {
    let id: u32 = NOBODY.parse().expect("a uid");
    std::os::unix::fs::chown(dir, Some(id), Some(id)).expect("chown");
    if dir.is_dir() {
        for entry in std::fs::read_dir(dir).expect("read a directory").flatten() {
            give_to_nobody(&entry.path());
        }
    }
}

/// `pid` and every process descended from it.
pub(crate) fn tree(pid: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = all_pids()
        .into_iter()
        .filter_map(|child| parent_of(child).map(|parent| (child, parent)))
        .collect();
    let mut found = vec![pid];
    let mut index = 0;
    while index < found.len() {
        let parent = found[index];
        found.extend(
            parents
                .iter()
                .filter(|(_, p)| *p == parent)
                .map(|(child, _)| *child),
        );
        index += 1;
    }
    found
}

fn all_pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses; the fields after its last `)` do not.
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(1)?.parse().ok()
}

/// The process's name, for reports.
pub(crate) fn name(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|name| name.trim().to_owned())
        .unwrap_or_else(|_| "gone".to_owned())
}

/// The argument vector, arguments separated by spaces.
pub(crate) fn argv(pid: u32) -> Option<String> {
    let bytes = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(String::from_utf8_lossy(&bytes).replace('\0', " "))
}

/// The environment as an unprivileged reader of the same user gets it; `None` when the
/// process does not allow it.
pub(crate) fn environ(pid: u32) -> Option<String> {
    let path = format!("/proc/{pid}/environ");
    let bytes = if is_root() {
        let read = as_nobody(Command::new("cat").arg(&path)).output().ok()?;
        read.status.success().then_some(read.stdout)?
    } else {
        std::fs::read(&path).ok()?
    };
    Some(String::from_utf8_lossy(&bytes).replace('\0', "\n"))
}

/// Keeps the argument vector and, where readable, the environment of `pid` and of every
/// process under it; how many environments were readable.
pub(crate) fn read_tree(pid: u32, what: &str, seen: &mut Collected) -> usize {
    let mut environments = 0;
    for pid in tree(pid) {
        let name = name(pid);
        if let Some(argv) = argv(pid) {
            seen.plain(format!("{what}: argv of {name}"), argv);
        }
        if let Some(environ) = environ(pid) {
            environments += 1;
            seen.plain(format!("{what}: environment of {name}"), environ);
        }
    }
    environments
}

/// Processes whose argument vector holds `marker`, waiting up to `limit` for them to go (a
/// killed process needs a moment to be reaped); those still there are killed and returned.
pub(crate) fn left_running(marker: &str, limit: Duration) -> Vec<u32> {
    let deadline = Instant::now() + limit;
    loop {
        let running: Vec<u32> = all_pids()
            .into_iter()
            .filter(|pid| argv(*pid).is_some_and(|argv| argv.contains(marker)))
            .filter(|pid| !is_zombie(*pid))
            .collect();
        if running.is_empty() || Instant::now() > deadline {
            for pid in &running {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
            return running;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let after = stat[stat.rfind(')')? + 1..].to_owned();
            after.split_whitespace().next().map(|state| state == "Z")
        })
        .unwrap_or(true)
}
