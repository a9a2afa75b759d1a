//! The script a Commands task runs, and the command line that runs it: the interpreter and
//! the script's path (a sealed memory file's `/proc/self/fd/N`), never the commands
//! themselves (a process's arguments are readable by every user of the machine through
//! `/proc/<pid>/cmdline`).

use std::ffi::OsString;
use std::path::Path;

/// Interpreters that understand `set -e`, by file name.
const POSIX_SHELLS: &[&str] = &["sh", "bash", "dash", "zsh", "ksh", "mksh", "ash"];

/// The script: `set -e` first when failing fast under a POSIX shell, then `before` and
/// `commands`, one per line, as Kestra joins them.
pub(super) fn script_text(
    interpreter: &[String],
    fail_fast: bool,
    before: &[String],
    commands: &[String],
) -> String {
    let mut lines: Vec<&str> = Vec::with_capacity(before.len() + commands.len() + 1);
    if fail_fast && is_posix_shell(interpreter) {
        lines.push("set -e");
    }
    lines.extend(before.iter().map(String::as_str));
    lines.extend(commands.iter().map(String::as_str));
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

/// The program and its arguments: the interpreter without its trailing `-c` (which would take
/// the commands as an argument), then the script's path. `None` without an interpreter.
pub(super) fn command_line(
    interpreter: &[String],
    script: &Path,
) -> Option<(String, Vec<OsString>)> {
    let (program, flags) = interpreter.split_first()?;
    let flags = match flags.split_last() {
        Some((last, rest)) if last == "-c" => rest,
        _ => flags,
    };
    let mut args: Vec<OsString> = flags.iter().map(OsString::from).collect();
    args.push(script.as_os_str().to_owned());
    Some((program.clone(), args))
}

fn is_posix_shell(interpreter: &[String]) -> bool {
    interpreter
        .first()
        .and_then(|program| Path::new(program).file_name())
        .and_then(|name| name.to_str())
        .is_some_and(|name| POSIX_SHELLS.contains(&name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(words: &[&str]) -> Vec<String> {
        words.iter().map(|word| (*word).to_owned()).collect()
    }

    #[test]
    fn a_failing_fast_shell_script_starts_with_set_e() {
        let sh = words(&["/bin/sh", "-c"]);
        let text = script_text(&sh, true, &words(&["cd x"]), &words(&["a", "b"]));
        assert_eq!(text, "set -e\ncd x\na\nb\n");
        assert_eq!(script_text(&sh, false, &[], &words(&["a"])), "a\n");
    }

    #[test]
    fn other_interpreters_get_no_set_e() {
        let python = words(&["python3", "-c"]);
        assert_eq!(
            script_text(&python, true, &[], &words(&["print(1)"])),
            "print(1)\n"
        );
        let bash = words(&["/usr/bin/env", "bash"]);
        assert_eq!(script_text(&bash, true, &[], &words(&["a"])), "a\n");
    }

    #[test]
    fn the_script_path_replaces_the_trailing_dash_c() {
        let script = Path::new("/tmp/k/script");
        let (program, args) = command_line(&words(&["/bin/bash", "-e", "-c"]), script).unwrap();
        assert_eq!(program, "/bin/bash");
        assert_eq!(
            args,
            [OsString::from("-e"), OsString::from("/tmp/k/script")]
        );
        let (program, args) = command_line(&words(&["python3"]), script).unwrap();
        assert_eq!((program.as_str(), args.len()), ("python3", 1));
        assert!(command_line(&[], script).is_none());
    }
}
