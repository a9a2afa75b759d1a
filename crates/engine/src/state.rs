//! The states of executions and task runs, as Kestra names them.

use std::fmt;

/// The state of an execution or a task run (Kestra's names).
///
/// An execution goes CREATED → RUNNING → one of the terminal states: SUCCESS, WARNING (a task
/// failed under `allowFailure`), FAILED (a task failed; later tasks did not run) or KILLED
/// (cancelled). A task run follows the same path; SKIPPED and RETRYING are named for
/// completeness and for readers of stored executions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum State {
    /// Created, not started.
    Created,
    /// Running.
    Running,
    /// Ended well.
    Success,
    /// Ended with a failure that `allowFailure` tolerated.
    Warning,
    /// Ended with a failure.
    Failed,
    /// Not run (`runIf` false).
    Skipped,
    /// Failed, to be tried again.
    Retrying,
    /// Cancelled.
    Killed,
    /// Ended by the flow itself before its end (an SLA whose behavior is CANCEL).
    Cancelled,
    /// Failed, a new execution running in its place (`retry` with `behavior:
    /// CREATE_NEW_EXECUTION`).
    Retried,
    /// Waiting at a Pause task to be resumed.
    Paused,
    /// Ended with failed task runs, put back to run them again (Kestra's restart); a task run
    /// to run again, before it does.
    Restarted,
}

impl State {
    /// The state's name as Kestra writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Created => "CREATED",
            State::Running => "RUNNING",
            State::Success => "SUCCESS",
            State::Warning => "WARNING",
            State::Failed => "FAILED",
            State::Skipped => "SKIPPED",
            State::Retrying => "RETRYING",
            State::Killed => "KILLED",
            State::Cancelled => "CANCELLED",
            State::Retried => "RETRIED",
            State::Paused => "PAUSED",
            State::Restarted => "RESTARTED",
        }
    }

    /// The state Kestra names `name` (`SUCCESS`), if any.
    pub fn from_name(name: &str) -> Option<State> {
        [
            State::Created,
            State::Running,
            State::Success,
            State::Warning,
            State::Failed,
            State::Skipped,
            State::Retrying,
            State::Killed,
            State::Cancelled,
            State::Retried,
            State::Paused,
            State::Restarted,
        ]
        .into_iter()
        .find(|state| state.as_str() == name)
    }

    /// Whether nothing more happens after this state.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            State::Success
                | State::Warning
                | State::Failed
                | State::Skipped
                | State::Killed
                | State::Cancelled
                | State::Retried
        )
    }

    /// Whether the state counts as a success for a caller's exit status (SUCCESS or WARNING).
    pub fn is_successful(self) -> bool {
        matches!(self, State::Success | State::Warning)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_kestras() {
        assert_eq!(State::Success.to_string(), "SUCCESS");
        assert_eq!(State::Killed.as_str(), "KILLED");
        assert_eq!(State::from_name("WARNING"), Some(State::Warning));
        assert_eq!(State::from_name("warning"), None);
    }

    #[test]
    fn only_success_and_warning_are_successful() {
        assert!(State::Success.is_successful());
        assert!(State::Warning.is_successful());
        assert!(!State::Failed.is_successful());
        assert!(!State::Killed.is_successful());
        assert!(!State::Running.is_terminal());
    }
}
