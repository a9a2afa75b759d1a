//! The working directory of one task run: a fresh directory, mode 0700, holding the input
//! files and whatever the commands write (the script itself stays in memory: see
//! [`kestrel_sandbox::Script`]); output files are collected from it, and all of it is removed
//! when the task run ends (on drop: success, failure, timeout or kill alike). It lives in
//! kestrel's work root ([`kestrel_sandbox::WorkRoot`]), whose next start removes what a
//! crashed process left there.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};
use std::fs::{self, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path};
use tempfile::TempDir;

/// The largest output file collected: its content becomes an output, kept in memory.
const MAX_OUTPUT_FILE: u64 = 10 * 1024 * 1024;

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
    /// directory.
    pub(super) fn write_input(&self, name: &str, content: &str) -> Result<(), String> {
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
        .and_then(|()| write_new(&path, content.as_bytes(), 0o600));
        written.map_err(|error| format!("inputFiles: cannot write '{name}': {error}"))
    }

    /// The regular files matching `patterns` (globs relative to the working directory), by
    /// relative path: UTF-8 content as text, anything else as a base64 `data:` URI.
    pub(super) fn collect(&self, patterns: &[String]) -> Result<Map<String, Value>, String> {
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
        let mut files = Map::new();
        for path in found {
            let Ok(name) = path.strip_prefix(self.work()) else {
                continue;
            };
            let name = name.to_string_lossy().into_owned();
            if let Some(content) = read_output(&path, &name)? {
                files.insert(name, content);
            }
        }
        Ok(files)
    }
}

/// A regular file's content as an output value; `None` for anything else (directories,
/// symbolic links).
fn read_output(path: &Path, name: &str) -> Result<Option<Value>, String> {
    let unreadable = |error: io::Error| format!("outputFiles: cannot read '{name}': {error}");
    let metadata = fs::symlink_metadata(path).map_err(unreadable)?;
    if !metadata.is_file() {
        return Ok(None);
    }
    if metadata.len() > MAX_OUTPUT_FILE {
        return Err(format!(
            "outputFiles: '{name}' is larger than {MAX_OUTPUT_FILE} bytes; write large results elsewhere"
        ));
    }
    let bytes = fs::read(path).map_err(unreadable)?;
    Ok(Some(Value::String(match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(error) => format!(
            "data:application/octet-stream;base64,{}",
            STANDARD.encode(error.into_bytes())
        ),
    })))
}

/// Whether `path` is relative and stays inside the directory it is joined to.
fn is_inside(path: &str) -> bool {
    let path = Path::new(path);
    path.components().next().is_some()
        && path
            .components()
            .all(|part| matches!(part, Component::Normal(_) | Component::CurDir))
}

fn write_new(path: &Path, content: &[u8], mode: u32) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    file.write_all(content)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
        assert_eq!(dir.collect(&["*".into(), ".*".into()]).unwrap(), Map::new());
        let root = dir.work().to_owned();
        drop(dir);
        assert!(!root.exists());
    }

    #[test]
    fn input_files_stay_inside() {
        let dir = new_dir();
        dir.write_input("sub/in.txt", "hello").unwrap();
        let path = dir.work().join("sub/in.txt");
        assert_eq!(fs::read_to_string(&path).unwrap(), "hello");
        assert_eq!(mode(&path), 0o600);
        for name in ["../x", "/etc/x", "a/../../x", ""] {
            assert!(dir.write_input(name, "x").is_err(), "{name}");
        }
    }

    #[test]
    fn output_files_are_collected_by_glob() {
        let dir = new_dir();
        fs::create_dir(dir.work().join("out")).unwrap();
        fs::write(dir.work().join("a.txt"), "A").unwrap();
        fs::write(dir.work().join("out/b.txt"), "B").unwrap();
        fs::write(dir.work().join("bin"), [0xff, 0x00]).unwrap();
        let files = dir
            .collect(&[
                "*.txt".into(),
                "**/*.txt".into(),
                "bin".into(),
                "none*".into(),
            ])
            .unwrap();
        assert_eq!(
            Value::Object(files),
            json!({
                "a.txt": "A",
                "bin": "data:application/octet-stream;base64,/wA=",
                "out/b.txt": "B",
            })
        );
        assert!(dir.collect(&["../*".into()]).is_err());
    }
}
