//! A rendered script in a sealed memory file: it never touches a disk, cannot be changed once
//! written, and is gone when its last descriptor closes.

use rustix::fs::{MemfdFlags, SealFlags};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;

/// A script the interpreter reads at [`Script::path`].
#[derive(Debug)]
pub struct Script {
    fd: OwnedFd,
}

impl Script {
    /// A sealed memory file holding `text`.
    pub fn new(text: &str) -> io::Result<Self> {
        let fd = rustix::fs::memfd_create(
            "kestrel-script",
            MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
        )?;
        let mut rest = text.as_bytes();
        while !rest.is_empty() {
            let written = rustix::io::write(&fd, rest)?;
            rest = &rest[written..];
        }
        rustix::fs::fcntl_add_seals(
            &fd,
            SealFlags::SEAL | SealFlags::SHRINK | SealFlags::GROW | SealFlags::WRITE,
        )?;
        Ok(Self { fd })
    }

    /// The path the started process opens it by (its descriptor is inherited, and only by
    /// the process configured with it).
    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.fd.as_raw_fd()))
    }
}

impl AsFd for Script {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_script_is_sealed() {
        let script = Script::new("echo hi\n").unwrap();
        let text = std::fs::read_to_string(script.path()).unwrap();
        assert_eq!(text, "echo hi\n");
        assert!(rustix::io::write(&script, b"more").is_err());
    }
}
