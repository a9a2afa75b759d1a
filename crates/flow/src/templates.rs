//! The texts a flow renders, checked while it is parsed: every string under `tasks`,
//! `errors`, `finally`, `afterExecution`, `triggers`, `outputs` and `sla` (map keys included, `description` left out), after
//! plugin defaults are merged in, goes through the caller's check (the expression crate's
//! template compiler), so that a template that cannot parse is refused when the flow is
//! checked or saved, not when a task runs. Plain texts are the check's to skip.

use crate::context::Ctx;
use crate::parse::TemplateCheck;
use crate::yaml::{Node, Yaml};

/// The parts of a flow whose texts are rendered.
const RENDERED: &[&str] = &[
    "tasks",
    "errors",
    "finally",
    "afterExecution",
    "triggers",
    "outputs",
    "sla",
];

/// Passes every rendered text of the flow `root` to `check`; each refusal is a violation at
/// the text, `<field>: <why>`.
pub(crate) fn check(ctx: &mut Ctx<'_>, root: &Node, check: TemplateCheck<'_>) {
    let Yaml::Map(entries) = &root.value else {
        return;
    };
    for (key, value) in entries {
        let name = key.key_text();
        if RENDERED.contains(&name.as_str()) {
            walk(ctx, value, &name, check);
        }
    }
}

fn walk(ctx: &mut Ctx<'_>, node: &Node, field: &str, check: TemplateCheck<'_>) {
    match &node.value {
        Yaml::String(text) => {
            if let Err(why) = check(text) {
                ctx.report(node, format!("{field}: {why}"));
            }
        }
        Yaml::Seq(items) => {
            for (index, item) in items.iter().enumerate() {
                walk(ctx, item, &format!("{field}[{index}]"), check);
            }
        }
        Yaml::Map(entries) => {
            for (key, value) in entries {
                let name = key.key_text();
                if name == "description" {
                    continue;
                }
                let path = format!("{field}.{name}");
                walk(ctx, key, &path, check);
                walk(ctx, value, &path, check);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use crate::parse_flow_checking;
    use std::cell::RefCell;

    #[test]
    fn rendered_texts_are_checked_where_they_are_rendered_only() {
        let source = "id: f\nnamespace: dev\ndescription: \"{{ not rendered }}\"\nvariables:\n  v: \"{{ later }}\"\npluginDefaults:\n  - type: io.kestra.plugin.core.log.Log\n    values:\n      message: \"{{ bad default }}\"\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.log.Log\n    description: \"{{ shown as written }}\"\n    message: \"{{ bad }}\"\n  - id: u\n    type: io.kestra.plugin.core.log.Log\noutputs:\n  - id: o\n    value: \"{{ fine }}\"\n";
        let seen = RefCell::new(Vec::new());
        let check = |text: &str| {
            seen.borrow_mut().push(text.to_owned());
            if text.contains("bad") {
                Err("refused".to_owned())
            } else {
                Ok(())
            }
        };
        let found: Vec<String> = parse_flow_checking(source, &check)
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            found,
            [
                "9:16: tasks[1].message: refused",
                "14:14: tasks[0].message: refused",
            ]
        );
        let seen = seen.into_inner();
        assert!(seen.iter().any(|t| t == "{{ fine }}"), "{seen:?}");
        assert!(
            !seen
                .iter()
                .any(|t| t.contains("rendered") || t.contains("later"))
        );
    }
}
