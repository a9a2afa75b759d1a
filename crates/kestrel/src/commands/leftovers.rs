//! What a `kestrel run` killed on the way (SIGKILL, a crash, a power cut) leaves in the
//! internal storage: the files of its executions, which only the end of the run masks or
//! removes. Each run holds a claim, `<storage>/.runs/<execution id>`, locked for as long as
//! the process lives (the kernel releases the lock however it ends) and listing the folders of
//! its executions, its subflows' included. Every `kestrel run` first removes the folders of
//! the claims whose lock it can take: their run is gone, and so is any reader of their files.

use kestrel_storage::{ExecutionFiles, Storage, StorageUri};
use std::fs::{self, DirBuilder, File, OpenOptions, TryLockError};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The folder of the claims, in the storage's root.
const CLAIMS: &str = ".runs";

/// This run's claim: its lock, the list of its executions' folders, and the folders it made
/// (removed with it when nothing else is in them: a run that stores nothing leaves nothing).
#[derive(Debug)]
pub(crate) struct RunClaim {
    path: PathBuf,
    file: Mutex<File>,
    made: Vec<PathBuf>,
}

impl RunClaim {
    /// Takes the claim of the run of execution `files` (first removing what dead runs left).
    pub(crate) fn take(
        root: &Path,
        storage: &dyn Storage,
        files: &ExecutionFiles,
    ) -> io::Result<Self> {
        let folder = root.join(CLAIMS);
        let made: Vec<PathBuf> = folder
            .ancestors()
            .take_while(|path| !path.exists())
            .map(Path::to_path_buf)
            .collect();
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&folder)?;
        // Under a lock on the folder, so that no run sweeps a claim made but not yet locked.
        let guard = File::open(&folder)?;
        guard.lock()?;
        remove_abandoned(&folder, storage);
        let name = files
            .execution_prefix()
            .segments()
            .last()
            .cloned()
            .unwrap_or_default();
        let path = folder.join(name);
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .read(true)
            .mode(0o600)
            .open(&path)?;
        file.lock()?;
        let claim = Self {
            path,
            file: Mutex::new(file),
            made,
        };
        claim.record(files);
        Ok(claim)
    }

    /// Adds the folder of `files` (a subflow's execution) to what a later run removes if this
    /// one dies.
    pub(crate) fn record(&self, files: &ExecutionFiles) {
        let mut file = self
            .file
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // A line that cannot be written only leaves a folder to a later clean-up by hand.
        let _ = writeln!(file, "{}", files.execution_prefix());
    }
}

impl Drop for RunClaim {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
        // Deepest first; a folder something else uses is not empty and stays.
        for folder in &self.made {
            if fs::remove_dir(folder).is_err() {
                break;
            }
        }
    }
}

/// Removes the folders listed by the claims whose run is gone, and those claims.
fn remove_abandoned(folder: &Path, storage: &dyn Storage) {
    let Ok(entries) = fs::read_dir(folder) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(mut file) = File::options().read(true).open(&path) else {
            continue;
        };
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock | TryLockError::Error(_)) => continue,
        }
        let mut listed = String::new();
        if file.read_to_string(&mut listed).is_err() {
            continue;
        }
        let all_gone = listed
            .lines()
            .filter_map(|line| StorageUri::parse(line).ok())
            .all(|prefix| storage.delete_all(&prefix).is_ok());
        if all_gone {
            let _ = fs::remove_file(&path);
        }
    }
}
