//! Reading mappings into typed values while recording every problem, Kestra's way.
//!
//! Validation never stops at the first problem: each reader records its violation in the
//! [`Ctx`] and returns `None`, and the caller carries on with the next property, so one run
//! reports all of them, as Kestra does.

use crate::Violation;
use crate::tasks::TaskType;
use crate::yaml::{Node, Yaml, printable};
use serde_json::Value;
use std::collections::BTreeMap;

/// A 1-based line and column, where known.
pub(crate) type Position = (Option<usize>, Option<usize>);

/// The state of one validation: the source, the task types known, what went wrong so far.
pub(crate) struct Ctx<'a> {
    pub(crate) source: &'a str,
    pub(crate) registry: &'a [TaskType],
    violations: Vec<Violation>,
    /// Every task id met, nested and `errors` tasks included, with its position.
    task_ids: Vec<(String, Position)>,
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(source: &'a str, registry: &'a [TaskType]) -> Self {
        Ctx {
            source,
            registry,
            violations: Vec::new(),
            task_ids: Vec::new(),
        }
    }

    /// Records a violation at `at`'s position.
    pub(crate) fn report(&mut self, at: &Node, message: impl Into<String>) {
        self.report_at(at.position(), message);
    }

    fn report_at(&mut self, (line, column): Position, message: impl Into<String>) {
        self.violations.push(Violation {
            message: message.into(),
            line,
            column,
        });
    }

    /// Remembers a task id (its value node) for the flow-wide duplicate check.
    pub(crate) fn task_id(&mut self, id: String, at: &Node) {
        self.task_ids.push((id, at.position()));
    }

    /// Reports `Duplicate <what> with name [a, b]` once for all the ids seen twice or more,
    /// at the first place one of them repeats.
    pub(crate) fn check_unique(&mut self, what: &str, ids: &[(String, Position)]) {
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        let mut first_repeat: Option<Position> = None;
        for (id, at) in ids {
            let count = seen.entry(id.as_str()).or_insert(0);
            *count += 1;
            if *count == 2 && first_repeat.is_none() {
                first_repeat = Some(*at);
            }
        }
        if let Some(at) = first_repeat {
            let names: Vec<String> = seen
                .into_iter()
                .filter(|(_, count)| *count > 1)
                .map(|(id, _)| printable(id))
                .collect();
            self.report_at(
                at,
                format!("Duplicate {what} with name [{}]", names.join(", ")),
            );
        }
    }

    /// `value` when nothing went wrong; otherwise every violation, in source order.
    pub(crate) fn finish<T>(mut self, value: Option<T>) -> Result<T, Vec<Violation>> {
        let ids = std::mem::take(&mut self.task_ids);
        self.check_unique("task id", &ids);
        match value {
            Some(value) if self.violations.is_empty() => return Ok(value),
            // Every reader that gives up records why; this only guards against one that did not.
            _ if self.violations.is_empty() => self.report_at((None, None), "invalid flow"),
            _ => {}
        }
        self.violations
            .sort_by_key(|v| (v.line.unwrap_or(usize::MAX), v.column.unwrap_or(usize::MAX)));
        Err(self.violations)
    }
}

/// The properties of one mapping (a flow, a task, an input...), named for messages by its path
/// (`tasks[0]`, empty for the flow itself).
pub(crate) struct Props<'n> {
    pub(crate) node: &'n Node,
    entries: &'n [(Node, Node)],
    path: String,
}

impl<'n> Props<'n> {
    /// Opens `node` as a mapping; null reads as an empty one (every property absent), anything
    /// else is reported as `<path>: must be a map` and gives `None`.
    pub(crate) fn open(ctx: &mut Ctx<'_>, node: &'n Node, path: String) -> Option<Props<'n>> {
        let entries: &[(Node, Node)] = match &node.value {
            Yaml::Map(entries) => entries,
            Yaml::Null => &[],
            _ => {
                let name = if path.is_empty() { "flow" } else { &path };
                ctx.report(node, format!("{name}: must be a map"));
                return None;
            }
        };
        Some(Props {
            node,
            entries,
            path,
        })
    }

    /// Reports each property in none of the `known` lists, in Jackson's words for `class`.
    pub(crate) fn reject_unknown(&self, ctx: &mut Ctx<'_>, class: &str, known: &[&[&str]]) {
        for (key, _) in self.entries {
            let name = key.key_text();
            if !known.iter().any(|list| list.contains(&name.as_str())) {
                ctx.report(
                    key,
                    format!(
                        "Unrecognized field \"{}\" (class {class}), not marked as ignorable",
                        printable(&name)
                    ),
                );
            }
        }
    }

    /// The property's path for messages: `id` on the flow, `tasks[0].message` on a task.
    pub(crate) fn field(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// The property's value; an explicit null counts as absent, as in Java.
    pub(crate) fn get(&self, key: &str) -> Option<&'n Node> {
        self.entry(key)
            .map(|(_, value)| value)
            .filter(|value| !matches!(value.value, Yaml::Null))
    }

    fn entry(&self, key: &str) -> Option<&'n (Node, Node)> {
        self.entries.iter().find(|(k, _)| match &k.value {
            // A key written as a number or boolean (a Switch's case `1:`) is its text.
            Yaml::String(name) | Yaml::Number(_, name) | Yaml::Bool(_, name) => name == key,
            Yaml::Null | Yaml::Seq(_) | Yaml::Map(_) => false,
        })
    }

    /// A text property; numbers and booleans are taken as written.
    pub(crate) fn text(&self, ctx: &mut Ctx<'_>, key: &str) -> Option<String> {
        let node = self.get(key)?;
        let text = node.scalar_text();
        if text.is_none() {
            ctx.report(node, format!("{}: must be a string", self.field(key)));
        }
        text
    }

    /// A text property that must be there: `<field>: must not be null` otherwise.
    pub(crate) fn required_text(&self, ctx: &mut Ctx<'_>, key: &str) -> Option<String> {
        if self.get(key).is_none() {
            self.missing(ctx, key);
            return None;
        }
        self.text(ctx, key)
    }

    /// Reports `<field>: must not be null`.
    pub(crate) fn missing(&self, ctx: &mut Ctx<'_>, key: &str) {
        ctx.report(
            self.locate(key),
            format!("{}: must not be null", self.field(key)),
        );
    }

    /// Where a problem with a property is shown: at its value, at its key when written without
    /// one, else at the mapping.
    pub(crate) fn locate(&self, key: &str) -> &'n Node {
        match self.entry(key) {
            Some((
                key,
                Node {
                    value: Yaml::Null, ..
                },
            )) => key,
            Some((_, value)) => value,
            None => self.node,
        }
    }

    /// A boolean property, `false` when absent; `"true"`/`"false"` strings are accepted as
    /// Jackson coerces them.
    pub(crate) fn flag(&self, ctx: &mut Ctx<'_>, key: &str) -> Option<bool> {
        let node = self.get(key)?;
        match &node.value {
            Yaml::Bool(flag, _) => Some(*flag),
            Yaml::String(text) if text == "true" || text == "false" => Some(text == "true"),
            _ => {
                ctx.report(node, format!("{}: must be a boolean", self.field(key)));
                None
            }
        }
    }

    /// A list property.
    pub(crate) fn list(&self, ctx: &mut Ctx<'_>, key: &str) -> Option<&'n [Node]> {
        let node = self.get(key)?;
        match &node.value {
            Yaml::Seq(items) => Some(items),
            _ => {
                ctx.report(node, format!("{}: must be a list", self.field(key)));
                None
            }
        }
    }

    /// A mapping property, as its entries.
    pub(crate) fn map(&self, ctx: &mut Ctx<'_>, key: &str) -> Option<&'n [(Node, Node)]> {
        let node = self.get(key)?;
        match &node.value {
            Yaml::Map(entries) => Some(entries),
            _ => {
                ctx.report(node, format!("{}: must be a map", self.field(key)));
                None
            }
        }
    }

    /// A property kept as written, as JSON.
    pub(crate) fn json(&self, key: &str) -> Option<Value> {
        self.get(key).map(Node::to_json)
    }

    /// One of a fixed set of names (levels, input types): `<field>: must be one of [A, B]`.
    pub(crate) fn choice<T: Copy>(
        &self,
        ctx: &mut Ctx<'_>,
        key: &str,
        all: &[T],
        name: fn(T) -> &'static str,
    ) -> Option<T> {
        let node = self.get(key)?;
        let text = self.text(ctx, key)?;
        let found = all.iter().copied().find(|choice| name(*choice) == text);
        if found.is_none() {
            let names: Vec<&str> = all.iter().map(|choice| name(*choice)).collect();
            let field = self.field(key);
            ctx.report(
                node,
                format!("{field}: must be one of [{}]", names.join(", ")),
            );
        }
        found
    }

    /// A required id following `rule`, with its value node (for the duplicate checks).
    pub(crate) fn id(
        &self,
        ctx: &mut Ctx<'_>,
        key: &str,
        rule: &IdRule,
    ) -> Option<(String, &'n Node)> {
        let id = self.required_text(ctx, key)?;
        let node = self.get(key)?;
        let field = self.field(key);
        if !rule.matches(&id) {
            ctx.report(node, format!("{field}: must match \"{}\"", rule.regex));
        }
        if let Some(max) = rule.max_len {
            let len = id.chars().count();
            if len == 0 || len > max {
                ctx.report(node, format!("{field}: size must be between 1 and {max}"));
            }
        }
        Some((id, node))
    }
}

/// One of Kestra's id rules. The pattern is checked without a regex engine: an ASCII letter or
/// digit, then letters, digits or the `extra` punctuation.
pub(crate) struct IdRule {
    /// The regex as Kestra's messages quote it.
    pub(crate) regex: &'static str,
    /// Lowercase letters only (namespaces).
    pub(crate) lowercase: bool,
    /// Punctuation allowed after the first character.
    pub(crate) extra: &'static str,
    /// A dot-separated hierarchy: each segment follows the rule on its own (so none is
    /// empty).
    pub(crate) dotted: bool,
    /// Longest id allowed, in characters.
    pub(crate) max_len: Option<usize>,
}

impl IdRule {
    pub(crate) fn matches(&self, text: &str) -> bool {
        if self.dotted {
            return text.split('.').all(|segment| self.matches_one(segment));
        }
        self.matches_one(text)
    }

    fn matches_one(&self, text: &str) -> bool {
        let letter = |c: char| {
            c.is_ascii_digit()
                || c.is_ascii_lowercase()
                || (!self.lowercase && c.is_ascii_uppercase())
        };
        let mut chars = text.chars();
        chars.next().is_some_and(letter) && chars.all(|c| letter(c) || self.extra.contains(c))
    }
}

/// Flow ids.
pub(crate) const FLOW_ID: IdRule = IdRule {
    regex: "^[a-zA-Z0-9][a-zA-Z0-9._-]*",
    lowercase: false,
    extra: "._-",
    dotted: false,
    max_len: Some(100),
};

/// Namespaces.
pub(crate) const NAMESPACE: IdRule = IdRule {
    regex: "^[a-z0-9][a-z0-9_-]*(\\.[a-z0-9][a-z0-9_-]*)*$",
    lowercase: true,
    extra: "_-",
    dotted: true,
    max_len: Some(150),
};

/// Task ids.
pub(crate) const TASK_ID: IdRule = IdRule {
    regex: "^[a-zA-Z0-9][a-zA-Z0-9_-]*",
    lowercase: false,
    extra: "_-",
    dotted: false,
    max_len: None,
};

/// Input and output ids.
pub(crate) const IO_ID: IdRule = IdRule {
    regex: "^[a-zA-Z0-9][.a-zA-Z0-9_-]*",
    lowercase: false,
    extra: "._-",
    dotted: false,
    max_len: None,
};
