//! `io.kestra.plugin.core.flow.Subflow`: starts an execution of another flow, found by its
//! namespace and id, and (by default) waits for its end.

use super::TaskType;
use crate::TaskKind;
use crate::context::{Ctx, Props};
use crate::yaml::Yaml;
use serde_json::Value;

pub(crate) const SUBFLOW: TaskType = TaskType {
    class: "io.kestra.plugin.core.flow.Subflow",
    aliases: &[
        "io.kestra.core.tasks.flows.Subflow",
        "io.kestra.core.tasks.flows.Flow",
    ],
    properties: &[
        "namespace",
        "flowId",
        "revision",
        "inputs",
        "labels",
        "wait",
        "transmitFailed",
        "inheritLabels",
        "outputs",
        "scheduleDate",
    ],
    build,
};

/// A Subflow task's properties; texts are templates, rendered when the task runs.
#[derive(Debug, Clone, PartialEq)]
pub struct SubflowCall {
    /// `namespace` of the flow to start.
    pub namespace: String,
    /// `flowId` of the flow to start.
    pub flow_id: String,
    /// `revision`: the flow's revision to start (1 or more); the latest when absent.
    pub revision: Option<u64>,
    /// `inputs`, as written: every text in them is rendered.
    pub inputs: serde_json::Map<String, Value>,
    /// `labels` given to the child execution, in order.
    pub labels: Vec<(String, String)>,
    /// `wait` (default true): wait for the child's end, and take its state and outputs.
    pub wait: bool,
    /// `transmitFailed` (default true): a child that fails, is killed or warns ends the task
    /// run the same way (with `wait` only).
    pub transmit_failed: bool,
    /// `inheritLabels` (default false): the child gets every label of this execution too.
    pub inherit_labels: bool,
    /// `outputs` (deprecated in Kestra): templates rendered against the child's task outputs
    /// when the child's flow declares no `outputs` of its own.
    pub outputs: serde_json::Map<String, Value>,
    /// For the `<id>_items` task of a ForEachItem: a template rendering to the JSON list of
    /// its batches' URIs; one child per batch, which sees its batch as `taskrun.items`.
    pub batches: Option<String>,
}

fn build(ctx: &mut Ctx<'_>, props: &Props<'_>) -> Option<TaskKind> {
    read_call(ctx, props).map(|call| TaskKind::Subflow(Box::new(call)))
}

/// The properties of a Subflow (or of a ForEachItem's subflows).
pub(crate) fn read_call(ctx: &mut Ctx<'_>, props: &Props<'_>) -> Option<SubflowCall> {
    if let Some(at) = props.get("scheduleDate") {
        // A delayed start needs a scheduler holding the child: kestrel starts children at once.
        let field = props.field("scheduleDate");
        ctx.report(
            at,
            format!("{field}: is not supported by kestrel: a subflow starts when its task runs"),
        );
    }
    let namespace = super::read::non_blank(ctx, props, "namespace");
    let flow_id = props.required_text(ctx, "flowId");
    let revision = revision(ctx, props);
    let inputs = map_as_written(ctx, props, "inputs");
    let outputs = map_as_written(ctx, props, "outputs");
    let labels = crate::parse::read_labels(ctx, props);
    let wait = props.flag(ctx, "wait").unwrap_or(true);
    let transmit_failed = props.flag(ctx, "transmitFailed").unwrap_or(true);
    let inherit_labels = props.flag(ctx, "inheritLabels").unwrap_or(false);
    if props.get("scheduleDate").is_some() {
        return None;
    }
    Some(SubflowCall {
        namespace: namespace?,
        flow_id: flow_id?,
        revision: revision?,
        inputs: inputs?,
        labels,
        wait,
        transmit_failed,
        inherit_labels,
        outputs: outputs?,
        batches: None,
    })
}

/// `revision`: a whole number, 1 or more; `Some(None)` when absent.
fn revision(ctx: &mut Ctx<'_>, props: &Props<'_>) -> Option<Option<u64>> {
    let Some(node) = props.get("revision") else {
        return Some(None);
    };
    let number = match &node.value {
        Yaml::Number(number, _) => number.as_u64(),
        Yaml::String(text) => text.parse().ok(),
        _ => None,
    };
    match number {
        Some(revision) if revision >= 1 => Some(Some(revision)),
        _ => {
            let field = props.field("revision");
            ctx.report(node, format!("{field}: must be greater than or equal to 1"));
            None
        }
    }
}

/// A map kept as written (its texts are templates); empty when absent.
fn map_as_written(
    ctx: &mut Ctx<'_>,
    props: &Props<'_>,
    key: &str,
) -> Option<serde_json::Map<String, Value>> {
    if props.get(key).is_none() {
        return Some(serde_json::Map::new());
    }
    props.map(ctx, key)?;
    match props.json(key) {
        Some(Value::Object(map)) => Some(map),
        _ => Some(serde_json::Map::new()),
    }
}

impl crate::Flow {
    /// Whether any task of the flow, at any depth, is a Subflow: what makes `kestrel run`
    /// look for flows.
    pub fn calls_subflows(&self) -> bool {
        self.any_task(|task| matches!(task.kind, TaskKind::Subflow(_)))
    }
}

#[cfg(test)]
mod tests {
    use crate::{SubflowCall, TaskKind, parse_flow};
    use serde_json::json;

    fn call(task: &str) -> SubflowCall {
        let source = format!("id: f\nnamespace: dev\ntasks:\n  - id: t\n{task}");
        let mut flow = parse_flow(&source).unwrap_or_else(|v| panic!("{v:?}"));
        match flow.tasks.remove(0).kind {
            TaskKind::Subflow(call) => *call,
            other => panic!("not a subflow: {other:?}"),
        }
    }

    fn violations(task: &str) -> Vec<String> {
        let source = format!("id: f\nnamespace: dev\ntasks:\n  - id: t\n{task}");
        let found = parse_flow(&source).unwrap_err();
        found.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn subflow_under_every_name_with_kestras_defaults() {
        for name in [
            "io.kestra.plugin.core.flow.Subflow",
            "io.kestra.core.tasks.flows.Subflow",
            "io.kestra.core.tasks.flows.Flow",
        ] {
            let found = call(&format!(
                "    type: {name}\n    namespace: dev\n    flowId: child\n"
            ));
            assert_eq!(
                found,
                SubflowCall {
                    namespace: "dev".into(),
                    flow_id: "child".into(),
                    revision: None,
                    inputs: serde_json::Map::new(),
                    labels: Vec::new(),
                    wait: true,
                    transmit_failed: true,
                    inherit_labels: false,
                    outputs: serde_json::Map::new(),
                    batches: None,
                }
            );
        }
    }

    #[test]
    fn subflow_reads_every_property() {
        let found = call(concat!(
            "    type: io.kestra.plugin.core.flow.Subflow\n",
            "    namespace: \"{{ inputs.ns }}\"\n    flowId: child\n    revision: 2\n",
            "    inputs:\n      a: \"{{ 1 }}\"\n      n: 3\n",
            "    labels:\n      - key: k\n        value: v\n",
            "    wait: false\n    transmitFailed: false\n    inheritLabels: true\n",
            "    outputs:\n      x: \"{{ outputs.t.value }}\"\n",
        ));
        assert_eq!(found.namespace, "{{ inputs.ns }}");
        assert_eq!(found.revision, Some(2));
        assert_eq!(json!(found.inputs), json!({"a": "{{ 1 }}", "n": 3}));
        assert_eq!(found.labels, [("k".to_owned(), "v".to_owned())]);
        assert!(!found.wait && !found.transmit_failed && found.inherit_labels);
        assert_eq!(json!(found.outputs), json!({"x": "{{ outputs.t.value }}"}));
    }

    #[test]
    fn bad_subflows_are_reported() {
        let subflow = "    type: io.kestra.plugin.core.flow.Subflow\n";
        assert_eq!(
            violations(subflow),
            [
                "4:5: tasks[0].namespace: must not be null",
                "4:5: tasks[0].flowId: must not be null",
            ]
        );
        assert_eq!(
            violations(&format!(
                "{subflow}    namespace: dev\n    flowId: c\n    revision: 0\n    inputs: [a]\n"
            )),
            [
                "8:15: tasks[0].revision: must be greater than or equal to 1",
                "9:13: tasks[0].inputs: must be a map",
            ]
        );
        assert_eq!(
            violations(&format!(
                "{subflow}    namespace: dev\n    flowId: c\n    labels:\n      system.correlationId: x\n"
            )),
            [
                "9:7: tasks[0].labels: System labels can only be set by Kestra itself, offending label: system.correlationId=x"
            ]
        );
        assert_eq!(
            violations(&format!(
                "{subflow}    namespace: dev\n    flowId: c\n    scheduleDate: \"{{{{ now() }}}}\"\n"
            )),
            [
                "8:19: tasks[0].scheduleDate: is not supported by kestrel: a subflow starts when its task runs"
            ]
        );
    }
}
