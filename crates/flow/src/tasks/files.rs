//! Tasks around a working directory: `io.kestra.plugin.core.flow.WorkingDirectory` (children
//! sharing one directory, with its input files, output files and cache) and
//! `io.kestra.plugin.core.storage.LocalFiles` (files written into it, files taken from it), and
//! `io.kestra.plugin.core.storage.Concat` (files of the internal storage joined into one).

use super::read::{nested, text_map, texts};
use super::{TaskType, read, task_list};
use crate::context::{Ctx, Props};
use crate::flowable::{FlowableKind, flowable};
use crate::yaml::Yaml;
use crate::{Task, TaskKind};
use std::time::Duration;

pub(crate) const WORKING_DIRECTORY: TaskType = TaskType {
    class: "io.kestra.plugin.core.flow.WorkingDirectory",
    aliases: &[
        "io.kestra.core.tasks.flows.WorkingDirectory",
        "io.kestra.core.tasks.flows.Worker",
    ],
    properties: &[
        "tasks",
        "errors",
        "inputFiles",
        "outputFiles",
        "cache",
        "namespaceFiles",
    ],
    build: build_working_directory,
};

pub(crate) const LOCAL_FILES: TaskType = TaskType {
    class: "io.kestra.plugin.core.storage.LocalFiles",
    aliases: &["io.kestra.core.tasks.storages.LocalFiles"],
    properties: &["inputs", "outputs"],
    build: build_local_files,
};

pub(crate) const CONCAT: TaskType = TaskType {
    class: "io.kestra.plugin.core.storage.Concat",
    aliases: &["io.kestra.core.tasks.storages.Concat"],
    properties: &["files", "separator", "extension"],
    build: build_concat,
};

/// A WorkingDirectory's own properties.
#[derive(Debug, Clone)]
pub struct WorkingDirectory {
    /// `tasks`: runnable tasks only (no flowable, no Subflow), as in Kestra.
    pub tasks: Vec<Task>,
    /// `inputFiles`: files written into the directory before the tasks (name, content
    /// template; a content rendering to a `kestra://` URI is that file).
    pub input_files: Vec<(String, String)>,
    /// `outputFiles`: glob patterns of files stored once the tasks ran, as the output
    /// `outputFiles` (name to `kestra://` URI).
    pub output_files: Vec<String>,
    /// `cache`: files kept from one execution of the flow to the next.
    pub cache: Option<WorkCache>,
}

/// A WorkingDirectory's `cache`: the files matching `patterns` are archived after the tasks
/// and put back in the directory of the next executions, until `ttl` passes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkCache {
    /// `patterns`: globs relative to the working directory, non-empty.
    pub patterns: Vec<String>,
    /// `ttl`: how long an archive is used; none is for ever.
    pub ttl: Option<Duration>,
}

/// Kestra's words for a WorkingDirectory without tasks.
const NO_TASKS: &str = "The 'tasks' property cannot be empty";

/// Kestra's words for a WorkingDirectory child that is not a runnable task.
const ONLY_RUNNABLE: &str =
    "Only runnable tasks are allowed as children of a WorkingDirectory task";

fn build_working_directory(ctx: &mut Ctx<'_>, props: &Props<'_>) -> Option<TaskKind> {
    let tasks = if props
        .get("tasks")
        .is_none_or(|node| matches!(&node.value, Yaml::Seq(items) if items.is_empty()))
    {
        let field = props.field("tasks");
        ctx.report(props.locate("tasks"), format!("{field}: {NO_TASKS}"));
        None
    } else {
        Some(task_list(ctx, props, "tasks"))
    };
    if let Some(tasks) = &tasks
        && tasks.iter().any(|task| !is_runnable(task))
    {
        let field = props.field("tasks");
        ctx.report(props.locate("tasks"), format!("{field}: {ONLY_RUNNABLE}"));
    }
    refuse_namespace_files(ctx, props);
    let input_files = props
        .get("inputFiles")
        .map(|_| text_map(ctx, props, "inputFiles"));
    let output_files = texts(ctx, props, "outputFiles");
    let cache = props.get("cache").map(|_| cache(ctx, props));
    let dir = WorkingDirectory {
        tasks: tasks?,
        input_files: input_files.unwrap_or(Some(Vec::new()))?,
        output_files: output_files.unwrap_or_default(),
        cache: cache.unwrap_or(None),
    };
    flowable(
        ctx,
        props,
        Some(FlowableKind::WorkingDirectory(Box::new(dir))),
    )
}

/// Whether `task` runs on its own, without children or another execution.
fn is_runnable(task: &Task) -> bool {
    !matches!(task.kind, TaskKind::Flowable(_) | TaskKind::Subflow(_))
}

/// `namespaceFiles` that are enabled: kestrel has no namespace files to put in the directory.
fn refuse_namespace_files(ctx: &mut Ctx<'_>, props: &Props<'_>) {
    let Some(files) = nested(ctx, props, "namespaceFiles") else {
        return;
    };
    if files.flag(ctx, "enabled") != Some(false) {
        let field = props.field("namespaceFiles");
        ctx.report(
            props.locate("namespaceFiles"),
            format!("{field}: kestrel has no namespace files; use inputFiles"),
        );
    }
}

fn cache(ctx: &mut Ctx<'_>, props: &Props<'_>) -> Option<WorkCache> {
    let cache = nested(ctx, props, "cache")?;
    cache.reject_unknown(ctx, "cache", &[&["patterns", "ttl"]]);
    let patterns = texts(ctx, &cache, "patterns");
    if patterns.as_ref().is_none_or(Vec::is_empty) {
        cache.missing(ctx, "patterns");
    }
    let ttl = cache.get("ttl").map(|_| read::duration(ctx, &cache, "ttl"));
    Some(WorkCache {
        patterns: patterns.filter(|patterns| !patterns.is_empty())?,
        ttl: ttl.unwrap_or(None),
    })
}

/// `files`: a list of URI templates, or a template rendering to a JSON list of URIs; kept as
/// written.
fn build_concat(ctx: &mut Ctx<'_>, props: &Props<'_>) -> Option<TaskKind> {
    let Some(node) = props.get("files") else {
        props.missing(ctx, "files");
        return None;
    };
    if !matches!(node.value, Yaml::Seq(_) | Yaml::String(_)) {
        let field = props.field("files");
        ctx.report(
            node,
            format!("{field}: must be a list of URIs or a JSON string of one"),
        );
        return None;
    }
    Some(TaskKind::Concat {
        files: node.to_json(),
        separator: props.text(ctx, "separator"),
        extension: props
            .text(ctx, "extension")
            .unwrap_or_else(|| ".tmp".to_owned()),
    })
}

fn build_local_files(ctx: &mut Ctx<'_>, props: &Props<'_>) -> Option<TaskKind> {
    let inputs = props.get("inputs").map(|_| text_map(ctx, props, "inputs"));
    let outputs = texts(ctx, props, "outputs");
    Some(TaskKind::LocalFiles {
        inputs: inputs.unwrap_or(Some(Vec::new()))?,
        outputs: outputs.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::WorkCache;
    use crate::{FlowableKind, TaskKind, parse_flow};
    use std::time::Duration;

    fn task(properties: &str) -> Result<TaskKind, Vec<String>> {
        let source = format!("id: f\nnamespace: dev\ntasks:\n  - id: t\n{properties}");
        parse_flow(&source)
            .map(|mut flow| flow.tasks.remove(0).kind)
            .map_err(|found| found.iter().map(ToString::to_string).collect())
    }

    const DIR: &str = "    type: io.kestra.plugin.core.flow.WorkingDirectory\n";
    const CHILD: &str = "      - id: c\n        type: io.kestra.plugin.core.storage.LocalFiles\n        inputs:\n          a.txt: \"{{ 1 }}\"\n        outputs: [\"*.txt\"]\n";

    #[test]
    fn a_working_directory_under_its_three_names_with_files_and_cache() {
        for name in [
            "io.kestra.plugin.core.flow.WorkingDirectory",
            "io.kestra.core.tasks.flows.WorkingDirectory",
            "io.kestra.core.tasks.flows.Worker",
        ] {
            let kind = task(&format!(
                "    type: {name}\n    inputFiles:\n      in.txt: hi\n    outputFiles: [out.txt]\n    cache:\n      ttl: PT5m\n      patterns: [\"*.txt\"]\n    tasks:\n{CHILD}"
            ))
            .unwrap();
            let TaskKind::Flowable(flowable) = kind else {
                panic!("not a flowable")
            };
            let FlowableKind::WorkingDirectory(dir) = flowable.kind else {
                panic!("not a working directory")
            };
            assert_eq!(dir.input_files, [("in.txt".to_owned(), "hi".to_owned())]);
            assert_eq!(dir.output_files, ["out.txt"]);
            assert_eq!(
                dir.cache,
                Some(WorkCache {
                    patterns: vec!["*.txt".into()],
                    ttl: Some(Duration::from_secs(300))
                })
            );
            assert!(matches!(
                &dir.tasks[0].kind,
                TaskKind::LocalFiles { inputs, outputs }
                    if inputs == &[("a.txt".to_owned(), "{{ 1 }}".to_owned())] && outputs == &["*.txt"]
            ));
        }
    }

    #[test]
    fn only_runnable_children_and_no_namespace_files() {
        let nested = format!(
            "{DIR}    tasks:\n      - id: s\n        type: io.kestra.plugin.core.flow.Sequential\n        tasks:\n  {}",
            CHILD.replace("\n      ", "\n        ")
        );
        assert_eq!(
            task(&nested).unwrap_err(),
            [
                "7:7: tasks[0].tasks: Only runnable tasks are allowed as children of a WorkingDirectory task"
            ]
        );
        assert_eq!(
            task(&format!(
                "{DIR}    namespaceFiles:\n      enabled: true\n    tasks:\n{CHILD}"
            ))
            .unwrap_err(),
            ["7:7: tasks[0].namespaceFiles: kestrel has no namespace files; use inputFiles"]
        );
        assert!(
            task(&format!(
                "{DIR}    namespaceFiles:\n      enabled: false\n    tasks:\n{CHILD}"
            ))
            .is_ok()
        );
        assert_eq!(
            task(&format!(
                "{DIR}    cache:\n      ttl: PT1H\n    tasks:\n{CHILD}"
            ))
            .unwrap_err(),
            ["7:7: tasks[0].cache.patterns: must not be null"]
        );
    }
}
