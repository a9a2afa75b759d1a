//! Everything the forked child needs, prepared before the fork: the child must not allocate,
//! so paths are C strings and files are open already.

use crate::script::Script;
use rustix::process::Pid;
use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// What isolation the machine allows, found once at start.
#[derive(Debug, Clone)]
pub(crate) struct Isolation {
    /// Whether a user namespace is needed (kestrel is not root, or root may not unshare).
    pub(crate) user_namespace: bool,
    /// The Landlock scopes to apply (0: none, the kernel is too old).
    pub(crate) landlock_scopes: u64,
}

/// One start of a task's process.
pub(crate) struct ChildPlan {
    /// kestrel's pid: a child whose parent is no longer this has lost kestrel already.
    pub(crate) parent: Pid,
    /// The scripts, inherited by the interpreter (their close-on-exec flags cleared in the
    /// child): the one it runs, and any that one runs in turn.
    pub(crate) scripts: Vec<Script>,
    pub(crate) sandbox: Option<SandboxPlan>,
}

/// The sandbox of one start.
pub(crate) struct SandboxPlan {
    /// `uid_map` and `gid_map` lines, for a user namespace.
    pub(crate) user_maps: Option<(Vec<u8>, Vec<u8>)>,
    /// Paths to cover, outermost first.
    pub(crate) hidden: Vec<Hidden>,
    /// The working directory, mounted back when a hidden directory covers it.
    pub(crate) work: Option<WorkBind>,
    pub(crate) landlock_scopes: u64,
}

/// A path to cover: a directory with an empty tmpfs, a file with `/dev/null`.
pub(crate) enum Hidden {
    Dir(CString),
    File(CString),
}

/// The working directory under a hidden directory: its parents are made again in the empty
/// mount, and the directory itself (the process's current directory, which the covering
/// mount does not change) is bound there.
pub(crate) struct WorkBind {
    pub(crate) parents: Vec<CString>,
    pub(crate) target: CString,
}

impl ChildPlan {
    /// The plan for a process in `dir`, sandboxed by `isolation` with `hidden` paths covered.
    pub(crate) fn new(
        isolation: Option<(&Isolation, &Vec<PathBuf>)>,
        dir: &Path,
        scripts: Vec<Script>,
    ) -> io::Result<Self> {
        let sandbox = match isolation {
            Some((isolation, hidden)) => Some(SandboxPlan::new(isolation, hidden, dir)?),
            None => None,
        };
        Ok(Self {
            parent: rustix::process::getpid(),
            scripts,
            sandbox,
        })
    }
}

impl SandboxPlan {
    fn new(isolation: &Isolation, hidden: &[PathBuf], dir: &Path) -> io::Result<Self> {
        let user_maps = isolation.user_namespace.then(|| {
            let uid = rustix::process::geteuid().as_raw();
            let gid = rustix::process::getegid().as_raw();
            (
                format!("{uid} {uid} 1\n").into_bytes(),
                format!("{gid} {gid} 1\n").into_bytes(),
            )
        });
        let mut existing: Vec<(PathBuf, bool)> = hidden
            .iter()
            .filter_map(|path| {
                let path = std::fs::canonicalize(path).ok()?;
                let is_dir = std::fs::metadata(&path).ok()?.is_dir();
                Some((path, is_dir))
            })
            .collect();
        existing.sort_by_key(|(path, _)| path.components().count());
        let dir = std::fs::canonicalize(dir)?;
        let covering = existing
            .iter()
            .find(|(path, is_dir)| *is_dir && dir.starts_with(path))
            .map(|(path, _)| path.clone());
        let work = covering
            .map(|outer| WorkBind::new(&outer, &dir))
            .transpose()?;
        let hidden = existing
            .into_iter()
            .map(|(path, is_dir)| {
                let path = c_path(&path)?;
                Ok(if is_dir {
                    Hidden::Dir(path)
                } else {
                    Hidden::File(path)
                })
            })
            .collect::<io::Result<_>>()?;
        Ok(Self {
            user_maps,
            hidden,
            work,
            landlock_scopes: isolation.landlock_scopes,
        })
    }
}

impl WorkBind {
    fn new(outer: &Path, dir: &Path) -> io::Result<Self> {
        let mut parents: Vec<CString> = dir
            .ancestors()
            .skip(1)
            .take_while(|parent| *parent != outer && parent.starts_with(outer))
            .map(c_path)
            .collect::<io::Result<_>>()?;
        parents.reverse();
        Ok(Self {
            parents,
            target: c_path(dir)?,
        })
    }
}

fn c_path(path: &Path) -> io::Result<CString> {
    Ok(CString::new(path.as_os_str().as_bytes())?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    #[test]
    fn the_working_directory_is_made_again_below_the_covering_directory() {
        let bind = WorkBind::new(Path::new("/data"), Path::new("/data/work/run-1/task-x")).unwrap();
        let parents: Vec<&CStr> = bind.parents.iter().map(CString::as_c_str).collect();
        assert_eq!(parents, [c"/data/work", c"/data/work/run-1"]);
        assert_eq!(bind.target.as_c_str(), c"/data/work/run-1/task-x");
    }
}
