//! The server's own log: one line per event on stderr, `<time> <LEVEL> <message>`. Messages
//! name routes, flows, keys and variables, never a value.

use std::io::Write as _;

fn line(level: &str, message: &str) {
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ");
    // Nothing more can be done when stderr itself is gone.
    let _ = writeln!(std::io::stderr().lock(), "{now} {level:<5} {message}");
}

/// Something an operator may want to know.
pub(crate) fn info(message: &str) {
    line("INFO", message);
}

/// Something that went wrong but was handled.
pub(crate) fn warn(message: &str) {
    line("WARN", message);
}

/// A fault of the server.
pub(crate) fn error(message: &str) {
    line("ERROR", message);
}
