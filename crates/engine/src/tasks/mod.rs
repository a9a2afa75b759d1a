//! The tasks kestrel runs, one file each, and the choice of one from a flow's task.

mod concat;
mod external;
mod fail;
mod fetch;
mod http;
mod items;
mod labels;
mod local_files;
mod log;
mod output_values;
mod resume;
mod ret;
mod scripts;
mod sleep;
mod state;
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
        TaskKind::FetchLogs {
            namespace,
            flow_id,
            execution_id,
            task_ids,
            level,
        } => Some(Box::new(fetch::FetchTask::new(
            [namespace.clone(), flow_id.clone(), execution_id.clone()],
            task_ids.clone(),
            *level,
        ))),
        TaskKind::Resume {
            namespace,
            flow_id,
            execution_id,
            inputs,
        } => Some(Box::new(resume::ResumeTask::new(
            [namespace.clone(), flow_id.clone(), execution_id.clone()],
            inputs.clone(),
        ))),
        TaskKind::Concat {
            files,
            separator,
            extension,
        } => Some(Box::new(concat::ConcatTask::new(
            files.clone(),
            separator.clone(),
            extension.clone(),
        ))),
        TaskKind::SplitItems { items, rows } => {
            Some(Box::new(items::SplitTask::new(items.clone(), rows.clone())))
        }
        TaskKind::MergeOutputs { file } => Some(Box::new(items::MergeTask::new(file.clone()))),
        TaskKind::State(call) => Some(Box::new(state::StateTask::new((**call).clone()))),
        TaskKind::LocalFiles { inputs, outputs } => Some(Box::new(
            local_files::LocalFilesTask::new(inputs.clone(), outputs.clone()),
        )),
    }
}
