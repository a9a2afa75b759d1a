//! Flowable tasks: the tasks that run other tasks (Sequential, Parallel, If, Switch,
//! AllowFailure, ForEach and the older EachSequential and EachParallel), under Kestra's class
//! names.
//!
//! Their children are read with [`task_list`], so they are checked like top-level tasks and
//! their ids count in the flow-wide duplicate check.

use crate::context::{Ctx, Props};
use crate::tasks::{TaskType, task_list};
use crate::yaml::{Node, Yaml, printable};
use crate::{Task, TaskKind};
use serde_json::Value;

/// What a flowable task runs, and the tasks it runs when one of them fails.
#[derive(Debug, Clone)]
pub struct Flowable {
    /// How the children run.
    pub kind: FlowableKind,
    /// `errors`: run when a child fails; the flowable task still fails.
    pub errors: Vec<Task>,
}

/// The flowable task types, with their children.
#[derive(Debug, Clone)]
pub enum FlowableKind {
    /// `io.kestra.plugin.core.flow.Sequential`: `tasks` one after the other, stopping at the
    /// first failure.
    Sequential {
        /// `tasks`, non-empty.
        tasks: Vec<Task>,
    },
    /// `io.kestra.plugin.core.flow.Parallel`: `tasks` at the same time, at most `concurrent`
    /// at once.
    Parallel {
        /// `tasks`, non-empty.
        tasks: Vec<Task>,
        /// `concurrent`: how many children run at once; 0 (the default) is no limit.
        concurrent: usize,
    },
    /// `io.kestra.plugin.core.flow.If`: `then` when `condition` renders truthy, else `else`.
    If {
        /// `condition`, a template; false, `0`, `-0` and the empty text are false.
        condition: String,
        /// `then`, non-empty.
        then: Vec<Task>,
        /// `else`, possibly empty.
        otherwise: Vec<Task>,
    },
    /// `io.kestra.plugin.core.flow.Switch`: the tasks of the case whose key is `value`
    /// rendered, else `defaults`; outputs `value` and `defaults` (whether no case matched).
    Switch {
        /// `value`, a template.
        value: String,
        /// `cases`: key and tasks, in source order.
        cases: Vec<(String, Vec<Task>)>,
        /// `defaults`, possibly empty.
        defaults: Vec<Task>,
    },
    /// `io.kestra.plugin.core.flow.AllowFailure`: `tasks` one after the other, stopping at the
    /// first failure; a failure (after `errors`) ends it in WARNING, so the flow goes on.
    AllowFailure {
        /// `tasks`, non-empty.
        tasks: Vec<Task>,
    },
    /// `io.kestra.plugin.core.flow.ForEach` (and the older `EachSequential`, `EachParallel`):
    /// `tasks`, in order, once per value; children see the value as `{{ taskrun.value }}`.
    ForEach {
        /// `values` (`value` in the older types), as written: a list, or a template rendering
        /// to a JSON list.
        values: Value,
        /// How many iterations run at once; 0 is no limit (`concurrencyLimit`, default 1).
        concurrency_limit: usize,
        /// `tasks`, non-empty.
        tasks: Vec<Task>,
    },
    /// `io.kestra.plugin.core.flow.WaitFor`: `tasks`, again and again (every `interval`),
    /// until `condition` renders truthy after them, a maximum is reached or one fails; the
    /// output `iterationCount` counts the runs (children read it as it goes).
    WaitFor {
        /// `condition`, a template.
        condition: String,
        /// `tasks`, non-empty.
        tasks: Vec<Task>,
        /// `checkFrequency`.
        check: CheckFrequency,
        /// `failOnMaxReached` (default false): reaching a maximum fails the task run.
        fail_on_max_reached: bool,
    },
    /// `io.kestra.plugin.core.flow.Dag`: `tasks`, each once every task it depends on ended
    /// well, at most `concurrent` at once.
    Dag {
        /// Each `task`, in order.
        tasks: Vec<Task>,
        /// Each task's `dependsOn`, as indexes into `tasks` (checked: known and acyclic).
        depends_on: Vec<Vec<usize>>,
        /// `concurrent`: 0 (the default) is no limit.
        concurrent: usize,
    },
    /// `io.kestra.plugin.core.flow.WorkingDirectory`: `tasks` one after the other, as
    /// Sequential, in one working directory they share (see [`WorkingDirectory`]).
    WorkingDirectory(Box<crate::WorkingDirectory>),
    /// `io.kestra.plugin.core.flow.Pause`: the task run (and the execution) pauses until it is
    /// resumed, `delay` passes or its `timeout` (a failure) does; then `tasks`, if any, run.
    Pause {
        /// `delay`: an ISO-8601 duration, or a template rendering to one; the pause resumes
        /// by itself once it passed.
        delay: Option<String>,
        /// `onResume`: the inputs a resume gives, read as flow inputs; the task's output
        /// `onResume`.
        on_resume: Vec<crate::InputDef>,
        /// `tasks` (deprecated in Kestra), run once resumed; possibly empty.
        tasks: Vec<Task>,
    },
}

/// A WaitFor's `checkFrequency`, with Kestra's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckFrequency {
    /// `maxIterations` (default 100): the task runs more than this many times at most.
    pub max_iterations: u64,
    /// `maxDuration` (default PT1H).
    pub max_duration: std::time::Duration,
    /// `interval` between two runs (default PT1S).
    pub interval: std::time::Duration,
}

impl Flowable {
    /// Every child task, whichever branch it sits in, `errors` included.
    pub fn children(&self) -> impl Iterator<Item = &Task> {
        let (first, second): (&[Task], &[Task]) = match &self.kind {
            FlowableKind::Sequential { tasks }
            | FlowableKind::Parallel { tasks, .. }
            | FlowableKind::AllowFailure { tasks }
            | FlowableKind::ForEach { tasks, .. }
            | FlowableKind::Pause { tasks, .. }
            | FlowableKind::WaitFor { tasks, .. }
            | FlowableKind::Dag { tasks, .. } => (tasks, &[]),
            FlowableKind::WorkingDirectory(dir) => (&dir.tasks, &[]),
            FlowableKind::If {
                then, otherwise, ..
            } => (then, otherwise),
            FlowableKind::Switch { defaults, .. } => (defaults, &[]),
        };
        let cases = match &self.kind {
            FlowableKind::Switch { cases, .. } => cases.as_slice(),
            _ => &[],
        };
        first
            .iter()
            .chain(second)
            .chain(cases.iter().flat_map(|(_, tasks)| tasks))
            .chain(&self.errors)
    }
}

impl Flowable {
    /// Every child task, as [`Flowable::children`], to change (the engine gives the children
    /// of a flowable with a `retry` that retry).
    pub fn children_mut(&mut self) -> impl Iterator<Item = &mut Task> {
        let lists: Vec<&mut Vec<Task>> = match &mut self.kind {
            FlowableKind::Sequential { tasks }
            | FlowableKind::Parallel { tasks, .. }
            | FlowableKind::AllowFailure { tasks }
            | FlowableKind::ForEach { tasks, .. }
            | FlowableKind::Pause { tasks, .. }
            | FlowableKind::WaitFor { tasks, .. }
            | FlowableKind::Dag { tasks, .. } => vec![tasks],
            FlowableKind::WorkingDirectory(dir) => vec![&mut dir.tasks],
            FlowableKind::If {
                then, otherwise, ..
            } => vec![then, otherwise],
            FlowableKind::Switch {
                cases, defaults, ..
            } => cases
                .iter_mut()
                .map(|(_, tasks)| tasks)
                .chain([defaults])
                .collect(),
        };
        lists
            .into_iter()
            .chain([&mut self.errors])
            .flat_map(|tasks| tasks.iter_mut())
    }
}

pub(crate) const SEQUENTIAL: TaskType = TaskType {
    class: "io.kestra.plugin.core.flow.Sequential",
    aliases: &["io.kestra.core.tasks.flows.Sequential"],
    properties: &["tasks", "errors"],
    build: build_sequential,
};

pub(crate) const PARALLEL: TaskType = TaskType {
    class: "io.kestra.plugin.core.flow.Parallel",
    aliases: &["io.kestra.core.tasks.flows.Parallel"],
    properties: &["tasks", "concurrent", "errors"],
    build: build_parallel,
};

pub(crate) const IF: TaskType = TaskType {
    class: "io.kestra.plugin.core.flow.If",
    aliases: &["io.kestra.core.tasks.flows.If"],
    properties: &["condition", "then", "else", "errors"],
    build: build_if,
};

pub(crate) const SWITCH: TaskType = TaskType {
    class: "io.kestra.plugin.core.flow.Switch",
    aliases: &["io.kestra.core.tasks.flows.Switch"],
    properties: &["value", "cases", "defaults", "errors"],
    build: build_switch,
};

pub(crate) const ALLOW_FAILURE: TaskType = TaskType {
    class: "io.kestra.plugin.core.flow.AllowFailure",
    aliases: &["io.kestra.core.tasks.flows.AllowFailure"],
    properties: &["tasks", "errors"],
    build: build_allow_failure,
};

pub(crate) const FOR_EACH: TaskType = TaskType {
    class: "io.kestra.plugin.core.flow.ForEach",
    aliases: &["io.kestra.core.tasks.flows.ForEach"],
    properties: &["values", "concurrencyLimit", "tasks", "errors"],
    build: build_for_each,
};

pub(crate) const EACH_SEQUENTIAL: TaskType = TaskType {
    class: "io.kestra.plugin.core.flow.EachSequential",
    aliases: &["io.kestra.core.tasks.flows.EachSequential"],
    properties: &["value", "tasks", "errors"],
    build: build_each_sequential,
};

pub(crate) const EACH_PARALLEL: TaskType = TaskType {
    class: "io.kestra.plugin.core.flow.EachParallel",
    aliases: &["io.kestra.core.tasks.flows.EachParallel"],
    properties: &["value", "concurrent", "tasks", "errors"],
    build: build_each_parallel,
};

pub(crate) const WAIT_FOR: TaskType = TaskType {
    class: "io.kestra.plugin.core.flow.WaitFor",
    aliases: &[],
    properties: &[
        "condition",
        "tasks",
        "checkFrequency",
        "failOnMaxReached",
        "errors",
    ],
    build: build_wait_for,
};

pub(crate) const PAUSE: TaskType = TaskType {
    class: "io.kestra.plugin.core.flow.Pause",
    aliases: &["io.kestra.core.tasks.flows.Pause"],
    properties: &["delay", "onResume", "tasks", "errors"],
    build: build_pause,
};

/// A flowable of `kind` with the task's `errors`, once every part read well.
pub(crate) fn flowable(
    ctx: &mut Ctx<'_>,
    props: &Props<'_>,
    kind: Option<FlowableKind>,
) -> Option<TaskKind> {
    let errors = task_list(ctx, props, "errors");
    Some(TaskKind::Flowable(Flowable {
        kind: kind?,
        errors,
    }))
}

fn build_sequential(ctx: &mut Ctx<'_>, props: &Props<'_>) -> Option<TaskKind> {
    let tasks = children(ctx, props, "tasks");
    flowable(
        ctx,
        props,
        tasks.map(|tasks| FlowableKind::Sequential { tasks }),
    )
}

fn build_parallel(ctx: &mut Ctx<'_>, props: &Props<'_>) -> Option<TaskKind> {
    let tasks = children(ctx, props, "tasks");
    let concurrent = count(ctx, props, "concurrent", 0);
    let kind = tasks
        .zip(concurrent)
        .map(|(tasks, concurrent)| FlowableKind::Parallel { tasks, concurrent });
    flowable(ctx, props, kind)
}

fn build_if(ctx: &mut Ctx<'_>, props: &Props<'_>) -> Option<TaskKind> {
    let condition = props.required_text(ctx, "condition");
    let then = children(ctx, props, "then");
    let otherwise = task_list(ctx, props, "else");
    let kind = condition
        .zip(then)
        .map(|(condition, then)| FlowableKind::If {
            condition,
            then,
            otherwise,
        });
    flowable(ctx, props, kind)
}

fn build_switch(ctx: &mut Ctx<'_>, props: &Props<'_>) -> Option<TaskKind> {
    let value = crate::tasks::read::non_blank(ctx, props, "value");
    let cases = switch_cases(ctx, props);
    let defaults = task_list(ctx, props, "defaults");
    // Judged on the tasks as written, so that a case whose task has a violation of its own
    // is not also called empty.
    let written = |node: &Node| matches!(&node.value, Yaml::Seq(items) if !items.is_empty());
    let case_tasks = match props.get("cases").map(|node| &node.value) {
        Some(Yaml::Map(entries)) => entries.iter().any(|(_, tasks)| written(tasks)),
        // Not a map: reported as such.
        Some(_) => true,
        None => false,
    };
    if !case_tasks && !props.get("defaults").is_some_and(written) {
        // Kestra's words, after the task's id as its message names it.
        let id = props
            .get("id")
            .and_then(Node::scalar_text)
            .unwrap_or_default();
        ctx.report(
            props.node,
            format!(
                "{}: No task defined, neither cases or default have any tasks",
                printable(&id)
            ),
        );
    }
    let kind = value.zip(cases).map(|(value, cases)| FlowableKind::Switch {
        value,
        cases,
        defaults,
    });
    flowable(ctx, props, kind)
}

/// A Switch's `cases`: a map from each key to its tasks; absent is none.
fn switch_cases(ctx: &mut Ctx<'_>, props: &Props<'_>) -> Option<Vec<(String, Vec<Task>)>> {
    if props.get("cases").is_none() {
        return Some(Vec::new());
    }
    let entries = props.map(ctx, "cases")?;
    let cases = crate::tasks::read::nested(ctx, props, "cases")?;
    let read = entries
        .iter()
        .map(|(key, _)| {
            let key = key.key_text();
            let tasks = task_list(ctx, &cases, &key);
            (key, tasks)
        })
        .collect();
    Some(read)
}

fn build_wait_for(ctx: &mut Ctx<'_>, props: &Props<'_>) -> Option<TaskKind> {
    let condition = props.required_text(ctx, "condition");
    let tasks = children(ctx, props, "tasks");
    let check = check_frequency(ctx, props);
    let fail_on_max_reached = props.flag(ctx, "failOnMaxReached").unwrap_or(false);
    let kind = match (condition, tasks, check) {
        (Some(condition), Some(tasks), Some(check)) => Some(FlowableKind::WaitFor {
            condition,
            tasks,
            check,
            fail_on_max_reached,
        }),
        _ => None,
    };
    flowable(ctx, props, kind)
}

/// `checkFrequency`: `maxIterations`, `maxDuration`, `interval`, each with Kestra's default.
fn check_frequency(ctx: &mut Ctx<'_>, props: &Props<'_>) -> Option<CheckFrequency> {
    let mut check = CheckFrequency {
        max_iterations: 100,
        max_duration: std::time::Duration::from_secs(3600),
        interval: std::time::Duration::from_secs(1),
    };
    if props.get("checkFrequency").is_none() {
        return Some(check);
    }
    props.map(ctx, "checkFrequency")?;
    let nested = crate::tasks::read::nested(ctx, props, "checkFrequency")?;
    nested.reject_unknown(
        ctx,
        "io.kestra.plugin.core.flow.WaitFor$CheckFrequency",
        &[&["maxIterations", "maxDuration", "interval"]],
    );
    let mut clean = true;
    if nested.get("maxIterations").is_some() {
        match count(ctx, &nested, "maxIterations", 0) {
            Some(max) => check.max_iterations = u64::try_from(max).unwrap_or(u64::MAX),
            None => clean = false,
        }
    }
    for (key, slot) in [
        ("maxDuration", &mut check.max_duration),
        ("interval", &mut check.interval),
    ] {
        if nested.get(key).is_some() {
            match crate::tasks::read::duration(ctx, &nested, key) {
                Some(duration) => *slot = duration,
                None => clean = false,
            }
        }
    }
    clean.then_some(check)
}

fn build_pause(ctx: &mut Ctx<'_>, props: &Props<'_>) -> Option<TaskKind> {
    let delay = props.text(ctx, "delay");
    let unreadable = delay
        .as_deref()
        .is_some_and(|text| !text.contains("{{") && crate::duration::parse_iso8601(text).is_none());
    if unreadable {
        let field = props.field("delay");
        ctx.report(
            props.locate("delay"),
            format!("{field}: must be an ISO-8601 duration such as PT30S"),
        );
    }
    let on_resume = crate::inputs::read_inputs_at(ctx, props, "onResume");
    let tasks = task_list(ctx, props, "tasks");
    let kind = (!unreadable).then_some(FlowableKind::Pause {
        delay,
        on_resume,
        tasks,
    });
    flowable(ctx, props, kind)
}

fn build_allow_failure(ctx: &mut Ctx<'_>, props: &Props<'_>) -> Option<TaskKind> {
    let tasks = children(ctx, props, "tasks");
    flowable(
        ctx,
        props,
        tasks.map(|tasks| FlowableKind::AllowFailure { tasks }),
    )
}

fn build_for_each(ctx: &mut Ctx<'_>, props: &Props<'_>) -> Option<TaskKind> {
    let limit = count(ctx, props, "concurrencyLimit", 1);
    for_each(ctx, props, "values", limit)
}

fn build_each_sequential(ctx: &mut Ctx<'_>, props: &Props<'_>) -> Option<TaskKind> {
    for_each(ctx, props, "value", Some(1))
}

fn build_each_parallel(ctx: &mut Ctx<'_>, props: &Props<'_>) -> Option<TaskKind> {
    let limit = count(ctx, props, "concurrent", 0);
    for_each(ctx, props, "value", limit)
}

/// A ForEach over the values under `key`, `limit` iterations at once.
fn for_each(
    ctx: &mut Ctx<'_>,
    props: &Props<'_>,
    key: &str,
    limit: Option<usize>,
) -> Option<TaskKind> {
    let values = values(ctx, props, key);
    let tasks = children(ctx, props, "tasks");
    let kind = match (values, limit, tasks) {
        (Some(values), Some(concurrency_limit), Some(tasks)) => Some(FlowableKind::ForEach {
            values,
            concurrency_limit,
            tasks,
        }),
        _ => None,
    };
    flowable(ctx, props, kind)
}

/// A list of children that must not be empty: `<field>: must not be empty` otherwise.
fn children(ctx: &mut Ctx<'_>, props: &Props<'_>, key: &str) -> Option<Vec<Task>> {
    let empty = props
        .get(key)
        .is_none_or(|node| matches!(&node.value, Yaml::Seq(items) if items.is_empty()));
    let tasks = task_list(ctx, props, key);
    if empty {
        let field = props.field(key);
        ctx.report(props.locate(key), format!("{field}: must not be empty"));
        return None;
    }
    Some(tasks)
}

/// ForEach values: a list, or a text (a template rendering to a JSON list).
fn values(ctx: &mut Ctx<'_>, props: &Props<'_>, key: &str) -> Option<Value> {
    let Some(node) = props.get(key) else {
        props.missing(ctx, key);
        return None;
    };
    match &node.value {
        Yaml::Seq(_) | Yaml::String(_) => Some(node.to_json()),
        _ => {
            let field = props.field(key);
            ctx.report(
                node,
                format!("{field}: must be a list or a JSON string of a list"),
            );
            None
        }
    }
}

/// A count (a limit of concurrent runs): a whole number, 0 or more; `default` when absent.
pub(crate) fn count(
    ctx: &mut Ctx<'_>,
    props: &Props<'_>,
    key: &str,
    default: usize,
) -> Option<usize> {
    let Some(node) = props.get(key) else {
        return Some(default);
    };
    let number = match &node.value {
        Yaml::Number(number, _) => number.as_u64().and_then(|n| usize::try_from(n).ok()),
        Yaml::String(text) => text.parse().ok(),
        _ => None,
    };
    if number.is_none() {
        let field = props.field(key);
        ctx.report(node, format!("{field}: must be a whole number, 0 or more"));
    }
    number
}

#[cfg(test)]
mod tests {
    use crate::{Flowable, FlowableKind, TaskKind, parse_flow};

    const LOG: &str = "io.kestra.plugin.core.log.Log";

    fn flowable(task: &str) -> Flowable {
        let source = format!("id: f\nnamespace: dev\ntasks:\n  - id: t\n{task}");
        let mut flow = parse_flow(&source).unwrap_or_else(|v| panic!("{v:?}"));
        match flow.tasks.remove(0).kind {
            TaskKind::Flowable(flowable) => flowable,
            other => panic!("not a flowable: {other:?}"),
        }
    }

    #[test]
    fn a_flow_runs_processes_when_a_commands_task_sits_at_any_depth() {
        let nested = "id: f\nnamespace: dev\ntasks:\n  - id: if\n    type: io.kestra.plugin.core.flow.If\n    condition: x\n    then:\n      - id: log\n        type: io.kestra.plugin.core.log.Log\n        message: m\n    else:\n      - id: sh\n        type: io.kestra.plugin.scripts.shell.Commands\n        commands: [\"true\"]\n";
        assert!(parse_flow(nested).unwrap().runs_processes());
        let plain = format!(
            "id: f\nnamespace: dev\ntasks:\n  - id: log\n    type: {LOG}\n    message: m\n"
        );
        assert!(!parse_flow(&plain).unwrap().runs_processes());
    }

    fn violations(task: &str) -> Vec<String> {
        let source = format!("id: f\nnamespace: dev\ntasks:\n  - id: t\n{task}");
        let found = parse_flow(&source).unwrap_err();
        found.iter().map(ToString::to_string).collect()
    }

    fn child(id: &str, indent: &str) -> String {
        format!("{indent}- id: {id}\n{indent}  type: {LOG}\n{indent}  message: hi\n")
    }

    #[test]
    fn sequential_and_parallel_under_old_and_new_names() {
        for name in [
            "io.kestra.plugin.core.flow.Sequential",
            "io.kestra.core.tasks.flows.Sequential",
        ] {
            let found = flowable(&format!(
                "    type: {name}\n    tasks:\n{}{}",
                child("a", "      "),
                child("b", "      ")
            ));
            assert!(matches!(&found.kind, FlowableKind::Sequential { tasks } if tasks.len() == 2));
        }
        for name in [
            "io.kestra.plugin.core.flow.Parallel",
            "io.kestra.core.tasks.flows.Parallel",
        ] {
            let found = flowable(&format!(
                "    type: {name}\n    concurrent: 2\n    tasks:\n{}",
                child("a", "      ")
            ));
            assert!(matches!(
                found.kind,
                FlowableKind::Parallel { concurrent: 2, .. }
            ));
        }
    }

    #[test]
    fn parallel_concurrency_defaults_to_unlimited() {
        let found = flowable(&format!(
            "    type: io.kestra.plugin.core.flow.Parallel\n    tasks:\n{}",
            child("a", "      ")
        ));
        assert!(matches!(
            found.kind,
            FlowableKind::Parallel { concurrent: 0, .. }
        ));
    }

    #[test]
    fn if_has_a_condition_then_and_an_optional_else() {
        let found = flowable(&format!(
            "    type: io.kestra.plugin.core.flow.If\n    condition: \"{{{{ inputs.go }}}}\"\n    then:\n{}    else:\n{}    errors:\n{}",
            child("yes", "      "),
            child("no", "      "),
            child("oops", "      "),
        ));
        assert!(
            matches!(&found.kind, FlowableKind::If { condition, .. } if condition == "{{ inputs.go }}")
        );
        let FlowableKind::If {
            then, otherwise, ..
        } = &found.kind
        else {
            panic!("not an If: {found:?}");
        };
        let ids: Vec<&str> = then
            .iter()
            .chain(otherwise)
            .chain(&found.errors)
            .map(|task| task.id.as_str())
            .collect();
        assert_eq!(ids, ["yes", "no", "oops"]);
        let without_else = flowable(&format!(
            "    type: io.kestra.core.tasks.flows.If\n    condition: x\n    then:\n{}",
            child("yes", "      ")
        ));
        assert!(
            matches!(&without_else.kind, FlowableKind::If { otherwise, .. } if otherwise.is_empty())
        );
    }

    #[test]
    fn for_each_values_are_a_list_or_a_text() {
        let listed = flowable(&format!(
            "    type: io.kestra.plugin.core.flow.ForEach\n    values: [a, b]\n    concurrencyLimit: 0\n    tasks:\n{}",
            child("c", "      ")
        ));
        assert!(matches!(
            &listed.kind,
            FlowableKind::ForEach { values, concurrency_limit: 0, .. } if values == &serde_json::json!(["a", "b"])
        ));
        let text = flowable(&format!(
            "    type: io.kestra.plugin.core.flow.ForEach\n    values: \"{{{{ inputs.list }}}}\"\n    tasks:\n{}",
            child("c", "      ")
        ));
        assert!(matches!(
            &text.kind,
            FlowableKind::ForEach { values, concurrency_limit: 1, .. } if values == "{{ inputs.list }}"
        ));
    }

    #[test]
    fn each_sequential_and_each_parallel_are_for_each() {
        let sequential = flowable(&format!(
            "    type: io.kestra.core.tasks.flows.EachSequential\n    value: [1, 2]\n    tasks:\n{}",
            child("c", "      ")
        ));
        assert!(matches!(
            sequential.kind,
            FlowableKind::ForEach {
                concurrency_limit: 1,
                ..
            }
        ));
        let parallel = flowable(&format!(
            "    type: io.kestra.core.tasks.flows.EachParallel\n    value: '[\"x\"]'\n    tasks:\n{}",
            child("c", "      ")
        ));
        assert!(matches!(
            parallel.kind,
            FlowableKind::ForEach {
                concurrency_limit: 0,
                ..
            }
        ));
    }

    #[test]
    fn children_are_required_and_checked_like_tasks() {
        assert_eq!(
            violations("    type: io.kestra.plugin.core.flow.Sequential\n"),
            ["4:5: tasks[0].tasks: must not be empty"]
        );
        assert_eq!(
            violations("    type: io.kestra.plugin.core.flow.Parallel\n    tasks: []\n"),
            ["6:12: tasks[0].tasks: must not be empty"]
        );
        assert_eq!(
            violations(
                "    type: io.kestra.plugin.core.flow.Sequential\n    tasks:\n      - id: c\n        type: nope\n"
            ),
            ["8:15: Invalid type: nope"]
        );
        assert_eq!(
            violations("    type: io.kestra.plugin.core.flow.If\n    then: []\n"),
            [
                "4:5: tasks[0].condition: must not be null",
                "6:11: tasks[0].then: must not be empty",
            ]
        );
    }

    #[test]
    fn bad_flowable_properties_are_reported() {
        let tasks = format!("    tasks:\n{}", child("c", "      "));
        assert_eq!(
            violations(&format!(
                "    type: io.kestra.plugin.core.flow.Parallel\n    concurrent: -1\n{tasks}"
            )),
            ["6:17: tasks[0].concurrent: must be a whole number, 0 or more"]
        );
        assert_eq!(
            violations(&format!(
                "    type: io.kestra.plugin.core.flow.ForEach\n    values: {{a: 1}}\n{tasks}"
            )),
            ["6:13: tasks[0].values: must be a list or a JSON string of a list"]
        );
        assert_eq!(
            violations(&format!(
                "    type: io.kestra.plugin.core.flow.ForEach\n{tasks}"
            )),
            ["4:5: tasks[0].values: must not be null"]
        );
        assert_eq!(
            violations(&format!(
                "    type: io.kestra.plugin.core.flow.Sequential\n    value: [1]\n{tasks}"
            )),
            [
                "6:5: Unrecognized field \"value\" (class io.kestra.plugin.core.flow.Sequential), not marked as ignorable"
            ]
        );
    }

    #[test]
    fn switch_reads_its_cases_in_order_and_its_defaults() {
        for name in [
            "io.kestra.plugin.core.flow.Switch",
            "io.kestra.core.tasks.flows.Switch",
        ] {
            let found = flowable(&format!(
                "    type: {name}
    value: \"{{{{ inputs.x }}}}\"
    cases:
      B:
{}      A:
{}    defaults:
{}",
                child("b", "        "),
                child("a", "        "),
                child("d", "      ")
            ));
            let FlowableKind::Switch {
                value,
                cases,
                defaults,
            } = &found.kind
            else {
                panic!("not a switch: {found:?}");
            };
            assert_eq!(value, "{{ inputs.x }}");
            let keys: Vec<&str> = cases.iter().map(|(key, _)| key.as_str()).collect();
            assert_eq!(keys, ["B", "A"]);
            assert_eq!(defaults[0].id, "d");
            let ids: Vec<&str> = found.children().map(|t| t.id.as_str()).collect();
            assert_eq!(ids, ["d", "b", "a"]);
        }
    }

    #[test]
    fn a_switch_case_written_as_a_number_or_boolean_keeps_its_tasks() {
        let found = flowable(&format!(
            "    type: io.kestra.plugin.core.flow.Switch
    value: x
    cases:
      1:
{}      true:
{}",
            child("one", "        "),
            child("yes", "        ")
        ));
        let FlowableKind::Switch { cases, .. } = &found.kind else {
            panic!("not a switch: {found:?}");
        };
        let read: Vec<(&str, &str)> = cases
            .iter()
            .map(|(key, tasks)| (key.as_str(), tasks[0].id.as_str()))
            .collect();
        assert_eq!(read, [("1", "one"), ("true", "yes")]);
    }

    #[test]
    fn bad_switches_are_reported() {
        let switch = "    type: io.kestra.plugin.core.flow.Switch\n";
        assert_eq!(
            violations(&format!("{switch}    value: \" \"\n")),
            [
                "4:5: t: No task defined, neither cases or default have any tasks",
                "6:12: tasks[0].value: must not be blank",
            ]
        );
        assert_eq!(
            violations(&format!(
                "{switch}    value: x\n    cases: {{}}\n    defaults:\n"
            )),
            ["4:5: t: No task defined, neither cases or default have any tasks"]
        );
        assert_eq!(
            violations(&format!("{switch}    value: x\n    cases: [a]\n")),
            ["7:12: tasks[0].cases: must be a map"]
        );
        assert_eq!(
            violations(&format!(
                "{switch}    value: x\n    cases:\n      A:\n        - id: a\n"
            )),
            ["9:11: tasks[0].cases.A[0].type: must not be null"]
        );
    }

    #[test]
    fn allow_failure_under_both_names_needs_tasks() {
        for name in [
            "io.kestra.plugin.core.flow.AllowFailure",
            "io.kestra.core.tasks.flows.AllowFailure",
        ] {
            let found = flowable(&format!(
                "    type: {name}\n    tasks:\n{}",
                child("c", "      ")
            ));
            assert!(
                matches!(&found.kind, FlowableKind::AllowFailure { tasks } if tasks[0].id == "c")
            );
            assert_eq!(
                violations(&format!("    type: {name}\n")),
                ["4:5: tasks[0].tasks: must not be empty"]
            );
        }
    }

    #[test]
    fn pause_reads_its_delay_on_resume_inputs_and_tasks() {
        for name in [
            "io.kestra.plugin.core.flow.Pause",
            "io.kestra.core.tasks.flows.Pause",
        ] {
            let found = flowable(&format!(
                "    type: {name}\n    delay: PT1S\n    onResume:\n      - id: asked\n        type: STRING\n    tasks:\n{}",
                child("c", "      ")
            ));
            let FlowableKind::Pause {
                delay,
                on_resume,
                tasks,
            } = &found.kind
            else {
                panic!("not a pause: {found:?}");
            };
            assert_eq!(delay.as_deref(), Some("PT1S"));
            assert_eq!(on_resume[0].id, "asked");
            assert_eq!(tasks[0].id, "c");
        }
        let bare = flowable("    type: io.kestra.plugin.core.flow.Pause\n");
        assert!(
            matches!(&bare.kind, FlowableKind::Pause { delay: None, tasks, .. } if tasks.is_empty())
        );
        let templated =
            flowable("    type: io.kestra.plugin.core.flow.Pause\n    delay: \"{{ inputs.d }}\"\n");
        assert!(
            matches!(&templated.kind, FlowableKind::Pause { delay: Some(d), .. } if d == "{{ inputs.d }}")
        );
        assert_eq!(
            violations(
                "    type: io.kestra.plugin.core.flow.Pause\n    delay: 1s\n    onResume:\n      - id: x\n"
            ),
            [
                "6:12: tasks[0].delay: must be an ISO-8601 duration such as PT30S",
                "8:9: tasks[0].onResume[0].type: must not be null",
            ]
        );
    }

    #[test]
    fn wait_for_reads_its_check_frequency_with_kestras_defaults() {
        use crate::CheckFrequency;
        use std::time::Duration;
        let wait = "    type: io.kestra.plugin.core.flow.WaitFor\n    condition: \"{{ true }}\"\n";
        let found = flowable(&format!("{wait}    tasks:\n{}", child("c", "      ")));
        let defaults = CheckFrequency {
            max_iterations: 100,
            max_duration: Duration::from_secs(3600),
            interval: Duration::from_secs(1),
        };
        assert!(matches!(
            found.kind,
            FlowableKind::WaitFor { check, fail_on_max_reached: false, .. } if check == defaults
        ));
        let found = flowable(&format!(
            "{wait}    failOnMaxReached: true\n    checkFrequency:\n      maxIterations: 3\n      interval: PT0.2S\n    tasks:\n{}",
            child("c", "      ")
        ));
        let FlowableKind::WaitFor {
            check,
            fail_on_max_reached,
            ..
        } = found.kind
        else {
            panic!("not a WaitFor");
        };
        assert!(fail_on_max_reached);
        assert_eq!(
            (check.max_iterations, check.interval),
            (3, Duration::from_millis(200))
        );
        assert_eq!(
            violations(&format!(
                "{wait}    checkFrequency:\n      every: PT1S\n      interval: 1s\n"
            )),
            [
                "4:5: tasks[0].tasks: must not be empty",
                "8:7: Unrecognized field \"every\" (class io.kestra.plugin.core.flow.WaitFor$CheckFrequency), not marked as ignorable",
                "9:17: tasks[0].checkFrequency.interval: must be an ISO-8601 duration such as PT30S",
            ]
        );
    }

    #[test]
    fn nested_ids_count_in_the_duplicate_check() {
        let found = violations(&format!(
            "    type: io.kestra.plugin.core.flow.Sequential\n    tasks:\n{}{}",
            child("t", "      "),
            child("c", "      ")
        ));
        assert_eq!(found, ["7:13: Duplicate task id with name [t]"]);
    }
}
