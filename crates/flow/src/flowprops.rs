//! The flow properties around its tasks: `finally` and `afterExecution` (tasks of their own),
//! `retry`, `concurrency` and `sla`, with Kestra's shapes; and Kestra's deprecated
//! `listeners`, whose tasks are checked but which are refused (see `docs/compatibility.md`).

use crate::context::{Ctx, Props};
use crate::retry::check_retry;
use crate::tasks::read;
use crate::tasks::task_list;
use crate::yaml::{Node, Yaml, printable};
use serde_json::Value;
use std::time::Duration;

const CONCURRENCY_CLASS: &str = "io.kestra.core.models.flows.Concurrency";
const LISTENER_CLASS: &str = "io.kestra.core.models.listeners.Listener";

/// A flow's `concurrency`: how many of its executions may run at once, and what happens to
/// one more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Concurrency {
    /// `limit`, at least 1.
    pub limit: u32,
    /// `behavior`, QUEUE by default.
    pub behavior: ConcurrencyBehavior,
}

/// What happens to an execution beyond a flow's concurrency limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConcurrencyBehavior {
    /// It waits for a running one to end.
    Queue,
    /// It ends CANCELLED without running.
    Cancel,
    /// It ends FAILED without running.
    Fail,
}

impl ConcurrencyBehavior {
    const ALL: [ConcurrencyBehavior; 3] = [Self::Queue, Self::Cancel, Self::Fail];

    /// The behavior's name as Kestra writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queue => "QUEUE",
            Self::Cancel => "CANCEL",
            Self::Fail => "FAIL",
        }
    }
}

/// One of a flow's `sla`: a condition on its executions, and what a violation does.
#[derive(Debug, Clone, PartialEq)]
pub struct Sla {
    /// `id`.
    pub id: String,
    /// `type` with its own property.
    pub kind: SlaKind,
    /// `behavior`.
    pub behavior: SlaBehavior,
    /// `labels` a violation adds to the execution.
    pub labels: Vec<(String, String)>,
}

/// The SLA types.
#[derive(Debug, Clone, PartialEq)]
pub enum SlaKind {
    /// `MAX_DURATION`: the execution runs no longer than `duration`.
    MaxDuration(Duration),
    /// `EXECUTION_ASSERTION`: `assert`, a template, renders truthy.
    ExecutionAssertion(String),
}

/// What a violated SLA does to the execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlaBehavior {
    /// The execution ends FAILED.
    Fail,
    /// The execution ends CANCELLED.
    Cancel,
    /// Nothing but its labels and a WARN log entry.
    None,
}

impl SlaBehavior {
    const ALL: [SlaBehavior; 3] = [Self::Fail, Self::Cancel, Self::None];

    fn as_str(self) -> &'static str {
        match self {
            Self::Fail => "FAIL",
            Self::Cancel => "CANCEL",
            Self::None => "NONE",
        }
    }
}

/// The flow's `retry`, as written: a task's `retry`, checked the same way, that every task
/// without one of its own (or of a flowable around it) takes.
pub(crate) fn read_retry(ctx: &mut Ctx<'_>, flow: &Props<'_>) -> Option<Value> {
    check_retry(ctx, flow);
    flow.map(ctx, "retry")?;
    flow.json("retry")
}

/// The flow's `concurrency`.
pub(crate) fn read_concurrency(ctx: &mut Ctx<'_>, flow: &Props<'_>) -> Option<Concurrency> {
    let node = flow.get("concurrency")?;
    let props = Props::open(ctx, node, flow.field("concurrency"))?;
    props.reject_unknown(ctx, CONCURRENCY_CLASS, &[&["limit", "behavior"]]);
    let behavior = props.choice(
        ctx,
        "behavior",
        &ConcurrencyBehavior::ALL,
        ConcurrencyBehavior::as_str,
    );
    let limit = match props.get("limit") {
        None => {
            props.missing(ctx, "limit");
            None
        }
        Some(at) => {
            let limit = at
                .scalar_text()
                .and_then(|text| text.parse::<u32>().ok())
                .filter(|limit| *limit > 0);
            if limit.is_none() {
                let field = props.field("limit");
                ctx.report(at, format!("{field}: must be greater than 0"));
            }
            limit
        }
    };
    let behavior = match props.get("behavior") {
        None => ConcurrencyBehavior::Queue,
        Some(_) => behavior?,
    };
    Some(Concurrency {
        limit: limit?,
        behavior,
    })
}

/// The flow's `sla` list; SLAs with violations are left out, their violations recorded.
pub(crate) fn read_sla(ctx: &mut Ctx<'_>, flow: &Props<'_>) -> Vec<Sla> {
    let Some(items) = flow.list(ctx, "sla") else {
        return Vec::new();
    };
    items
        .iter()
        .enumerate()
        .filter_map(|(index, node)| {
            let props = Props::open(ctx, node, format!("sla[{index}]"))?;
            read_one_sla(ctx, &props)
        })
        .collect()
}

fn read_one_sla(ctx: &mut Ctx<'_>, props: &Props<'_>) -> Option<Sla> {
    const COMMON: &[&str] = &["id", "type", "behavior", "labels"];
    let kind = props.choice(
        ctx,
        "type",
        &["MAX_DURATION", "EXECUTION_ASSERTION"],
        |name| name,
    );
    if props.get("type").is_none() {
        props.missing(ctx, "type");
    }
    let (class, own) = match kind {
        Some("MAX_DURATION") => ("MaxDurationSLA", "duration"),
        Some(_) => ("ExecutionAssertionSLA", "assert"),
        None => return None,
    };
    let class = format!("io.kestra.core.models.flows.sla.types.{class}");
    props.reject_unknown(ctx, &class, &[COMMON, &[own]]);
    let id = read::non_blank(ctx, props, "id");
    let behavior = props.choice(ctx, "behavior", &SlaBehavior::ALL, SlaBehavior::as_str);
    if props.get("behavior").is_none() {
        props.missing(ctx, "behavior");
    }
    let labels = crate::parse::read_labels(ctx, props);
    let kind = if own == "duration" {
        if props.get(own).is_none() {
            props.missing(ctx, own);
        }
        read::duration(ctx, props, own).map(SlaKind::MaxDuration)
    } else {
        read::non_blank(ctx, props, own).map(SlaKind::ExecutionAssertion)
    };
    Some(Sla {
        id: id?,
        kind: kind?,
        behavior: behavior?,
        labels,
    })
}

/// Kestra's deprecated `listeners`: each one's `tasks` are read (checked, and counted in the
/// flow-wide duplicate check, as Kestra counts them), and the property is refused: kestrel
/// does not run them (`afterExecution` does what they did).
pub(crate) fn refuse_listeners(ctx: &mut Ctx<'_>, flow: &Props<'_>) {
    let Some(items) = flow.list(ctx, "listeners") else {
        return;
    };
    ctx.report(
        flow.locate("listeners"),
        "listeners: deprecated in Kestra and not run by kestrel; use afterExecution",
    );
    for (index, node) in items.iter().enumerate() {
        let Some(props) = Props::open(ctx, node, format!("listeners[{index}]")) else {
            continue;
        };
        props.reject_unknown(
            ctx,
            LISTENER_CLASS,
            &[&["description", "conditions", "tasks"]],
        );
        let empty = props
            .get("tasks")
            .is_none_or(|node| matches!(&node.value, Yaml::Seq(items) if items.is_empty()));
        task_list(ctx, &props, "tasks");
        if empty {
            let field = props.field("tasks");
            ctx.report(props.locate("tasks"), format!("{field}: must not be empty"));
        }
    }
}

/// Kestra's task types that start an execution of the flow their `namespace` and `flowId`
/// name, under their current and old class names.
const SUBFLOW_TYPES: &[&str] = &[
    "io.kestra.plugin.core.flow.Subflow",
    "io.kestra.core.tasks.flows.Subflow",
    "io.kestra.core.tasks.flows.Flow",
    "io.kestra.plugin.core.flow.ForEachItem",
    "io.kestra.core.tasks.flows.ForEachItem",
];

/// The flow's task lists, where a task may start the flow itself.
const TASK_LISTS: [&str; 4] = ["tasks", "errors", "finally", "afterExecution"];

/// Refuses, as Kestra's flow validation does, a task at any depth that starts an execution
/// of the flow `namespace`.`id` itself.
pub(crate) fn refuse_recursion(ctx: &mut Ctx<'_>, flow: &Props<'_>, namespace: &str, id: &str) {
    for key in TASK_LISTS {
        if let Some(node) = flow.get(key) {
            find_recursion(ctx, node, namespace, id);
        }
    }
}

fn find_recursion(ctx: &mut Ctx<'_>, node: &Node, namespace: &str, id: &str) {
    match &node.value {
        Yaml::Map(entries) => {
            let text = |name: &str| {
                entries
                    .iter()
                    .find(|(key, _)| key.key_text() == name)
                    .and_then(|(_, value)| value.scalar_text())
            };
            let starts_itself = text("type")
                .is_some_and(|kind| SUBFLOW_TYPES.contains(&kind.as_str()))
                && text("namespace").as_deref() == Some(namespace)
                && text("flowId").as_deref() == Some(id);
            if starts_itself {
                ctx.report(
                    node,
                    format!(
                        "Recursive call to flow [{}.{}]",
                        printable(namespace),
                        printable(id)
                    ),
                );
            }
            for (_, value) in entries {
                find_recursion(ctx, value, namespace, id);
            }
        }
        Yaml::Seq(items) => {
            for item in items {
                find_recursion(ctx, item, namespace, id);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_flow;

    const TASKS: &str =
        "tasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n";

    fn flow(head: &str) -> String {
        format!("id: f\nnamespace: dev\n{head}{TASKS}")
    }

    fn violations(head: &str) -> Vec<String> {
        match parse_flow(&flow(head)) {
            Ok(_) => panic!("expected violations for:\n{head}"),
            Err(found) => found.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn concurrency_is_read_with_queue_by_default() {
        let parsed = parse_flow(&flow("concurrency:\n  limit: 2\n")).unwrap();
        assert_eq!(
            parsed.concurrency,
            Some(Concurrency {
                limit: 2,
                behavior: ConcurrencyBehavior::Queue
            })
        );
        let parsed = parse_flow(&flow("concurrency:\n  limit: 1\n  behavior: FAIL\n")).unwrap();
        assert_eq!(
            parsed.concurrency.map(|c| c.behavior),
            Some(ConcurrencyBehavior::Fail)
        );
        assert_eq!(
            violations("concurrency:\n  limit: 0\n  behavior: WAIT\n  x: 1\n"),
            [
                "4:10: concurrency.limit: must be greater than 0",
                "5:13: concurrency.behavior: must be one of [QUEUE, CANCEL, FAIL]",
                "6:3: Unrecognized field \"x\" (class io.kestra.core.models.flows.Concurrency), not marked as ignorable",
            ]
        );
        assert_eq!(
            violations("concurrency:\n  behavior: QUEUE\n"),
            ["4:3: concurrency.limit: must not be null"]
        );
    }

    #[test]
    fn sla_of_both_types_are_read() {
        let parsed = parse_flow(&flow(concat!(
            "sla:\n",
            "  - id: slow\n    type: MAX_DURATION\n    behavior: FAIL\n    duration: PT0.5S\n",
            "  - id: ok\n    type: EXECUTION_ASSERTION\n    behavior: NONE\n    assert: \"{{ true }}\"\n",
            "    labels:\n      sla: violated\n",
        )))
        .unwrap();
        assert_eq!(
            parsed.sla,
            [
                Sla {
                    id: "slow".into(),
                    kind: SlaKind::MaxDuration(Duration::from_millis(500)),
                    behavior: SlaBehavior::Fail,
                    labels: Vec::new(),
                },
                Sla {
                    id: "ok".into(),
                    kind: SlaKind::ExecutionAssertion("{{ true }}".into()),
                    behavior: SlaBehavior::None,
                    labels: vec![("sla".into(), "violated".into())],
                },
            ]
        );
    }

    #[test]
    fn bad_sla_are_reported() {
        assert_eq!(
            violations(concat!(
                "sla:\n",
                "  - id: a\n    type: MAX_DURATION\n    duration: soon\n    assert: x\n",
                "  - type: LATER\n",
                "  - id: c\n    type: EXECUTION_ASSERTION\n    behavior: FAIL\n",
            )),
            [
                "4:5: sla[0].behavior: must not be null",
                "6:15: sla[0].duration: must be an ISO-8601 duration such as PT30S",
                "7:5: Unrecognized field \"assert\" (class io.kestra.core.models.flows.sla.types.MaxDurationSLA), not marked as ignorable",
                "8:11: sla[1].type: must be one of [MAX_DURATION, EXECUTION_ASSERTION]",
                "9:5: sla[2].assert: must not be null",
            ]
        );
    }

    #[test]
    fn the_flow_retry_is_checked_like_a_tasks() {
        let parsed = parse_flow(&flow(
            "retry:\n  behavior: RETRY_FAILED_TASK\n  type: constant\n  maxAttempt: 4\n  interval: PT1S\n",
        ))
        .unwrap();
        let retry = parsed.retry.as_ref().and_then(crate::Retry::from_json);
        assert_eq!(retry.and_then(|retry| retry.max_attempts), Some(4));
        assert_eq!(
            violations("retry:\n  type: constant\n"),
            ["4:3: retry.interval: must not be null"]
        );
    }

    #[test]
    fn a_task_starting_its_own_flow_is_refused() {
        let source = concat!(
            "id: f\nnamespace: dev\ntasks:\n",
            "  - id: seq\n    type: io.kestra.plugin.core.flow.Sequential\n    tasks:\n",
            "      - id: again\n        type: io.kestra.plugin.core.flow.Subflow\n",
            "        namespace: dev\n        flowId: f\n",
        );
        let found: Vec<String> = parse_flow(source)
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert!(
            found.contains(&"7:9: Recursive call to flow [dev.f]".to_owned()),
            "{found:?}"
        );
        let other = source.replace("flowId: f", "flowId: g");
        assert!(parse_flow(&other).is_ok());
    }

    #[test]
    fn listeners_are_refused_and_their_tasks_checked() {
        let found = violations(concat!(
            "listeners:\n",
            "  - tasks:\n      - id: a\n        type: io.kestra.plugin.core.debug.Nope\n",
            "  - tasks: []\n",
        ));
        assert_eq!(
            found,
            [
                "4:3: listeners: deprecated in Kestra and not run by kestrel; use afterExecution",
                "5:13: Duplicate task id with name [a]",
                "6:15: Invalid type: io.kestra.plugin.core.debug.Nope",
                "7:12: listeners[1].tasks: must not be empty",
            ]
        );
    }
}
