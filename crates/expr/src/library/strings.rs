//! String filters, with Pebble's and Kestra's semantics where they differ from Jinja's.
//!
//! Each filter checks the size of what it builds against the [`Cap`] before building it.

use crate::error::function_error;
use crate::limits::Cap;
use crate::limits::RECURSION_LIMIT;
use minijinja::Error;
use minijinja::value::{Value, ValueKind};

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

/// The most bytes a compiled `replace(..., regexp=true)` pattern may take.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// `text` with every match of the regular expression `pattern` replaced by `to` (`$1` names a
/// group), checked against the cap as the result grows.
fn replace_regex(text: &str, pattern: &str, to: &str, cap: Cap) -> Result<String, Error> {
    // The regex crate's message quotes the pattern, which the template wrote: no secret.
    let re = regex::RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| {
            // The parser's message draws the pattern over lines; its last line says what is wrong.
            let why = match e {
                regex::Error::CompiledTooBig(_) => "it is too big".to_string(),
                other => other
                    .to_string()
                    .lines()
                    .last()
                    .unwrap_or_default()
                    .trim_start_matches("error: ")
                    .to_string(),
            };
            function_error(format!(
                "The 'replace' filter got an invalid regular expression ({why})."
            ))
        })?;
    let to = java_replacement(to, re.captures_len())?;
    let mut out = String::new();
    let mut last = 0;
    for caps in re.captures_iter(text) {
        let Some(whole) = caps.get(0) else { continue };
        out.push_str(&text[last..whole.start()]);
        caps.expand(&to, &mut out);
        last = whole.end();
        cap.check(out.len().checked_add(text.len() - last))?;
    }
    out.push_str(&text[last..]);
    Ok(out)
}

/// Java's `replaceAll` replacement (`$1`, `${name}`, `\\$` for a `$`) in the regex crate's
/// syntax: `$12` is group 12 only when there are that many groups (else group 1, then `2`), as
/// in Java, and a literal `$` is `$$`.
fn java_replacement(to: &str, groups: usize) -> Result<String, Error> {
    let bad = || {
        function_error(
            "The 'replace' filter got an invalid replacement: `$` is followed by a group number or `{name}` (write `\\$` for a `$`).",
        )
    };
    let mut out = String::with_capacity(to.len() + 4);
    let mut chars = to.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('$') => out.push_str("$$"),
                Some(c) => out.push(c),
                None => return Err(bad()),
            },
            '$' if chars.peek() == Some(&'{') => {
                out.push('$');
                for c in chars.by_ref() {
                    out.push(c);
                    if c == '}' {
                        break;
                    }
                }
            }
            '$' => {
                let mut group = chars.next().and_then(|c| c.to_digit(10)).ok_or_else(bad)? as usize;
                while let Some(digit) = chars.peek().and_then(|c| c.to_digit(10)) {
                    let longer = group * 10 + digit as usize;
                    if longer >= groups {
                        break;
                    }
                    group = longer;
                    chars.next();
                }
                if group >= groups {
                    return Err(function_error(format!(
                        "The 'replace' filter's replacement names group {group}, which the pattern does not have."
                    )));
                }
                out.push_str(&format!("${{{group}}}"));
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

/// `v` with `f` applied to each string inside it: a string itself, the items of a list and the
/// values of a map at any depth (keys kept), anything else by its text. Kestra's `replace` and
/// `escapeChar` treat lists and maps this way.
fn map_strings(
    v: &Value,
    depth: usize,
    cap: Cap,
    f: &dyn Fn(&str) -> Result<String, Error>,
) -> Result<Value, Error> {
    if depth > RECURSION_LIMIT {
        return Err(crate::limits::limit_error(format!(
            "The value nests lists and maps more than {RECURSION_LIMIT} levels deep."
        )));
    }
    match v.kind() {
        ValueKind::Seq | ValueKind::Iterable => v
            .try_iter()?
            .map(|item| map_strings(&item, depth + 1, cap, f))
            .collect(),
        ValueKind::Map => v
            .try_iter()?
            .map(|key| {
                let item = v.get_item(&key)?;
                Ok((key, map_strings(&item, depth + 1, cap, f)?))
            })
            .collect(),
        _ => Ok(Value::from(f(&cap.text(v)?)?)),
    }
}

/// Kestra's `replace({'from': 'to', ...}, regexp=false)`: each pair in turn, literally or as a
/// regular expression (`regexp=true`). Also `replace('from', 'to')`. A list or a map has each
/// string inside replaced.
pub(super) fn replace(
    v: &Value,
    pairs: &Value,
    second: Option<Value>,
    cap: Cap,
) -> Result<Value, Error> {
    if let Some(to) = second.as_ref().filter(|s| s.kind() == ValueKind::String) {
        let (from, to) = (cap.text(pairs)?, cap.text(to)?);
        return map_strings(v, 0, cap, &|text| {
            if from.is_empty() {
                Ok(text.to_string())
            } else {
                replace_all(text, &from, &to, cap)
            }
        });
    }
    let regexp = match &second {
        None => false,
        Some(flag) if flag.kind() == ValueKind::Bool => flag.is_true(),
        Some(_) => {
            return Err(function_error(
                "The 'replace' filter expects 'regexp' to be true or false.",
            ));
        }
    };
    if pairs.kind() != ValueKind::Map {
        return Err(function_error(
            "The 'replace' filter expects a map of replacements, e.g. replace({'a': 'b'}).",
        ));
    }
    let mut replacements = Vec::new();
    for key in pairs.try_iter()? {
        let to = pairs.get_item(&key)?;
        replacements.push((cap.text(&key)?.into_owned(), cap.text(&to)?.into_owned()));
    }
    map_strings(v, 0, cap, &|text| {
        let mut text = text.to_string();
        for (from, to) in &replacements {
            text = if regexp {
                replace_regex(&text, from, to, cap)?
            } else if from.is_empty() {
                text
            } else {
                replace_all(&text, from, to, cap)?
            };
        }
        Ok(text)
    })
}

/// Kestra's `escapeChar(type)`: `single` escapes `'` as `\'`, `double` escapes `"` as `\"`,
/// `shell` writes `'` as `'\''` (for a single-quoted shell word). Lists and maps have each
/// string inside escaped.
pub(super) fn escape_char(v: &Value, kind: Option<String>, cap: Cap) -> Result<Value, Error> {
    let Some(kind) = kind else {
        return Err(function_error(
            "The 'escapeChar' filter expects an argument 'type'.",
        ));
    };
    let (from, to) = match kind.to_ascii_lowercase().as_str() {
        "single" => ("'", "\\'"),
        "double" => ("\"", "\\\""),
        "shell" => ("'", "'\\''"),
        _ => {
            return Err(function_error(
                "The 'escapeChar' filter expects the value of 'type' to be either 'single', 'double', or 'shell'.",
            ));
        }
    };
    if v.is_none() || v.is_undefined() {
        return Ok(Value::from(()));
    }
    map_strings(v, 0, cap, &|text| replace_all(text, from, to, cap))
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

/// Java's line separator of `text` as Kestra's indent filters find it.
fn line_separator(text: &str) -> &'static str {
    ["\r\n", "\n\r", "\n", "\r"]
        .into_iter()
        .find(|sep| text.contains(sep))
        .unwrap_or("\n")
}

/// Kestra's `indent(amount, prefix=' ')`: every line but the first gets `amount` prefixes;
/// `nindent` (`first`) also starts with a line break, so every line is indented.
pub(super) fn indent(
    v: &Value,
    name: &str,
    amount: Option<Value>,
    prefix: Option<String>,
    first: bool,
    cap: Cap,
) -> Result<Value, Error> {
    if v.is_none() || v.is_undefined() {
        return Ok(Value::from(()));
    }
    let text = cap.text(v)?;
    if text.is_empty() {
        return Ok(Value::from(""));
    }
    let amount = amount
        .filter(|a| !a.is_none() && !a.is_undefined())
        .ok_or_else(|| {
            function_error(format!(
                "The '{name}' filter expects an integer as argument 'amount'."
            ))
        })?
        .as_i64()
        .and_then(|a| usize::try_from(a).ok())
        .ok_or_else(|| {
            function_error(format!(
                "The '{name}' filter expects a positive integer >=0 as argument 'amount'."
            ))
        })?;
    let unit = prefix.as_deref().unwrap_or(" ");
    let newline = line_separator(&text);
    let pad_len = unit.len().checked_mul(amount);
    cap.check(pad_len)?;
    let pads = text.matches(newline).count() + usize::from(first);
    let extra = if first { newline.len() } else { 0 };
    let growth = pad_len.and_then(|p| p.checked_mul(pads));
    cap.check(growth.and_then(|g| g.checked_add(text.len() + extra)))?;
    let pad = unit.repeat(amount);
    let body = text.replace(newline, &format!("{newline}{pad}"));
    Ok(Value::from(if first {
        format!("{newline}{pad}{body}")
    } else {
        body
    }))
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

/// Kestra's `number(type)`: a string parsed as an integer or a float (`type` may force one).
pub(super) fn number(v: &Value, kind: Option<String>, cap: Cap) -> Result<Value, Error> {
    if v.is_number() || v.is_none() {
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
            "The 'number' filter does not know the type '{other}' (INT, LONG, FLOAT, DOUBLE, BIGDECIMAL, BIGINTEGER)."
        ))),
    }
}

/// Java's `DecimalFormat` pattern, the subset kestrel writes: `#,##0.00`, `#.##`, `0.000`.
struct DecimalPattern {
    min_int: usize,
    grouping: Option<usize>,
    min_frac: usize,
    max_frac: usize,
}

impl DecimalPattern {
    fn parse(pattern: &str) -> Result<Self, Error> {
        let bad = || {
            function_error(format!(
                "The 'numberFormat' filter supports patterns of '#', '0', ',' and '.' only; '{pattern}' is not one."
            ))
        };
        let (int, frac) = pattern.split_once('.').unwrap_or((pattern, ""));
        if !int.chars().all(|c| matches!(c, '#' | '0' | ','))
            || !frac.chars().all(|c| matches!(c, '#' | '0'))
            || int.is_empty() && frac.is_empty()
        {
            return Err(bad());
        }
        let grouping = int.rfind(',').map(|at| int.len() - at - 1);
        Ok(Self {
            min_int: int.matches('0').count(),
            grouping: grouping.filter(|g| *g > 0),
            min_frac: frac.matches('0').count(),
            max_frac: frac.len(),
        })
    }

    /// `n` written with this pattern; rounding half-even, as `DecimalFormat` does.
    fn format(&self, n: f64) -> String {
        let fixed = format!("{:.*}", self.max_frac, n.abs());
        let (int, frac) = fixed.split_once('.').unwrap_or((&fixed, ""));
        let mut frac = frac.to_string();
        while frac.len() > self.min_frac && frac.ends_with('0') {
            frac.pop();
        }
        let int = int.trim_start_matches('0');
        let int = format!("{int:0>width$}", width = self.min_int);
        let int = match self.grouping {
            Some(size) => group(&int, size),
            None => int,
        };
        // Java writes `.5` for `#.#`, but `0` when no digit is left at all.
        let int = if int.is_empty() && frac.is_empty() {
            "0".to_string()
        } else {
            int
        };
        let sign = if n < 0.0 { "-" } else { "" };
        if frac.is_empty() {
            format!("{sign}{int}")
        } else {
            format!("{sign}{int}.{frac}")
        }
    }
}

/// `digits` with a `,` between every group of `size` from the right.
fn group(digits: &str, size: usize) -> String {
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(size) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Pebble's `numberFormat(format)`: a number written with a `DecimalFormat` pattern; without
/// one, `#,##0.###` (Java's default for the English locale).
pub(super) fn number_format(v: &Value, format: Option<String>, cap: Cap) -> Result<String, Error> {
    if v.is_none() || v.is_undefined() {
        return Ok(String::new());
    }
    let n = f64::try_from(v.clone())
        .ok()
        .filter(|_| v.is_number())
        .ok_or_else(|| function_error("The 'numberFormat' filter expects a number."))?;
    if !n.is_finite() {
        return Err(function_error(
            "The 'numberFormat' filter expects a finite number.",
        ));
    }
    let pattern = DecimalPattern::parse(format.as_deref().unwrap_or("#,##0.###"))?;
    // The integer digits (at most 309 for an f64), a comma per group, the fraction, the sign
    // and the point: a pattern longer than the cap is what could pass it.
    let digits = if n.abs() >= 1.0 {
        n.abs().log10().floor() as usize + 1
    } else {
        1
    };
    let int = digits.max(pattern.min_int);
    let commas = pattern.grouping.map_or(0, |size| int / size);
    cap.check(
        int.checked_add(commas)
            .and_then(|n| n.checked_add(pattern.max_frac))
            .and_then(|n| n.checked_add(2)),
    )?;
    Ok(pattern.format(n))
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
        let two = || Some(Value::from(2));
        assert_eq!(
            indent(&s("a\nb"), "indent", two(), None, false, cap()).unwrap(),
            s("a\n  b")
        );
        assert_eq!(
            indent(&s("a\rb"), "nindent", two(), Some("-".into()), true, cap()).unwrap(),
            s("\r--a\r--b")
        );
        assert!(indent(&s("a"), "indent", None, None, false, cap()).is_err());
    }

    #[test]
    fn regex_replacements_read_like_javas() {
        assert_eq!(java_replacement("-$1-", 2).unwrap(), "-${1}-");
        assert_eq!(java_replacement("$12", 2).unwrap(), "${1}2");
        assert_eq!(java_replacement("$12", 13).unwrap(), "${12}");
        assert_eq!(java_replacement("\\$1 ${x}", 2).unwrap(), "$$1 ${x}");
        assert!(java_replacement("$x", 2).is_err());
        let re = |t: &str, p: &str, to: &str| replace_regex(t, p, to, Cap::new(1 << 20)).unwrap();
        assert_eq!(re("aa1bb2", "(\\d)", "-$1x"), "aa-1xbb-2x");
    }

    #[test]
    fn number_format_follows_decimal_format() {
        let f = |n: f64, p: &str| DecimalPattern::parse(p).unwrap().format(n);
        assert_eq!(f(1.232654, "#.##"), "1.23");
        assert_eq!(f(1234567.891, "#,##0.00"), "1,234,567.89");
        assert_eq!(f(0.5, "0.000"), "0.500");
        assert_eq!(f(-0.001, "#.##"), "-0");
        assert_eq!(f(0.5, "#.#"), ".5");
        assert_eq!(f(2.0, "#,##0.###"), "2");
        assert!(DecimalPattern::parse("0.0E0").is_err());
    }

    #[test]
    fn slugify_collapses_separators() {
        assert_eq!(
            slugify(&s("  Hello, World! 2024 "), cap()).unwrap(),
            "hello-world-2024"
        );
    }
}
