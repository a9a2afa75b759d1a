//! The default storage: files under a folder of the local filesystem (`<data-dir>/storage`),
//! one file per URI at the path of its segments.

use crate::{Storage, StorageError, StorageUri};
use std::fs::{self, DirBuilder, File, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Files under `root`: folders mode 0700, files 0600, each written to a temporary file first
/// and renamed into place, so that a reader never sees half a file and a write that fails (too
/// large, disk full) leaves nothing.
#[derive(Debug)]
pub struct LocalStorage {
    root: PathBuf,
    max_file_size: u64,
}

impl LocalStorage {
    /// The storage under `root` (made when first written to), refusing files larger than
    /// `max_file_size` bytes.
    pub fn new(root: impl Into<PathBuf>, max_file_size: u64) -> Self {
        Self {
            root: root.into(),
            max_file_size,
        }
    }

    fn path(&self, uri: &StorageUri) -> PathBuf {
        uri.segments()
            .iter()
            .fold(self.root.clone(), |path, segment| path.join(segment))
    }
}

impl Storage for LocalStorage {
    fn max_file_size(&self) -> u64 {
        self.max_file_size
    }

    fn put(&self, uri: &StorageUri, content: &mut dyn Read) -> Result<u64, StorageError> {
        let path = self.path(uri);
        let io_error = |error| StorageError::Io(uri.to_string(), error);
        let folder = path.parent().unwrap_or(&self.root);
        make_private_dirs(folder).map_err(io_error)?;
        let mut file = tempfile::Builder::new()
            .prefix(".partial-")
            .permissions(Permissions::from_mode(0o600))
            .tempfile_in(folder)
            .map_err(io_error)?;
        let written = copy_bounded(content, file.as_file_mut(), self.max_file_size)
            .map_err(io_error)?
            .ok_or(StorageError::TooLarge {
                limit: self.max_file_size,
            })?;
        file.as_file().sync_data().map_err(io_error)?;
        file.persist(&path).map_err(|error| io_error(error.error))?;
        Ok(written)
    }

    fn open(&self, uri: &StorageUri) -> Result<Box<dyn Read + Send>, StorageError> {
        match File::open(self.path(uri)) {
            Ok(file) => Ok(Box::new(file)),
            Err(error) => Err(not_found_or(uri, error)),
        }
    }

    fn size(&self, uri: &StorageUri) -> Result<u64, StorageError> {
        match fs::metadata(self.path(uri)) {
            Ok(metadata) if metadata.is_file() => Ok(metadata.len()),
            Ok(_) => Err(StorageError::NotFound(uri.to_string())),
            Err(error) => Err(not_found_or(uri, error)),
        }
    }

    fn list(&self, prefix: &StorageUri) -> Result<Vec<StorageUri>, StorageError> {
        let mut found = Vec::new();
        match walk(&self.path(prefix), prefix, &mut found) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => {
                Err(StorageError::Io(prefix.to_string(), error))
            }
            _ => {
                found.sort_by_key(StorageUri::to_string);
                Ok(found)
            }
        }
    }

    fn delete_all(&self, prefix: &StorageUri) -> Result<(), StorageError> {
        match fs::remove_dir_all(self.path(prefix)) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => {
                Err(StorageError::Io(prefix.to_string(), error))
            }
            _ => Ok(()),
        }
    }
}

/// Appends the files under `folder`, whose URI is `uri`, to `found`.
fn walk(folder: &Path, uri: &StorageUri, found: &mut Vec<StorageUri>) -> io::Result<()> {
    for entry in fs::read_dir(folder)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(child) = uri.join([name]) else {
            continue;
        };
        let kind = entry.file_type()?;
        if kind.is_dir() {
            walk(&entry.path(), &child, found)?;
        } else if kind.is_file() {
            found.push(child);
        }
    }
    Ok(())
}

fn not_found_or(uri: &StorageUri, error: io::Error) -> StorageError {
    match error.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory | io::ErrorKind::IsADirectory => {
            StorageError::NotFound(uri.to_string())
        }
        _ => StorageError::Io(uri.to_string(), error),
    }
}

fn make_private_dirs(path: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(path)
}

/// Copies `from` into `to`; `None` as soon as more than `limit` bytes came.
fn copy_bounded(from: &mut dyn Read, to: &mut File, limit: u64) -> io::Result<Option<u64>> {
    let mut bounded = from.take(limit.saturating_add(1));
    let copied = io::copy(&mut bounded, to)?;
    to.flush()?;
    Ok((copied <= limit).then_some(copied))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(text: &str) -> StorageUri {
        StorageUri::parse(text).expect("valid URI")
    }

    fn read_all(storage: &LocalStorage, at: &StorageUri) -> Vec<u8> {
        let mut content = Vec::new();
        storage
            .open(at)
            .expect("stored")
            .read_to_end(&mut content)
            .expect("readable");
        content
    }

    #[test]
    fn a_file_is_stored_privately_and_read_back() {
        let root = tempfile::tempdir().expect("temp dir");
        let storage = LocalStorage::new(root.path().join("storage"), 1024);
        let at = uri("kestra:///dev/flow/executions/e1/tasks/t/r/out.txt");
        assert_eq!(storage.put(&at, &mut &b"hello"[..]).expect("put"), 5);
        assert_eq!(read_all(&storage, &at), b"hello");
        assert_eq!(storage.size(&at).expect("size"), 5);
        let path = root
            .path()
            .join("storage/dev/flow/executions/e1/tasks/t/r/out.txt");
        let mode = |p: &Path| fs::metadata(p).expect("exists").permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&root.path().join("storage/dev")), 0o700);
    }

    #[test]
    fn a_file_over_the_limit_is_refused_and_leaves_nothing() {
        let root = tempfile::tempdir().expect("temp dir");
        let storage = LocalStorage::new(root.path(), 4);
        let at = uri("kestra:///dev/f/big.bin");
        let error = storage.put(&at, &mut &b"12345"[..]).expect_err("too large");
        assert_eq!(
            error.to_string(),
            "the file is larger than 4 bytes (storage.max-file-size)"
        );
        assert!(matches!(storage.size(&at), Err(StorageError::NotFound(_))));
        let left: Vec<_> = fs::read_dir(root.path().join("dev/f"))
            .expect("folder")
            .collect();
        assert!(left.is_empty(), "{left:?}");
        assert_eq!(
            storage.put(&at, &mut &b"1234"[..]).expect("at the limit"),
            4
        );
    }

    #[test]
    fn deleting_a_prefix_removes_every_file_under_it_and_nothing_else() {
        let root = tempfile::tempdir().expect("temp dir");
        let storage = LocalStorage::new(root.path(), 1024);
        let gone = uri("kestra:///dev/f/executions/e1/inputs/file/a.txt");
        let kept = uri("kestra:///dev/f/executions/e2/inputs/file/a.txt");
        for at in [&gone, &kept] {
            storage.put(at, &mut &b"x"[..]).expect("put");
        }
        storage
            .delete_all(&uri("kestra:///dev/f/executions/e1"))
            .expect("deleted");
        assert!(!storage.exists(&gone).expect("checked"));
        assert!(storage.exists(&kept).expect("checked"));
        storage
            .delete_all(&uri("kestra:///dev/f/executions/absent"))
            .expect("nothing to delete is fine");
    }

    #[test]
    fn a_missing_file_is_not_found() {
        let root = tempfile::tempdir().expect("temp dir");
        let storage = LocalStorage::new(root.path(), 1024);
        let at = uri("kestra:///dev/f/none.txt");
        assert!(matches!(storage.open(&at), Err(StorageError::NotFound(_))));
        assert!(!storage.exists(&at).expect("checked"));
    }
}
