//! Tasks: the table of task types kestrel runs, and reading each task of a flow.
//!
//! A new task type is one entry in [`TASK_TYPES`]: its class names, its own properties and a
//! function building its [`TaskKind`]. A flowable type (Sequential, If...) reads its children
//! with [`task_list`], which checks them like top-level tasks and counts their ids in the
//! flow-wide duplicate check.

use crate::context::{Ctx, Props, TASK_ID};
use crate::duration::parse_iso8601;
use crate::yaml::{Node, printable};
use crate::{Level, Task, TaskCommon, TaskKind};

mod core;
pub(crate) mod files;
pub(crate) mod for_each_item;
pub(crate) mod http;
pub(crate) mod jdbc;
pub(crate) mod read;
pub(crate) mod scripts;
pub(crate) mod state;
pub(crate) mod subflow;

/// A task type: its Kestra class names, its own properties, and how to build it.
#[derive(Clone, Copy)]
pub(crate) struct TaskType {
    /// The current class name; messages name it.
    pub(crate) class: &'static str,
    /// Older class names that still work.
    pub(crate) aliases: &'static [&'static str],
    /// Properties of this type, besides those every task has ([`COMMON`]).
    pub(crate) properties: &'static [&'static str],
    /// Builds the kind from the task's properties, recording its violations; `None` when it
    /// found any.
    pub(crate) build: fn(&mut Ctx<'_>, &Props<'_>) -> Option<TaskKind>,
}

/// Every task type kestrel runs.
pub(crate) const TASK_TYPES: &[TaskType] = &[
    TaskType {
        class: "io.kestra.plugin.core.log.Log",
        aliases: &["io.kestra.core.tasks.log.Log"],
        properties: &["message", "level"],
        build: build_log,
    },
    TaskType {
        class: "io.kestra.plugin.core.debug.Return",
        aliases: &["io.kestra.core.tasks.debugs.Return"],
        properties: &["format"],
        build: build_return,
    },
    scripts::SHELL_COMMANDS,
    scripts::SHELL_SCRIPT,
    scripts::PYTHON_COMMANDS,
    scripts::PYTHON_SCRIPT,
    scripts::NODE_COMMANDS,
    scripts::NODE_SCRIPT,
    jdbc::POSTGRES_QUERY,
    TaskType {
        class: http::CLASS,
        aliases: &["io.kestra.plugin.fs.http.Request"],
        properties: http::PROPERTIES,
        build: http::build,
    },
    http::DOWNLOAD,
    core::FAIL,
    core::SLEEP,
    core::ECHO,
    core::OUTPUT_VALUES,
    core::LABELS,
    core::FETCH,
    core::RESUME,
    subflow::SUBFLOW,
    crate::flowable::SEQUENTIAL,
    crate::flowable::PARALLEL,
    crate::flowable::IF,
    crate::flowable::SWITCH,
    crate::flowable::ALLOW_FAILURE,
    crate::flowable::PAUSE,
    crate::flowable::WAIT_FOR,
    crate::dag::DAG,
    crate::flowable::FOR_EACH,
    crate::flowable::EACH_SEQUENTIAL,
    crate::flowable::EACH_PARALLEL,
    files::WORKING_DIRECTORY,
    files::LOCAL_FILES,
    files::CONCAT,
    for_each_item::FOR_EACH_ITEM,
    state::GET,
    state::SET,
    state::DELETE,
];

/// Every task type kestrel runs, as an editor completes them: its class name and every
/// property it takes (those all tasks have first).
pub fn task_catalog() -> impl Iterator<Item = (&'static str, Vec<&'static str>)> {
    TASK_TYPES.iter().map(|task_type| {
        let properties = COMMON.iter().chain(task_type.properties).copied().collect();
        (task_type.class, properties)
    })
}

/// Properties every task has.
const COMMON: &[&str] = &[
    "id",
    "type",
    "description",
    "logLevel",
    "allowFailure",
    "allowWarning",
    "disabled",
    "runIf",
    "timeout",
    "retry",
    "workerGroup",
    "logToFile",
];

/// The tasks listed under `key` (`tasks`, `errors`, a flowable's children); an absent list is
/// empty. Tasks with violations are left out, their violations recorded.
pub(crate) fn task_list(ctx: &mut Ctx<'_>, props: &Props<'_>, key: &str) -> Vec<Task> {
    let Some(items) = props.list(ctx, key) else {
        return Vec::new();
    };
    let field = props.field(key);
    items
        .iter()
        .enumerate()
        .filter_map(|(index, node)| read_task(ctx, node, format!("{field}[{index}]")))
        .collect()
}

/// One task at `path`, checked like every task; `None` (its violations recorded) when it
/// cannot be read.
pub(crate) fn read_task(ctx: &mut Ctx<'_>, node: &Node, path: String) -> Option<Task> {
    let props = Props::open(ctx, node, path)?;
    let id = props.id(ctx, "id", &TASK_ID);
    if let Some((id, at)) = &id {
        ctx.task_id(id.clone(), at);
    }
    let type_name = props.required_text(ctx, "type");
    let task_type = type_name
        .as_deref()
        .and_then(|name| find_type(ctx, &props, name));
    let common = read_common(ctx, &props);
    let kind = task_type.and_then(|task_type| {
        props.reject_unknown(ctx, task_type.class, &[COMMON, task_type.properties]);
        (task_type.build)(ctx, &props)
    });
    Some(Task {
        id: id?.0,
        type_name: type_name?,
        kind: kind?,
        common,
        line: node.line,
    })
}

/// The registered type of that name, or `Invalid type: <name>` at the `type` value.
fn find_type(ctx: &mut Ctx<'_>, props: &Props<'_>, name: &str) -> Option<TaskType> {
    let found = ctx
        .registry
        .iter()
        .find(|t| t.class == name || t.aliases.contains(&name))
        .copied();
    if let (None, Some(at)) = (found, props.get("type")) {
        ctx.report(at, format!("Invalid type: {}", printable(name)));
    }
    found
}

fn read_common(ctx: &mut Ctx<'_>, props: &Props<'_>) -> TaskCommon {
    let timeout = props.text(ctx, "timeout");
    let unreadable = timeout
        .as_deref()
        .is_some_and(|text| parse_iso8601(text).is_none());
    if let (true, Some(at)) = (unreadable, props.get("timeout")) {
        let field = props.field("timeout");
        ctx.report(
            at,
            format!("{field}: must be an ISO-8601 duration such as PT30S"),
        );
    }
    crate::retry::check_retry(ctx, props);
    if let Some(at) = props.get("workerGroup") {
        // Kestra's open-source edition refuses it in these words.
        let field = props.field("workerGroup");
        ctx.report(
            at,
            format!("{field}: Worker Group is an Enterprise Edition functionality"),
        );
    }
    TaskCommon {
        description: props.text(ctx, "description"),
        log_level: props.choice(ctx, "logLevel", &Level::ALL, Level::as_str),
        allow_failure: props.flag(ctx, "allowFailure").unwrap_or(false),
        allow_warning: props.flag(ctx, "allowWarning").unwrap_or(false),
        disabled: props.flag(ctx, "disabled").unwrap_or(false),
        run_if: props.text(ctx, "runIf"),
        timeout,
        retry: props.map(ctx, "retry").and(props.json("retry")),
        log_to_file: props.flag(ctx, "logToFile").unwrap_or(false),
    }
}

fn build_log(ctx: &mut Ctx<'_>, props: &Props<'_>) -> Option<TaskKind> {
    let level = props.choice(ctx, "level", &Level::ALL, Level::as_str);
    let messages = log_messages(ctx, props)?;
    Some(TaskKind::Log {
        messages,
        level: level.unwrap_or(Level::Info),
    })
}

/// `message`: one text, or a list of texts each logged on its own.
fn log_messages(ctx: &mut Ctx<'_>, props: &Props<'_>) -> Option<Vec<String>> {
    if props.get("message").is_none() {
        props.missing(ctx, "message");
        return None;
    }
    read::texts(ctx, props, "message")
}

fn build_return(ctx: &mut Ctx<'_>, props: &Props<'_>) -> Option<TaskKind> {
    Some(TaskKind::Return {
        format: props.text(ctx, "format"),
    })
}

#[cfg(test)]
mod tests {
    use crate::{Level, Task, TaskKind, parse_flow};

    fn flow(task: &str) -> String {
        format!("id: f\nnamespace: dev\ntasks:\n  - id: t\n{task}")
    }

    fn task(task: &str) -> Task {
        let mut flow = parse_flow(&flow(task)).unwrap();
        flow.tasks.remove(0)
    }

    fn violations(task: &str) -> Vec<String> {
        source_violations(&flow(task))
    }

    /// Each violation of the whole flow `source` as `line:column: message`.
    fn source_violations(source: &str) -> Vec<String> {
        let found = parse_flow(source).unwrap_err();
        found.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn log_under_its_old_and_new_names() {
        for name in [
            "io.kestra.core.tasks.log.Log",
            "io.kestra.plugin.core.log.Log",
        ] {
            let task = task(&format!(
                "    type: {name}\n    message: hi\n    level: WARN\n"
            ));
            assert_eq!(task.type_name, name);
            assert!(matches!(
                task.kind,
                TaskKind::Log {
                    level: Level::Warn,
                    ..
                }
            ));
        }
    }

    #[test]
    fn return_under_its_old_and_new_names() {
        for name in [
            "io.kestra.core.tasks.debugs.Return",
            "io.kestra.plugin.core.debug.Return",
        ] {
            let task = task(&format!("    type: {name}\n    format: \"{{{{ 1 }}}}\"\n"));
            assert!(matches!(task.kind, TaskKind::Return { format: Some(f) } if f == "{{ 1 }}"));
            let task = self::task(&format!("    type: {name}\n"));
            assert!(matches!(task.kind, TaskKind::Return { format: None }));
        }
    }

    fn messages(message: &str) -> Vec<String> {
        match task(&format!(
            "    type: io.kestra.plugin.core.log.Log\n    message: {message}\n"
        ))
        .kind
        {
            TaskKind::Log { messages, .. } => messages,
            _ => panic!("not a log"),
        }
    }

    #[test]
    fn log_message_is_a_text_or_a_list_of_texts() {
        assert_eq!(messages("hello"), ["hello"]);
        assert_eq!(messages("[a, \"b c\"]"), ["a", "b c"]);
        assert_eq!(messages("|\n      one\n      two"), ["one\ntwo\n"]);
    }

    #[test]
    fn log_numbers_and_booleans_are_logged_as_written() {
        assert_eq!(messages("1.50"), ["1.50"]);
        assert_eq!(messages("[42, true, 0x1F]"), ["42", "true", "0x1F"]);
    }

    #[test]
    fn log_message_must_be_there_and_be_text() {
        let log = "    type: io.kestra.plugin.core.log.Log\n";
        assert_eq!(violations(log), ["4:5: tasks[0].message: must not be null"]);
        assert_eq!(
            violations(&format!("{log}    message:\n")),
            ["6:5: tasks[0].message: must not be null"]
        );
        assert_eq!(
            violations(&format!("{log}    message: {{a: 1}}\n")),
            ["6:14: tasks[0].message: must be a string or a list of strings"]
        );
        assert_eq!(
            violations(&format!("{log}    message: [a, ~, [b]]\n")),
            [
                "6:18: tasks[0].message[1]: must not be null",
                "6:21: tasks[0].message[2]: must be a string",
            ]
        );
    }

    #[test]
    fn log_level_defaults_to_info_and_must_be_known() {
        let log = "    type: io.kestra.plugin.core.log.Log\n    message: x\n";
        assert!(matches!(
            task(log).kind,
            TaskKind::Log {
                level: Level::Info,
                ..
            }
        ));
        assert_eq!(
            violations(&format!("{log}    level: LOUD\n")),
            ["7:12: tasks[0].level: must be one of [TRACE, DEBUG, INFO, WARN, ERROR]"]
        );
    }

    #[test]
    fn common_properties_are_read() {
        let task = task(concat!(
            "    type: io.kestra.plugin.core.log.Log\n    message: x\n",
            "    description: d\n    logLevel: WARN\n    allowFailure: true\n    disabled: \"true\"\n",
            "    runIf: \"{{ false }}\"\n    timeout: PT1M\n    retry:\n      type: constant\n      interval: PT1S\n      maxAttempt: 2\n",
        ));
        let common = task.common;
        assert_eq!(common.description.as_deref(), Some("d"));
        assert_eq!(common.log_level, Some(Level::Warn));
        assert!(common.allow_failure && common.disabled);
        assert_eq!(common.run_if.as_deref(), Some("{{ false }}"));
        assert_eq!(
            common.timeout_duration(),
            Some(std::time::Duration::from_secs(60))
        );
        assert_eq!(common.retry.unwrap()["maxAttempt"], 2);
    }

    #[test]
    fn bad_common_properties_are_reported() {
        let found = violations(concat!(
            "    type: io.kestra.plugin.core.log.Log\n    message: x\n",
            "    allowFailure: maybe\n    timeout: 10s\n    retry: 3\n    logLevel: info\n",
        ));
        assert_eq!(
            found,
            [
                "7:19: tasks[0].allowFailure: must be a boolean",
                "8:14: tasks[0].timeout: must be an ISO-8601 duration such as PT30S",
                "9:12: tasks[0].retry: must be a map",
                "10:15: tasks[0].logLevel: must be one of [TRACE, DEBUG, INFO, WARN, ERROR]",
            ]
        );
    }

    #[test]
    fn a_worker_group_is_refused_as_kestras_open_source_edition_refuses_it() {
        let found = violations(concat!(
            "    type: io.kestra.plugin.core.debug.Return\n",
            "    workerGroup:\n      key: toto\n",
        ));
        assert_eq!(
            found,
            ["7:7: tasks[0].workerGroup: Worker Group is an Enterprise Edition functionality"]
        );
    }

    #[test]
    fn task_type_must_be_there_and_known() {
        assert_eq!(
            violations("    message: x\n"),
            ["4:5: tasks[0].type: must not be null"]
        );
        assert_eq!(
            violations("    type: io.kestra.plugin.core.log.Nope\n    anything: 1\n"),
            ["5:11: Invalid type: io.kestra.plugin.core.log.Nope"]
        );
    }

    #[test]
    fn unknown_task_property_names_the_task_class() {
        for name in [
            "io.kestra.core.tasks.log.Log",
            "io.kestra.plugin.core.log.Log",
        ] {
            assert_eq!(
                violations(&format!("    type: {name}\n    message: x\n    nope: a\n")),
                [
                    "7:5: Unrecognized field \"nope\" (class io.kestra.plugin.core.log.Log), not marked as ignorable"
                ]
            );
        }
        assert_eq!(
            violations("    type: io.kestra.plugin.core.debug.Return\n    message: x\n"),
            [
                "6:5: Unrecognized field \"message\" (class io.kestra.plugin.core.debug.Return), not marked as ignorable"
            ]
        );
    }

    #[test]
    fn task_ids_follow_kestras_pattern() {
        let source = "id: f\nnamespace: dev\ntasks:\n  - id: a.b\n    type: io.kestra.plugin.core.debug.Return\n  - type: io.kestra.plugin.core.debug.Return\n";
        assert_eq!(
            source_violations(source),
            [
                "4:9: tasks[0].id: must match \"^[a-zA-Z0-9][a-zA-Z0-9_-]*\"",
                "6:5: tasks[1].id: must not be null",
            ]
        );
    }

    #[test]
    fn a_task_that_is_not_a_map_is_reported() {
        let source = "id: f\nnamespace: dev\ntasks:\n  - just text\n";
        assert_eq!(source_violations(source), ["4:5: tasks[0]: must be a map"]);
    }
}
