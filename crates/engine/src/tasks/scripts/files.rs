//! The working directory of one task run: a fresh directory, mode 0700, holding the input
//! files and whatever the commands write (the script itself stays in memory: see
//! [`kestrel_sandbox::Script`]); output files are found in it (and stored in the internal
//! storage by the task), and all of it is removed
//! when the task run ends (on drop: success, failure, timeout or kill alike). It lives in
//! kestrel's work root ([`kestrel_sandbox::WorkRoot`]), whose next start removes what a
//! crashed process left there.

use std::fs::{self, OpenOptions, Permissions};
use std::io::{self, Read};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use tempfile::TempDir;

/// A task run's working directory, `<work root>/task-XXXXXX`.
pub(super) struct WorkDir {
    dir: TempDir,
}

impl WorkDir {
    /// A fresh directory in `root`, readable by this user only.
    pub(super) fn new(root: &Path) -> io::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("task-")
            .permissions(Permissions::from_mode(0o700))
            .tempdir_in(root)?;
        Ok(Self { dir })
    }

    /// Where the commands run.
    pub(super) fn work(&self) -> &Path {
        self.dir.path()
    }

    /// Writes an input file (mode 0600) at `name`, a relative path inside the working
    /// directory, with what `content` yields.
    pub(super) fn write_input(&self, name: &str, content: &mut dyn Read) -> Result<(), String> {
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
        .and_then(|()| write_new(&path, content, 0o600));
        written.map_err(|error| format!("inputFiles: cannot write '{name}': {error}"))
    }

    /// The regular files matching `patterns` (globs relative to the working directory): their
    /// relative paths and where they are, sorted. Symbolic links and folders are left out.
    pub(super) fn collect(&self, patterns: &[String]) -> Result<Vec<(String, PathBuf)>, String> {
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
    pub(super) fn remove(&self, name: &str) -> Result<(), String> {
        match fs::remove_dir_all(self.work().join(name)) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => {
                Err(format!("Cannot remove '{name}': {error}"))
            }
            _ => Ok(()),
        }
    }
}

/// Whether `path` is relative and stays inside the directory it is joined to.
fn is_inside(path: &str) -> bool {
    let path = Path::new(path);
    path.components().next().is_some()
        && path
            .components()
            .all(|part| matches!(part, Component::Normal(_) | Component::CurDir))
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
