//! What a script task's language adds: the interpreter that runs a Python or Node `Script`
//! (found on the host's `PATH`, as Kestra's container would have it), and the variables and
//! files the process gets for it (Python: unbuffered output, and kestrel's `kestra` module on
//! `PYTHONPATH` so that `from kestra import Kestra` works without Kestra's pip package).

use crate::TaskError;
use crate::workdir::WorkDir;
use kestrel_flow::Language;
use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

/// kestrel's stand-in for Kestra's `kestra` Python package: it prints protocol lines.
const KESTRA_MODULE: &str = include_str!("kestra.py");

/// The folder of the working directory that holds [`KESTRA_MODULE`]; removed before the
/// output files are collected, so no glob finds it.
pub(super) const MODULE_DIR: &str = ".kestrel-python";

/// The programs that may run a `Script` of `language`, first found wins, and the flags they
/// need; `None` for the shell, whose `interpreter` runs the script itself.
fn programs(language: Language) -> Option<(&'static [&'static str], &'static [&'static str])> {
    match language {
        Language::Shell => None,
        Language::Python => Some((&["python3", "python"], &[])),
        // Node resolves its main module's real path, which a sealed memory file has not.
        Language::Node => Some((&["node"], &["--preserve-symlinks-main"])),
    }
}

/// The command that runs a `Script` of `language` held at `script` (a `/proc/self/fd` path),
/// as a shell command; `None` for the shell. Fails, naming the programs, when none is on
/// `path` (the process's `PATH`).
pub(super) fn script_command(
    language: Language,
    path: Option<&OsStr>,
    script: &str,
) -> Result<Option<String>, TaskError> {
    let Some((names, flags)) = programs(language) else {
        return Ok(None);
    };
    let program = names
        .iter()
        .find_map(|name| find_program(name, path))
        .ok_or_else(|| {
            TaskError::new(format!(
                "Cannot run the script: {} not found on this host's PATH",
                names.join(" or ")
            ))
        })?;
    let mut words = vec![quote(&program.to_string_lossy())];
    words.extend(flags.iter().map(|flag| (*flag).to_owned()));
    words.push(script.to_owned());
    Ok(Some(words.join(" ")))
}

/// The executable regular file `name` in the first folder of `path` that has one.
fn find_program(name: &str, path: Option<&OsStr>) -> Option<PathBuf> {
    std::env::split_paths(path?)
        .map(|dir| dir.join(name))
        .find(|candidate| {
            candidate.metadata().is_ok_and(|metadata| {
                metadata.is_file() && metadata.permissions().mode() & 0o111 != 0
            })
        })
}

/// `text` in single quotes for a POSIX shell.
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Sets up `dir` and `env` for `language`, so that a script kept in memory finds what one
/// in the working directory would, as in Kestra. Python gets `PYTHONUNBUFFERED` (lines come as
/// printed) and `PYTHONPATH`: the working directory first (where Python would look first, the
/// script's folder), any `PYTHONPATH` of the task or of kestrel, then kestrel's `kestra`
/// module. Node gets `NODE_PATH`: the working directory's `node_modules` (what
/// `beforeCommands: [npm install ...]` fills), then any of the task or of kestrel.
pub(super) fn prepare(
    language: Language,
    dir: &WorkDir,
    env: &mut Vec<(String, String)>,
) -> Result<(), TaskError> {
    let work = dir.work().to_string_lossy().into_owned();
    match language {
        Language::Shell => {}
        Language::Python => {
            let module = format!("{MODULE_DIR}/kestra.py");
            dir.write_input(&module, &mut KESTRA_MODULE.as_bytes())
                .map_err(TaskError::new)?;
            let ours = format!("{work}/{MODULE_DIR}");
            search_path(env, "PYTHONPATH", &work, &ours);
            env.insert(0, ("PYTHONUNBUFFERED".to_owned(), "true".to_owned()));
        }
        Language::Node => search_path(env, "NODE_PATH", &format!("{work}/node_modules"), ""),
    }
    Ok(())
}

/// Sets the search path `name` to `first`, then the one the task's `env` or kestrel has, then
/// `last` (when not empty).
fn search_path(env: &mut Vec<(String, String)>, name: &str, first: &str, last: &str) {
    let theirs = match env.iter().position(|(key, _)| key == name) {
        Some(index) => Some(env.remove(index).1),
        None => std::env::var(name).ok(),
    };
    let parts = [Some(first), theirs.as_deref(), Some(last)];
    let joined: Vec<&str> = parts
        .into_iter()
        .flatten()
        .filter(|part| !part.is_empty())
        .collect();
    env.push((name.to_owned(), joined.join(":")));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shell_needs_no_program() {
        assert_eq!(script_command(Language::Shell, None, "/s").unwrap(), None);
    }

    #[test]
    fn a_program_is_found_on_the_path_and_quoted() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("it's");
        std::fs::create_dir(&bin).unwrap();
        let node = bin.join("node");
        std::fs::write(&node, "").unwrap();
        let path = std::env::join_paths([dir.path(), &bin]).unwrap();
        let missing = script_command(Language::Node, Some(&path), "/proc/self/fd/4");
        assert!(missing.unwrap_err().to_string().contains("node not found"));
        std::fs::set_permissions(&node, std::fs::Permissions::from_mode(0o755)).unwrap();
        let command = script_command(Language::Node, Some(&path), "/proc/self/fd/4")
            .unwrap()
            .unwrap();
        let expected = format!(
            "'{}/it'\\''s/node' --preserve-symlinks-main /proc/self/fd/4",
            dir.path().display()
        );
        assert_eq!(command, expected);
    }

    #[test]
    fn python_names_both_programs_when_neither_is_there() {
        let error = script_command(Language::Python, Some(OsStr::new("/nowhere")), "/s")
            .unwrap_err()
            .to_string();
        assert!(error.contains("python3 or python not found"), "{error}");
    }

    #[test]
    fn a_search_path_puts_the_tasks_own_between_ours() {
        let mut env = vec![("PYTHONPATH".to_owned(), "/lib".to_owned())];
        search_path(&mut env, "PYTHONPATH", "/work", "/work/.k");
        assert_eq!(
            env,
            [("PYTHONPATH".to_owned(), "/work:/lib:/work/.k".to_owned())]
        );
        let mut env = vec![("NODE_PATH".to_owned(), String::new())];
        search_path(&mut env, "NODE_PATH", "/work/node_modules", "");
        assert_eq!(
            env,
            [("NODE_PATH".to_owned(), "/work/node_modules".to_owned())]
        );
    }
}
