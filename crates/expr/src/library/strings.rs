//! String filters, with Pebble's and Kestra's semantics where they differ from Jinja's.

use super::to_text;
use crate::error::function_error;
use minijinja::Error;
use minijinja::value::{Kwargs, Value, ValueKind};

pub(super) fn lower(v: Value) -> String {
    to_text(&v).to_lowercase()
}

pub(super) fn upper(v: Value) -> String {
    to_text(&v).to_uppercase()
}

pub(super) fn trim(v: Value) -> String {
    to_text(&v).trim().to_string()
}

/// Pebble: the first character upper-cased, the rest unchanged (Jinja lower-cases the rest).
pub(super) fn capitalize(v: Value) -> String {
    let text = to_text(&v);
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Pebble: the first letter of each whitespace-separated word upper-cased, the rest unchanged.
pub(super) fn title(v: Value) -> String {
    let mut at_word_start = true;
    to_text(&v)
        .chars()
        .flat_map(|c| {
            let upper = at_word_start && !c.is_whitespace();
            at_word_start = c.is_whitespace();
            let mapped: Vec<char> = if upper {
                c.to_uppercase().collect()
            } else {
                vec![c]
            };
            mapped
        })
        .collect()
}

/// Pebble's `replace({'from': 'to', ...})`; also `replace('from', 'to')`.
pub(super) fn replace(v: Value, pairs: Value, to: Option<Value>) -> Result<String, Error> {
    let mut text = to_text(&v).into_owned();
    if let Some(to) = to {
        return Ok(text.replace(to_text(&pairs).as_ref(), &to_text(&to)));
    }
    if pairs.kind() != ValueKind::Map {
        return Err(function_error(
            "The 'replace' filter expects a map of replacements, e.g. replace({'a': 'b'}).",
        ));
    }
    for key in pairs.try_iter()? {
        let to = pairs.get_item(&key)?;
        let from = to_text(&key);
        if !from.is_empty() {
            text = text.replace(from.as_ref(), &to_text(&to));
        }
    }
    Ok(text)
}

/// Java's `String.split` on a literal delimiter: without a limit, trailing empty parts go.
pub(super) fn split(v: Value, delimiter: String, limit: Option<i64>) -> Result<Vec<String>, Error> {
    if delimiter.is_empty() {
        return Err(function_error(
            "The 'split' filter expects a non-empty delimiter.",
        ));
    }
    let text = to_text(&v);
    let mut parts: Vec<String> = match limit {
        Some(n) if n > 0 => text
            .splitn(usize::try_from(n).unwrap_or(usize::MAX), delimiter.as_str())
            .map(str::to_string)
            .collect(),
        _ => text.split(delimiter.as_str()).map(str::to_string).collect(),
    };
    if limit.is_none_or(|n| n == 0) {
        while parts.last().is_some_and(String::is_empty) {
            parts.pop();
        }
    }
    Ok(parts)
}

/// `abbreviate(n)`: at most `n` characters, the last three of a cut string being `...`.
pub(super) fn abbreviate(v: Value, width: usize) -> String {
    let text = to_text(&v);
    if text.chars().count() <= width {
        return text.into_owned();
    }
    if width <= 3 {
        return text.chars().take(width).collect();
    }
    let mut cut: String = text.chars().take(width - 3).collect();
    cut.push_str("...");
    cut
}

pub(super) fn starts_with(v: Value, prefix: Value) -> bool {
    to_text(&v).starts_with(to_text(&prefix).as_ref())
}

pub(super) fn ends_with(v: Value, suffix: Value) -> bool {
    to_text(&v).ends_with(to_text(&suffix).as_ref())
}

/// Apache Commons' `substringBefore`: the whole string when the separator is absent.
pub(super) fn substring_before(v: Value, sep: Value) -> String {
    around(&v, &sep, |text, sep| text.find(sep)).0
}

/// Apache Commons' `substringAfter`: empty when the separator is absent.
pub(super) fn substring_after(v: Value, sep: Value) -> String {
    around(&v, &sep, |text, sep| text.find(sep)).1
}

pub(super) fn substring_before_last(v: Value, sep: Value) -> String {
    around(&v, &sep, |text, sep| text.rfind(sep)).0
}

pub(super) fn substring_after_last(v: Value, sep: Value) -> String {
    around(&v, &sep, |text, sep| text.rfind(sep)).1
}

/// The text before and after the separator where `find` places it; the whole text and an
/// empty one when the separator is absent.
fn around(v: &Value, sep: &Value, find: impl Fn(&str, &str) -> Option<usize>) -> (String, String) {
    let (text, sep) = (to_text(v), to_text(sep));
    match find(&text, &sep) {
        Some(i) => (text[..i].to_string(), text[i + sep.len()..].to_string()),
        None => (text.into_owned(), String::new()),
    }
}

fn indented(
    v: &Value,
    amount: usize,
    prefix: Option<String>,
    kwargs: &Kwargs,
    first: bool,
) -> Result<String, Error> {
    let prefix = kwargs.get::<Option<String>>("prefix")?.or(prefix);
    kwargs.assert_all_used()?;
    let text = to_text(v);
    let pad = prefix.as_deref().unwrap_or(" ").repeat(amount);
    let newline = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let body = text.replace(newline, &format!("{newline}{pad}"));
    Ok(if first {
        format!("{newline}{pad}{body}")
    } else {
        body
    })
}

/// Kestra's `indent(n, prefix=' ')`: every line but the first gets `n` times the prefix.
pub(super) fn indent(
    v: Value,
    amount: usize,
    prefix: Option<String>,
    kwargs: Kwargs,
) -> Result<String, Error> {
    indented(&v, amount, prefix, &kwargs, false)
}

/// Kestra's `nindent(n, prefix=' ')`: a newline, then every line indented.
pub(super) fn nindent(
    v: Value,
    amount: usize,
    prefix: Option<String>,
    kwargs: Kwargs,
) -> Result<String, Error> {
    indented(&v, amount, prefix, &kwargs, true)
}

/// Lower-case, letters and digits kept, any other run of characters turned into one `-`.
pub(super) fn slugify(v: Value) -> String {
    let mut out = String::new();
    for c in to_text(&v).to_lowercase().chars() {
        if c.is_alphanumeric() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    out
}

/// Kestra's `number`: a string parsed as an integer or a float (`type` may force one).
pub(super) fn number(v: Value, kwargs: Kwargs) -> Result<Value, Error> {
    let kind: Option<String> = kwargs.get("type")?;
    kwargs.assert_all_used()?;
    if v.is_number() {
        return Ok(v);
    }
    let text = to_text(&v);
    let text = text.trim();
    let bad = || function_error("The 'number' filter could not parse its input as a number.");
    let as_int = || text.parse::<i64>().map(Value::from);
    let as_float = || text.parse::<f64>().map(Value::from).map_err(|_| bad());
    match kind.as_deref().map(str::to_ascii_uppercase).as_deref() {
        None | Some("BIGDECIMAL") => as_int().or_else(|_| as_float()),
        Some("INT" | "INTEGER" | "LONG" | "BIGINTEGER") => as_int().map_err(|_| bad()),
        Some("FLOAT" | "DOUBLE") => as_float(),
        Some(other) => Err(function_error(format!(
            "The 'number' filter does not know the type '{other}' (INT, LONG, FLOAT, DOUBLE)."
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Value {
        Value::from(x)
    }

    #[test]
    fn pebble_capitalize_and_title_keep_the_rest() {
        assert_eq!(capitalize(s("hello WORLD")), "Hello WORLD");
        assert_eq!(title(s("hello big wORLD")), "Hello Big WORLD");
    }

    #[test]
    fn split_drops_trailing_empties_like_java() {
        assert_eq!(split(s("a,b,,"), ",".into(), None).unwrap(), ["a", "b"]);
        assert_eq!(
            split(s("a,b,c"), ",".into(), Some(2)).unwrap(),
            ["a", "b,c"]
        );
        assert!(split(s("a"), String::new(), None).is_err());
    }

    #[test]
    fn abbreviate_counts_the_ellipsis() {
        assert_eq!(abbreviate(s("this is a long sentence."), 7), "this...");
        assert_eq!(abbreviate(s("short"), 7), "short");
        assert_eq!(abbreviate(s("ééééé"), 2), "éé");
    }

    #[test]
    fn substrings_follow_commons_lang() {
        assert_eq!(substring_before(s("a.b.c"), s(".")), "a");
        assert_eq!(substring_before(s("abc"), s(".")), "abc");
        assert_eq!(substring_after(s("a.b.c"), s(".")), "b.c");
        assert_eq!(substring_after(s("abc"), s(".")), "");
        assert_eq!(substring_before_last(s("a.b.c"), s(".")), "a.b");
        assert_eq!(substring_after_last(s("a.b.c"), s(".")), "c");
    }

    #[test]
    fn indent_and_nindent() {
        let none = || Kwargs::from_iter(Vec::<(&str, Value)>::new());
        assert_eq!(indent(s("a\nb"), 2, None, none()).unwrap(), "a\n  b");
        assert_eq!(
            nindent(s("a\nb"), 2, Some("-".into()), none()).unwrap(),
            "\n--a\n--b"
        );
    }

    #[test]
    fn slugify_collapses_separators() {
        assert_eq!(slugify(s("  Hello, World! 2024 ")), "hello-world-2024");
    }
}
