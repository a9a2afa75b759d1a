//! The YAML layer: a flow's source as a tree of [`Node`]s that remember where they were written.
//!
//! Every violation must name its line and column, so the tree needs each node's position.
//! serde_yaml_ng only places its own syntax errors, and a locator that finds a key path again
//! in the text would break on flow style (`{a: 1}`), anchors and multi-line scalars. serde
//! deserializers that carry spans (serde-saphyr) recurse once per nesting level with large
//! frames: a 2 MiB thread overflowed its stack at 45 levels. So the tree is built here from the
//! events of granit-parser (the pure-Rust YAML 1.2 parser under serde-saphyr, a fork of
//! saphyr-parser) with an explicit stack: no recursion, a nesting limit of [`MAX_DEPTH`] that
//! keeps every later recursion over the tree shallow, and a node budget against alias bombs.
//! Scalars are resolved with YAML 1.2's core schema (`yes` and `no` stay text); a merge key
//! `<<` is an ordinary key, as with Kestra's Jackson parser.

use crate::Violation;
use granit_parser::{Event, Parser, ScalarStyle, ScanError, Span, Tag};
use serde_json::{Map, Number, Value};
use std::collections::{HashMap, HashSet};

/// Deepest nesting of lists and maps accepted.
const MAX_DEPTH: usize = 64;
/// Most nodes in a document, aliases expanded.
pub(crate) const MAX_NODES: usize = 1_000_000;

/// One YAML node and its position.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    /// What the node holds.
    pub(crate) value: Yaml,
    /// 1-based line.
    pub(crate) line: usize,
    /// 1-based column.
    pub(crate) column: usize,
}

/// A node's content. Mapping entries stay in source order; keys are nodes too, for their position.
#[derive(Debug, Clone)]
pub(crate) enum Yaml {
    Null,
    /// A boolean, with its text as written (`True`).
    Bool(bool, String),
    /// A number, with its text as written (`1.50`, `0x1F`).
    Number(Number, String),
    String(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

/// Parses one YAML document; a syntax error becomes a violation at its position.
pub(crate) fn load(source: &str) -> Result<Node, Violation> {
    let mut builder = Builder::default();
    for event in Parser::new_from_str(source) {
        let (event, span) = event.map_err(|error| scan_violation(&error))?;
        builder.event(event, span)?;
    }
    Ok(builder.root.unwrap_or(Node {
        value: Yaml::Null,
        line: 1,
        column: 1,
    }))
}

fn scan_violation(error: &ScanError) -> Violation {
    let mark = error.marker();
    Violation {
        message: format!("invalid YAML: {}", printable(&error.info())),
        line: Some(mark.line()),
        column: Some(mark.col() + 1),
    }
}

/// A list or map being read, until its end event.
struct Open {
    collection: Collection,
    anchor: usize,
    line: usize,
    column: usize,
}

enum Collection {
    Seq(Vec<Node>),
    Map {
        entries: Vec<(Node, Node)>,
        /// A key read, waiting for its value.
        key: Option<Node>,
        /// The scalar keys so far, to refuse duplicates.
        seen: HashSet<String>,
    },
}

/// Builds the tree from parser events.
#[derive(Default)]
struct Builder {
    stack: Vec<Open>,
    /// Anchored nodes by anchor id, with their node counts.
    anchors: HashMap<usize, (Node, usize)>,
    nodes: usize,
    documents: usize,
    root: Option<Node>,
}

impl Builder {
    fn event(&mut self, event: Event<'_>, span: Span) -> Result<(), Violation> {
        let (line, column) = (span.start.line(), span.start.col() + 1);
        match event {
            Event::DocumentStart(..) => {
                self.documents += 1;
                if self.documents > 1 {
                    let message = "invalid YAML: a flow is one document, found a second one";
                    return Err(violation(line, column, message));
                }
            }
            Event::Scalar(text, style, anchor, tag) => {
                let value = resolve(&text, style, tag.as_deref());
                self.count(1, line, column)?;
                let node = Node {
                    value,
                    line,
                    column,
                };
                self.anchor(anchor, &node, 1);
                self.attach(node)?;
            }
            Event::SequenceStart(_, anchor, _) => {
                self.open(Collection::Seq(Vec::new()), anchor, line, column)?;
            }
            Event::MappingStart(_, anchor, _) => {
                let map = Collection::Map {
                    entries: Vec::new(),
                    key: None,
                    seen: HashSet::new(),
                };
                self.open(map, anchor, line, column)?;
            }
            Event::SequenceEnd | Event::MappingEnd => self.close()?,
            Event::Alias(id) => {
                let Some((node, size)) = self.anchors.get(&id).cloned() else {
                    return Err(violation(line, column, "invalid YAML: unknown alias"));
                };
                self.count(size, line, column)?;
                // The alias's own position, so a problem with it points where it is used.
                self.attach(Node {
                    line,
                    column,
                    ..node
                })?;
            }
            _ => {}
        }
        Ok(())
    }

    fn count(&mut self, nodes: usize, line: usize, column: usize) -> Result<(), Violation> {
        self.nodes = self.nodes.saturating_add(nodes);
        if self.nodes > MAX_NODES {
            let message =
                format!("invalid YAML: more than {MAX_NODES} values once aliases are expanded");
            return Err(violation(line, column, &message));
        }
        Ok(())
    }

    fn anchor(&mut self, anchor: usize, node: &Node, size: usize) {
        if anchor != 0 {
            self.anchors.insert(anchor, (node.clone(), size));
        }
    }

    fn open(
        &mut self,
        collection: Collection,
        anchor: usize,
        line: usize,
        column: usize,
    ) -> Result<(), Violation> {
        if self.stack.len() >= MAX_DEPTH {
            let message = format!("invalid YAML: lists and maps nested deeper than {MAX_DEPTH}");
            return Err(violation(line, column, &message));
        }
        self.count(1, line, column)?;
        self.stack.push(Open {
            collection,
            anchor,
            line,
            column,
        });
        Ok(())
    }

    fn close(&mut self) -> Result<(), Violation> {
        let Some(open) = self.stack.pop() else {
            return Ok(());
        };
        let value = match open.collection {
            Collection::Seq(items) => Yaml::Seq(items),
            Collection::Map { entries, .. } => Yaml::Map(entries),
        };
        let node = Node {
            value,
            line: open.line,
            column: open.column,
        };
        if open.anchor != 0 {
            let size = node.size();
            self.anchor(open.anchor, &node, size);
        }
        self.attach(node)
    }

    /// Adds a finished node to the list or map being read, or makes it the document.
    fn attach(&mut self, node: Node) -> Result<(), Violation> {
        let Some(open) = self.stack.last_mut() else {
            self.root = Some(node);
            return Ok(());
        };
        match &mut open.collection {
            Collection::Seq(items) => items.push(node),
            Collection::Map { entries, key, seen } => match key.take() {
                Some(key) => entries.push((key, node)),
                None => {
                    let repeated = node.scalar_text().filter(|text| !seen.insert(text.clone()));
                    if let Some(text) = repeated {
                        // Jackson's words, as Kestra reports a repeated key.
                        let message =
                            format!("invalid YAML: Duplicate field '{}'", printable(&text));
                        return Err(violation(node.line, node.column, &message));
                    }
                    *key = Some(node);
                }
            },
        }
        Ok(())
    }
}

fn violation(line: usize, column: usize, message: &str) -> Violation {
    Violation {
        message: message.to_owned(),
        line: Some(line),
        column: Some(column),
    }
}

/// A scalar's value under YAML 1.2's core schema: only plain scalars are typed, `!!str` keeps
/// one as text; other tags are ignored, as Jackson does.
fn resolve(text: &str, style: ScalarStyle, tag: Option<&Tag>) -> Yaml {
    let as_text = tag.is_some_and(|tag| tag.is_yaml_core_schema_tag("str"));
    if style != ScalarStyle::Plain || as_text {
        return Yaml::String(text.to_owned());
    }
    match text {
        "" | "~" | "null" | "Null" | "NULL" => Yaml::Null,
        "true" | "True" | "TRUE" => Yaml::Bool(true, text.to_owned()),
        "false" | "False" | "FALSE" => Yaml::Bool(false, text.to_owned()),
        _ => match number(text) {
            Some(number) => Yaml::Number(number, text.to_owned()),
            None => Yaml::String(text.to_owned()),
        },
    }
}

/// A core-schema number that JSON can hold; too large or not finite, it stays text.
fn number(text: &str) -> Option<Number> {
    let radix = |digits: &str, radix: u32| {
        let valid = !digits.is_empty() && digits.chars().all(|c| c.is_digit(radix));
        valid.then(|| u64::from_str_radix(digits, radix).ok().map(Number::from))?
    };
    if let Some(hex) = text.strip_prefix("0x") {
        return radix(hex, 16);
    }
    if let Some(octal) = text.strip_prefix("0o") {
        return radix(octal, 8);
    }
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    if !unsigned.is_empty() && unsigned.bytes().all(|b| b.is_ascii_digit()) {
        let int = text.parse::<i64>().ok().map(Number::from);
        return int.or_else(|| text.parse::<u64>().ok().map(Number::from));
    }
    is_float(unsigned)
        .then(|| text.parse::<f64>().ok().and_then(Number::from_f64))
        .flatten()
}

/// `1.5`, `.5`, `1.`, `1e3`, `2.5E-3`: YAML 1.2's float form, sign removed.
fn is_float(text: &str) -> bool {
    let (mantissa, exponent) = match text.split_once(['e', 'E']) {
        Some((mantissa, exponent)) => (mantissa, Some(exponent)),
        None => (text, None),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok =
        !(whole.is_empty() && fraction.is_empty()) && digits(whole) && digits(fraction);
    let exponent_ok = exponent.is_none_or(|exponent| {
        let exponent = exponent.strip_prefix(['-', '+']).unwrap_or(exponent);
        !exponent.is_empty() && digits(exponent)
    });
    mantissa_ok && exponent_ok
}

/// A mapping's entries as a JSON object, keys as text, in source order.
pub(crate) fn object(entries: &[(Node, Node)]) -> Map<String, Value> {
    entries
        .iter()
        .map(|(key, value)| (key.key_text(), value.to_json()))
        .collect()
}

/// Text to show in a message: control characters (a newline in a key...) escaped.
pub(crate) fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out
}

impl Node {
    /// The position as a violation carries it.
    pub(crate) fn position(&self) -> (Option<usize>, Option<usize>) {
        (Some(self.line), Some(self.column))
    }

    /// A scalar's text, as a Java string property would receive it: numbers and booleans as
    /// written (`1.50` stays `1.50`). `None` for null, sequences and mappings.
    pub(crate) fn scalar_text(&self) -> Option<String> {
        match &self.value {
            Yaml::String(text) | Yaml::Bool(_, text) | Yaml::Number(_, text) => Some(text.clone()),
            Yaml::Null | Yaml::Seq(_) | Yaml::Map(_) => None,
        }
    }

    /// A mapping key's text; null and nested keys get a stand-in so they can still be named.
    pub(crate) fn key_text(&self) -> String {
        match &self.value {
            Yaml::Null => "null".to_owned(),
            Yaml::Seq(_) => "[...]".to_owned(),
            Yaml::Map(_) => "{...}".to_owned(),
            Yaml::String(text) | Yaml::Bool(_, text) | Yaml::Number(_, text) => text.clone(),
        }
    }

    /// The node as JSON, for properties kept as written (variables, triggers, defaults).
    pub(crate) fn to_json(&self) -> Value {
        match &self.value {
            Yaml::Null => Value::Null,
            Yaml::Bool(flag, _) => Value::Bool(*flag),
            Yaml::Number(number, _) => Value::Number(number.clone()),
            Yaml::String(text) => Value::String(text.clone()),
            Yaml::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            Yaml::Map(entries) => Value::Object(object(entries)),
        }
    }

    /// How many nodes this one holds, itself included.
    pub(crate) fn size(&self) -> usize {
        match &self.value {
            Yaml::Seq(items) => 1 + items.iter().map(Node::size).sum::<usize>(),
            Yaml::Map(entries) => {
                1 + entries
                    .iter()
                    .map(|(k, v)| k.size() + v.size())
                    .sum::<usize>()
            }
            _ => 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn json(source: &str) -> Value {
        load(source).unwrap().to_json()
    }

    fn entries(source: &str) -> Vec<(Node, Node)> {
        match load(source).unwrap().value {
            Yaml::Map(entries) => entries,
            other => panic!("not a map: {other:?}"),
        }
    }

    fn error(source: &str) -> String {
        load(source).unwrap_err().to_string()
    }

    #[test]
    fn core_schema_scalars() {
        assert_eq!(
            json(
                "a: 1\nb: -2\nc: 1.5\nd: .5\ne: 1e3\nf: 0x1F\ng: 0o17\nh: ~\ni: null\nj:\nk: 1_000\nl: 08\n"
            ),
            json!({"a": 1, "b": -2, "c": 1.5, "d": 0.5, "e": 1000.0, "f": 31, "g": 15,
                   "h": null, "i": null, "j": null, "k": "1_000", "l": 8})
        );
    }

    #[test]
    fn only_yaml_1_2_booleans() {
        assert_eq!(
            json("n: no\ny: yes\non: off\nt: true\nf: False\n"),
            json!({"n": "no", "y": "yes", "on": "off", "t": true, "f": false})
        );
    }

    #[test]
    fn quoted_and_str_tagged_scalars_stay_text() {
        assert_eq!(
            json("a: '1'\nb: \"true\"\nc: !!str 5\nd: !custom 5\ne: |\n  x\n"),
            json!({"a": "1", "b": "true", "c": "5", "d": 5, "e": "x\n"})
        );
    }

    #[test]
    fn numbers_too_big_or_not_finite_stay_text() {
        assert_eq!(
            json("big: 99999999999999999999999\ninf: .inf\nhuge: 1e999\nu: 18446744073709551615\n"),
            json!({"big": "99999999999999999999999", "inf": ".inf", "huge": "1e999",
                   "u": 18446744073709551615u64})
        );
    }

    #[test]
    fn aliases_resolve_and_merge_keys_are_plain_keys() {
        assert_eq!(
            json("base: &b {a: 1}\nsame: *b\nmore:\n  <<: *b\n"),
            json!({"base": {"a": 1}, "same": {"a": 1}, "more": {"<<": {"a": 1}}})
        );
    }

    #[test]
    fn an_alias_is_placed_where_it_is_used() {
        let found = entries("a: &x [1]\nb: *x\n");
        assert_eq!((found[1].1.line, found[1].1.column), (2, 4));
    }

    #[test]
    fn scalars_keep_their_written_text() {
        let texts: Vec<Option<String>> = entries("a: 1.50\nb: 0x1F\nc: True\nd: &x 7\ne: *x\n")
            .iter()
            .map(|(_, v)| v.scalar_text())
            .collect();
        let want = ["1.50", "0x1F", "True", "7", "7"].map(|t| Some(t.to_owned()));
        assert_eq!(texts, want);
    }

    #[test]
    fn positions_are_right_with_crlf_and_a_byte_order_mark() {
        let found = entries("\u{feff}a: 1\r\nb:\r\n  - x\r\n");
        let Yaml::Seq(items) = &found[1].1.value else {
            panic!("not a list")
        };
        assert_eq!((found[1].0.line, found[1].0.column), (2, 1));
        assert_eq!((items[0].line, items[0].column), (3, 5));
    }

    #[test]
    fn syntax_errors_have_a_position() {
        assert!(error("a: [1, 2\n").starts_with("1:4: invalid YAML: "));
        let tab = error("a:\n\t- b\n");
        assert!(
            tab.starts_with("2:") && tab.contains("invalid YAML: "),
            "{tab}"
        );
    }

    #[test]
    fn duplicate_keys_are_refused() {
        assert_eq!(
            error("a: 1\nb: 2\na: 3\n"),
            "3:1: invalid YAML: Duplicate field 'a'"
        );
    }

    #[test]
    fn a_second_document_is_refused() {
        assert_eq!(
            error("a: 1\n---\nb: 2\n"),
            "2:1: invalid YAML: a flow is one document, found a second one"
        );
        assert!(load("---\na: 1\n...\n").is_ok());
    }

    #[test]
    fn an_empty_source_is_null() {
        assert!(matches!(load("").unwrap().value, Yaml::Null));
        assert!(matches!(
            load("# only a comment\n").unwrap().value,
            Yaml::Null
        ));
    }

    /// Loads and walks `source` on a thread with a small stack, as a tokio worker has.
    fn on_small_stack(source: String) -> bool {
        std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || load(&source).map(|node| node.to_json()).is_ok())
            .unwrap()
            .join()
            .unwrap()
    }

    #[test]
    fn nesting_is_limited_without_deep_recursion() {
        let nested = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        assert!(on_small_stack(nested(MAX_DEPTH)));
        assert!(!on_small_stack(nested(MAX_DEPTH + 1)));
        assert!(!on_small_stack(nested(100_000)));
        let block: String = (0..1_000)
            .map(|depth| format!("{}a:\n", " ".repeat(depth)))
            .collect();
        assert!(!on_small_stack(block));
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut source = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n".to_owned();
        for level in 1..12 {
            let list = vec![format!("*a{}", level - 1); 10].join(", ");
            source.push_str(&format!("a{level}: &a{level} [{list}]\n"));
        }
        assert!(error(&source).contains("values once aliases are expanded"));
    }

    #[test]
    fn control_characters_are_escaped_in_messages() {
        assert_eq!(printable("a\nb\u{1b}[31m"), "a\\nb\\u{1b}[31m");
    }
}
