//! `pluginDefaults` (and Kestra's older `taskDefaults`): values that every task, trigger or
//! condition of a type takes unless it sets them itself (`forced: true`: whatever it sets).
//! As in Kestra, they are merged into the YAML before anything else is read, so a default
//! is checked exactly like a value written in the task, and its violations point at the
//! default's own line.
//!
//! A default's `type` is a class name, old or new, or a prefix of class names
//! (`io.kestra.plugin.core.log`). Merging follows Kestra's: maps merge key by key, lists join
//! (the default's items first), a null never replaces a value, anything else is replaced.

use crate::context::{Ctx, Props};
use crate::tasks::TaskType;
use crate::yaml::{MAX_NODES, Node, Yaml};

/// The flow properties that hold defaults; both are read, `taskDefaults` first.
pub(crate) const KEYS: [&str; 2] = ["taskDefaults", "pluginDefaults"];
const CLASS: &str = "io.kestra.core.models.flows.PluginDefault";
const PROPERTIES: &[&str] = &["type", "forced", "values"];

/// One default: the type it applies to, whether it wins over the task's own values, and
/// the values.
struct Default {
    type_name: String,
    forced: bool,
    values: Node,
}

/// The flow `root` with its defaults merged into every map that has a `type`; `root` itself
/// when it has none. Bad defaults are reported and left out.
pub(crate) fn apply(ctx: &mut Ctx<'_>, root: Node) -> Node {
    let defaults = read(ctx, &root);
    if defaults.is_empty() {
        return root;
    }
    // Forced defaults apply last, so that they win; among them, the first written wins.
    let (forced, ordinary): (Vec<Default>, Vec<Default>) =
        defaults.into_iter().partition(|d| d.forced);
    let ordered: Vec<Default> = ordinary
        .into_iter()
        .chain(forced.into_iter().rev())
        .collect();
    let mut root = root;
    let Yaml::Map(entries) = &mut root.value else {
        return root;
    };
    for (key, value) in entries.iter_mut() {
        if !KEYS.contains(&key.key_text().as_str()) {
            apply_within(ctx.registry, value, &ordered);
        }
    }
    if root.size() > MAX_NODES {
        ctx.report(
            &root,
            format!("invalid YAML: more than {MAX_NODES} values once plugin defaults are applied"),
        );
    }
    root
}

fn read(ctx: &mut Ctx<'_>, root: &Node) -> Vec<Default> {
    // A document that is not a map is reported once, when the flow is read.
    if !matches!(root.value, Yaml::Map(_)) {
        return Vec::new();
    }
    let Some(flow) = Props::open(ctx, root, String::new()) else {
        return Vec::new();
    };
    let mut defaults = Vec::new();
    for key in KEYS {
        let Some(items) = flow.list(ctx, key) else {
            continue;
        };
        for (index, node) in items.iter().enumerate() {
            if let Some(default) = read_one(ctx, node, format!("{key}[{index}]")) {
                defaults.push(default);
            }
        }
    }
    defaults
}

fn read_one(ctx: &mut Ctx<'_>, node: &Node, path: String) -> Option<Default> {
    let props = Props::open(ctx, node, path)?;
    props.reject_unknown(ctx, CLASS, &[PROPERTIES]);
    let type_name = props.required_text(ctx, "type");
    let forced = props.flag(ctx, "forced").unwrap_or(false);
    let values = props.map(ctx, "values").and(props.get("values"));
    Some(Default {
        type_name: type_name?,
        forced,
        values: values?.clone(),
    })
}

/// Merges the defaults into `node` and every map within it that has a `type`.
fn apply_within(registry: &[TaskType], node: &mut Node, defaults: &[Default]) {
    match &mut node.value {
        Yaml::Seq(items) => items
            .iter_mut()
            .for_each(|item| apply_within(registry, item, defaults)),
        Yaml::Map(entries) => {
            entries
                .iter_mut()
                .for_each(|(_, value)| apply_within(registry, value, defaults));
            let plugin_type = entries
                .iter()
                .find(|(key, _)| key.key_text() == "type")
                .and_then(|(_, value)| value.scalar_text());
            let Some(plugin_type) = plugin_type else {
                return;
            };
            for default in defaults {
                if applies(registry, &default.type_name, &plugin_type) {
                    let (base, over) = if default.forced {
                        (node.clone(), default.values.clone())
                    } else {
                        (default.values.clone(), node.clone())
                    };
                    let position = (node.line, node.column);
                    *node = merge(base, over);
                    (node.line, node.column) = position;
                }
            }
        }
        _ => {}
    }
}

/// Whether a default for `default_type` applies to a plugin of `plugin_type`: the same name,
/// a prefix of it, or the other name of the same task type.
fn applies(registry: &[TaskType], default_type: &str, plugin_type: &str) -> bool {
    let canonical = |name: &str| {
        registry
            .iter()
            .find(|t| t.class == name || t.aliases.contains(&name))
            .map(|t| t.class)
    };
    plugin_type.starts_with(default_type)
        || canonical(default_type).is_some_and(|c| Some(c) == canonical(plugin_type))
}

/// `over` merged onto `base`, as Kestra's `MapUtils.merge`.
fn merge(base: Node, over: Node) -> Node {
    match (base.value, over.value) {
        (base_value, Yaml::Null) => Node {
            value: base_value,
            ..base
        },
        (Yaml::Map(mut entries), Yaml::Map(overs)) => {
            for (key, value) in overs {
                let name = key.key_text();
                match entries.iter().position(|(k, _)| k.key_text() == name) {
                    Some(at) => {
                        let old = entries[at].1.clone();
                        entries[at].1 = merge(old, value);
                    }
                    None => entries.push((key, value)),
                }
            }
            Node {
                value: Yaml::Map(entries),
                ..base
            }
        }
        (Yaml::Seq(mut items), Yaml::Seq(more)) => {
            items.extend(more);
            Node {
                value: Yaml::Seq(items),
                ..base
            }
        }
        (_, over_value) => Node {
            value: over_value,
            ..over
        },
    }
}

#[cfg(test)]
mod tests {
    use crate::{Level, TaskKind, parse_flow};

    const LOG: &str = "io.kestra.plugin.core.log.Log";

    fn flow(defaults: &str, tasks: &str) -> String {
        format!("id: f\nnamespace: dev\n{defaults}tasks:\n{tasks}")
    }

    fn log(id: &str, extra: &str) -> String {
        format!("  - id: {id}\n    type: {LOG}\n{extra}")
    }

    /// `(messages, level)` of each Log task of the parsed flow.
    fn logs(source: &str) -> Vec<(Vec<String>, Level)> {
        let flow = parse_flow(source).unwrap_or_else(|v| panic!("{v:?}"));
        flow.tasks
            .into_iter()
            .map(|task| match task.kind {
                TaskKind::Log { messages, level } => (messages, level),
                other => panic!("not a log: {other:?}"),
            })
            .collect()
    }

    fn violations(source: &str) -> Vec<String> {
        let found = parse_flow(source).unwrap_err();
        found.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn a_default_fills_what_a_task_leaves_out_and_the_task_wins() {
        for key in ["pluginDefaults", "taskDefaults"] {
            let source = flow(
                &format!(
                    "{key}:\n  - type: {LOG}\n    values:\n      message: default\n      level: WARN\n"
                ),
                &format!("{}{}", log("a", ""), log("b", "    message: own\n")),
            );
            assert_eq!(
                logs(&source),
                [
                    (vec!["default".to_owned()], Level::Warn),
                    (vec!["own".to_owned()], Level::Warn)
                ]
            );
        }
    }

    #[test]
    fn a_forced_default_wins_and_the_first_forced_wins_over_the_next() {
        let source = flow(
            &format!(
                "pluginDefaults:\n  - type: {LOG}\n    forced: true\n    values:\n      level: ERROR\n  - type: {LOG}\n    forced: true\n    values:\n      level: DEBUG\n"
            ),
            &log("a", "    message: m\n    level: INFO\n"),
        );
        assert_eq!(logs(&source), [(vec!["m".to_owned()], Level::Error)]);
    }

    #[test]
    fn a_default_applies_by_prefix_and_across_old_and_new_names() {
        for default_type in ["io.kestra.plugin.core", "io.kestra.core.tasks.log.Log"] {
            let source = flow(
                &format!(
                    "pluginDefaults:\n  - type: {default_type}\n    values:\n      level: WARN\n"
                ),
                &log("a", "    message: m\n"),
            );
            assert_eq!(logs(&source), [(vec!["m".to_owned()], Level::Warn)]);
        }
        let unrelated = flow(
            "pluginDefaults:\n  - type: io.kestra.plugin.scripts\n    values:\n      level: WARN\n",
            &log("a", "    message: m\n"),
        );
        assert_eq!(logs(&unrelated), [(vec!["m".to_owned()], Level::Info)]);
    }

    #[test]
    fn lists_join_with_the_defaults_items_first() {
        let source = flow(
            &format!("pluginDefaults:\n  - type: {LOG}\n    values:\n      message: [one]\n"),
            &log("a", "    message: [two]\n"),
        );
        assert_eq!(
            logs(&source),
            [(vec!["one".to_owned(), "two".to_owned()], Level::Info)]
        );
    }

    #[test]
    fn defaults_reach_nested_tasks() {
        let source = flow(
            &format!("pluginDefaults:\n  - type: {LOG}\n    values:\n      message: nested\n"),
            &format!(
                "  - id: seq\n    type: io.kestra.plugin.core.flow.Sequential\n    tasks:\n      - id: a\n        type: {LOG}\n"
            ),
        );
        let flow = parse_flow(&source).unwrap_or_else(|v| panic!("{v:?}"));
        let TaskKind::Flowable(seq) = &flow.tasks[0].kind else {
            panic!("not a flowable");
        };
        let child = seq.children().next().map(|task| &task.kind);
        assert!(matches!(child, Some(TaskKind::Log { messages, .. }) if messages == &["nested"]));
    }

    #[test]
    fn bad_defaults_are_reported_and_a_defaults_violation_points_at_the_default() {
        assert_eq!(
            violations(&flow(
                "pluginDefaults:\n  - values: {}\n    forsed: true\n  - type: x\n    values: [a]\n",
                &log("a", "    message: m\n"),
            )),
            [
                "4:5: pluginDefaults[0].type: must not be null",
                "5:5: Unrecognized field \"forsed\" (class io.kestra.core.models.flows.PluginDefault), not marked as ignorable",
                "7:13: pluginDefaults[1].values: must be a map",
            ]
        );
        assert_eq!(
            violations(&flow(
                &format!("pluginDefaults:\n  - type: {LOG}\n    values:\n      level: LOUD\n"),
                &log("a", "    message: m\n"),
            )),
            ["6:14: tasks[0].level: must be one of [TRACE, DEBUG, INFO, WARN, ERROR]"]
        );
    }
}
