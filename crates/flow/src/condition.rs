//! Trigger conditions: a trigger's `conditions` (`ExecutionStatus`, `ExecutionFlow`,
//! `ExecutionNamespace`, `Expression`, `MultipleCondition`, under Kestra's new and old class
//! names) and a Flow trigger's `preconditions`, typed, with the test each applies to an
//! execution. A condition type kestrel cannot evaluate is refused when the flow is read: a
//! trigger that silently ignored one would fire when its author said it must not.

use crate::context::{Ctx, Props};
use crate::tasks::read;
use crate::yaml::{Node, printable};
use chrono::NaiveTime;
use std::time::Duration;

/// One condition on the execution a trigger reacts to (or, for `Expression`, on the context
/// the trigger renders it in).
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// `ExecutionStatus`: the state is in `in` (when given) and not in `notIn`.
    ExecutionStatus {
        /// `in`.
        within: Option<Vec<String>>,
        /// `notIn`.
        not_in: Option<Vec<String>>,
    },
    /// `ExecutionFlow`: the execution is one of the flow `namespace`.`flow_id`.
    ExecutionFlow {
        /// `namespace`.
        namespace: String,
        /// `flowId`.
        flow_id: String,
    },
    /// `ExecutionNamespace`: the execution's namespace compared with `namespace`.
    ExecutionNamespace {
        /// `namespace`.
        namespace: String,
        /// `comparison`, or `PREFIX` for `prefix: true`, else `EQUALS`.
        comparison: Comparison,
    },
    /// `Expression`: `expression` renders to a truthy text.
    Expression {
        /// `expression`, as written.
        expression: String,
    },
    /// An entry of `preconditions.flows`.
    Upstream {
        /// `namespace`.
        namespace: String,
        /// `flowId`, any when absent.
        flow_id: Option<String>,
        /// `states`, any when absent.
        states: Option<Vec<String>>,
        /// `labels`: each must be one of the execution's.
        labels: Vec<(String, String)>,
    },
    /// An entry of `preconditions.where`.
    Filters {
        /// `operand`: `OR` when true, else `AND`.
        any: bool,
        /// `filters`.
        filters: Vec<Filter>,
    },
}

/// How `ExecutionNamespace` compares namespaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    /// The same namespace.
    Equals,
    /// The execution's namespace starts with the condition's.
    Prefix,
    /// The execution's namespace ends with the condition's.
    Suffix,
}

/// One filter of a `preconditions.where` entry: `field` tested with `kind` against `value`
/// or `values`.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    /// `field`: `FLOW_ID`, `NAMESPACE`, `STATE` or `EXPRESSION`.
    pub field: String,
    /// `type`: `EQUAL_TO`, `STARTS_WITH`, `IS_TRUE`...
    pub kind: String,
    /// `value`.
    pub value: Option<String>,
    /// `values`.
    pub values: Vec<String>,
}

/// Conditions that must all hold within a time window, each on some execution of it:
/// a `MultipleCondition` or a Flow trigger's `preconditions`.
#[derive(Debug, Clone, PartialEq)]
pub struct Multiple {
    /// `id`: names the window kept between executions.
    pub id: String,
    /// The window.
    pub window: TimeWindow,
    /// `resetOnSuccess`: once all held, they must all hold again to fire again.
    pub reset_on_success: bool,
    /// The conditions, by name.
    pub conditions: Vec<(String, Condition)>,
}

/// Kestra's `timeWindow` (or a `MultipleCondition`'s `window` and `windowAdvance`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimeWindow {
    /// `DURATION_WINDOW`: consecutive windows of `window` from midnight, shifted by `advance`.
    Duration {
        /// `window`, a day when absent.
        window: Option<Duration>,
        /// `windowAdvance`.
        advance: Option<Duration>,
    },
    /// `SLIDING_WINDOW`: `window` (a day when absent) from the first condition met.
    Sliding {
        /// `window`.
        window: Option<Duration>,
    },
    /// `DAILY_TIME_WINDOW`: each day from `start` to `end` (UTC).
    Daily {
        /// `startTime`.
        start: NaiveTime,
        /// `endTime`.
        end: NaiveTime,
    },
    /// `DAILY_TIME_DEADLINE`: each day from midnight to `deadline` (UTC).
    Deadline {
        /// `deadline`.
        deadline: NaiveTime,
    },
}

/// What a condition reads of the execution it tests.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// Its namespace.
    pub namespace: &'a str,
    /// Its flow's id.
    pub flow_id: &'a str,
    /// Its state (`SUCCESS`...).
    pub state: &'a str,
    /// Its labels.
    pub labels: &'a [(String, String)],
}

/// Renders an expression in the context of the execution tested; `None` when it cannot.
pub type Render<'r> = dyn Fn(&str) -> Option<String> + 'r;

impl Condition {
    /// Whether the condition holds for the execution of `facts`.
    pub fn holds(&self, facts: &Facts<'_>, render: &Render<'_>) -> bool {
        match self {
            Condition::ExecutionStatus { within, not_in } => {
                let listed = |states: &Option<Vec<String>>| {
                    states
                        .as_ref()
                        .map(|states| states.iter().any(|s| s == facts.state))
                };
                listed(within) != Some(false) && listed(not_in) != Some(true)
            }
            Condition::ExecutionFlow { namespace, flow_id } => {
                facts.namespace == namespace && facts.flow_id == flow_id
            }
            Condition::ExecutionNamespace {
                namespace,
                comparison,
            } => match comparison {
                Comparison::Equals => facts.namespace == namespace,
                Comparison::Prefix => facts.namespace.starts_with(namespace.as_str()),
                Comparison::Suffix => facts.namespace.ends_with(namespace.as_str()),
            },
            Condition::Expression { expression } => {
                render(expression).is_some_and(|text| !matches!(text.trim(), "" | "false"))
            }
            Condition::Upstream { .. } => upstream_holds(self, facts),
            Condition::Filters { any, filters } => {
                let mut results = filters.iter().map(|f| f.holds(facts, render));
                if *any {
                    results.any(|held| held)
                } else {
                    results.all(|held| held)
                }
            }
        }
    }
}

fn upstream_holds(upstream: &Condition, facts: &Facts<'_>) -> bool {
    let Condition::Upstream {
        namespace,
        flow_id,
        states,
        labels,
    } = upstream
    else {
        return false;
    };
    facts.namespace == namespace
        && flow_id.as_ref().is_none_or(|id| id == facts.flow_id)
        && states
            .as_ref()
            .is_none_or(|states| states.iter().any(|s| s == facts.state))
        && labels.iter().all(|label| facts.labels.contains(label))
}

impl Filter {
    /// Whether the filter holds for the execution of `facts`, as Kestra's `FilterCondition`.
    fn holds(&self, facts: &Facts<'_>, render: &Render<'_>) -> bool {
        let actual = match self.field.as_str() {
            "FLOW_ID" => Some(facts.flow_id.to_owned()),
            "NAMESPACE" => Some(facts.namespace.to_owned()),
            "STATE" => Some(facts.state.to_owned()),
            _ => self.value.as_deref().and_then(render),
        };
        let expected = self.value.as_deref().unwrap_or_default();
        let Some(actual) = actual else {
            return self.kind == "IS_NULL";
        };
        match self.kind.as_str() {
            "EQUAL_TO" => actual == expected,
            "NOT_EQUAL_TO" => actual != expected,
            "IN" => self.values.contains(&actual),
            "NOT_IN" => !self.values.contains(&actual),
            "IS_TRUE" => truthy(&actual),
            "IS_FALSE" => !truthy(&actual),
            "IS_NOT_NULL" => true,
            "STARTS_WITH" => actual.starts_with(expected),
            "ENDS_WITH" => actual.ends_with(expected),
            "CONTAINS" => actual.contains(expected),
            "REGEX" => crate::typed::whole_match(expected).is_ok_and(|re| re.is_match(&actual)),
            _ => false,
        }
    }
}

/// Kestra's `TruthUtils.isTruthy`.
fn truthy(text: &str) -> bool {
    !matches!(text, "false" | "0" | "-0" | "")
}

/// Kestra's execution states, as `states`, `in` and `notIn` name them.
pub(crate) const STATES: &[&str] = &[
    "CREATED",
    "RUNNING",
    "PAUSED",
    "RESTARTED",
    "KILLING",
    "SUCCESS",
    "WARNING",
    "FAILED",
    "KILLED",
    "CANCELLED",
    "QUEUED",
    "RETRYING",
    "RETRIED",
    "SKIPPED",
];

/// The states an execution ends in: a Flow trigger's `states` when absent.
pub const FINAL_STATES: &[&str] = &[
    "SUCCESS",
    "WARNING",
    "FAILED",
    "KILLED",
    "CANCELLED",
    "SKIPPED",
    "RETRIED",
];

/// The condition types, by the names they are written with.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    ExecutionStatus,
    ExecutionFlow,
    ExecutionNamespace,
    Expression,
    Multiple,
}

impl Kind {
    const ALL: [Kind; 5] = [
        Kind::ExecutionStatus,
        Kind::ExecutionFlow,
        Kind::ExecutionNamespace,
        Kind::Expression,
        Kind::Multiple,
    ];

    /// The new class name, then the aliases Kestra still reads.
    fn names(self) -> &'static [&'static str] {
        match self {
            Kind::ExecutionStatus => &[
                "io.kestra.plugin.core.condition.ExecutionStatus",
                "io.kestra.plugin.core.condition.ExecutionStatusCondition",
                "io.kestra.core.models.conditions.types.ExecutionStatusCondition",
            ],
            Kind::ExecutionFlow => &[
                "io.kestra.plugin.core.condition.ExecutionFlow",
                "io.kestra.plugin.core.condition.ExecutionFlowCondition",
                "io.kestra.core.models.conditions.types.ExecutionFlowCondition",
            ],
            Kind::ExecutionNamespace => &[
                "io.kestra.plugin.core.condition.ExecutionNamespace",
                "io.kestra.plugin.core.condition.ExecutionNamespaceCondition",
                "io.kestra.core.models.conditions.types.ExecutionNamespaceCondition",
            ],
            Kind::Expression => &[
                "io.kestra.plugin.core.condition.Expression",
                "io.kestra.plugin.core.condition.ExpressionCondition",
                "io.kestra.core.models.conditions.types.VariableCondition",
            ],
            Kind::Multiple => &[
                "io.kestra.plugin.core.condition.MultipleCondition",
                "io.kestra.core.models.conditions.types.MultipleCondition",
            ],
        }
    }

    fn properties(self) -> &'static [&'static str] {
        match self {
            Kind::ExecutionStatus => &["in", "notIn"],
            Kind::ExecutionFlow => &["namespace", "flowId"],
            Kind::ExecutionNamespace => &["namespace", "comparison", "prefix"],
            Kind::Expression => &["expression"],
            Kind::Multiple => &[
                "id",
                "timeWindow",
                "window",
                "windowAdvance",
                "resetOnSuccess",
                "conditions",
            ],
        }
    }

    fn named(name: &str) -> Option<Kind> {
        Kind::ALL
            .into_iter()
            .find(|kind| kind.names().contains(&name))
    }
}

/// A trigger's `conditions`, read: the plain ones, and the `MultipleCondition`s apart (they
/// keep a window between executions). `allowed` are the kinds the trigger can evaluate; any
/// other known condition is refused, naming `trigger`.
pub(crate) fn read_conditions(
    ctx: &mut Ctx<'_>,
    props: &Props<'_>,
    allowed: &[Kind],
    trigger: &str,
) -> Option<(Vec<Condition>, Vec<Multiple>)> {
    let mut plain = Vec::new();
    let mut multiples = Vec::new();
    let Some(items) = props.list(ctx, "conditions") else {
        return Some((plain, multiples));
    };
    let mut complete = true;
    for (index, node) in items.iter().enumerate() {
        let path = format!("{}[{index}]", props.field("conditions"));
        let read = read_one(ctx, node, path, allowed, trigger);
        match read {
            Some(Read::Plain(condition)) => plain.push(condition),
            Some(Read::Multiple(multiple)) => multiples.push(multiple),
            None => complete = false,
        }
    }
    complete.then_some((plain, multiples))
}

/// A condition as read: plain, or with a window.
enum Read {
    Plain(Condition),
    Multiple(Multiple),
}

fn read_one(
    ctx: &mut Ctx<'_>,
    node: &Node,
    path: String,
    allowed: &[Kind],
    trigger: &str,
) -> Option<Read> {
    let props = Props::open(ctx, node, path)?;
    let type_name = props.required_text(ctx, "type")?;
    let Some(kind) = Kind::named(&type_name) else {
        if let Some(at) = props.get("type") {
            ctx.report(at, format!("Invalid type: {}", printable(&type_name)));
        }
        return None;
    };
    if !allowed.contains(&kind) {
        let at = props.locate("type");
        ctx.report(
            at,
            format!(
                "{}: kestrel does not evaluate a {} condition on a {trigger} trigger",
                props.field("type"),
                printable(&type_name)
            ),
        );
        return None;
    }
    props.reject_unknown(ctx, kind.names()[0], &[&["type"], kind.properties()]);
    match kind {
        Kind::Multiple => read_multiple(ctx, &props).map(Read::Multiple),
        _ => read_plain(ctx, &props, kind).map(Read::Plain),
    }
}

fn read_plain(ctx: &mut Ctx<'_>, props: &Props<'_>, kind: Kind) -> Option<Condition> {
    match kind {
        Kind::ExecutionStatus => Some(Condition::ExecutionStatus {
            within: read_states(ctx, props, "in")?,
            not_in: read_states(ctx, props, "notIn")?,
        }),
        Kind::ExecutionFlow => {
            let namespace = props.required_text(ctx, "namespace");
            let flow_id = props.required_text(ctx, "flowId");
            Some(Condition::ExecutionFlow {
                namespace: namespace?,
                flow_id: flow_id?,
            })
        }
        Kind::ExecutionNamespace => read_namespace(ctx, props),
        Kind::Expression => Some(Condition::Expression {
            expression: props.required_text(ctx, "expression")?,
        }),
        Kind::Multiple => None,
    }
}

fn read_namespace(ctx: &mut Ctx<'_>, props: &Props<'_>) -> Option<Condition> {
    let namespace = props.required_text(ctx, "namespace");
    let prefix = props.flag(ctx, "prefix").unwrap_or(false);
    let all = [Comparison::Equals, Comparison::Prefix, Comparison::Suffix];
    let named = |comparison| match comparison {
        Comparison::Equals => "EQUALS",
        Comparison::Prefix => "PREFIX",
        Comparison::Suffix => "SUFFIX",
    };
    let comparison = match props.get("comparison") {
        Some(_) => props.choice(ctx, "comparison", &all, named)?,
        None if prefix => Comparison::Prefix,
        None => Comparison::Equals,
    };
    Some(Condition::ExecutionNamespace {
        namespace: namespace?,
        comparison,
    })
}

/// A list of state names (`Some(None)` when absent; `None` when invalid).
pub(crate) fn read_states(
    ctx: &mut Ctx<'_>,
    props: &Props<'_>,
    key: &str,
) -> Option<Option<Vec<String>>> {
    if props.get(key).is_none() {
        return Some(None);
    }
    let names = read::texts_only(ctx, props, key)?;
    let unknown: Vec<&String> = names
        .iter()
        .filter(|name| !STATES.contains(&name.as_str()))
        .collect();
    if let Some(first) = unknown.first() {
        ctx.report(
            props.locate(key),
            format!(
                "{}: unknown state '{}', expected one of [{}]",
                props.field(key),
                printable(first),
                STATES.join(", ")
            ),
        );
        return None;
    }
    Some(Some(names))
}

/// A `MultipleCondition`: its id, window and named conditions (plain ones only).
fn read_multiple(ctx: &mut Ctx<'_>, props: &Props<'_>) -> Option<Multiple> {
    let id = props.required_text(ctx, "id");
    let window = read_window(ctx, props);
    let reset = props.flag(ctx, "resetOnSuccess").unwrap_or(true);
    let entries = props.map(ctx, "conditions");
    if entries.is_none() && props.get("conditions").is_none() {
        props.missing(ctx, "conditions");
    }
    let plain = &Kind::ALL[..4];
    let mut conditions = Vec::new();
    for (name, node) in entries.unwrap_or_default() {
        let name = name.key_text();
        let path = format!("{}.{name}", props.field("conditions"));
        if let Some(Read::Plain(condition)) = read_one(ctx, node, path, plain, "MultipleCondition")
        {
            conditions.push((name, condition));
        }
    }
    let complete = conditions.len() == entries.map_or(0, <[_]>::len);
    Some(Multiple {
        id: id?,
        window: window?,
        reset_on_success: reset,
        conditions: complete.then_some(conditions)?,
    })
}

/// `timeWindow`, or the older `window` and `windowAdvance` beside it.
fn read_window(ctx: &mut Ctx<'_>, props: &Props<'_>) -> Option<TimeWindow> {
    let window = read::duration(ctx, props, "window");
    let advance = read::duration(ctx, props, "windowAdvance");
    let Some(nested) = read::nested(ctx, props, "timeWindow") else {
        return Some(TimeWindow::Duration { window, advance });
    };
    nested.reject_unknown(
        ctx,
        "io.kestra.core.models.triggers.TimeWindow",
        &[&[
            "type",
            "window",
            "windowAdvance",
            "deadline",
            "startTime",
            "endTime",
        ]],
    );
    let window = read::duration(ctx, &nested, "window").or(window);
    let advance = read::duration(ctx, &nested, "windowAdvance").or(advance);
    let kind = nested.text(ctx, "type");
    match kind.as_deref().unwrap_or("DURATION_WINDOW") {
        "DURATION_WINDOW" => Some(TimeWindow::Duration { window, advance }),
        "SLIDING_WINDOW" => Some(TimeWindow::Sliding { window }),
        "DAILY_TIME_WINDOW" => Some(TimeWindow::Daily {
            start: time(ctx, &nested, "startTime")?,
            end: time(ctx, &nested, "endTime")?,
        }),
        "DAILY_TIME_DEADLINE" => Some(TimeWindow::Deadline {
            deadline: time(ctx, &nested, "deadline")?,
        }),
        other => {
            ctx.report(
                nested.locate("type"),
                format!(
                    "{}: unknown window type '{}', expected one of [DAILY_TIME_DEADLINE, \
                     DAILY_TIME_WINDOW, DURATION_WINDOW, SLIDING_WINDOW]",
                    nested.field("type"),
                    printable(other)
                ),
            );
            None
        }
    }
}

/// A required time of day (`09:00:00`).
fn time(ctx: &mut Ctx<'_>, props: &Props<'_>, key: &str) -> Option<NaiveTime> {
    let text = props.required_text(ctx, key)?;
    let time = NaiveTime::parse_from_str(&text, "%H:%M:%S")
        .or_else(|_| NaiveTime::parse_from_str(&text, "%H:%M"))
        .ok();
    if time.is_none() {
        ctx.report(
            props.locate(key),
            format!(
                "{}: must be a time of day such as 09:00:00",
                props.field(key)
            ),
        );
    }
    time
}

/// A Flow trigger's `preconditions`: a [`Multiple`] over its `flows` and `where` entries.
pub(crate) fn read_preconditions(ctx: &mut Ctx<'_>, props: &Props<'_>) -> Option<Multiple> {
    let nested = read::nested(ctx, props, "preconditions")?;
    nested.reject_unknown(
        ctx,
        "io.kestra.plugin.core.trigger.Flow$Preconditions",
        &[&["id", "timeWindow", "resetOnSuccess", "flows", "where"]],
    );
    let id = nested.required_text(ctx, "id");
    let window = read_window(ctx, &nested);
    let reset = nested.flag(ctx, "resetOnSuccess").unwrap_or(true);
    let flows = read_entries(ctx, &nested, "flows", read_upstream);
    let filters = read_entries(ctx, &nested, "where", read_where);
    let mut conditions = Vec::new();
    for (index, upstream) in flows?.into_iter().enumerate() {
        conditions.push((format!("condition_{}", index + 1), upstream));
    }
    let offset = conditions.len();
    for (index, (id, filters)) in filters?.into_iter().enumerate() {
        conditions.push((format!("condition_{}_{id}", offset + index + 1), filters));
    }
    Some(Multiple {
        id: id?,
        window: window?,
        reset_on_success: reset,
        conditions,
    })
}

/// Each entry of the list `key`, read by `one`; `None` when one is invalid.
fn read_entries<T>(
    ctx: &mut Ctx<'_>,
    props: &Props<'_>,
    key: &str,
    one: fn(&mut Ctx<'_>, &Props<'_>) -> Option<T>,
) -> Option<Vec<T>> {
    let Some(items) = props.list(ctx, key) else {
        return props.get(key).is_none().then(Vec::new);
    };
    let mut read = Vec::with_capacity(items.len());
    for (index, node) in items.iter().enumerate() {
        let entry = Props::open(ctx, node, format!("{}[{index}]", props.field(key)));
        if let Some(value) = entry.and_then(|entry| one(ctx, &entry)) {
            read.push(value);
        }
    }
    (read.len() == items.len()).then_some(read)
}

fn read_upstream(ctx: &mut Ctx<'_>, props: &Props<'_>) -> Option<Condition> {
    props.reject_unknown(
        ctx,
        "io.kestra.plugin.core.trigger.Flow$UpstreamFlow",
        &[&["namespace", "flowId", "states", "labels"]],
    );
    let namespace = props.required_text(ctx, "namespace");
    let flow_id = props.text(ctx, "flowId");
    let states = read_states(ctx, props, "states");
    let labels = match props.get("labels") {
        Some(_) => Some(read::text_map(ctx, props, "labels")?),
        None => None,
    };
    Some(Condition::Upstream {
        namespace: namespace?,
        flow_id,
        states: states?,
        labels: labels.unwrap_or_default(),
    })
}

/// The filter fields and types Kestra has.
const FIELDS: &[&str] = &["FLOW_ID", "NAMESPACE", "STATE", "EXPRESSION"];
const FILTER_TYPES: &[&str] = &[
    "EQUAL_TO",
    "NOT_EQUAL_TO",
    "IN",
    "NOT_IN",
    "IS_TRUE",
    "IS_FALSE",
    "IS_NULL",
    "IS_NOT_NULL",
    "STARTS_WITH",
    "ENDS_WITH",
    "REGEX",
    "CONTAINS",
];

fn read_where(ctx: &mut Ctx<'_>, props: &Props<'_>) -> Option<(String, Condition)> {
    props.reject_unknown(
        ctx,
        "io.kestra.plugin.core.trigger.Flow$ExecutionFilter",
        &[&["id", "operand", "filters"]],
    );
    let id = props.required_text(ctx, "id");
    let operand = one_of(ctx, props, "operand", &["AND", "OR"], false);
    if props.get("filters").is_none() {
        props.missing(ctx, "filters");
    }
    let filters = read_entries(ctx, props, "filters", read_filter);
    Some((
        id?,
        Condition::Filters {
            any: operand?.as_deref() == Some("OR"),
            filters: filters?,
        },
    ))
}

fn read_filter(ctx: &mut Ctx<'_>, props: &Props<'_>) -> Option<Filter> {
    props.reject_unknown(
        ctx,
        "io.kestra.plugin.core.trigger.Flow$Filter",
        &[&["field", "type", "value", "values"]],
    );
    let field = one_of(ctx, props, "field", FIELDS, true);
    let kind = one_of(ctx, props, "type", FILTER_TYPES, true);
    let value = props.text(ctx, "value");
    let values = match props.get("values") {
        Some(_) => read::texts_only(ctx, props, "values")?,
        None => Vec::new(),
    };
    Some(Filter {
        field: field??,
        kind: kind??,
        value,
        values,
    })
}

/// A text among `names` (`Some(None)` when absent and not `required`; `None` when invalid).
fn one_of(
    ctx: &mut Ctx<'_>,
    props: &Props<'_>,
    key: &str,
    names: &[&str],
    required: bool,
) -> Option<Option<String>> {
    let Some(text) = props.text(ctx, key) else {
        if required && props.get(key).is_none() {
            props.missing(ctx, key);
            return None;
        }
        return props.get(key).is_none().then_some(None);
    };
    if names.contains(&text.as_str()) {
        return Some(Some(text));
    }
    ctx.report(
        props.locate(key),
        format!(
            "{}: must be one of [{}]",
            props.field(key),
            names.join(", ")
        ),
    );
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_flow;
    use crate::trigger::tests::{flow, violations};

    fn facts<'a>(namespace: &'a str, flow_id: &'a str, state: &'a str) -> Facts<'a> {
        Facts {
            namespace,
            flow_id,
            state,
            labels: &[],
        }
    }

    fn no_render(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn execution_conditions_test_state_flow_and_namespace() {
        let status = Condition::ExecutionStatus {
            within: Some(vec!["SUCCESS".into()]),
            not_in: None,
        };
        let ended = facts("io.kestra.tests", "a", "SUCCESS");
        assert!(status.holds(&ended, &no_render));
        assert!(!status.holds(&facts("io.kestra.tests", "a", "FAILED"), &no_render));
        let not_failed = Condition::ExecutionStatus {
            within: None,
            not_in: Some(vec!["FAILED".into()]),
        };
        assert!(not_failed.holds(&ended, &no_render));
        let flow = Condition::ExecutionFlow {
            namespace: "io.kestra.tests".into(),
            flow_id: "b".into(),
        };
        assert!(!flow.holds(&ended, &no_render));
        let prefix = Condition::ExecutionNamespace {
            namespace: "io.kestra".into(),
            comparison: Comparison::Prefix,
        };
        assert!(prefix.holds(&ended, &no_render));
        let equals = Condition::ExecutionNamespace {
            namespace: "io.kestra".into(),
            comparison: Comparison::Equals,
        };
        assert!(!equals.holds(&ended, &no_render));
    }

    #[test]
    fn filters_follow_kestras_types_and_expressions_render() {
        let filter = |field: &str, kind: &str, value: &str| Filter {
            field: field.into(),
            kind: kind.into(),
            value: Some(value.into()),
            values: Vec::new(),
        };
        let ended = facts("io.kestra.tests.trigger", "a", "SUCCESS");
        let all = Condition::Filters {
            any: false,
            filters: vec![
                filter("NAMESPACE", "STARTS_WITH", "io.kestra"),
                filter("EXPRESSION", "IS_TRUE", "{{ yes }}"),
            ],
        };
        let render = |template: &str| Some((template == "{{ yes }}").to_string());
        assert!(all.holds(&ended, &render));
        assert!(
            !all.holds(&ended, &no_render),
            "an expression that fails does not hold"
        );
        let any = Condition::Filters {
            any: true,
            filters: vec![
                filter("FLOW_ID", "EQUAL_TO", "b"),
                filter("STATE", "REGEX", "SUCC.*"),
            ],
        };
        assert!(any.holds(&ended, &no_render));
    }

    #[test]
    fn a_flow_trigger_reads_conditions_and_multiple_conditions() {
        let parsed = parse_flow(&flow(concat!(
            "  - id: listen\n    type: io.kestra.plugin.core.trigger.Flow\n",
            "    inputs:\n      from: '{{ outputs.only.value }}'\n",
            "    conditions:\n",
            "      - type: io.kestra.core.models.conditions.types.ExecutionStatusCondition\n",
            "        in: [SUCCESS]\n",
            "      - type: io.kestra.plugin.core.condition.ExecutionNamespace\n",
            "        namespace: io.kestra\n        prefix: true\n",
            "      - id: both\n        type: io.kestra.plugin.core.condition.MultipleCondition\n",
            "        window: P1D\n        windowAdvance: P0D\n        conditions:\n",
            "          a:\n            type: io.kestra.plugin.core.condition.ExecutionFlow\n",
            "            namespace: dev\n            flowId: a\n",
        )))
        .unwrap();
        let [listen] = &parsed.flow_triggers[..] else {
            panic!("one flow trigger: {:?}", parsed.flow_triggers);
        };
        assert_eq!(listen.states, FINAL_STATES);
        assert_eq!(listen.inputs["from"], "{{ outputs.only.value }}");
        assert_eq!(listen.conditions.len(), 2);
        assert_eq!(
            listen.conditions[1],
            Condition::ExecutionNamespace {
                namespace: "io.kestra".into(),
                comparison: Comparison::Prefix,
            }
        );
        let [both] = &listen.multiples[..] else {
            panic!("one multiple condition");
        };
        assert_eq!(both.id, "both");
        assert_eq!(
            both.window,
            TimeWindow::Duration {
                window: Some(Duration::from_secs(86_400)),
                advance: Some(Duration::ZERO),
            }
        );
        assert_eq!(both.conditions[0].0, "a");
    }

    #[test]
    fn preconditions_become_a_multiple_condition_named_as_kestra_names_them() {
        let parsed = parse_flow(&flow(concat!(
            "  - id: listen\n    type: io.kestra.plugin.core.trigger.Flow\n",
            "    states: [FAILED]\n    preconditions:\n      id: pre\n",
            "      timeWindow:\n        type: DAILY_TIME_DEADLINE\n        deadline: '09:00:00'\n",
            "      flows:\n        - namespace: dev\n          flowId: a\n          states: [SUCCESS]\n",
            "      where:\n        - id: w\n          operand: OR\n          filters:\n",
            "            - field: NAMESPACE\n              type: ENDS_WITH\n              value: ev\n",
        )))
        .unwrap();
        let listen = &parsed.flow_triggers[0];
        assert_eq!(listen.states, ["FAILED"]);
        let pre = &listen.multiples[0];
        let names: Vec<&str> = pre.conditions.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["condition_1", "condition_2_w"]);
        assert!(matches!(pre.window, TimeWindow::Deadline { .. }));
        assert!(matches!(
            pre.conditions[1].1,
            Condition::Filters { any: true, .. }
        ));
    }

    #[test]
    fn conditions_a_trigger_cannot_evaluate_are_refused() {
        assert_eq!(
            violations(concat!(
                "  - id: s\n    type: io.kestra.plugin.core.trigger.Schedule\n    cron: '@daily'\n",
                "    conditions:\n      - type: io.kestra.plugin.core.condition.Expression\n",
                "        expression: 'true'\n",
                "  - id: w\n    type: io.kestra.plugin.core.trigger.Webhook\n    key: k\n",
                "    conditions:\n      - type: io.kestra.plugin.core.condition.ExecutionStatus\n",
                "        in: [SUCCESS]\n",
                "  - id: f\n    type: io.kestra.plugin.core.trigger.Flow\n",
                "    conditions:\n      - type: io.kestra.plugin.core.condition.DayWeek\n",
                "        dayOfWeek: MONDAY\n",
                "      - type: io.kestra.plugin.core.condition.ExecutionStatus\n",
                "        in: [DONE]\n",
            )),
            [
                "12:15: triggers[0].conditions[0].type: kestrel does not evaluate a io.kestra.plugin.core.condition.Expression condition on a Schedule trigger",
                "18:15: triggers[1].conditions[0].type: kestrel does not evaluate a io.kestra.plugin.core.condition.ExecutionStatus condition on a Webhook trigger",
                "23:15: Invalid type: io.kestra.plugin.core.condition.DayWeek",
                "26:13: triggers[2].conditions[1].in: unknown state 'DONE', expected one of [CREATED, RUNNING, PAUSED, RESTARTED, KILLING, SUCCESS, WARNING, FAILED, KILLED, CANCELLED, QUEUED, RETRYING, RETRIED, SKIPPED]",
            ]
        );
    }
}
