//! What a run leaves behind: entries in the temporary directory, files in the data directory,
//! processes still running.

use super::procs;
use super::scan::Collected;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Leftovers of every run checked so far: problems (an entry or a process that should be
/// gone) and the content of every file found.
#[derive(Default)]
pub(crate) struct Leftovers {
    pub(crate) problems: Vec<String>,
    pub(crate) files: Collected,
}

impl Leftovers {
    /// After a run that ended `how`: `tmp` (the run's `TMPDIR`) must be empty, the files of
    /// `data` (the database aside: the store test decodes it) are read, and no process whose
    /// argument vector holds `marker` may still run.
    pub(crate) fn check(&mut self, how: &str, tmp: &Path, data: &Path, marker: &str) {
        for entry in walk(tmp) {
            let relative = entry.strip_prefix(tmp).unwrap_or(&entry);
            self.problems.push(format!(
                "after {how}: {} left in TMPDIR",
                relative.display()
            ));
            self.read(how, tmp, &entry);
        }
        for entry in walk(data) {
            let stored = entry
                .file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with("kestrel.db"));
            if !stored {
                self.read(how, data, &entry);
            }
        }
        let running = procs::left_running(marker, Duration::from_secs(3));
        if !running.is_empty() {
            self.problems.push(format!(
                "after {how}: {} task process(es) left running",
                running.len()
            ));
        }
    }

    fn read(&mut self, how: &str, base: &Path, file: &Path) {
        if let Ok(bytes) = std::fs::read(file) {
            let relative = file.strip_prefix(base).unwrap_or(file);
            self.files.plain(
                format!("file {} after {how}", relative.display()),
                String::from_utf8_lossy(&bytes),
            );
        }
    }

    pub(crate) fn extend(&mut self, other: Leftovers) {
        self.problems.extend(other.problems);
        self.files.extend(other.files);
    }
}

/// Every file and directory under `dir`, depth first.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            found.push(path.clone());
            if path.is_dir() {
                found.extend(walk(&path));
            }
        }
    }
    found
}

/// A marker no other process on the machine holds in its arguments.
pub(crate) fn marker(how: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.subsec_nanos())
        .unwrap_or(0);
    format!("leak-hunt-{how}-{}-{nanos}", std::process::id())
}
