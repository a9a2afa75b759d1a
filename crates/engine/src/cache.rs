//! A WorkingDirectory's `cache`: the files of its directory matching the cache's patterns,
//! archived in the internal storage beside the flow's executions (so that retention and
//! `kestrel run`'s clean-up keep it), and put back in the directory of its next task runs
//! until `ttl` passes. A run that restored the cache does not archive it again, so `ttl`
//! counts from the archive's creation. Files are masked as they are archived, as an ended
//! execution's files are (docs/storage.md). The archive is kestrel's own format (a header with the
//! creation time, then each file's path and content, lengths first); the API never serves it.

use crate::TaskError;
use crate::workdir::{SharedDir, WorkDir};
use kestrel_flow::WorkCache;
use kestrel_secrets::MaskRegistry;
use kestrel_storage::{ExecutionFiles, StorageUri};
use std::io::{self, BufReader, Read, Seek, Write};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The first bytes of an archive.
const MAGIC: &[u8; 16] = b"kestrel-cache-1\n";
/// The longest path an archive holds.
const NAME_MAX: u32 = 4096;

/// Where task `task_id`'s cache is, and the storage holding it.
#[derive(Clone)]
pub(crate) struct CacheSlot {
    files: ExecutionFiles,
    uri: StorageUri,
}

impl CacheSlot {
    pub(crate) fn new(files: &ExecutionFiles, task_id: &str) -> Result<Self, TaskError> {
        let uri = files
            .cache_file(task_id)
            .map_err(|error| TaskError::new(format!("cache: {error}")))?;
        Ok(Self {
            files: files.clone(),
            uri,
        })
    }

    /// Puts the archived files into `dir` when an archive younger than `ttl` exists; whether
    /// it did.
    pub(crate) async fn restore(
        &self,
        shared: &Arc<SharedDir>,
        cache: &WorkCache,
    ) -> Result<bool, TaskError> {
        let (slot, shared, ttl) = (self.clone(), Arc::clone(shared), cache.ttl);
        blocking(move || slot.restore_into(&shared.dir, ttl)).await
    }

    /// Archives the files of `dir` matching the cache's patterns, masked with `registry` (the
    /// archive outlives the execution, as its masked files do); nothing when none matches.
    pub(crate) async fn save(
        &self,
        shared: &Arc<SharedDir>,
        cache: &WorkCache,
        registry: Arc<MaskRegistry>,
    ) -> Result<(), TaskError> {
        let (slot, shared, patterns) = (self.clone(), Arc::clone(shared), cache.patterns.clone());
        blocking(move || slot.save_from(&shared.dir, &patterns, &registry)).await
    }

    fn restore_into(&self, dir: &WorkDir, ttl: Option<Duration>) -> Result<bool, String> {
        let storage = self.files.storage();
        if !storage.exists(&self.uri).map_err(|e| e.to_string())? {
            return Ok(false);
        }
        let mut archive = BufReader::new(storage.open(&self.uri).map_err(|e| e.to_string())?);
        let mut magic = [0; 16];
        archive.read_exact(&mut magic).map_err(corrupt)?;
        let created = read_u64(&mut archive).map_err(corrupt)?;
        let age = now_millis().saturating_sub(created);
        if &magic != MAGIC || ttl.is_some_and(|ttl| u128::from(age) > ttl.as_millis()) {
            return Ok(false);
        }
        while let Some(name) = read_name(&mut archive)? {
            let size = read_u64(&mut archive).map_err(corrupt)?;
            dir.write_input(&name, &mut (&mut archive).take(size))?;
        }
        Ok(true)
    }

    fn save_from(
        &self,
        dir: &WorkDir,
        patterns: &[String],
        registry: &MaskRegistry,
    ) -> Result<(), String> {
        let found = dir.collect(patterns)?;
        if found.is_empty() {
            return Ok(());
        }
        let root = kestrel_sandbox::current()
            .work_root()
            .map_err(|e| e.to_string())?;
        let mut archive = tempfile::tempfile_in(root).map_err(|e| e.to_string())?;
        let written: io::Result<()> = (|| {
            archive.write_all(MAGIC)?;
            archive.write_all(&now_millis().to_be_bytes())?;
            for (name, path) in &found {
                let content = std::fs::read(path)?;
                let content = registry.mask_bytes(&content).unwrap_or(content);
                let length = u32::try_from(name.len()).unwrap_or(u32::MAX);
                archive.write_all(&length.to_be_bytes())?;
                archive.write_all(name.as_bytes())?;
                archive.write_all(&(content.len() as u64).to_be_bytes())?;
                archive.write_all(&content)?;
            }
            archive.rewind()
        })();
        written.map_err(|error| format!("cannot archive the cache: {error}"))?;
        self.files
            .storage()
            .put(&self.uri, &mut archive)
            .map(drop)
            .map_err(|error| format!("cannot store the cache: {error}"))
    }
}

/// Runs `work` on a blocking thread; its error as the task's.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, TaskError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| TaskError::new(format!("cache: stopped: {error}")))?
        .map_err(|error| TaskError::new(format!("cache: {error}")))
}

fn corrupt(error: io::Error) -> String {
    format!("the archive is damaged: {error}")
}

fn read_u64(reader: &mut impl Read) -> io::Result<u64> {
    let mut bytes = [0; 8];
    reader.read_exact(&mut bytes)?;
    Ok(u64::from_be_bytes(bytes))
}

/// The next file's path; `None` at the end of the archive.
fn read_name(reader: &mut impl Read) -> Result<Option<String>, String> {
    let mut bytes = [0; 4];
    match reader.read_exact(&mut bytes) {
        Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        other => other.map_err(corrupt)?,
    }
    let length = u32::from_be_bytes(bytes);
    if length > NAME_MAX {
        return Err(corrupt(io::Error::other("a path is too long")));
    }
    let mut name = vec![0; length as usize];
    reader.read_exact(&mut name).map_err(corrupt)?;
    String::from_utf8(name)
        .map(Some)
        .map_err(|_| corrupt(io::Error::other("a path is not UTF-8")))
}

fn now_millis() -> u64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}
