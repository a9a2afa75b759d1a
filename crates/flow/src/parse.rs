//! YAML to [`Flow`], with validation.
//!
//! The steps: [`yaml::load`] builds a tree of positioned nodes (a syntax error stops there,
//! as nothing else can be read); the flow's properties are then read one by one, each reader
//! recording its violations and going on, so one pass reports everything; last, task ids are
//! checked for duplicates across the whole flow.

use crate::context::{Ctx, FLOW_ID, NAMESPACE, Props};
use crate::inputs::{read_inputs, read_outputs};
use crate::tasks::{TASK_TYPES, TaskType, task_list};
use crate::yaml::{self, Node, Yaml};
use crate::{Flow, Violation};

const FLOW_CLASS: &str = "io.kestra.core.models.flows.Flow";
const LABEL_CLASS: &str = "io.kestra.core.models.Label";

/// What a flow may hold: Kestra's properties that kestrel implements.
pub const FLOW_PROPERTIES: &[&str] = &[
    "id",
    "namespace",
    "revision",
    "description",
    "labels",
    "variables",
    "inputs",
    "outputs",
    "tasks",
    "errors",
    "triggers",
    "disabled",
    "pluginDefaults",
    "taskDefaults",
    "finally",
    "afterExecution",
    "retry",
    "concurrency",
    "sla",
    "listeners",
];

/// The prefix of the labels Kestra alone sets, and the one of them a flow may set.
const SYSTEM_PREFIX: &str = "system.";
const READ_ONLY_LABEL: &str = "system.readOnly";

/// A check of one text a flow renders (its template syntax): what is wrong with it, if anything.
pub type TemplateCheck<'a> = &'a dyn Fn(&str) -> Result<(), String>;

/// Parses and validates a flow's YAML source; on failure, every violation found.
pub fn parse_flow(source: &str) -> Result<Flow, Vec<Violation>> {
    parse_with(source, TASK_TYPES, None)
}

/// [`parse_flow`], and every text the flow renders (see `templates.rs`, plugin defaults
/// merged in) passed to `check`, whose refusals are violations at the text's position.
pub fn parse_flow_checking(source: &str, check: TemplateCheck<'_>) -> Result<Flow, Vec<Violation>> {
    parse_with(source, TASK_TYPES, Some(check))
}

/// [`parse_flow`] with the task types of `registry`, and `check` for templates when given.
pub(crate) fn parse_with(
    source: &str,
    registry: &[TaskType],
    check: Option<TemplateCheck<'_>>,
) -> Result<Flow, Vec<Violation>> {
    let root = yaml::load(source).map_err(|violation| vec![violation])?;
    let mut ctx = Ctx::new(source, registry);
    let root = crate::defaults::apply(&mut ctx, root);
    if let Some(check) = check {
        crate::templates::check(&mut ctx, &root, check);
    }
    let flow =
        Props::open(&mut ctx, &root, String::new()).and_then(|props| read_flow(&mut ctx, &props));
    ctx.finish(flow)
}

fn read_flow(ctx: &mut Ctx<'_>, props: &Props<'_>) -> Option<Flow> {
    props.reject_unknown(ctx, FLOW_CLASS, &[FLOW_PROPERTIES]);
    // Everything is read before any `?`, so that a missing id does not hide other violations.
    let id = props.id(ctx, "id", &FLOW_ID);
    let namespace = props.id(ctx, "namespace", &NAMESPACE);
    let description = props.text(ctx, "description");
    let labels = read_labels(ctx, props);
    let variables = props.map(ctx, "variables").map(yaml::object);
    let inputs = read_inputs(ctx, props);
    let outputs = read_outputs(ctx, props);
    let tasks = task_list(ctx, props, "tasks");
    let no_tasks = props
        .get("tasks")
        .is_none_or(|node| matches!(&node.value, Yaml::Seq(items) if items.is_empty()));
    if no_tasks {
        ctx.report(props.locate("tasks"), "tasks: must not be empty");
    }
    let errors = task_list(ctx, props, "errors");
    let finally = task_list(ctx, props, "finally");
    let after_execution = task_list(ctx, props, "afterExecution");
    crate::flowprops::refuse_listeners(ctx, props);
    if let (Some((id, _)), Some((namespace, _))) = (&id, &namespace) {
        crate::flowprops::refuse_recursion(ctx, props, namespace, id);
    }
    let retry = crate::flowprops::read_retry(ctx, props);
    let concurrency = crate::flowprops::read_concurrency(ctx, props);
    let sla = crate::flowprops::read_sla(ctx, props);
    let triggers = props
        .list(ctx, "triggers")
        .map(|items| items.iter().map(Node::to_json).collect());
    let typed = crate::trigger::read_triggers(ctx, props);
    let disabled = props.flag(ctx, "disabled").unwrap_or(false);
    let revision = read_revision(ctx, props);
    Some(Flow {
        id: id?.0,
        namespace: namespace?.0,
        description,
        labels,
        variables: variables.unwrap_or_default(),
        inputs,
        outputs,
        tasks,
        errors,
        finally,
        after_execution,
        retry,
        concurrency,
        sla,
        triggers: triggers.unwrap_or_default(),
        schedules: typed.schedules,
        webhooks: typed.webhooks,
        flow_triggers: typed.flows,
        disabled,
        revision,
        source: ctx.source.to_owned(),
    })
}

/// `labels` (of the flow, of an SLA, of a task), as a map (`env: prod`) or a list of `{key, value}`, in
/// source order; a `system.` label but `system.readOnly` is refused in Kestra's words, as
/// Kestra alone sets those.
pub(crate) fn read_labels(ctx: &mut Ctx<'_>, owner: &Props<'_>) -> Vec<(String, String)> {
    let Some(node) = owner.get("labels") else {
        return Vec::new();
    };
    let field = owner.field("labels");
    let labels: Vec<(String, String, &Node)> = match &node.value {
        Yaml::Map(entries) => entries
            .iter()
            .filter_map(|(key, value)| {
                let name = key.key_text();
                let value = label_value(ctx, key, value, &format!("{field}.{name}"))?;
                Some((name, value, key))
            })
            .collect(),
        Yaml::Seq(items) => items
            .iter()
            .enumerate()
            .filter_map(|(index, item)| {
                let label = Props::open(ctx, item, format!("{field}[{index}]"))?;
                label.reject_unknown(ctx, LABEL_CLASS, &[&["key", "value"]]);
                let key = label.required_text(ctx, "key");
                let value = label.required_text(ctx, "value");
                Some((key?, value?, item))
            })
            .collect(),
        _ => {
            ctx.report(
                node,
                format!("{field}: must be a map or a list of {{key, value}}"),
            );
            Vec::new()
        }
    };
    labels
        .into_iter()
        .filter_map(|(key, value, at)| {
            if key.starts_with(SYSTEM_PREFIX) && key != READ_ONLY_LABEL {
                ctx.report(
                    at,
                    format!(
                        "{field}: System labels can only be set by Kestra itself, offending label: {}={}",
                        yaml::printable(&key),
                        yaml::printable(&value)
                    ),
                );
                return None;
            }
            Some((key, value))
        })
        .collect()
}

/// A label's value in the map form; a missing one is reported at its key.
fn label_value(ctx: &mut Ctx<'_>, key: &Node, value: &Node, field: &str) -> Option<String> {
    let text = value.scalar_text();
    if text.is_none() {
        let (at, problem) = match value.value {
            Yaml::Null => (key, "must not be null"),
            _ => (value, "must be a string"),
        };
        ctx.report(at, format!("{}: {problem}", yaml::printable(field)));
    }
    text
}

/// `revision`, a positive integer.
fn read_revision(ctx: &mut Ctx<'_>, flow: &Props<'_>) -> Option<u64> {
    let node = flow.get("revision")?;
    let revision = match &node.value {
        Yaml::Number(number, _) => number.as_u64(),
        _ => None,
    };
    match revision {
        Some(0) => ctx.report(node, "revision: must be greater than or equal to 1"),
        None => ctx.report(node, "revision: must be an integer"),
        Some(_) => {}
    }
    revision.filter(|r| *r > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{InputType, Level, TaskKind};

    const LOG: &str = "io.kestra.plugin.core.log.Log";

    /// Each violation as `line:column: message`.
    fn violations(source: &str) -> Vec<String> {
        match parse_flow(source) {
            Ok(_) => panic!("expected violations for:\n{source}"),
            Err(found) => found.iter().map(ToString::to_string).collect(),
        }
    }

    fn flow_with_tasks(tasks: &str) -> String {
        format!("id: hello\nnamespace: dev\ntasks:\n{tasks}")
    }

    fn log_task(id: &str) -> String {
        format!("  - id: {id}\n    type: {LOG}\n    message: hi\n")
    }

    /// A flow of one Log task `a` after the flow properties `head` (whole YAML lines).
    fn headed_flow(head: &str) -> String {
        format!("{head}{}", flow_with_tasks(&log_task("a")))
    }

    #[test]
    fn a_minimal_flow_parses() {
        let flow = parse_flow(&flow_with_tasks(&log_task("log"))).unwrap();
        assert_eq!(
            (flow.id.as_str(), flow.namespace.as_str()),
            ("hello", "dev")
        );
        assert_eq!(flow.tasks.len(), 1);
        assert_eq!(flow.tasks[0].line, 4);
        assert_eq!(flow.tasks[0].type_name, LOG);
        assert!(
            matches!(&flow.tasks[0].kind, TaskKind::Log { messages, level: Level::Info } if messages == &["hi"])
        );
        assert!(!flow.disabled);
        assert!(flow.source.starts_with("id: hello"));
    }

    #[test]
    fn yaml_syntax_error_has_line_and_column() {
        let found = parse_flow("id: a\nnamespace: dev\n  tasks: x\n").unwrap_err();
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].line, found[0].column), (Some(3), Some(8)));
        assert!(
            found[0].message.starts_with("invalid YAML: "),
            "{}",
            found[0].message
        );
    }

    #[test]
    fn a_yaml_error_is_the_only_violation() {
        let found = violations("id: -bad\nnamespace: Dev\ntasks: []\nid: b\n");
        assert_eq!(found, ["4:1: invalid YAML: Duplicate field 'id'"]);
    }

    #[test]
    fn missing_flow_properties_are_all_reported() {
        assert_eq!(
            violations("description: nothing else\n"),
            [
                "1:1: id: must not be null",
                "1:1: namespace: must not be null",
                "1:1: tasks: must not be empty",
            ]
        );
        assert_eq!(violations("").len(), 3);
    }

    #[test]
    fn a_document_that_is_not_a_map_is_refused() {
        assert_eq!(violations("- a\n- b\n"), ["1:1: flow: must be a map"]);
        assert_eq!(violations("just text\n"), ["1:1: flow: must be a map"]);
    }

    #[test]
    fn flow_id_and_namespace_follow_kestras_patterns() {
        let source = format!("id: -bad\nnamespace: Dev\ntasks:\n{}", log_task("a"));
        assert_eq!(
            violations(&source),
            [
                "1:5: id: must match \"^[a-zA-Z0-9][a-zA-Z0-9._-]*\"",
                "2:12: namespace: must match \"^[a-z0-9][a-z0-9_-]*(\\.[a-z0-9][a-z0-9_-]*)*$\"",
            ]
        );
        let ok = format!(
            "id: My.flow_1-x\nnamespace: company.team-1_a\ntasks:\n{}",
            log_task("a")
        );
        assert!(parse_flow(&ok).is_ok());
    }

    #[test]
    fn issue_9_9_namespaces_with_an_empty_segment_are_refused() {
        for bad in ["a..b", "m.ns.", ".m"] {
            let source = format!("id: a\nnamespace: {bad}\ntasks:\n{}", log_task("a"));
            let found = violations(&source);
            assert!(
                found.len() == 1 && found[0].contains("namespace: must match"),
                "{bad}: {found:?}"
            );
        }
    }

    #[test]
    fn flow_id_and_namespace_have_a_maximum_length() {
        let long_id = "a".repeat(101);
        let long_ns = "b".repeat(151);
        let source = format!(
            "id: {long_id}\nnamespace: {long_ns}\ntasks:\n{}",
            log_task("a")
        );
        assert_eq!(
            violations(&source),
            [
                "1:5: id: size must be between 1 and 100",
                "2:12: namespace: size must be between 1 and 150",
            ]
        );
        let source = format!(
            "id: {}\nnamespace: {}\ntasks:\n{}",
            &long_id[1..],
            &long_ns[1..],
            log_task("a")
        );
        assert!(parse_flow(&source).is_ok());
    }

    #[test]
    fn an_empty_task_list_is_refused() {
        assert_eq!(
            violations("id: a\nnamespace: dev\ntasks: []\n"),
            ["3:8: tasks: must not be empty"]
        );
        assert_eq!(
            violations("id: a\nnamespace: dev\ntasks:\n"),
            ["3:1: tasks: must not be empty"]
        );
        assert_eq!(
            violations("id: a\nnamespace: dev\ntasks: x\n"),
            ["3:8: tasks: must be a list"]
        );
    }

    #[test]
    fn unknown_flow_property_is_named_with_the_flow_class() {
        let source = format!("{}foo: 1\n", flow_with_tasks(&log_task("a")));
        assert_eq!(
            violations(&source),
            [
                "7:1: Unrecognized field \"foo\" (class io.kestra.core.models.flows.Flow), not marked as ignorable"
            ]
        );
    }

    #[test]
    fn every_documented_flow_property_is_accepted() {
        let source = format!(
            "id: all\nnamespace: dev\nrevision: 3\ndisabled: true\ndescription: d\nlabels:\n  env: prod\n\
             variables:\n  who: world\ninputs:\n  - id: name\n    type: STRING\n\
             outputs:\n  - id: out\n    value: x\ntriggers:\n  - id: t\n    type: io.kestra.plugin.core.trigger.Schedule\n    cron: '@daily'\n\
             tasks:\n{}errors:\n{}",
            log_task("a"),
            log_task("b")
        );
        let flow = parse_flow(&source).unwrap();
        assert_eq!(flow.revision, Some(3));
        assert!(flow.disabled);
        assert_eq!(flow.description.as_deref(), Some("d"));
        assert_eq!(flow.variables["who"], "world");
        assert_eq!(flow.triggers.len(), 1);
        assert_eq!(flow.errors[0].id, "b");
    }

    #[test]
    fn revision_must_be_a_positive_integer() {
        let source = headed_flow("revision: 0\n");
        assert_eq!(
            violations(&source),
            ["1:11: revision: must be greater than or equal to 1"]
        );
        let source = headed_flow("revision: x\n");
        assert_eq!(violations(&source), ["1:11: revision: must be an integer"]);
    }

    #[test]
    fn duplicate_task_ids_are_one_message_at_the_repeat() {
        let source =
            flow_with_tasks(&[log_task("b"), log_task("a"), log_task("b"), log_task("a")].concat());
        assert_eq!(
            violations(&source),
            ["10:9: Duplicate task id with name [a, b]"]
        );
    }

    #[test]
    fn duplicate_ids_count_errors_tasks_too() {
        let source = format!(
            "{}errors:\n{}",
            flow_with_tasks(&log_task("a")),
            log_task("a")
        );
        assert_eq!(
            violations(&source),
            ["8:9: Duplicate task id with name [a]"]
        );
    }

    #[test]
    fn duplicate_ids_count_nested_tasks() {
        fn nest(ctx: &mut Ctx<'_>, props: &Props<'_>) -> Option<crate::TaskKind> {
            task_list(ctx, props, "tasks");
            Some(crate::TaskKind::Return { format: None })
        }
        let registry: Vec<TaskType> = TASK_TYPES
            .iter()
            .copied()
            .chain([TaskType {
                class: "test.Nest",
                aliases: &[],
                properties: &["tasks"],
                build: nest,
            }])
            .collect();
        let source = flow_with_tasks(concat!(
            "  - id: outer\n",
            "    type: test.Nest\n",
            "    tasks:\n",
            "      - id: x\n",
            "        type: io.kestra.plugin.core.log.Log\n",
            "        message: hi\n",
            "      - id: outer\n",
            "        type: test.Nest\n",
        ));
        let found = parse_with(&source, &registry, None).unwrap_err();
        let found: Vec<String> = found.iter().map(ToString::to_string).collect();
        assert_eq!(found, ["10:13: Duplicate task id with name [outer]"]);
        let source = source.replace("      - id: outer", "      - id: inner");
        assert!(parse_with(&source, &registry, None).is_ok(), "{source}");
    }

    #[test]
    fn labels_as_a_map_or_a_list_of_key_value() {
        let as_map = headed_flow("labels:\n  env: prod\n  tier: 1\n");
        let as_list =
            headed_flow("labels:\n  - key: env\n    value: prod\n  - key: tier\n    value: 1\n");
        for source in [as_map, as_list] {
            let flow = parse_flow(&source).unwrap();
            assert_eq!(
                flow.labels,
                [("env".into(), "prod".into()), ("tier".into(), "1".into())]
            );
        }
    }

    #[test]
    fn bad_labels_are_reported() {
        let source = headed_flow("labels:\n  - key: env\n    val: prod\n  - x\n");
        assert_eq!(
            violations(&source),
            [
                "2:5: labels[0].value: must not be null",
                "3:5: Unrecognized field \"val\" (class io.kestra.core.models.Label), not marked as ignorable",
                "4:5: labels[1]: must be a map",
            ]
        );
        let source = headed_flow("labels:\n  env:\n  a: [1]\n");
        assert_eq!(
            violations(&source),
            [
                "2:3: labels.env: must not be null",
                "3:6: labels.a: must be a string"
            ]
        );
        let source = headed_flow("labels: x\n");
        assert_eq!(
            violations(&source),
            ["1:9: labels: must be a map or a list of {key, value}"]
        );
    }

    #[test]
    fn system_labels_are_kestras_alone_but_read_only() {
        let source = headed_flow("labels:\n  system.label: system_key\n  another: label\n");
        assert_eq!(
            violations(&source),
            [
                "2:3: labels: System labels can only be set by Kestra itself, offending label: system.label=system_key"
            ]
        );
        let source = headed_flow("labels:\n  - key: system.id\n    value: id\n");
        assert_eq!(
            violations(&source),
            [
                "2:5: labels: System labels can only be set by Kestra itself, offending label: system.id=id"
            ]
        );
        let flow = parse_flow(&headed_flow("labels:\n  system.readOnly: \"true\"\n")).unwrap();
        assert_eq!(flow.labels, [("system.readOnly".into(), "true".into())]);
    }

    #[test]
    fn variables_keep_their_json_shape() {
        let source =
            headed_flow("variables:\n  n: 1\n  f: 1.5\n  list: [a, true]\n  map: {k: ~}\n");
        let flow = parse_flow(&source).unwrap();
        assert_eq!(
            serde_json::Value::Object(flow.variables),
            serde_json::json!({"n": 1, "f": 1.5, "list": ["a", true], "map": {"k": null}})
        );
        let source = headed_flow("variables: [1]\n");
        assert_eq!(violations(&source), ["1:12: variables: must be a map"]);
    }

    #[test]
    fn inputs_are_typed() {
        let source = headed_flow(
            "inputs:\n  - id: a\n    type: STRING\n  - name: b\n    type: SECRET\n    required: false\n    \
             defaults: x\n    description: d\n  - id: c\n    type: JSON\n    defaults: {k: [1]}\n",
        );
        let flow = parse_flow(&source).unwrap();
        let kinds: Vec<InputType> = flow.inputs.iter().map(|i| i.input_type).collect();
        assert_eq!(
            kinds,
            [InputType::String, InputType::Secret, InputType::Json]
        );
        assert_eq!(flow.inputs[1].id, "b");
        assert!(flow.inputs[0].required && !flow.inputs[1].required);
        assert_eq!(flow.inputs[1].description.as_deref(), Some("d"));
        assert_eq!(flow.inputs[2].defaults, Some(serde_json::json!({"k": [1]})));
    }

    #[test]
    fn bad_inputs_are_reported() {
        let source = headed_flow(
            "inputs:\n  - id: a\n    type: TEXT\n  - type: BOOLEAN\n    min: 1\n  - id: a\n    type: BOOLEAN\n  - id: .x\n",
        );
        assert_eq!(
            violations(&source),
            [
                "3:11: inputs[0].type: Invalid type: TEXT, must be one of [STRING, ENUM, SELECT, INT, FLOAT, BOOLEAN, DATETIME, DATE, TIME, DURATION, FILE, JSON, URI, SECRET, ARRAY, MULTISELECT, YAML, EMAIL]",
                "4:5: inputs[1].id: must not be null",
                "5:5: Unrecognized field \"min\" (class io.kestra.core.models.flows.input.BooleanInput), not marked as ignorable",
                "6:9: Duplicate input with name [a]",
                "8:5: inputs[3].type: must not be null",
                "8:9: inputs[3].id: must match \"^[a-zA-Z0-9][.a-zA-Z0-9_-]*\"",
            ]
        );
    }

    #[test]
    fn validation_properties_are_read_and_checked_by_type() {
        let source = headed_flow(concat!(
            "inputs:\n",
            "  - id: n\n    type: INT\n    min: 1\n    max: x\n",
            "  - id: s\n    type: STRING\n    validator: \"(\"\n",
            "  - id: e\n    type: ENUM\n",
            "  - id: d\n    type: DATE\n    after: yesterday\n",
            "  - id: a\n    type: ARRAY\n",
            "  - id: f\n    type: FILE\n    extension: .csv\n    min: 1\n",
        ));
        let found = violations(&source);
        assert_eq!(found[0], "5:10: inputs[0].max: must be a value of type INT");
        assert_eq!(
            found[1],
            "8:16: inputs[1].validator: not a regular expression kestrel reads (unclosed group)"
        );
        assert_eq!(
            found[2..],
            [
                "9:5: inputs[2].values: must not be null",
                "13:12: inputs[3].after: must be a value of type DATE",
                "14:5: inputs[4].itemType: must not be null",
                "19:5: Unrecognized field \"min\" (class io.kestra.core.models.flows.input.FileInput), not marked as ignorable",
            ]
        );
        let good = headed_flow(
            "inputs:\n  - id: pick\n    type: SELECT\n    values: [a, b]\n    allowCustomValue: true\n    displayName: Pick\n",
        );
        let flow = parse_flow(&good).unwrap_or_else(|v| panic!("{v:?}"));
        assert_eq!(flow.inputs[0].input_type, InputType::Select);
        assert_eq!(
            flow.inputs[0].rules.values,
            Some(vec!["a".into(), "b".into()])
        );
        assert!(flow.inputs[0].rules.allow_custom_value);
    }

    #[test]
    fn an_array_of_secrets_is_refused_as_it_would_not_be_masked() {
        let source = headed_flow("inputs:\n  - id: keys\n    type: ARRAY\n    itemType: SECRET\n");
        assert_eq!(
            violations(&source),
            [
                "4:15: inputs[0].itemType: SECRET items would not be masked: declare one SECRET input per value"
            ]
        );
    }

    #[test]
    fn outputs_need_an_id_and_a_value() {
        let source = headed_flow(
            "outputs:\n  - id: o\n    type: STRING\n    value: \"{{ x }}\"\n  - id: p\n  - value: 1\n    extra: 2\n",
        );
        assert_eq!(
            violations(&source),
            [
                "5:5: outputs[1].value: must not be null",
                "6:5: outputs[2].id: must not be null",
                "7:5: Unrecognized field \"extra\" (class io.kestra.core.models.flows.Output), not marked as ignorable",
            ]
        );
        let ok = source.replace("  - id: p\n  - value: 1\n    extra: 2\n", "");
        let flow = parse_flow(&ok).unwrap();
        assert_eq!(flow.outputs[0].value, "{{ x }}");
        assert_eq!(flow.outputs[0].output_type.as_deref(), Some("STRING"));
    }

    #[test]
    fn violations_come_in_source_order_from_every_part_of_the_flow() {
        let source = "id: x y\nnamespace: dev\ntasks:\n  - id: a\n    type: nope\n  - id: b\n    type: io.kestra.plugin.core.log.Log\nfoo: 1\n";
        assert_eq!(
            violations(source),
            [
                "1:5: id: must match \"^[a-zA-Z0-9][a-zA-Z0-9._-]*\"",
                "5:11: Invalid type: nope",
                "6:5: tasks[1].message: must not be null",
                "8:1: Unrecognized field \"foo\" (class io.kestra.core.models.flows.Flow), not marked as ignorable",
            ]
        );
    }
}

#[cfg(test)]
mod properties {
    use super::parse_flow;
    use proptest::prelude::*;

    /// A YAML-ish document: scalars as raw text (so some are not valid YAML), lists and maps.
    #[derive(Debug, Clone)]
    enum Doc {
        Scalar(String),
        Seq(Vec<Doc>),
        Map(Vec<(String, Doc)>),
    }

    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "id",
                "namespace",
                "tasks",
                "errors",
                "type",
                "message",
                "level",
                "format",
                "labels",
                "variables",
                "inputs",
                "outputs",
                "triggers",
                "name",
                "required",
                "defaults",
                "value",
                "key",
                "timeout",
                "retry",
                "logLevel",
                "revision",
                "<<",
            ])
            .prop_map(str::to_owned),
            "[a-zA-Z_.-]{1,8}",
        ]
    }

    fn scalar() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "io.kestra.plugin.core.log.Log",
                "io.kestra.core.tasks.log.Log",
                "io.kestra.plugin.core.debug.Return",
                "io.kestra.core.tasks.debugs.Return",
                "STRING",
                "SECRET",
                "INFO",
                "PT1S",
                "~",
                "true",
                "no",
                "1.50",
                ".inf",
                "&a x",
                "*a",
                "''",
                "\"{{ x }}\"",
                "|",
                "a",
            ])
            .prop_map(str::to_owned),
            "-?[0-9]{1,25}",
            "[ -~]{0,12}",
        ]
    }

    fn doc() -> impl Strategy<Value = Doc> {
        scalar()
            .prop_map(Doc::Scalar)
            .prop_recursive(5, 64, 6, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..5).prop_map(Doc::Seq),
                    prop::collection::vec((key(), inner), 0..6).prop_map(Doc::Map),
                ]
            })
    }

    /// Block style, the way flows are written.
    fn block(doc: &Doc, indent: usize, out: &mut String) {
        let pad = " ".repeat(indent);
        match doc {
            Doc::Scalar(text) => out.push_str(&format!("{pad}{text}\n")),
            Doc::Seq(items) if items.is_empty() => out.push_str(&format!("{pad}[]\n")),
            Doc::Map(entries) if entries.is_empty() => out.push_str(&format!("{pad}{{}}\n")),
            Doc::Seq(items) => {
                for item in items {
                    out.push_str(&format!("{pad}-\n"));
                    block(item, indent + 2, out);
                }
            }
            Doc::Map(entries) => {
                for (key, value) in entries {
                    out.push_str(&format!("{pad}{key}:\n"));
                    block(value, indent + 2, out);
                }
            }
        }
    }

    /// Flow style, `{a: [b]}`.
    fn flow_style(doc: &Doc) -> String {
        match doc {
            Doc::Scalar(text) => text.clone(),
            Doc::Seq(items) => format!(
                "[{}]",
                items.iter().map(flow_style).collect::<Vec<_>>().join(", ")
            ),
            Doc::Map(entries) => format!(
                "{{{}}}",
                entries
                    .iter()
                    .map(|(key, value)| format!("{key}: {}", flow_style(value)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    /// Mostly a valid id.
    fn id() -> impl Strategy<Value = String> {
        prop_oneof![3 => "[a-z][a-z0-9]{0,6}", 1 => scalar()]
    }

    /// A task: an id, a known or random type, then random properties.
    fn task() -> impl Strategy<Value = Doc> {
        let kind =
            prop_oneof![3 => Just("io.kestra.plugin.core.debug.Return".to_owned()), 1 => scalar()];
        (id(), kind, prop::collection::vec((key(), doc()), 0..3)).prop_map(|(id, kind, rest)| {
            let head = [
                ("id".to_owned(), Doc::Scalar(id)),
                ("type".to_owned(), Doc::Scalar(kind)),
            ];
            Doc::Map(head.into_iter().chain(rest).collect())
        })
    }

    /// Random maps, or flows with id, namespace and tasks plus random properties.
    fn flowish() -> impl Strategy<Value = Doc> {
        let flow = (
            id(),
            id(),
            prop::collection::vec(task(), 0..4),
            prop::collection::vec((key(), doc()), 0..3),
        )
            .prop_map(|(id, namespace, tasks, rest)| {
                let head = [
                    ("id".to_owned(), Doc::Scalar(id)),
                    ("namespace".to_owned(), Doc::Scalar(namespace)),
                    ("tasks".to_owned(), Doc::Seq(tasks)),
                ];
                Doc::Map(head.into_iter().chain(rest).collect())
            });
        prop_oneof![
            prop::collection::vec((key(), doc()), 0..7).prop_map(Doc::Map),
            flow
        ]
    }

    proptest! {
        #[test]
        fn any_text_gives_a_result(source in any::<String>()) {
            let _ = parse_flow(&source);
        }

        #[test]
        fn any_printable_text_gives_a_result(source in "[ -~\n\t]{0,300}") {
            let _ = parse_flow(&source);
        }

        #[test]
        fn any_yamlish_document_gives_a_result_with_positions(doc in flowish()) {
            let mut source = String::new();
            block(&doc, 0, &mut source);
            for source in [source, flow_style(&doc)] {
                if let Err(found) = parse_flow(&source) {
                    prop_assert!(!found.is_empty());
                    let lines = source.lines().count().max(1);
                    for violation in &found {
                        prop_assert!(violation.line.is_none_or(|line| line <= lines + 1), "{violation} in\n{source}");
                    }
                }
            }
        }
    }
}
