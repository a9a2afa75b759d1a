//! The seam between expressions and an execution's internal storage: `read()`, `fileSize()`,
//! `fileExists()` and `isFileEmpty()` reach files only through [`Files`], which the engine
//! provides (`Context::with_files`).

/// The files an execution's expressions may read: its internal storage (`kestra://` URIs).
pub trait Files: Send + Sync {
    /// The bytes of the file at `uri`, at most `limit` bytes (more is an error naming the limit).
    fn read(&self, uri: &str, limit: usize) -> Result<Vec<u8>, String>;
    /// The size in bytes of the file at `uri`.
    fn size(&self, uri: &str) -> Result<u64, String>;
    /// Whether a file exists at `uri`.
    fn exists(&self, uri: &str) -> Result<bool, String>;
}
