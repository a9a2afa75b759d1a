//! The tasks kestrel runs, one file each, and the choice of one from a flow's task.

mod external;
mod fail;
mod http;
mod labels;
mod log;
mod output_values;
mod ret;
mod scripts;
mod sleep;
mod subflow;

pub use external::{TaskProvider, register_tasks};
pub use log::LogTask;
pub use ret::ReturnTask;

use fail::FailTask;
use output_values::OutputValuesTask;
use sleep::SleepTask;

pub(crate) use http::HttpClients;

use crate::Task;
use kestrel_flow::TaskKind;

/// The task that runs a flow task of this kind; none for a flowable task, whose children the
/// runner runs itself.
pub(crate) fn task_for(kind: &TaskKind) -> Option<Box<dyn Task>> {
    match kind {
        TaskKind::Flowable(_) => None,
        TaskKind::Log { messages, level } => Some(Box::new(LogTask::new(messages.clone(), *level))),
        TaskKind::Return { format } => Some(Box::new(ReturnTask::new(format.clone()))),
        TaskKind::Script(spec) => Some(Box::new(scripts::ScriptRunner::new((**spec).clone()))),
        TaskKind::Request(spec) => Some(Box::new(http::HttpTask::new((**spec).clone()))),
        TaskKind::PostgresQuery(_) => Some(external::task_for(
            kind,
            "io.kestra.plugin.jdbc.postgresql.Query",
        )),
        TaskKind::Fail {
            condition,
            error_message,
        } => Some(Box::new(FailTask::new(
            condition.clone(),
            error_message.clone(),
        ))),
        TaskKind::Sleep { duration } => Some(Box::new(SleepTask::new(*duration))),
        TaskKind::OutputValues { values } => Some(Box::new(OutputValuesTask::new(values.clone()))),
        TaskKind::Labels { labels } => Some(Box::new(labels::LabelsTask::new(labels.clone()))),
        TaskKind::Subflow(call) => Some(Box::new(subflow::SubflowTask::new((**call).clone()))),
    }
}
