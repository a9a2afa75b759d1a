//! The code that runs in the forked child, between `fork` and `exec`: kestrel's only unsafe
//! code (the workspace forbids it elsewhere).
//!
//! After a fork, the child of a multi-threaded process may only make async-signal-safe calls:
//! everything here is a raw system call (rustix's `linux_raw` backend, or `libc::syscall`,
//! `fork`, `_exit`) over data prepared by [`crate::plan`] before the fork; nothing allocates
//! or takes a lock.
//!
//! Sandboxed, the child (the intermediate) enters new namespaces and forks the task's
//! process, which is the init of the new PID namespace: when it ends, the kernel kills every
//! process of the namespace. The intermediate closes every descriptor and waits for it,
//! ending the same way; both die with their parent (`PR_SET_PDEATHSIG`), so the whole task
//! dies with kestrel.
#![allow(unsafe_code)]

use crate::plan::{ChildPlan, Hidden, SandboxPlan, WorkBind};
use rustix::fs::{Mode, OFlags};
use rustix::io::{Errno, FdFlags};
use rustix::mount::{MountFlags, MountPropagationFlags};
use rustix::pipe::PipeFlags;
use rustix::process::{
    DumpableBehavior, Pid, Signal, WaitOptions, set_dumpable_behavior as set_dumpable,
};
use rustix::thread::{CapabilitySet, CapabilitySets, UnshareFlags};
use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::Command;

/// Landlock's `LANDLOCK_CREATE_RULESET_VERSION`.
const RULESET_VERSION: u32 = 1;
/// `LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET | LANDLOCK_SCOPE_SIGNAL` (ABI 6).
const SCOPES: u64 = 0b11;
const SCOPES_ABI: i64 = 6;

/// `struct landlock_ruleset_attr`, ABI 6.
#[repr(C)]
struct RulesetAttr {
    handled_access_fs: u64,
    handled_access_net: u64,
    scoped: u64,
}

/// Makes `command`'s child follow `plan` before it executes the program.
pub(crate) fn attach(command: &mut Command, plan: ChildPlan) {
    // SAFETY: `enter` runs between fork and exec and keeps to async-signal-safe calls: raw
    // system calls over `plan`, built before the fork, with no allocation and no lock.
    unsafe {
        command.pre_exec(move || enter(&plan));
    }
}

/// The Landlock scopes this kernel supports (0 without Landlock or before ABI 6).
pub(crate) fn landlock_scopes() -> u64 {
    // SAFETY: with a null attribute and size 0, the call only returns Landlock's ABI version
    // (or an error); it reads and writes no memory.
    let abi = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<RulesetAttr>(),
            0usize,
            RULESET_VERSION,
        )
    };
    if abi >= SCOPES_ABI { SCOPES } else { 0 }
}

fn enter(plan: &ChildPlan) -> io::Result<()> {
    rustix::process::set_parent_process_death_signal(Some(Signal::KILL))?;
    if rustix::process::getppid() != Some(plan.parent) {
        // kestrel died before the death signal was set: nothing is left to run for.
        exit_now(1);
    }
    for script in &plan.scripts {
        rustix::io::fcntl_setfd(script, FdFlags::empty())?;
    }
    let Some(sandbox) = &plan.sandbox else {
        return Ok(());
    };
    enter_namespaces(sandbox)?;
    let (alive_read, alive_write) =
        rustix::pipe::pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK)?;
    // SAFETY: this child has a single thread (fork copies only the calling one), so a second
    // fork is as safe as the first; the new child keeps to the same async-signal-safe calls.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            rustix::process::set_parent_process_death_signal(Some(Signal::KILL))?;
            drop(alive_write);
            if intermediate_is_gone(&alive_read) {
                exit_now(1);
            }
            drop(alive_read);
            isolate(sandbox)
        }
        init => supervise(init, &alive_write),
    }
}

/// New mount and PID namespaces, and a user namespace mapping this user to itself.
fn enter_namespaces(sandbox: &SandboxPlan) -> io::Result<()> {
    let mut flags = UnshareFlags::NEWNS | UnshareFlags::NEWPID;
    if sandbox.user_maps.is_some() {
        flags |= UnshareFlags::NEWUSER;
    }
    // SAFETY: without `UnshareFlags::FILES` the descriptor table stays shared as it was, the
    // only hazard `unshare_unsafe` warns of; this process has one thread anyway.
    unsafe { rustix::thread::unshare_unsafe(flags) }?;
    if let Some((uid_map, gid_map)) = &sandbox.user_maps {
        // kestrel is not dumpable, and the /proc files of a process that is not dumpable
        // belong to root, so this process could not write its own maps. It is dumpable only
        // for these three writes, then not again: it holds a copy of kestrel's memory.
        set_dumpable(DumpableBehavior::Dumpable)?;
        let written = write_user_maps(uid_map, gid_map);
        set_dumpable(DumpableBehavior::NotDumpable)?;
        written?;
    }
    Ok(())
}

fn write_user_maps(uid_map: &[u8], gid_map: &[u8]) -> io::Result<()> {
    match write_file(c"/proc/self/setgroups", b"deny") {
        Ok(()) | Err(Errno::NOENT) => {}
        Err(error) => return Err(error.into()),
    }
    write_file(c"/proc/self/uid_map", uid_map)?;
    write_file(c"/proc/self/gid_map", gid_map)?;
    Ok(())
}

fn write_file(path: &CStr, content: &[u8]) -> Result<(), Errno> {
    let file = rustix::fs::open(path, OFlags::WRONLY | OFlags::CLOEXEC, Mode::empty())?;
    let written = rustix::io::write(&file, content)?;
    if written == content.len() {
        Ok(())
    } else {
        Err(Errno::IO)
    }
}

/// Whether the intermediate died before this process set its death signal: the pipe's only
/// other writer is the intermediate, so an end of file says it is gone.
fn intermediate_is_gone(alive_read: &OwnedFd) -> bool {
    let mut byte = [0u8; 1];
    matches!(rustix::io::read(alive_read, &mut byte), Ok(0))
}

/// The intermediate: holds nothing but the pipe that says it lives, waits for the
/// namespace's init and ends as it ended.
fn supervise(init: libc::pid_t, alive_write: &OwnedFd) -> ! {
    let keep = alive_write.as_raw_fd().unsigned_abs();
    close_range(0, keep.saturating_sub(1));
    close_range(keep + 1, u32::MAX);
    let Some(init) = Pid::from_raw(init) else {
        exit_now(1);
    };
    let status = loop {
        match rustix::process::waitpid(Some(init), WaitOptions::empty()) {
            Ok(Some((_, status))) => break status,
            Err(Errno::INTR) => {}
            _ => exit_now(1),
        }
    };
    if let Some(code) = status.exit_status() {
        exit_now(code);
    }
    if let Some(signal) = status.terminating_signal() {
        // SAFETY: restoring the default action of a signal and sending it to this process
        // are plain system calls; the process then ends as its child did.
        unsafe {
            libc::signal(signal, libc::SIG_DFL);
            libc::kill(libc::getpid(), signal);
        }
        exit_now(128 + signal);
    }
    exit_now(1)
}

fn close_range(first: u32, last: u32) {
    if first <= last {
        // SAFETY: closes descriptors of this process only; nothing here uses them again (the
        // intermediate only waits and exits).
        unsafe {
            libc::syscall(libc::SYS_close_range, first, last, 0u32);
        }
    }
}

/// The task's process, init of its PID namespace: covers the hidden paths, mounts its own
/// `/proc`, drops every capability, sets `no_new_privs` and applies Landlock's scopes.
fn isolate(sandbox: &SandboxPlan) -> io::Result<()> {
    rustix::mount::mount_change(
        c"/",
        MountPropagationFlags::PRIVATE | MountPropagationFlags::REC,
    )?;
    for hidden in &sandbox.hidden {
        hide(hidden)?;
    }
    if let Some(work) = &sandbox.work {
        bind_back(work)?;
    }
    let private = MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC;
    rustix::mount::mount(c"proc", c"/proc", c"proc", private, None)?;
    drop_capabilities()?;
    rustix::thread::set_no_new_privs(true)?;
    if sandbox.landlock_scopes != 0 {
        restrict_self(sandbox.landlock_scopes)?;
    }
    Ok(())
}

/// Covers a directory with an empty tmpfs, a file with `/dev/null`. A path gone meanwhile
/// (or under a directory covered already) needs nothing.
fn hide(hidden: &Hidden) -> io::Result<()> {
    let private = MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC;
    let mounted = match hidden {
        Hidden::Dir(path) => rustix::mount::mount(
            c"tmpfs",
            path.as_c_str(),
            c"tmpfs",
            private,
            Some(c"size=64k,mode=0755"),
        ),
        Hidden::File(path) => rustix::mount::mount_bind(c"/dev/null", path.as_c_str()),
    };
    match mounted {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(error) => Err(error.into()),
    }
}

/// Makes the working directory's path again in the covering tmpfs and binds the directory
/// there, so the task sees it at its usual path.
fn bind_back(work: &WorkBind) -> io::Result<()> {
    for dir in work.parents.iter().chain([&work.target]) {
        match rustix::fs::mkdir(dir.as_c_str(), Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(error) => return Err(error.into()),
        }
    }
    rustix::mount::mount_bind(c"/proc/self/cwd", work.target.as_c_str())?;
    rustix::process::chdir(work.target.as_c_str())?;
    Ok(())
}

/// Empties the bounding, ambient, permitted, effective and inheritable capability sets: the
/// program starts with none, even as root.
fn drop_capabilities() -> io::Result<()> {
    for capability in 0..64 {
        match rustix::thread::remove_capability_from_bounding_set(CapabilitySet::from_bits_retain(
            1 << capability,
        )) {
            Ok(()) | Err(Errno::INVAL) => {}
            Err(error) => return Err(error.into()),
        }
    }
    rustix::thread::clear_ambient_capability_set()?;
    rustix::thread::set_capabilities(
        None,
        CapabilitySets {
            effective: CapabilitySet::empty(),
            permitted: CapabilitySet::empty(),
            inheritable: CapabilitySet::empty(),
        },
    )?;
    Ok(())
}

/// Landlock: no signal to, and no abstract socket of, a process outside the task (tracing
/// is scoped the same way by any Landlock domain).
fn restrict_self(scopes: u64) -> io::Result<()> {
    let attr = RulesetAttr {
        handled_access_fs: 0,
        handled_access_net: 0,
        scoped: scopes,
    };
    // SAFETY: `attr` is a live `landlock_ruleset_attr` of the size given; the kernel only
    // reads it and returns a new descriptor or an error.
    let ruleset = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            &raw const attr,
            size_of::<RulesetAttr>(),
            0u32,
        )
    };
    if ruleset < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `ruleset` is the descriptor just returned; it is closed once, right after use.
    let restricted = unsafe {
        let restricted = libc::syscall(libc::SYS_landlock_restrict_self, ruleset, 0u32);
        libc::close(ruleset as libc::c_int);
        restricted
    };
    if restricted < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn exit_now(code: i32) -> ! {
    // SAFETY: `_exit` ends the process at once, running nothing of the parent's copied state
    // (no atexit handler, no flush of buffers shared with kestrel).
    unsafe { libc::_exit(code) }
}
