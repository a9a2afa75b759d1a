//! What a person types at a terminal: a secret value or a password read without echo (and
//! twice, so that a typo is not stored), and a typed confirmation before something is erased.
//! Off a terminal, commands read their input from stdin as it comes and never ask.

use crate::error::CliError;
use rustix::termios::{LocalModes, OptionalActions, Termios, tcgetattr, tcsetattr};
use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::os::fd::{AsFd as _, BorrowedFd};
use zeroize::Zeroizing;

/// Whether stdin is a terminal: someone can be asked.
pub(crate) fn interactive() -> bool {
    std::io::stdin().is_terminal()
}

/// Reads `what` twice without echo; exit 2 when the two differ or nothing was typed.
pub(crate) fn read_hidden_twice(what: &str) -> Result<Zeroizing<String>, CliError> {
    let first = read_hidden(&format!("{what}: "))?;
    if first.is_empty() {
        return Err(CliError::usage(format!(
            "no {what} typed; nothing was stored"
        )));
    }
    let again = read_hidden(&format!("{what} again: "))?;
    if first != again {
        return Err(CliError::usage(format!(
            "the two {what}s typed differ; nothing was stored"
        )));
    }
    Ok(first)
}

/// Asks `question` and whether the answer typed is `expected`.
pub(crate) fn confirm(question: &str, expected: &str) -> Result<bool, CliError> {
    prompt(question);
    let answer = read_line()?;
    Ok(answer.trim() == expected)
}

/// One line typed with the terminal's echo off (the prompt is shown once it is off, and the
/// echo comes back whatever happens, a failed read included).
fn read_hidden(question: &str) -> Result<Zeroizing<String>, CliError> {
    let stdin = std::io::stdin();
    let fd = stdin.as_fd();
    let shown = tcgetattr(fd).map_err(|e| terminal_error().caused_by(e))?;
    let mut hidden = shown.clone();
    hidden.local_modes.remove(LocalModes::ECHO);
    // The Enter still moves to the next line.
    hidden.local_modes.insert(LocalModes::ECHONL);
    tcsetattr(fd, OptionalActions::Now, &hidden).map_err(|e| terminal_error().caused_by(e))?;
    let _echo_back = EchoBack { fd, shown };
    prompt(question);
    read_line()
}

/// Puts the terminal's settings back when dropped.
struct EchoBack<'a> {
    fd: BorrowedFd<'a>,
    shown: Termios,
}

impl Drop for EchoBack<'_> {
    fn drop(&mut self) {
        // Nothing more can be done if the terminal went away meanwhile.
        let _ = tcsetattr(self.fd, OptionalActions::Now, &self.shown);
    }
}

fn prompt(question: &str) {
    let mut stderr = std::io::stderr().lock();
    // A prompt that cannot be shown still lets the answer be read.
    let _ = stderr.write_all(question.as_bytes());
    let _ = stderr.flush();
}

/// One line of stdin, its line break dropped.
fn read_line() -> Result<Zeroizing<String>, CliError> {
    let mut line = Zeroizing::new(String::new());
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| CliError::usage("cannot read the terminal").caused_by(e))?;
    let typed = line.strip_suffix('\n').unwrap_or(&line);
    let typed = typed.strip_suffix('\r').unwrap_or(typed);
    Ok(Zeroizing::new(typed.to_owned()))
}

fn terminal_error() -> CliError {
    CliError::usage("cannot turn the terminal's echo off")
}
