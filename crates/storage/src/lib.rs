//! Internal storage: the files executions produce (a Commands task's `outputFiles`) and their
//! FILE inputs upload, named by Kestra's `kestra:///...` URIs.
//!
//! This crate owns three things:
//! - [`StorageUri`]: a checked URI, whose segments can only name a file under the storage's
//!   root (no `..`, no empty segment, no slash once decoded).
//! - [`Storage`]: the seam a backend implements (put a file bounded by
//!   `storage.max-file-size`, open, size, delete everything under a prefix);
//!   [`LocalStorage`], files under the data directory, is the default and only one today.
//! - [`ExecutionFiles`]: the view of one execution, where a task writes under its execution's
//!   folder, as Kestra lays it out
//!   (`kestra:///<namespace as folders>/<flow>/executions/<id>/tasks/<task>/<task run>/<name>`,
//!   `.../inputs/<input>/<name>`), and reads only files of executions of its own namespace.
//!
//! Files hold what tasks wrote, real values: whoever shows one to a person masks it first
//! (the server's file route, the UI's preview), as the engine masks outputs. The storage's
//! folder lies in the data directory, which the task sandbox hides from task processes: a
//! task gets a file only by asking for it (`inputFiles`, `read()`), through its execution.

mod local;
mod uri;

pub use local::LocalStorage;
pub use uri::{SCHEME, StorageUri};

use std::fmt;
use std::io::{self, Read};
use std::sync::Arc;

/// The default largest file (`storage.max-file-size`): 1 GiB.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 1 << 30;

/// Where files live. Implementations are synchronous (files are big, callers run them on
/// blocking threads) and must make a file visible only once wholly written.
pub trait Storage: Send + Sync + fmt::Debug {
    /// The largest file [`Storage::put`] accepts, in bytes.
    fn max_file_size(&self) -> u64;
    /// Stores what `content` yields at `uri` (replacing a file there), refusing more than
    /// [`Storage::max_file_size`] bytes; the size stored.
    fn put(&self, uri: &StorageUri, content: &mut dyn Read) -> Result<u64, StorageError>;
    /// The content of the file at `uri`.
    fn open(&self, uri: &StorageUri) -> Result<Box<dyn Read + Send>, StorageError>;
    /// The size in bytes of the file at `uri`.
    fn size(&self, uri: &StorageUri) -> Result<u64, StorageError>;
    /// Removes every file under `prefix` (nothing there is fine).
    fn delete_all(&self, prefix: &StorageUri) -> Result<(), StorageError>;
    /// Every file under `prefix` (none is fine), sorted.
    fn list(&self, prefix: &StorageUri) -> Result<Vec<StorageUri>, StorageError>;
    /// Whether a file exists at `uri`.
    fn exists(&self, uri: &StorageUri) -> Result<bool, StorageError> {
        match self.size(uri) {
            Ok(_) => Ok(true),
            Err(StorageError::NotFound(_)) => Ok(false),
            Err(error) => Err(error),
        }
    }
}

/// Why a storage operation failed. It names the URI, never the file's content.
#[derive(Debug)]
pub enum StorageError {
    /// No file at that URI.
    NotFound(String),
    /// The file is larger than the storage accepts.
    TooLarge {
        /// `storage.max-file-size`, in bytes.
        limit: u64,
    },
    /// The URI is outside what this execution may read.
    Forbidden(String),
    /// The URI is not one.
    Invalid(String),
    /// The filesystem (or a remote store) failed.
    Io(String, io::Error),
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound(uri) => write!(f, "no file at {uri}"),
            Self::TooLarge { limit } => write!(
                f,
                "the file is larger than {limit} bytes (storage.max-file-size)"
            ),
            Self::Forbidden(uri) => write!(
                f,
                "{uri} is not a file of an execution of this flow's namespace"
            ),
            Self::Invalid(why) => f.write_str(why),
            Self::Io(uri, error) => write!(f, "cannot access {uri}: {error}"),
        }
    }
}

impl std::error::Error for StorageError {}

/// One execution's view of the storage: where its files go, which files it may read.
#[derive(Debug, Clone)]
pub struct ExecutionFiles {
    storage: Arc<dyn Storage>,
    /// `kestra:///<namespace as folders>`.
    namespace: StorageUri,
    /// `kestra:///<namespace as folders>/<flow>`.
    flow: StorageUri,
    /// `kestra:///<namespace as folders>/<flow>/executions/<id>`.
    execution: StorageUri,
}

impl ExecutionFiles {
    /// The files of execution `execution_id` of flow `flow_id` in `namespace`.
    pub fn new(
        storage: Arc<dyn Storage>,
        namespace: &str,
        flow_id: &str,
        execution_id: &str,
    ) -> Result<Self, StorageError> {
        let namespace = namespace_uri(namespace)?;
        let flow = namespace
            .join([slug(flow_id)])
            .map_err(StorageError::Invalid)?;
        let execution = flow
            .join(["executions", execution_id])
            .map_err(StorageError::Invalid)?;
        Ok(Self {
            storage,
            namespace,
            flow,
            execution,
        })
    }

    /// The folder of every file of the execution: what retention deletes.
    pub fn execution_prefix(&self) -> &StorageUri {
        &self.execution
    }

    /// The storage behind.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// Where task run `task_run_id` of task `task_id` stores its file `name`, a relative path
    /// (`out/data.json` keeps its folder).
    pub fn task_file(
        &self,
        task_id: &str,
        task_run_id: &str,
        name: &str,
    ) -> Result<StorageUri, StorageError> {
        let place = ["tasks".to_owned(), slug(task_id), task_run_id.to_owned()].into_iter();
        self.execution
            .join(place.chain(name.split('/').map(str::to_owned)))
            .map_err(StorageError::Invalid)
    }

    /// Where task `task_id`'s WorkingDirectory cache of the flow lives (Kestra's
    /// `<flow>/_cache/<task>`): beside the executions, so that it outlives them.
    pub fn cache_file(&self, task_id: &str) -> Result<StorageUri, StorageError> {
        self.flow
            .join(["_cache".to_owned(), slug(task_id), "cache.bin".to_owned()])
            .map_err(StorageError::Invalid)
    }

    /// The folder of state `name` (`state.Get`/`Set`/`Delete`) for the ForEach value `value`:
    /// the flow's, or under `namespace_wide` its namespace's, beside the executions so that it
    /// outlives them. Names and values are written in hexadecimal: any text is a safe segment.
    pub fn state_folder(
        &self,
        name: &str,
        value: Option<&str>,
        namespace_wide: bool,
    ) -> Result<StorageUri, StorageError> {
        // Two folder names: a namespace `a.b` and a flow `b` of `a` share the folder `a/b`.
        let (owner, folder) = if namespace_wide {
            (&self.namespace, "_namespace_states")
        } else {
            (&self.flow, "_states")
        };
        let value = value.map_or_else(|| "_".to_owned(), hex);
        owner
            .join([folder.to_owned(), hex(name), value])
            .map_err(StorageError::Invalid)
    }

    /// Where the FILE input `input` keeps its uploaded file `name`.
    pub fn input_file(&self, input: &str, name: &str) -> Result<StorageUri, StorageError> {
        self.execution
            .join(["inputs", input, name])
            .map_err(StorageError::Invalid)
    }

    /// Stores `content` at `uri` (one of this execution's, from [`ExecutionFiles::task_file`]
    /// or [`ExecutionFiles::input_file`]); the size stored.
    pub fn put(&self, uri: &StorageUri, content: &mut dyn Read) -> Result<u64, StorageError> {
        if !uri.starts_with(&self.execution) {
            return Err(StorageError::Forbidden(uri.to_string()));
        }
        self.storage.put(uri, content)
    }

    /// Replaces the content of every file of the execution by what `rewrite` makes of it
    /// (`None`: kept as is); how many were rewritten. Each file is read whole: its size is
    /// bounded by the storage's largest file.
    pub fn rewrite_all(
        &self,
        rewrite: impl Fn(&[u8]) -> Option<Vec<u8>>,
    ) -> Result<usize, StorageError> {
        let mut rewritten = 0;
        for uri in self.storage.list(&self.execution)? {
            let mut content = Vec::new();
            self.storage
                .open(&uri)?
                .read_to_end(&mut content)
                .map_err(|error| StorageError::Io(uri.to_string(), error))?;
            if let Some(new) = rewrite(&content) {
                self.storage.put(&uri, &mut new.as_slice())?;
                rewritten += 1;
            }
        }
        Ok(rewritten)
    }

    /// `text` as a URI this execution may read: a file of an execution of its namespace,
    /// `kestra:///<namespace>/<any flow>/executions/...`.
    pub fn readable(&self, text: &str) -> Result<StorageUri, StorageError> {
        let uri = StorageUri::parse(text).map_err(StorageError::Invalid)?;
        let depth = self.namespace.segments().len();
        let in_namespace = uri.starts_with(&self.namespace)
            && uri.segments().get(depth + 1).map(String::as_str) == Some("executions");
        if in_namespace {
            Ok(uri)
        } else {
            Err(StorageError::Forbidden(uri.to_string()))
        }
    }

    /// The content of the readable file `text`.
    pub fn open(&self, text: &str) -> Result<Box<dyn Read + Send>, StorageError> {
        self.storage.open(&self.readable(text)?)
    }

    /// The size of the readable file `text`.
    pub fn size(&self, text: &str) -> Result<u64, StorageError> {
        self.storage.size(&self.readable(text)?)
    }

    /// Whether the readable file `text` exists.
    pub fn exists(&self, text: &str) -> Result<bool, StorageError> {
        self.storage.exists(&self.readable(text)?)
    }
}

/// `text`'s bytes in hexadecimal.
fn hex(text: &str) -> String {
    text.bytes().map(|byte| format!("{byte:02x}")).collect()
}

/// A flow's or a task's id as Kestra writes it in a URI (its `Slugify`): letters, digits and
/// dashes, lower case (`My_Flow.v2` is `my-flowv2`).
fn slug(id: &str) -> String {
    let kept: String = id
        .chars()
        .filter_map(|c| match c {
            c if c.is_whitespace() || c == '_' => Some('-'),
            c if c.is_ascii_alphanumeric() || c == '-' => Some(c.to_ascii_lowercase()),
            _ => None,
        })
        .collect();
    let mut slug = String::with_capacity(kept.len());
    for c in kept.chars() {
        if !(c == '-' && slug.ends_with('-')) {
            slug.push(c);
        }
    }
    slug.trim_matches('-').to_owned()
}

/// `kestra:///company/team` for the namespace `company.team`.
fn namespace_uri(namespace: &str) -> Result<StorageUri, StorageError> {
    StorageUri::from_segments(namespace.split('.').map(str::to_owned).collect())
        .map_err(|why| StorageError::Invalid(format!("namespace '{namespace}': {why}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(root: &std::path::Path, namespace: &str, execution: &str) -> ExecutionFiles {
        let storage: Arc<dyn Storage> = Arc::new(LocalStorage::new(root, 1024));
        ExecutionFiles::new(storage, namespace, "flow", execution).expect("valid names")
    }

    #[test]
    fn files_are_laid_out_as_kestra_does() {
        let root = tempfile::tempdir().expect("temp dir");
        let files = files(root.path(), "company.team", "e1");
        let uri = files.task_file("t", "r1", "out.csv").expect("valid");
        assert_eq!(
            uri.to_string(),
            "kestra:///company/team/flow/executions/e1/tasks/t/r1/out.csv"
        );
        let input = files.input_file("data", "in.txt").expect("valid");
        assert_eq!(
            input.to_string(),
            "kestra:///company/team/flow/executions/e1/inputs/data/in.txt"
        );
    }

    #[test]
    fn flow_and_task_ids_are_slugs_as_in_kestra() {
        let root = tempfile::tempdir().expect("temp dir");
        let storage: Arc<dyn Storage> = Arc::new(LocalStorage::new(root.path(), 1024));
        let files = ExecutionFiles::new(storage, "dev", "My_Flow.v2", "e1").expect("valid");
        let uri = files.task_file("Make__It", "r1", "a.txt").expect("valid");
        assert_eq!(
            uri.to_string(),
            "kestra:///dev/my-flowv2/executions/e1/tasks/make-it/r1/a.txt"
        );
    }

    #[test]
    fn an_execution_reads_its_namespace_and_nothing_else() {
        let root = tempfile::tempdir().expect("temp dir");
        let mine = files(root.path(), "company.team", "e1");
        let other = files(root.path(), "company.team", "e2");
        let uri = other.task_file("t", "r", "a.txt").expect("valid");
        other.put(&uri, &mut &b"shared"[..]).expect("put");
        assert_eq!(mine.size(&uri.to_string()).expect("readable"), 6);
        for forbidden in [
            "kestra:///company/flow/executions/e9/tasks/t/r/a.txt",
            "kestra:///company/team/sub/flow/executions/e9/a.txt",
            "kestra:///other/flow/executions/e9/a.txt",
        ] {
            let error = mine.open(forbidden).map(|_| ()).expect_err(forbidden);
            assert!(matches!(error, StorageError::Forbidden(_)), "{forbidden}");
        }
    }

    #[test]
    fn every_file_of_the_execution_is_rewritten_and_no_other() {
        let root = tempfile::tempdir().expect("temp dir");
        let mine = files(root.path(), "dev", "e1");
        let theirs = files(root.path(), "dev", "e2");
        let names = ["a.txt", "out/b.txt", "c.txt"];
        for name in names {
            let uri = mine.task_file("t", "r", name).expect("valid");
            mine.put(&uri, &mut &b"x secret y"[..]).expect("put");
        }
        let other = theirs.input_file("i", "a.txt").expect("valid");
        theirs.put(&other, &mut &b"secret"[..]).expect("put");
        let hide = |bytes: &[u8]| {
            let text = String::from_utf8_lossy(bytes);
            text.contains("secret")
                .then(|| text.replace("secret", "***").into_bytes())
        };
        assert_eq!(mine.rewrite_all(hide).expect("rewritten"), 3);
        let mut content = String::new();
        let uri = mine.task_file("t", "r", "out/b.txt").expect("valid");
        mine.open(&uri.to_string())
            .expect("readable")
            .read_to_string(&mut content)
            .expect("text");
        assert_eq!(content, "x *** y");
        assert_eq!(theirs.size(&other.to_string()).expect("untouched"), 6);
    }

    #[test]
    fn an_execution_writes_only_under_its_own_folder() {
        let root = tempfile::tempdir().expect("temp dir");
        let mine = files(root.path(), "dev", "e1");
        let theirs = files(root.path(), "dev", "e2")
            .task_file("t", "r", "x")
            .expect("valid");
        let error = mine.put(&theirs, &mut &b"x"[..]).expect_err("refused");
        assert!(matches!(error, StorageError::Forbidden(_)));
    }
}
