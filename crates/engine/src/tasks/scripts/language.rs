//! What a script task's language adds: the interpreter that runs a Python or Node `Script`
//! (found on the host's `PATH`, as Kestra's container would have it), and the variables and
//! files the process gets for it (Python: unbuffered output, and kestrel's `kestra` module on
//! `PYTHONPATH` so that `from kestra import Kestra` works without Kestra's pip package).

use super::files::WorkDir;
use crate::TaskError;
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

/// Sets up `dir` and `env` for `language`: Python gets `PYTHONUNBUFFERED` (so lines come as
/// printed) and kestrel's `kestra` module after any `PYTHONPATH` of the task or of kestrel.
pub(super) fn prepare(
    language: Language,
    dir: &WorkDir,
    env: &mut Vec<(String, String)>,
) -> Result<(), TaskError> {
    if language != Language::Python {
        return Ok(());
    }
    let module = format!("{MODULE_DIR}/kestra.py");
    dir.write_input(&module, &mut KESTRA_MODULE.as_bytes())
        .map_err(TaskError::new)?;
    let ours = dir.work().join(MODULE_DIR).to_string_lossy().into_owned();
    let theirs = match env.iter().position(|(name, _)| name == "PYTHONPATH") {
        Some(index) => Some(env.remove(index).1),
        None => std::env::var("PYTHONPATH").ok(),
    };
    let python_path = match theirs.filter(|paths| !paths.is_empty()) {
        Some(paths) => format!("{paths}:{ours}"),
        None => ours,
    };
    env.insert(0, ("PYTHONUNBUFFERED".to_owned(), "true".to_owned()));
    env.push(("PYTHONPATH".to_owned(), python_path));
    Ok(())
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
}
