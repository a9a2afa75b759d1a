//! The templated texts of a flow, with their positions: every string under `tasks`,
//! `errors`, `triggers` and `outputs` (map keys included, `description` left out) that holds
//! expression markup. Validation compiles each, so a template that cannot parse is refused
//! when the flow is checked or saved, not when a task runs.

use crate::Violation;
use crate::yaml::{self, Node, Yaml};

/// The parts of a flow whose texts are rendered.
const RENDERED: &[&str] = &["tasks", "errors", "triggers", "outputs"];

/// A templated text and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// The text as written.
    pub text: String,
    /// Its property's path (`tasks[0].message`).
    pub field: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

impl Template {
    /// A violation of this template: `<field>: <message>` at its position.
    pub fn violation(&self, message: &str) -> Violation {
        Violation {
            message: format!("{}: {message}", self.field),
            line: Some(self.line),
            column: Some(self.column),
        }
    }
}

/// Every templated text of the flow `source`, in source order; none when it does not load
/// (parsing reports that).
pub fn templates(source: &str) -> Vec<Template> {
    let Ok(root) = yaml::load(source) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    if let Yaml::Map(entries) = &root.value {
        for (key, value) in entries {
            let name = key.key_text();
            if RENDERED.contains(&name.as_str()) {
                collect(value, &name, &mut found);
            }
        }
    }
    found
}

fn collect(node: &Node, field: &str, found: &mut Vec<Template>) {
    match &node.value {
        Yaml::String(text) if has_markup(text) => found.push(Template {
            text: text.clone(),
            field: field.to_owned(),
            line: node.line,
            column: node.column,
        }),
        Yaml::Seq(items) => {
            for (index, item) in items.iter().enumerate() {
                collect(item, &format!("{field}[{index}]"), found);
            }
        }
        Yaml::Map(entries) => {
            for (key, value) in entries {
                let name = key.key_text();
                if name == "description" {
                    continue;
                }
                let path = format!("{field}.{name}");
                collect(key, &path, found);
                collect(value, &path, found);
            }
        }
        _ => {}
    }
}

/// Whether `text` holds Pebble markup (`{{`, `{%` or `{#`).
fn has_markup(text: &str) -> bool {
    text.contains("{{") || text.contains("{%") || text.contains("{#")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templated_texts_are_found_where_they_are_rendered_only() {
        let source = "id: f\nnamespace: dev\ndescription: \"{{ not rendered }}\"\nvariables:\n  v: \"{{ later }}\"\ntasks:\n  - id: t\n    type: x\n    description: \"{{ shown as written }}\"\n    message: \"{{ a }}\"\n    values:\n      \"{{ k }}\": plain\noutputs:\n  - id: o\n    value: \"{{ b }}\"\n";
        let found: Vec<(String, String, usize)> = templates(source)
            .into_iter()
            .map(|t| (t.field, t.text, t.line))
            .collect();
        assert_eq!(
            found,
            [
                ("tasks[0].message".into(), "{{ a }}".into(), 10),
                ("tasks[0].values.{{ k }}".into(), "{{ k }}".into(), 12),
                ("outputs[0].value".into(), "{{ b }}".into(), 15),
            ]
        );
    }
}
