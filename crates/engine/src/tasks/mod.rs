//! The tasks kestrel runs, one file each, and the choice of one from a flow's task.

mod log;
mod ret;

pub use log::LogTask;
pub use ret::ReturnTask;

use crate::Task;
use kestrel_flow::TaskKind;

/// The task that runs a flow task of this kind.
pub(crate) fn task_for(kind: &TaskKind) -> Box<dyn Task> {
    match kind {
        TaskKind::Log { messages, level } => Box::new(LogTask::new(messages.clone(), *level)),
        TaskKind::Return { format } => Box::new(ReturnTask::new(format.clone())),
    }
}
