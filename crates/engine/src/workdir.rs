//! The working directory of a task run, or of the tasks of a WorkingDirectory: a fresh
//! directory, mode 0700, holding the input files and whatever the tasks write (a script
//! itself stays in memory: see [`kestrel_sandbox::Script`]); output files are found in it
//! and stored in the internal storage, and all of it is removed when its owner ends (on drop:
//! success, failure, timeout or kill alike). It lives in kestrel's work root
//! ([`kestrel_sandbox::WorkRoot`]), whose next start removes what a crashed process left
//! there.

use std::fs::{self, OpenOptions, Permissions};
use std::io::{self, Read};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use tempfile::TempDir;

use crate::{TaskContext, TaskError};
use kestrel_storage::ExecutionFiles;
use serde_json::{Map, Value};
use std::sync::Arc;

/// A working directory, `<work root>/task-XXXXXX`.
pub(crate) struct WorkDir {
    dir: TempDir,
}

impl WorkDir {
    /// A fresh directory in kestrel's work root.
    pub(crate) fn create() -> Result<Self, TaskError> {
        kestrel_sandbox::current()
            .work_root()
            .and_then(Self::new)
            .map_err(|error| {
                TaskError::new(format!("Cannot create the working directory: {error}"))
            })
    }

    /// A fresh directory in `root`, readable by this user only.
    pub(crate) fn new(root: &Path) -> io::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("task-")
            .permissions(Permissions::from_mode(0o700))
            .tempdir_in(root)?;
        Ok(Self { dir })
    }

    /// Where the commands run.
    pub(crate) fn work(&self) -> &Path {
        self.dir.path()
    }

    /// Writes an input file (mode 0600) at `name`, a relative path inside the working
    /// directory, with what `content` yields.
    pub(crate) fn write_input(&self, name: &str, content: &mut dyn Read) -> Result<(), String> {
        if !is_inside(name) {
            return Err(format!(
                "inputFiles: '{name}' must be a relative path inside the working directory"
            ));
        }
        let path = self.work().join(name);
        let written = match path.parent() {
            Some(parent) => fs::create_dir_all(parent),
            None => Ok(()),
        }
        .and_then(|()| remove_earlier(&path))
        .and_then(|()| write_new(&path, content, 0o600));
        written.map_err(|error| format!("inputFiles: cannot write '{name}': {error}"))
    }

    /// The regular files matching `patterns` (globs relative to the working directory): their
    /// relative paths and where they are, sorted. Symbolic links and folders are left out.
    pub(crate) fn collect(&self, patterns: &[String]) -> Result<Vec<(String, PathBuf)>, String> {
        let base = self
            .work()
            .to_str()
            .ok_or("outputFiles: the working directory's path is not UTF-8")?;
        let base = glob::Pattern::escape(base);
        let mut found = Vec::new();
        for pattern in patterns {
            if !is_inside(pattern) {
                return Err(format!(
                    "outputFiles: '{pattern}' must be a relative pattern inside the working directory"
                ));
            }
            let paths = glob::glob(&format!("{base}/{pattern}")).map_err(|error| {
                format!("outputFiles: '{pattern}' is not a valid glob: {error}")
            })?;
            found.extend(paths.flatten());
        }
        found.sort();
        found.dedup();
        let mut files = Vec::new();
        for path in found {
            let Ok(name) = path.strip_prefix(self.work()) else {
                continue;
            };
            let name = name.to_string_lossy().into_owned();
            let metadata = fs::symlink_metadata(&path)
                .map_err(|error| format!("outputFiles: cannot read '{name}': {error}"))?;
            if metadata.is_file() {
                files.push((name, path));
            }
        }
        Ok(files)
    }
}

impl WorkDir {
    /// Removes the folder `name` of the working directory, if it is there (a symbolic link
    /// put in its place is removed, never followed).
    pub(crate) fn remove(&self, name: &str) -> Result<(), String> {
        match fs::remove_dir_all(self.work().join(name)) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => {
                Err(format!("Cannot remove '{name}': {error}"))
            }
            _ => Ok(()),
        }
    }
}

/// Where a task run's files go: the execution's files, and the task run they belong to.
#[derive(Clone, Copy)]
pub(crate) struct Place<'a> {
    pub(crate) files: Option<&'a ExecutionFiles>,
    pub(crate) task_id: &'a str,
    pub(crate) task_run_id: &'a str,
}

impl<'a> Place<'a> {
    /// The execution's files; an error when the engine has no storage.
    pub(crate) fn files(&self) -> Result<&'a ExecutionFiles, TaskError> {
        self.files.ok_or_else(|| {
            TaskError::new("this task needs the internal storage, which this engine does not have")
        })
    }

    /// Stores what `content` yields as the task run's file `name`, on a blocking thread; its
    /// `kestra://` URI.
    pub(crate) async fn store(
        &self,
        name: &str,
        content: Box<dyn Read + Send>,
    ) -> Result<String, TaskError> {
        let files = self.files()?.clone();
        let uri = files
            .task_file(self.task_id, self.task_run_id, name)
            .map_err(|error| TaskError::new(error.to_string()))?;
        let stored = tokio::task::spawn_blocking(move || {
            let mut content = content;
            files.put(&uri, &mut content).map(|_| uri)
        })
        .await
        .map_err(|error| TaskError::new(format!("storing '{name}' stopped: {error}")))?;
        stored
            .map(|uri| uri.to_string())
            .map_err(|error| TaskError::new(format!("cannot store '{name}': {error}")))
    }

    /// Writes the input file `name`: `content` itself, or, when it is a `kestra://` URI (as
    /// in Kestra), the file of the internal storage it names.
    pub(crate) fn write_input(
        &self,
        dir: &WorkDir,
        name: &str,
        content: &str,
    ) -> Result<(), TaskError> {
        if !content.starts_with(kestrel_storage::SCHEME) {
            return dir
                .write_input(name, &mut content.as_bytes())
                .map_err(TaskError::new);
        }
        let mut file = self
            .files()?
            .open(content)
            .map_err(|error| TaskError::new(format!("inputFiles: '{name}': {error}")))?;
        dir.write_input(name, &mut file).map_err(TaskError::new)
    }

    /// Stores the files of `dir` matching `patterns` as the task run's files: their
    /// `kestra://` URIs by relative path.
    pub(crate) async fn store_outputs(
        &self,
        dir: &WorkDir,
        patterns: &[String],
    ) -> Result<Map<String, Value>, TaskError> {
        let mut files = Map::new();
        for (name, path) in dir.collect(patterns).map_err(TaskError::new)? {
            let file = fs::File::open(&path).map_err(|error| {
                TaskError::new(format!("outputFiles: cannot read '{name}': {error}"))
            })?;
            let uri = self.store(&name, Box::new(file)).await?;
            files.insert(name, Value::String(uri));
        }
        Ok(files)
    }
}

/// The directory the tasks of a WorkingDirectory share, and the WorkingDirectory's task run
/// (its children's `workerTaskrun`).
pub(crate) struct SharedDir {
    pub(crate) dir: WorkDir,
    pub(crate) taskrun: Value,
}

/// A task run's directory: the one of the WorkingDirectory it runs in, or its own.
pub(crate) enum TaskDir {
    Own(WorkDir),
    Shared(Arc<SharedDir>),
}

impl TaskDir {
    /// The directory task runs of `ctx` work in.
    pub(crate) fn of(ctx: &TaskContext<'_>) -> Result<Self, TaskError> {
        match ctx.shared_dir() {
            Some(shared) => Ok(Self::Shared(shared)),
            None => WorkDir::create().map(Self::Own),
        }
    }
}

impl std::ops::Deref for TaskDir {
    type Target = WorkDir;

    fn deref(&self) -> &WorkDir {
        match self {
            Self::Own(dir) => dir,
            Self::Shared(shared) => &shared.dir,
        }
    }
}

impl std::fmt::Debug for SharedDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedDir")
            .field("dir", &self.dir.work())
            .finish_non_exhaustive()
    }
}

/// An unnamed file in kestrel's work root, gone once dropped: where a task keeps what it
/// receives (a download) before the internal storage takes it.
pub(crate) fn spool_file() -> Result<fs::File, TaskError> {
    kestrel_sandbox::current()
        .work_root()
        .and_then(tempfile::tempfile_in)
        .map_err(|error| TaskError::new(format!("Cannot create a file in the work root: {error}")))
}

/// Whether `path` is relative and stays inside the directory it is joined to.
fn is_inside(path: &str) -> bool {
    let path = Path::new(path);
    path.components().next().is_some()
        && path
            .components()
            .all(|part| matches!(part, Component::Normal(_) | Component::CurDir))
}

/// Removes what an earlier task left at `path` (a file, or a link, never followed), so that
/// the new file replaces it, as in Kestra.
fn remove_earlier(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}

fn write_new(path: &Path, content: &mut dyn Read, mode: u32) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    io::copy(content, &mut file).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn new_dir() -> WorkDir {
        WorkDir::new(&std::env::temp_dir()).unwrap()
    }

    #[test]
    fn the_directory_is_private_and_removed_on_drop() {
        let dir = new_dir();
        assert_eq!(mode(dir.work()), 0o700);
        assert_eq!(dir.collect(&["*".into(), ".*".into()]).unwrap(), []);
        let root = dir.work().to_owned();
        drop(dir);
        assert!(!root.exists());
    }

    #[test]
    fn input_files_stay_inside() {
        let dir = new_dir();
        dir.write_input("sub/in.txt", &mut &b"hello"[..]).unwrap();
        let path = dir.work().join("sub/in.txt");
        assert_eq!(fs::read_to_string(&path).unwrap(), "hello");
        assert_eq!(mode(&path), 0o600);
        for name in ["../x", "/etc/x", "a/../../x", ""] {
            assert!(dir.write_input(name, &mut &b"x"[..]).is_err(), "{name}");
        }
    }

    #[test]
    fn output_files_are_collected_by_glob() {
        let dir = new_dir();
        fs::create_dir(dir.work().join("out")).unwrap();
        fs::write(dir.work().join("a.txt"), "A").unwrap();
        fs::write(dir.work().join("out/b.txt"), "B").unwrap();
        fs::write(dir.work().join("bin"), [0xff, 0x00]).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.work().join("link.txt")).unwrap();
        let files = dir
            .collect(&[
                "*.txt".into(),
                "**/*.txt".into(),
                "bin".into(),
                "none*".into(),
            ])
            .unwrap();
        let names: Vec<&str> = files.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, ["a.txt", "bin", "out/b.txt"]);
        assert_eq!(files[2].1, dir.work().join("out/b.txt"));
        assert!(dir.collect(&["../*".into()]).is_err());
    }

    #[test]
    fn a_removed_folder_is_gone_and_a_missing_one_is_no_error() {
        let dir = new_dir();
        dir.write_input("lib/m.py", &mut &b"x"[..]).unwrap();
        dir.remove("lib").unwrap();
        assert!(!dir.work().join("lib").exists());
        dir.remove("lib").unwrap();
    }
}
