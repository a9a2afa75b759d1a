//! Where and how task processes run: what docs/threat-model.md promises and `task.sandbox`.
//!
//! This crate owns three things the engine's Commands task asks for:
//! - [`WorkRoot`]: the kestrel-owned folder (mode 0700) working directories live under. Each
//!   process serves from a folder of its own inside it (made when a task first needs it),
//!   locked while it lives; every start removes the folders whose process is gone, so nothing
//!   a crashed kestrel left survives a restart.
//! - [`Script`]: a rendered script in a sealed memory file, run by its `/proc/self/fd` path,
//!   so it never touches a disk.
//! - [`Sandbox`]: how a task's process starts. It always dies with kestrel
//!   (`PR_SET_PDEATHSIG`). Sandboxed (`task.sandbox: auto` where the machine allows it, or
//!   `required`), it runs as the init of its own PID namespace (tied to kestrel: when it ends,
//!   every process of the task ends), in its own mount namespace (and user namespace when
//!   kestrel is not root) where the hidden paths ([`Policy::hidden`]: the data directory,
//!   the configuration directory, the key file, the database) are covered by empty mounts
//!   and a fresh `/proc` shows only the task's processes; then its capabilities are dropped,
//!   `no_new_privs` set, and Landlock scopes it away from signalling or tracing anything
//!   outside (kernel ABI 6 and later).
//!
//! Install the process's sandbox once with [`install`]; [`current`] is what tasks use (a
//! default sandbox, hiding nothing, when none was installed).
//!
//! Unsafe code: the workspace forbids it and this crate denies it, except in `child.rs`,
//! the code that runs in the forked child between `fork` and `exec` (`pre_exec`: namespaces,
//! mounts, the intermediate process that waits for the namespace's init, Landlock's system
//! calls). Each unsafe block there carries a SAFETY comment.

mod child;
mod plan;
mod root;
mod script;

pub use root::WorkRoot;
pub use script::Script;

use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// Setting this variable to a non-empty value makes the sandbox unavailable: a test's way to
/// reach the path of a machine that cannot sandbox.
pub const FORCE_UNAVAILABLE: &str = "KESTREL_SANDBOX_FORCE_UNAVAILABLE";

/// `task.sandbox`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Sandbox where the machine allows it; say so at start where it does not.
    #[default]
    Auto,
    /// Refuse to run a task without the sandbox.
    Required,
    /// Run tasks as kestrel's own user, without a sandbox.
    Off,
}

/// What the sandbox hides and where working directories live.
#[derive(Debug, Clone)]
pub struct Policy {
    /// `task.sandbox`.
    pub mode: Mode,
    /// Directories and files tasks must not see. Missing ones are skipped.
    pub hidden: Vec<PathBuf>,
    /// The kestrel-owned folder working directories live under (created mode 0700).
    pub work_root: PathBuf,
}

impl Policy {
    /// The policy of a process that installed none: `auto`, nothing hidden, working
    /// directories under `<tmp>/kestrel-<uid>`.
    pub fn fallback() -> Self {
        let uid = rustix::process::geteuid().as_raw();
        Self {
            mode: Mode::Auto,
            hidden: Vec::new(),
            work_root: std::env::temp_dir().join(format!("kestrel-{uid}")),
        }
    }
}

/// Whether tasks run sandboxed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// In namespaces; `landlock` says whether Landlock scopes them too.
    Sandboxed {
        /// Whether the kernel's Landlock scopes signals and abstract sockets.
        landlock: bool,
    },
    /// The machine cannot sandbox, for this reason.
    Unavailable(String),
    /// `task.sandbox: off`.
    Off,
}

impl std::fmt::Display for Status {
    /// How `/health` and `kestrel config` say it: `on`, `on, with Landlock`, `unavailable:
    /// <reason>`, `off`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Status::Sandboxed { landlock: true } => f.write_str("on, with Landlock"),
            Status::Sandboxed { landlock: false } => f.write_str("on"),
            Status::Unavailable(reason) => write!(f, "unavailable: {reason}"),
            Status::Off => f.write_str("off"),
        }
    }
}

/// How tasks' processes start in this process.
#[derive(Debug)]
pub struct Sandbox {
    mode: Mode,
    hidden: Vec<PathBuf>,
    root: WorkRoot,
    /// What the machine allows, tried the first time it matters: a process that starts no
    /// task never pays for the probe.
    probed: OnceLock<Probed>,
}

/// The outcome of the probe.
#[derive(Debug)]
struct Probed {
    status: Status,
    isolation: Option<plan::Isolation>,
}

static INSTALLED: OnceLock<Sandbox> = OnceLock::new();

/// Installs this process's sandbox: opens the work root (emptying what dead processes left
/// there); what the machine allows is checked the first time [`Sandbox::status`] or a task
/// asks. Fails when the work root cannot be used or a sandbox is installed already.
pub fn install(policy: Policy) -> io::Result<&'static Sandbox> {
    let mut fresh = Some(Sandbox::new(policy)?);
    let installed = INSTALLED.get_or_init(|| fresh.take().expect("taken once"));
    match fresh {
        None => Ok(installed),
        Some(_) => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "the task sandbox is installed already",
        )),
    }
}

/// The installed sandbox, or one of [`Policy::fallback`] installed now.
///
/// # Panics
/// When no sandbox was installed and the fallback's work root cannot be created.
pub fn current() -> &'static Sandbox {
    INSTALLED.get_or_init(|| {
        Sandbox::new(Policy::fallback()).expect("the temporary directory is usable")
    })
}

impl Sandbox {
    fn new(policy: Policy) -> io::Result<Self> {
        let root = WorkRoot::open(&policy.work_root)?;
        Ok(Self {
            mode: policy.mode,
            hidden: policy.hidden,
            root,
            probed: OnceLock::new(),
        })
    }

    fn probed(&self) -> &Probed {
        self.probed.get_or_init(|| {
            if self.mode == Mode::Off {
                return Probed {
                    status: Status::Off,
                    isolation: None,
                };
            }
            match self.probe() {
                Ok((isolation, landlock)) => Probed {
                    status: Status::Sandboxed { landlock },
                    isolation: Some(isolation),
                },
                Err(reason) => Probed {
                    status: Status::Unavailable(reason),
                    isolation: None,
                },
            }
        })
    }

    /// The isolation this machine allows (user namespace or not), tried on `/bin/sh`.
    fn probe(&self) -> Result<(plan::Isolation, bool), String> {
        if std::env::var_os(FORCE_UNAVAILABLE).is_some_and(|value| !value.is_empty()) {
            return Err(format!("{FORCE_UNAVAILABLE} is set"));
        }
        let landlock_scopes = child::landlock_scopes();
        let as_root = rustix::process::geteuid().is_root();
        // Root needs no user namespace (and keeps its own uid); one is the fallback.
        let choices: &[bool] = if as_root { &[false, true] } else { &[true] };
        let mut failure = String::from("no isolation was tried");
        for &user_namespace in choices {
            let isolation = plan::Isolation {
                user_namespace,
                landlock_scopes,
            };
            match self.try_isolation(&isolation) {
                Ok(()) => return Ok((isolation, landlock_scopes != 0)),
                Err(error) => failure = format!("cannot start a process in namespaces: {error}"),
            }
        }
        Err(failure)
    }

    fn try_isolation(&self, isolation: &plan::Isolation) -> io::Result<()> {
        let mut command = Command::new("/bin/sh");
        command
            .args(["-c", "exit 0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let root = Path::new("/");
        let plan = plan::ChildPlan::new(Some((isolation, &self.hidden)), root, Vec::new())?;
        child::attach(&mut command, plan);
        command.current_dir(root).process_group(0);
        let status = command.spawn()?.wait()?;
        if status.success() {
            Ok(())
        } else {
            Err(io::Error::other(format!("the probe ended with {status}")))
        }
    }

    /// Whether tasks run sandboxed.
    pub fn status(&self) -> &Status {
        &self.probed().status
    }

    /// The folder this process's working directories go in, made the first time.
    pub fn work_root(&self) -> io::Result<&Path> {
        self.root.path()
    }

    /// Removes this process's folder of the work root, once no task runs any more (at exit):
    /// a sandbox lives in a `static`, which is never dropped.
    pub fn close(&self) {
        self.root.remove();
    }

    /// What to say at start, on `/health` and in `kestrel config` when tasks run without a
    /// sandbox under `auto`; `None` otherwise.
    pub fn warning(&self) -> Option<String> {
        match (self.status(), self.mode) {
            (Status::Unavailable(reason), Mode::Auto) => Some(format!(
                "tasks run without a sandbox ({reason}): a task can read whatever this user can, \
                 kestrel's data directory and master key included; see docs/threat-model.md"
            )),
            _ => None,
        }
    }

    /// Why no task may run (`required` on a machine that cannot sandbox); `None` otherwise.
    pub fn refusal(&self) -> Option<String> {
        match (self.status(), self.mode) {
            (Status::Unavailable(reason), Mode::Required) => Some(format!(
                "task.sandbox is required, but this machine cannot sandbox tasks ({reason})"
            )),
            _ => None,
        }
    }

    /// Makes `command` start a task's process in working directory `dir`, in a process group
    /// of its own, dying with kestrel, sandboxed as [`Sandbox::status`] says, with each of
    /// `scripts` readable at its [`Script::path`]. Fails as [`Sandbox::refusal`] says.
    pub fn configure(
        &self,
        command: &mut Command,
        dir: &Path,
        scripts: Vec<Script>,
    ) -> io::Result<()> {
        if let Some(refusal) = self.refusal() {
            return Err(io::Error::new(io::ErrorKind::PermissionDenied, refusal));
        }
        let isolation = self
            .probed()
            .isolation
            .as_ref()
            .map(|isolation| (isolation, &self.hidden));
        let plan = plan::ChildPlan::new(isolation, dir, scripts)?;
        command.current_dir(dir).process_group(0);
        child::attach(command, plan);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    /// Runs `script` with `sh` in a fresh directory of `sandbox`; its stdout.
    fn run(sandbox: &Sandbox, script: &str) -> String {
        let dir = sandbox.work_root().unwrap().join("task");
        fs::create_dir_all(&dir).unwrap();
        let script = Script::new(script).unwrap();
        let mut command = Command::new("/bin/sh");
        command.arg(script.path()).stderr(Stdio::inherit());
        sandbox.configure(&mut command, &dir, vec![script]).unwrap();
        let output = command.output().unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout).unwrap()
    }

    #[test]
    fn a_sandboxed_process_sees_neither_hidden_paths_nor_other_processes() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let key = dir.path().join("master.key");
        fs::create_dir(&data).unwrap();
        fs::write(data.join("kestrel.db"), "database").unwrap();
        fs::write(&key, "key").unwrap();
        let sandbox = Sandbox::new(Policy {
            mode: Mode::Required,
            hidden: vec![data.clone(), key.clone()],
            work_root: data.join("work"),
        })
        .unwrap();
        assert!(
            matches!(sandbox.status(), Status::Sandboxed { .. }),
            "{sandbox:?}"
        );
        let seen = run(
            &sandbox,
            &format!(
                "cat {db} {key} 2>/dev/null; echo \"pid $$\"; pwd; [ -e /proc/{me} ] || echo unseen",
                db = data.join("kestrel.db").display(),
                key = key.display(),
                me = std::process::id()
            ),
        );
        let task = fs::canonicalize(sandbox.work_root().unwrap().join("task")).unwrap();
        assert_eq!(seen, format!("pid 1\n{}\nunseen\n", task.display()));
    }

    #[test]
    fn off_runs_the_script_unsandboxed() {
        let dir = tempfile::tempdir().unwrap();
        let sandbox = Sandbox::new(Policy {
            mode: Mode::Off,
            hidden: Vec::new(),
            work_root: dir.path().join("work"),
        })
        .unwrap();
        assert_eq!(sandbox.status(), &Status::Off);
        assert_ne!(run(&sandbox, "echo $$"), "1\n");
    }
}
