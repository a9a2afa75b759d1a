//! The kestrel-owned folder working directories live under.
//!
//! `<root>/run-<pid>-<nanos>/` is one process's folder, holding `.lock` locked for as long as
//! the process lives (the kernel releases it however the process ends, SIGKILL included).
//! Every start, under an exclusive lock on the root itself, removes the folders whose lock
//! it can take: their process is gone, and so is any reason to keep its working directories
//! (and the input files in them). A task process still running in one (possible only
//! without the sandbox, whose PID namespace dies with kestrel) is killed first.

use rustix::process::{Pid, Signal, kill_process};
use std::fs::{self, DirBuilder, File, OpenOptions, TryLockError};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

const LOCK: &str = ".lock";

/// The work root, and this process's folder in it once a task needed one.
#[derive(Debug)]
pub struct WorkRoot {
    root: PathBuf,
    folder: OnceLock<Folder>,
}

/// One process's folder, locked while the process lives; removed when dropped.
#[derive(Debug)]
struct Folder {
    path: PathBuf,
    _lock: File,
}

impl WorkRoot {
    /// The work root at `root`. When it exists already, it is checked (a directory of this
    /// user, mode 0700) and what dead processes left there is removed; nothing is created
    /// until a task needs a folder.
    pub fn open(root: &Path) -> io::Result<Self> {
        if root.exists() {
            ensure_private_dir(root)?;
            let guard = File::open(root)?;
            guard.lock()?;
            remove_abandoned(root);
        }
        Ok(Self {
            root: root.to_owned(),
            folder: OnceLock::new(),
        })
    }

    /// This process's folder, made (with the work root, mode 0700) the first time.
    pub fn path(&self) -> io::Result<&Path> {
        if self.folder.get().is_none() {
            // Two tasks starting at once may both make one: the loser's is dropped (removed).
            let _ = self.folder.set(Folder::create(&self.root)?);
        }
        self.folder
            .get()
            .map(|folder| folder.path.as_path())
            .ok_or_else(|| io::Error::other("the work folder was not kept"))
    }

    /// Removes this process's folder and whatever is left in it (nothing, normally). What
    /// cannot be removed now goes at the next start.
    pub(crate) fn remove(&self) {
        if let Some(folder) = self.folder.get() {
            folder.remove();
        }
    }
}

impl Folder {
    fn create(root: &Path) -> io::Result<Self> {
        ensure_private_dir(root)?;
        let guard = File::open(root)?;
        guard.lock()?;
        let path = root.join(format!("run-{}-{}", std::process::id(), nanos()));
        DirBuilder::new().mode(0o700).create(&path)?;
        let lock = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path.join(LOCK))?;
        lock.lock()?;
        Ok(Self { path, _lock: lock })
    }

    fn remove(&self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        self.remove();
    }
}

/// `root` as a directory of this user, mode 0700: created so, or checked and tightened.
fn ensure_private_dir(root: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(root)?;
    let metadata = fs::symlink_metadata(root)?;
    let uid = rustix::process::geteuid().as_raw();
    if !metadata.is_dir() || metadata.uid() != uid {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{} is not a directory of this user: kestrel keeps task working directories there",
                root.display()
            ),
        ));
    }
    if metadata.permissions().mode() & 0o777 != 0o700 {
        fs::set_permissions(root, fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Removes every entry of `root` but the folders of live processes. Best effort: what cannot
/// be removed now is tried again at the next start.
fn remove_abandoned(root: &Path) {
    let Ok(entries) = fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if is_alive(&path) {
            continue;
        }
        let _ = match entry.file_type() {
            Ok(kind) if kind.is_dir() => {
                // `/proc/<pid>/cwd` links to the canonical path.
                if let Ok(canonical) = fs::canonicalize(&path) {
                    kill_processes_within(&canonical);
                }
                fs::remove_dir_all(&path)
            }
            _ => fs::remove_file(&path),
        };
    }
}

/// Kills (SIGKILL) every process of this user whose current directory is in `folder`: the
/// tasks a dead kestrel left running.
fn kill_processes_within(folder: &Path) {
    let Ok(entries) = fs::read_dir("/proc") else {
        return;
    };
    let pids = entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok());
    for pid in pids {
        let within =
            fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd.starts_with(folder));
        if let (true, Some(pid)) = (within, Pid::from_raw(pid)) {
            let _ = kill_process(pid, Signal::KILL);
        }
    }
}

/// Whether the process owning `folder` still holds its lock.
fn is_alive(folder: &Path) -> bool {
    let Ok(lock) = File::open(folder.join(LOCK)) else {
        return false;
    };
    matches!(lock.try_lock(), Err(TryLockError::WouldBlock))
}

fn nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_start_removes_what_dead_processes_left_and_keeps_live_folders() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("work");
        let live = WorkRoot::open(&root).unwrap();
        assert!(!root.exists(), "made only when a task needs it");
        let live_folder = live.path().unwrap().to_owned();
        let dead = root.join("run-1-1");
        fs::create_dir_all(dead.join("task-x")).unwrap();
        fs::write(dead.join(LOCK), "").unwrap();
        fs::write(dead.join("task-x/input.txt"), "secret").unwrap();
        fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).unwrap();
        let second = WorkRoot::open(&root).unwrap();
        assert!(!dead.exists());
        assert!(live_folder.exists() && second.path().unwrap().exists());
        let mode = fs::metadata(&root).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        drop(live);
        assert!(!live_folder.exists());
    }
}
