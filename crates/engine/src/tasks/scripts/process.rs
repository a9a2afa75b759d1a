//! The interpreter's process: started by the process's [`kestrel_sandbox::Sandbox`] (in a
//! process group of its own, sandboxed where the machine allows, dying with kestrel), read
//! line by line, and killed with its whole group when the task run ends, however it ends (the
//! engine drops a task's future on kill and timeout, and dropping [`Running`] kills the
//! group).

use kestrel_sandbox::Script;
use rustix::process::{Pid, Signal, kill_process_group};
use std::ffi::OsString;
use std::io;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStderr, ChildStdout, Command};
use tokio::time::Instant;

/// How long lines are still read once the interpreter has exited and its group was killed:
/// only a process that left the group can keep the pipes open that long.
const DRAIN: Duration = Duration::from_secs(2);

/// How to start the interpreter.
pub(super) struct Launch<'a> {
    pub(super) program: &'a str,
    pub(super) args: &'a [OsString],
    pub(super) dir: &'a Path,
    /// Inherited variables to leave out (kestrel's own secrets and settings).
    pub(super) hidden: &'a [OsString],
    /// The task's `env`, rendered.
    pub(super) env: &'a [(String, String)],
}

/// Which stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stream {
    Stdout,
    Stderr,
}

/// What the process did next.
pub(super) enum Event {
    /// A line (without its line break), decoded lossily from UTF-8.
    Line(Stream, String),
    /// It exited and everything it printed has been read; nothing comes after.
    Exit(ExitStatus),
}

/// A running interpreter.
pub(super) struct Running {
    child: Child,
    group: Group,
    stdout: Reader<ChildStdout>,
    stderr: Reader<ChildStderr>,
    exited: Option<(ExitStatus, Instant)>,
}

impl Running {
    /// Starts the interpreter on `scripts` (the first is the one it runs): no stdin, stdout
    /// and stderr piped, in a new process group, through the sandbox.
    pub(super) fn start(launch: &Launch<'_>, scripts: Vec<Script>) -> io::Result<Self> {
        let mut command = std::process::Command::new(launch.program);
        command
            .args(launch.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for name in launch.hidden {
            command.env_remove(name);
        }
        command.envs(launch.env.iter().map(|(name, value)| (name, value)));
        kestrel_sandbox::current().configure(&mut command, launch.dir, scripts)?;
        let mut child = Command::from(command).kill_on_drop(true).spawn()?;
        let group = Group(child.id().and_then(|id| Pid::from_raw(id.try_into().ok()?)));
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            return Err(io::Error::other("the interpreter's output is not piped"));
        };
        Ok(Self {
            child,
            group,
            stdout: Reader::new(stdout),
            stderr: Reader::new(stderr),
            exited: None,
        })
    }

    /// The next line, or the exit once both streams are read to their end. After the
    /// interpreter exits, what is left of its group is killed (background jobs die with
    /// the task run, as they would with its container) and the pipes are drained.
    pub(super) async fn next(&mut self) -> io::Result<Event> {
        loop {
            let deadline = self.exited.map(|(_, at)| at);
            let open = !self.stdout.done || !self.stderr.done;
            if let (Some((status, _)), false) = (self.exited, open) {
                return Ok(Event::Exit(status));
            }
            tokio::select! {
                line = self.stdout.next(), if !self.stdout.done => {
                    if let Some(line) = line? {
                        return Ok(Event::Line(Stream::Stdout, line));
                    }
                }
                line = self.stderr.next(), if !self.stderr.done => {
                    if let Some(line) = line? {
                        return Ok(Event::Line(Stream::Stderr, line));
                    }
                }
                status = self.child.wait(), if self.exited.is_none() => {
                    self.exited = Some((status?, Instant::now() + DRAIN));
                    self.group.kill();
                }
                () = sleep_until(deadline), if deadline.is_some() => {
                    self.stdout.done = true;
                    self.stderr.done = true;
                }
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Reads one pipe line by line. `read_until` keeps partial lines in `buffer` when a
/// `select!` drops it, so no byte is lost between calls.
struct Reader<R> {
    reader: BufReader<R>,
    buffer: Vec<u8>,
    done: bool,
}

impl<R: tokio::io::AsyncRead + Unpin> Reader<R> {
    fn new(pipe: R) -> Self {
        Self {
            reader: BufReader::new(pipe),
            buffer: Vec::new(),
            done: false,
        }
    }

    /// The next line; `None` at the end (a last line without a line break comes first).
    async fn next(&mut self) -> io::Result<Option<String>> {
        let read = self.reader.read_until(b'\n', &mut self.buffer).await?;
        if read == 0 && self.buffer.is_empty() {
            self.done = true;
            return Ok(None);
        }
        let line = self.buffer.strip_suffix(b"\n").unwrap_or(&self.buffer);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let text = String::from_utf8_lossy(line).into_owned();
        self.buffer.clear();
        Ok(Some(text))
    }
}

/// The interpreter's process group, killed (SIGKILL) once: after the interpreter exits, or
/// when the task run is dropped.
struct Group(Option<Pid>);

impl Group {
    fn kill(&mut self) {
        if let Some(group) = self.0.take() {
            // The group may be gone already (every member exited): nothing to do then.
            let _ = kill_process_group(group, Signal::KILL);
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.kill();
    }
}
