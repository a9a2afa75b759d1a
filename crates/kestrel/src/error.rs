//! The command line's one error type: a message a person can act on, its causes, and the exit
//! status it maps to.

use std::error::Error;
use std::fmt;

/// The execution ended FAILED or KILLED, or a command failed after starting.
pub(crate) const EXIT_FAILED: u8 = 1;
/// Nothing ran: usage, configuration, invalid flow or input. stdout stays empty.
pub(crate) const EXIT_USAGE: u8 = 2;
/// Interrupted by Ctrl-C (128 + SIGINT).
pub(crate) const EXIT_INTERRUPTED: u8 = 130;

/// A command's failure. Its message and causes never hold a secret value.
#[derive(Debug)]
pub(crate) struct CliError {
    code: u8,
    message: String,
    /// Printed as it is, without the `error: ` prefix (lines that carry their own prefix,
    /// like `FILE:LINE:COL: message`).
    plain: bool,
    source: Option<Box<dyn Error + Send + Sync>>,
    /// What to do about it, printed last on its own `hint:` line.
    hint: Option<String>,
}

impl CliError {
    /// Nothing ran (exit 2).
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self::new(EXIT_USAGE, message.into())
    }

    /// The command failed (exit 1).
    pub(crate) fn failed(message: impl Into<String>) -> Self {
        Self::new(EXIT_FAILED, message.into())
    }

    /// Lines printed as they are, with exit 2.
    pub(crate) fn usage_lines(lines: Vec<String>) -> Self {
        Self {
            plain: true,
            ..Self::new(EXIT_USAGE, lines.join("\n"))
        }
    }

    fn new(code: u8, message: String) -> Self {
        Self {
            code,
            message,
            plain: false,
            source: None,
            hint: None,
        }
    }

    /// The same error, caused by `source` (printed on its own `caused by:` line).
    pub(crate) fn caused_by(mut self, source: impl Into<Box<dyn Error + Send + Sync>>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// The same error, with what to do about it (printed on a last `hint:` line).
    pub(crate) fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// The exit status.
    pub(crate) fn code(&self) -> u8 {
        self.code
    }

    /// The report for stderr: the message, then one `caused by:` line per cause, then the
    /// hint.
    pub(crate) fn report(&self) -> String {
        let mut report = if self.plain {
            self.message.clone()
        } else {
            format!("error: {}", self.message)
        };
        let mut cause = self.source();
        while let Some(error) = cause {
            report.push_str(&format!("\ncaused by: {error}"));
            cause = error.source();
        }
        if let Some(hint) = &self.hint {
            report.push_str(&format!("\nhint: {hint}"));
        }
        report
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl Error for CliError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.source
            .as_deref()
            .map(|source| source as &(dyn Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_lists_every_cause() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let error = CliError::usage("cannot read flow.yml").caused_by(io);
        assert_eq!(error.code(), EXIT_USAGE);
        assert_eq!(
            error.report(),
            "error: cannot read flow.yml\ncaused by: no such file"
        );
    }

    #[test]
    fn the_hint_comes_last() {
        let error = CliError::failed("secret 'K' not found").with_hint("kestrel secrets set ns K");
        assert_eq!(
            error.report(),
            "error: secret 'K' not found\nhint: kestrel secrets set ns K"
        );
    }

    #[test]
    fn plain_lines_have_no_prefix() {
        let error = CliError::usage_lines(vec!["f.yml:1:1: bad".into(), "f.yml:2:1: worse".into()]);
        assert_eq!(error.report(), "f.yml:1:1: bad\nf.yml:2:1: worse");
    }
}
