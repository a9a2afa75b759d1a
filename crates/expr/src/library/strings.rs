//! String filters, with Pebble's and Kestra's semantics where they differ from Jinja's.
//!
//! Each filter checks the size of what it builds against the [`Cap`] before building it.

use crate::error::function_error;
use crate::limits::Cap;
use minijinja::Error;
use minijinja::value::{Kwargs, Value, ValueKind};

/// The most bytes one character's case mapping takes per byte of the original (`ΐ`, two
/// bytes, upper-cases to three characters of two bytes each).
const CASE_GROWTH: usize = 3;

/// The bytes of `text` once each character is mapped by `map`.
fn mapped_len<I: Iterator<Item = char>>(text: &str, map: impl Fn(char) -> I) -> usize {
    text.chars().flat_map(map).map(char::len_utf8).sum()
}

/// `v`'s text case-mapped by `convert`, whose size `map` gives character by character.
fn case_mapped<I: Iterator<Item = char>>(
    v: &Value,
    cap: Cap,
    map: impl Fn(char) -> I,
    convert: fn(&str) -> String,
) -> Result<String, Error> {
    let text = cap.text(v)?;
    cap.check_growth(text.len(), CASE_GROWTH, || mapped_len(&text, map))?;
    Ok(convert(&text))
}

pub(super) fn lower(v: &Value, cap: Cap) -> Result<String, Error> {
    case_mapped(v, cap, char::to_lowercase, str::to_lowercase)
}

pub(super) fn upper(v: &Value, cap: Cap) -> Result<String, Error> {
    case_mapped(v, cap, char::to_uppercase, str::to_uppercase)
}

pub(super) fn trim(v: &Value, cap: Cap) -> Result<String, Error> {
    Ok(cap.text(v)?.trim().to_string())
}

/// Pebble: the first character upper-cased, the rest unchanged (Jinja lower-cases the rest).
pub(super) fn capitalize(v: &Value, cap: Cap) -> Result<String, Error> {
    let text = cap.text(v)?;
    let mut chars = text.chars();
    let Some(first) = chars.next() else {
        return Ok(String::new());
    };
    let first_len = first.len_utf8();
    cap.check(
        (text.len() - first_len).checked_add(mapped_len(&text[..first_len], char::to_uppercase)),
    )?;
    Ok(first.to_uppercase().chain(chars).collect())
}

/// Pebble: the first letter of each whitespace-separated word upper-cased, the rest unchanged.
pub(super) fn title(v: &Value, cap: Cap) -> Result<String, Error> {
    let text = cap.text(v)?;
    cap.check_growth(text.len(), CASE_GROWTH, || {
        mapped_len(&text, char::to_uppercase)
    })?;
    let mut at_word_start = true;
    Ok(text
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
        .collect())
}

/// `text` with every `from` replaced by `to`, refused when the result would pass the cap.
fn replace_all(text: &str, from: &str, to: &str, cap: Cap) -> Result<String, Error> {
    if to.len() > from.len() {
        let count = text.matches(from).count();
        let growth = count.checked_mul(to.len() - from.len());
        cap.check(growth.and_then(|g| g.checked_add(text.len())))?;
    }
    Ok(text.replace(from, to))
}

/// Pebble's `replace({'from': 'to', ...})`; also `replace('from', 'to')`.
pub(super) fn replace(
    v: &Value,
    pairs: &Value,
    to: Option<Value>,
    cap: Cap,
) -> Result<String, Error> {
    let mut text = cap.text(v)?.into_owned();
    if let Some(to) = to {
        let from = cap.text(pairs)?;
        if from.is_empty() {
            return Ok(text);
        }
        return replace_all(&text, &from, &cap.text(&to)?, cap);
    }
    if pairs.kind() != ValueKind::Map {
        return Err(function_error(
            "The 'replace' filter expects a map of replacements, e.g. replace({'a': 'b'}).",
        ));
    }
    for key in pairs.try_iter()? {
        let to = pairs.get_item(&key)?;
        let from = cap.text(&key)?;
        if !from.is_empty() {
            text = replace_all(&text, &from, &cap.text(&to)?, cap)?;
        }
    }
    Ok(text)
}

/// Bytes a list of `items` strings holding `bytes` bytes counts for: its JSON text, about.
fn list_size(bytes: usize, items: usize) -> Option<usize> {
    items.checked_mul(3)?.checked_add(bytes)
}

/// Java's `String.split` on a literal delimiter: without a limit, trailing empty parts go.
pub(super) fn split(
    v: &Value,
    delimiter: &str,
    limit: Option<i64>,
    cap: Cap,
) -> Result<Vec<String>, Error> {
    if delimiter.is_empty() {
        return Err(function_error(
            "The 'split' filter expects a non-empty delimiter.",
        ));
    }
    let text = cap.text(v)?;
    let max_parts = match limit {
        Some(n) if n > 0 => usize::try_from(n).unwrap_or(usize::MAX),
        _ => usize::MAX,
    };
    let parts = text
        .matches(delimiter)
        .count()
        .saturating_add(1)
        .min(max_parts);
    cap.check(list_size(text.len(), parts))?;
    let mut parts: Vec<String> = text
        .splitn(max_parts, delimiter)
        .map(str::to_string)
        .collect();
    if limit.is_none_or(|n| n == 0) {
        while parts.last().is_some_and(String::is_empty) {
            parts.pop();
        }
    }
    Ok(parts)
}

/// `abbreviate(n)`: at most `n` characters, the last three of a cut string being `...`.
pub(super) fn abbreviate(v: &Value, width: usize, cap: Cap) -> Result<String, Error> {
    let text = cap.text(v)?;
    if text.chars().count() <= width {
        return Ok(text.into_owned());
    }
    if width <= 3 {
        return Ok(text.chars().take(width).collect());
    }
    let mut cut: String = text.chars().take(width - 3).collect();
    cut.push_str("...");
    Ok(cut)
}

pub(super) fn starts_with(v: Value, prefix: Value) -> bool {
    super::to_text(&v).starts_with(super::to_text(&prefix).as_ref())
}

pub(super) fn ends_with(v: Value, suffix: Value) -> bool {
    super::to_text(&v).ends_with(super::to_text(&suffix).as_ref())
}

/// Where Apache Commons' `substringBefore` and its kin cut.
#[derive(Clone, Copy)]
pub(super) enum Around {
    /// `substringBefore`: the whole string when the separator is absent.
    BeforeFirst,
    /// `substringAfter`: empty when the separator is absent.
    AfterFirst,
    BeforeLast,
    AfterLast,
}

/// The text before or after the separator; the whole text (before) or an empty one (after)
/// when the separator is absent.
pub(super) fn substring(v: &Value, sep: &Value, around: Around, cap: Cap) -> Result<String, Error> {
    let (text, sep) = (cap.text(v)?, cap.text(sep)?);
    let at = match around {
        Around::BeforeFirst | Around::AfterFirst => text.find(sep.as_ref()),
        Around::BeforeLast | Around::AfterLast => text.rfind(sep.as_ref()),
    };
    Ok(match (around, at) {
        (Around::BeforeFirst | Around::BeforeLast, Some(i)) => text[..i].to_string(),
        (Around::AfterFirst | Around::AfterLast, Some(i)) => text[i + sep.len()..].to_string(),
        (Around::BeforeFirst | Around::BeforeLast, None) => text.into_owned(),
        (Around::AfterFirst | Around::AfterLast, None) => String::new(),
    })
}

fn indented(
    v: &Value,
    amount: usize,
    prefix: Option<String>,
    kwargs: &Kwargs,
    first: bool,
    cap: Cap,
) -> Result<String, Error> {
    let prefix = kwargs.get::<Option<String>>("prefix")?.or(prefix);
    kwargs.assert_all_used()?;
    let text = cap.text(v)?;
    let unit = prefix.as_deref().unwrap_or(" ");
    let newline = if text.contains("\r\n") { "\r\n" } else { "\n" };
    // Every line break gains a pad; nindent also starts with a newline and a pad.
    let pad_len = unit.len().checked_mul(amount);
    cap.check(pad_len)?;
    let pads = text.matches(newline).count() + usize::from(first);
    let extra = if first { newline.len() } else { 0 };
    let growth = pad_len.and_then(|p| p.checked_mul(pads));
    cap.check(growth.and_then(|g| g.checked_add(text.len() + extra)))?;
    let pad = unit.repeat(amount);
    let body = text.replace(newline, &format!("{newline}{pad}"));
    Ok(if first {
        format!("{newline}{pad}{body}")
    } else {
        body
    })
}

/// Kestra's `indent(n, prefix=' ')`: every line but the first gets `n` times the prefix.
pub(super) fn indent(
    v: &Value,
    amount: usize,
    prefix: Option<String>,
    kwargs: &Kwargs,
    cap: Cap,
) -> Result<String, Error> {
    indented(v, amount, prefix, kwargs, false, cap)
}

/// Kestra's `nindent(n, prefix=' ')`: a newline, then every line indented.
pub(super) fn nindent(
    v: &Value,
    amount: usize,
    prefix: Option<String>,
    kwargs: &Kwargs,
    cap: Cap,
) -> Result<String, Error> {
    indented(v, amount, prefix, kwargs, true, cap)
}

/// Lower-case, letters and digits kept, any other run of characters turned into one `-`.
pub(super) fn slugify(v: &Value, cap: Cap) -> Result<String, Error> {
    let text = cap.text(v)?;
    cap.check_growth(text.len(), CASE_GROWTH, || {
        mapped_len(&text, char::to_lowercase)
    })?;
    let mut out = String::new();
    for c in text.to_lowercase().chars() {
        if c.is_alphanumeric() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    Ok(out)
}

/// Kestra's `number`: a string parsed as an integer or a float (`type` may force one).
pub(super) fn number(v: &Value, kwargs: &Kwargs, cap: Cap) -> Result<Value, Error> {
    let kind: Option<String> = kwargs.get("type")?;
    kwargs.assert_all_used()?;
    if v.is_number() {
        return Ok(v.clone());
    }
    let text = cap.text(v)?;
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

    fn cap() -> Cap {
        Cap::new(1 << 20)
    }

    #[test]
    fn pebble_capitalize_and_title_keep_the_rest() {
        assert_eq!(capitalize(&s("hello WORLD"), cap()).unwrap(), "Hello WORLD");
        assert_eq!(
            title(&s("hello big wORLD"), cap()).unwrap(),
            "Hello Big WORLD"
        );
    }

    #[test]
    fn split_drops_trailing_empties_like_java() {
        assert_eq!(split(&s("a,b,,"), ",", None, cap()).unwrap(), ["a", "b"]);
        assert_eq!(
            split(&s("a,b,c"), ",", Some(2), cap()).unwrap(),
            ["a", "b,c"]
        );
        assert!(split(&s("a"), "", None, cap()).is_err());
    }

    #[test]
    fn abbreviate_counts_the_ellipsis() {
        assert_eq!(
            abbreviate(&s("this is a long sentence."), 7, cap()).unwrap(),
            "this..."
        );
        assert_eq!(abbreviate(&s("short"), 7, cap()).unwrap(), "short");
        assert_eq!(abbreviate(&s("ééééé"), 2, cap()).unwrap(), "éé");
    }

    #[test]
    fn substrings_follow_commons_lang() {
        let cases = [
            ("a.b.c", Around::BeforeFirst, "a"),
            ("abc", Around::BeforeFirst, "abc"),
            ("a.b.c", Around::AfterFirst, "b.c"),
            ("abc", Around::AfterFirst, ""),
            ("a.b.c", Around::BeforeLast, "a.b"),
            ("a.b.c", Around::AfterLast, "c"),
        ];
        for (text, around, expected) in cases {
            assert_eq!(
                substring(&s(text), &s("."), around, cap()).unwrap(),
                expected
            );
        }
    }

    #[test]
    fn indent_and_nindent() {
        let none = || Kwargs::from_iter(Vec::<(&str, Value)>::new());
        assert_eq!(
            indent(&s("a\nb"), 2, None, &none(), cap()).unwrap(),
            "a\n  b"
        );
        assert_eq!(
            nindent(&s("a\nb"), 2, Some("-".into()), &none(), cap()).unwrap(),
            "\n--a\n--b"
        );
    }

    #[test]
    fn slugify_collapses_separators() {
        assert_eq!(
            slugify(&s("  Hello, World! 2024 "), cap()).unwrap(),
            "hello-world-2024"
        );
    }
}
