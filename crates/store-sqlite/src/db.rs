//! Connections to the one SQLite file: a writer, a pool of readers, and a watcher that sees
//! other processes' changes.

use crate::StoreOptions;
use crate::sync::{blocking, lock};
use kestrel_store::StoreError;
use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Readers kept open for reuse; more are opened when more threads read at once.
const POOLED_READERS: usize = 4;

pub(crate) struct Db {
    path: PathBuf,
    options: StoreOptions,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    watcher: Mutex<Connection>,
}

pub(crate) fn err(context: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |e| StoreError::backend(context, e)
}

impl Db {
    /// Opens (creating, mode 0600) the file, sets WAL and the pragmas, and migrates.
    pub(crate) fn open(path: &Path, options: StoreOptions) -> Result<Self, StoreError> {
        create_private_file(path)?;
        let mut writer = connect(path, &options)?;
        // WAL is a property of the file: set once, kept by every later connection.
        let mode: String = writer
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(err("switch the database to WAL"))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::backend(
                "switch the database to WAL",
                format!("the journal mode stayed '{mode}'"),
            ));
        }
        crate::migrate::run(&mut writer)?;
        let watcher = connect(path, &options)?;
        Ok(Self {
            path: path.to_owned(),
            options,
            writer: Mutex::new(writer),
            readers: Mutex::new(Vec::new()),
            watcher: Mutex::new(watcher),
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction of the writer; commits on `Ok`, rolls
    /// back on `Err`.
    pub(crate) fn write<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        blocking(|| {
            let mut conn = lock(&self.writer);
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(err("start a write transaction"))?;
            let out = f(&tx)?;
            tx.commit().map_err(err("commit a write transaction"))?;
            Ok(out)
        })
    }

    /// The writer, outside any transaction (for setup at open).
    pub(crate) fn with_writer<T>(&self, f: impl FnOnce(&mut Connection) -> T) -> T {
        blocking(|| f(&mut lock(&self.writer)))
    }

    /// Runs `f` on a reader connection (WAL readers never wait for the writer).
    pub(crate) fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        blocking(|| {
            let pooled = lock(&self.readers).pop();
            let conn = match pooled {
                Some(conn) => conn,
                None => connect(&self.path, &self.options)?,
            };
            let out = f(&conn);
            let mut pool = lock(&self.readers);
            if pool.len() < POOLED_READERS {
                pool.push(conn);
            }
            out
        })
    }

    /// Makes `prepare`d connection the only reader (a test's instrument on what reads run).
    #[cfg(test)]
    pub(crate) fn only_reader(&self, prepare: impl FnOnce(&mut Connection)) {
        let mut conn = connect(&self.path, &self.options).expect("a reader");
        prepare(&mut conn);
        let mut pool = lock(&self.readers);
        pool.clear();
        pool.push(conn);
    }

    /// The store's change generation, as committed now by any process.
    pub(crate) fn generation(&self) -> Result<i64, StoreError> {
        blocking(|| {
            lock(&self.watcher)
                .prepare_cached("SELECT generation FROM store_state WHERE singleton = 1")
                .and_then(|mut s| s.query_row([], |r| r.get(0)))
                .map_err(err("read the change generation"))
        })
    }
}

fn connect(path: &Path, options: &StoreOptions) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)
        .map_err(|e| StoreError::backend(format!("open the database {}", path.display()), e))?;
    conn.busy_timeout(options.busy_timeout)
        .map_err(err("set the busy timeout"))?;
    conn.execute_batch(&format!(
        // mmap: readers share the OS page cache instead of copying pages in per connection,
        // which keeps cold gets as fast with 100,000 secrets as with 1,000.
        "PRAGMA synchronous = {}; PRAGMA foreign_keys = ON; PRAGMA mmap_size = 268435456;",
        options.synchronous.pragma()
    ))
    .map_err(err("set the connection's pragmas"))?;
    if options.background_checkpoint.is_some() {
        // Checkpoints are the background thread's; a WAL reset keeps at most 64 MiB on disk.
        conn.execute_batch("PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = 67108864;")
            .map_err(err("set the connection's pragmas"))?;
    }
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// Checkpoints the WAL every `every` on a connection of its own, PASSIVE, until the store
/// `alive` refers to is dropped. A failed checkpoint is left for the next round.
pub(crate) fn spawn_checkpoints<T: Send + Sync + 'static>(
    path: &Path,
    options: &StoreOptions,
    every: std::time::Duration,
    alive: std::sync::Weak<T>,
) -> Result<(), StoreError> {
    let conn = connect(path, options)?;
    std::thread::Builder::new()
        .name("kestrel-checkpoint".into())
        .spawn(move || {
            loop {
                std::thread::sleep(every);
                if alive.strong_count() == 0 {
                    return;
                }
                // Busy (a writer holds the lock for the moment) or an I/O error: next round.
                let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
            }
        })
        .map_err(|e| StoreError::backend("start the checkpoint thread", e))?;
    Ok(())
}

/// Creates the database file with mode 0600 if it does not exist; SQLite gives its WAL and
/// shared-memory files the same mode.
fn create_private_file(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(StoreError::backend(
            format!("create the database {}", path.display()),
            e,
        )),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Test code: a failure is a failed test.
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::mpsc;
    use std::time::Duration;

    /// Long enough never to pass by itself on a loaded machine: reaching it fails the test.
    const NEVER: Duration = Duration::from_secs(30);

    #[test]
    fn a_write_waiting_for_the_writer_leaves_the_runtime_running_other_tasks() {
        let dir = tempfile::tempdir().unwrap();
        let db =
            Arc::new(Db::open(&dir.path().join("kestrel.db"), StoreOptions::default()).unwrap());
        // Another thread holds the writer until a task of the runtime releases it.
        let (locked, is_locked) = mpsc::channel();
        let (release, released) = mpsc::channel::<()>();
        let holder = {
            let db = Arc::clone(&db);
            std::thread::spawn(move || {
                db.with_writer(|_| {
                    locked.send(()).unwrap();
                    released.recv_timeout(NEVER).is_ok()
                })
            })
        };
        is_locked.recv().unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        runtime.block_on(async {
            let db = Arc::clone(&db);
            tokio::spawn(async move {
                // Queued on the one worker, which the write below then waits on.
                tokio::spawn(async move { release.send(()).unwrap() });
                db.write(|tx| Ok(tx.execute("UPDATE store_state SET generation = generation", [])))
            })
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        });
        assert!(
            holder.join().unwrap(),
            "the task releasing the writer never ran while a write waited for it"
        );
    }
}
