//! Lock helpers: a poisoned lock (a panic elsewhere while holding it) still guards consistent
//! data here, since every critical section leaves its state whole before anything can panic.
//! And [`blocking`], for the calls that wait on the database.

use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(PoisonError::into_inner)
}

/// Runs `f`, which may wait on the database (the writer's lock, a commit's fsync), without
/// stalling the async runtime: on a worker of a multi-threaded runtime, tokio hands that
/// worker's other tasks to another thread while `f` blocks. The store's methods are async but
/// run SQLite in place; without this, two writers waiting on a third left a 2-core server
/// answering nothing, `/health` included, for up to 180 ms (`scripts/long-tests`).
/// Elsewhere (no runtime, a current-thread runtime, a blocking thread) `f` just runs.
pub(crate) fn blocking<T>(f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}
