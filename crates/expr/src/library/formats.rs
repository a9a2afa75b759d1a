//! YAML and Amazon Ion, in and out: Kestra's `yaml` filter and function, `toIon` and
//! `fromIon`. Writers check the text they build against the cap as it grows; error messages
//! name a position, never the input (it may be a secret).

use super::to_text;
use crate::error::function_error;
use crate::limits::{Cap, RECURSION_LIMIT};
use minijinja::Error;
use minijinja::value::{Value, ValueKind};

/// Text written under the cap.
struct Out {
    text: String,
    cap: Cap,
}

impl Out {
    fn new(cap: Cap) -> Self {
        Self {
            text: String::new(),
            cap,
        }
    }

    fn push(&mut self, s: &str) -> Result<(), Error> {
        self.cap.check(self.text.len().checked_add(s.len()))?;
        self.text.push_str(s);
        Ok(())
    }

    fn pad(&mut self, n: usize) -> Result<(), Error> {
        self.push(&" ".repeat(n))
    }
}

fn too_deep() -> Error {
    crate::limits::limit_error(format!(
        "The value nests lists and maps more than {RECURSION_LIMIT} levels deep."
    ))
}

fn entries(v: &Value) -> Result<Vec<(Value, Value)>, Error> {
    v.try_iter()?
        .map(|k| Ok((k.clone(), v.get_item(&k)?)))
        .collect()
}

/// Kestra's `yaml` filter (Jackson with `MINIMIZE_QUOTES` and `INDENT_ARRAYS`): block style, a
/// list's dashes indented by one, strings quoted only when YAML would read them otherwise, a
/// line break at the end; null is `null`.
pub(super) fn to_yaml(v: &Value, cap: Cap) -> Result<String, Error> {
    if v.is_none() || v.is_undefined() {
        return Ok("null".into());
    }
    let mut out = Out::new(cap);
    yaml_node(&mut out, v, 0, false, 0)?;
    Ok(out.text)
}

fn is_empty_collection(v: &Value) -> Option<&'static str> {
    match v.kind() {
        ValueKind::Seq | ValueKind::Iterable if v.len() == Some(0) => Some("[]"),
        ValueKind::Map if v.len() == Some(0) => Some("{}"),
        _ => None,
    }
}

/// Writes `v` as a block whose lines start at column `base`; `inline` when its first line
/// continues the current one (after `- `).
fn yaml_node(
    out: &mut Out,
    v: &Value,
    base: usize,
    inline: bool,
    depth: usize,
) -> Result<(), Error> {
    if depth > RECURSION_LIMIT {
        return Err(too_deep());
    }
    if let Some(empty) = is_empty_collection(v) {
        return out.push(&format!("{empty}\n"));
    }
    match v.kind() {
        ValueKind::Seq | ValueKind::Iterable => {
            for (i, item) in v.try_iter()?.enumerate() {
                if !(inline && i == 0) {
                    out.pad(base + 1)?;
                }
                out.push("- ")?;
                match item.kind() {
                    ValueKind::Map if is_empty_collection(&item).is_none() => {
                        yaml_node(out, &item, base + 3, true, depth + 1)?;
                    }
                    ValueKind::Seq | ValueKind::Iterable
                        if is_empty_collection(&item).is_none() =>
                    {
                        yaml_node(out, &item, base + 2, true, depth + 1)?;
                    }
                    _ => yaml_scalar_line(out, &item, base + 3)?,
                }
            }
        }
        ValueKind::Map => {
            for (i, (key, item)) in entries(v)?.into_iter().enumerate() {
                if !(inline && i == 0) {
                    out.pad(base)?;
                }
                out.push(&yaml_string(&to_text(&key)))?;
                out.push(":")?;
                match item.kind() {
                    _ if is_empty_collection(&item).is_some() => {
                        out.push(" ")?;
                        yaml_node(out, &item, base, true, depth + 1)?;
                    }
                    ValueKind::Map => {
                        out.push("\n")?;
                        yaml_node(out, &item, base + 2, false, depth + 1)?;
                    }
                    ValueKind::Seq | ValueKind::Iterable => {
                        out.push("\n")?;
                        yaml_node(out, &item, base, false, depth + 1)?;
                    }
                    _ => {
                        out.push(" ")?;
                        yaml_scalar_line(out, &item, base + 2)?;
                    }
                }
            }
        }
        _ => yaml_scalar_line(out, v, base + 2)?,
    }
    Ok(())
}

/// A scalar and its line break; a multi-line string as a literal block indented to `indent`.
fn yaml_scalar_line(out: &mut Out, v: &Value, indent: usize) -> Result<(), Error> {
    let text = match v.kind() {
        ValueKind::None | ValueKind::Undefined => "null".into(),
        ValueKind::String => {
            let s = v.as_str().unwrap_or_default();
            if let Some(lines) = literal_lines(s) {
                let chomp = if s.ends_with("\n\n") {
                    "+"
                } else if s.ends_with('\n') {
                    ""
                } else {
                    "-"
                };
                out.push(&format!("|{chomp}\n"))?;
                for line in lines {
                    if !line.is_empty() {
                        out.pad(indent)?;
                    }
                    out.push(line)?;
                    out.push("\n")?;
                }
                return Ok(());
            }
            yaml_string(s)
        }
        _ => to_text(v).into_owned(),
    };
    out.push(&text)?;
    out.push("\n")
}

/// The lines of a multi-line string a literal block can hold as they are.
fn literal_lines(s: &str) -> Option<Vec<&str>> {
    let body = s.trim_end_matches('\n');
    let fits = s.contains('\n')
        && !body.starts_with([' ', '\n'])
        && !s.chars().any(|c| c.is_control() && c != '\n');
    fits.then(|| body.split('\n').collect())
}

/// A YAML string, quoted when a reader would take it for something else.
fn yaml_string(s: &str) -> String {
    const RESERVED: &[&str] = &[
        "true", "false", "yes", "no", "y", "n", "on", "off", "null", "~",
    ];
    let needs_quotes = s.is_empty()
        || RESERVED.iter().any(|r| r.eq_ignore_ascii_case(s))
        || s.parse::<f64>().is_ok()
        || s.starts_with([
            '-', '?', ':', ',', '[', ']', '{', '}', '#', '&', '*', '!', '|', '>', '\'', '"', '%',
            '@', '`', ' ', '\t',
        ])
        || s.ends_with([' ', '\t', ':'])
        || s.contains(": ")
        || s.contains(" #")
        || s.chars().any(char::is_control);
    if needs_quotes {
        // A JSON string is a valid YAML double-quoted string.
        serde_json::to_string(s).unwrap_or_else(|_| String::from("\"\""))
    } else {
        s.to_string()
    }
}

/// Kestra's `yaml(text)` function: the value a YAML document holds.
pub(super) fn from_yaml(v: Value, cap: Cap) -> Result<Value, Error> {
    let Some(text) = v.as_str() else {
        return Err(function_error(
            "The 'yaml' function expects an argument 'yaml' with type string.",
        ));
    };
    cap.check(Some(text.len()))?;
    let parsed: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).map_err(|e| {
        let at = e
            .location()
            .map(|l| format!(" at line {} column {}", l.line(), l.column()))
            .unwrap_or_default();
        function_error(format!("The 'yaml' function got invalid YAML{at}."))
    })?;
    let value = Value::from_serialize(&parsed);
    // Aliases may repeat a part of the document: the result is checked, not the text alone.
    cap.json(&value)?;
    Ok(value)
}

/// Kestra's `toIon` (Jackson's Ion writer): compact Ion text; null is `null`.
pub(super) fn to_ion(v: &Value, cap: Cap) -> Result<String, Error> {
    let mut out = Out::new(cap);
    ion_node(&mut out, v, 0)?;
    Ok(out.text)
}

fn ion_node(out: &mut Out, v: &Value, depth: usize) -> Result<(), Error> {
    if depth > RECURSION_LIMIT {
        return Err(too_deep());
    }
    match v.kind() {
        ValueKind::None | ValueKind::Undefined => out.push("null"),
        ValueKind::Bool => out.push(if v.is_true() { "true" } else { "false" }),
        ValueKind::Number if v.is_integer() => out.push(&v.to_string()),
        ValueKind::Number => out.push(&ion_float(f64::try_from(v.clone()).unwrap_or(f64::NAN))),
        ValueKind::Seq | ValueKind::Iterable => {
            out.push("[")?;
            for (i, item) in v.try_iter()?.enumerate() {
                if i > 0 {
                    out.push(",")?;
                }
                ion_node(out, &item, depth + 1)?;
            }
            out.push("]")
        }
        ValueKind::Map => {
            out.push("{")?;
            for (i, (key, item)) in entries(v)?.into_iter().enumerate() {
                if i > 0 {
                    out.push(",")?;
                }
                out.push(&ion_symbol(&to_text(&key)))?;
                out.push(":")?;
                ion_node(out, &item, depth + 1)?;
            }
            out.push("}")
        }
        _ => out.push(&ion_string(&to_text(v), '"')),
    }
}

/// A float as Ion's text writer prints it: Java's `Double.toString`, with `e` for its exponent
/// (`1.5e0`, `1e0`, `1.0e10`).
fn ion_float(d: f64) -> String {
    if d.is_nan() {
        return "nan".into();
    }
    if d.is_infinite() {
        return if d > 0.0 { "+inf" } else { "-inf" }.into();
    }
    if d == 0.0 {
        return if d.is_sign_negative() { "-0e0" } else { "0e0" }.into();
    }
    let java = java_double(d);
    if let Some(whole) = java.strip_suffix(".0") {
        format!("{whole}e0")
    } else if java.contains('E') {
        java.replace('E', "e")
    } else {
        format!("{java}e0")
    }
}

/// Java's `Double.toString`: plain between 10^-3 and 10^7, else scientific (`1.0E10`).
fn java_double(d: f64) -> String {
    let abs = d.abs();
    if (1e-3..1e7).contains(&abs) {
        let s = d.to_string();
        if s.contains('.') { s } else { format!("{s}.0") }
    } else {
        let s = format!("{d:e}");
        let (mantissa, exponent) = s.split_once('e').unwrap_or((&s, "0"));
        let mantissa = if mantissa.contains('.') {
            mantissa.to_string()
        } else {
            format!("{mantissa}.0")
        };
        format!("{mantissa}E{exponent}")
    }
}

/// A field name: bare when it is an identifier, else quoted.
fn ion_symbol(s: &str) -> String {
    let identifier = s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
        && !["null", "true", "false", "nan"].contains(&s);
    if identifier {
        s.to_string()
    } else {
        ion_string(s, '\'')
    }
}

fn ion_string(s: &str, quote: char) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Kestra's `fromIon(text)`: the value an Ion text holds (null stays null). Timestamps are
/// kept as the text they are written as; annotations are dropped; S-expressions, blobs and
/// clobs are refused.
pub(super) fn from_ion(v: Value, cap: Cap) -> Result<Value, Error> {
    if v.is_none() {
        return Ok(v);
    }
    let Some(text) = v.as_str() else {
        return Err(function_error(
            "The 'fromIon' function expects an argument 'ion' with type string.",
        ));
    };
    cap.check(Some(text.len()))?;
    let mut reader = IonReader { text, pos: 0 };
    let value = reader.value(0)?;
    reader.skip_space()?;
    if reader.pos < text.len() {
        return Err(reader.error("more than one value"));
    }
    Ok(Value::from_serialize(value))
}

struct IonReader<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> IonReader<'a> {
    fn error(&self, what: &str) -> Error {
        function_error(format!(
            "The 'fromIon' function got invalid Ion: {what} at byte {}.",
            self.pos
        ))
    }

    fn rest(&self) -> &'a str {
        self.text.get(self.pos..).unwrap_or_default()
    }

    fn skip_space(&mut self) -> Result<(), Error> {
        loop {
            let rest = self.rest();
            let trimmed = rest.trim_start();
            self.pos += rest.len() - trimmed.len();
            if trimmed.starts_with("//") {
                self.pos += trimmed.find('\n').unwrap_or(trimmed.len());
            } else if trimmed.starts_with("/*") {
                let end = trimmed
                    .find("*/")
                    .ok_or_else(|| self.error("an unclosed comment"))?;
                self.pos += end + 2;
            } else {
                return Ok(());
            }
        }
    }

    fn eat(&mut self, s: &str) -> Result<bool, Error> {
        self.skip_space()?;
        let found = self.rest().starts_with(s);
        if found {
            self.pos += s.len();
        }
        Ok(found)
    }

    fn value(&mut self, depth: usize) -> Result<serde_json::Value, Error> {
        if depth > RECURSION_LIMIT {
            return Err(too_deep());
        }
        self.skip_space()?;
        let value = match self.rest().chars().next() {
            None => return Err(self.error("a missing value")),
            Some('{') if self.rest().starts_with("{{") => {
                return Err(self.error("a blob or clob, which kestrel does not read"));
            }
            Some('{') => {
                self.pos += 1;
                let mut map = serde_json::Map::new();
                while !self.eat("}")? {
                    if !map.is_empty() && !self.eat(",")? {
                        return Err(self.error("a missing `,` between fields"));
                    }
                    if self.eat("}")? {
                        break;
                    }
                    let key = self.symbol_or_string()?;
                    if !self.eat(":")? {
                        return Err(self.error("a missing `:` after a field name"));
                    }
                    map.insert(key, self.value(depth + 1)?);
                }
                serde_json::Value::Object(map)
            }
            Some('[') => {
                self.pos += 1;
                let mut items = Vec::new();
                while !self.eat("]")? {
                    if !items.is_empty() && !self.eat(",")? {
                        return Err(self.error("a missing `,` between items"));
                    }
                    if self.eat("]")? {
                        break;
                    }
                    items.push(self.value(depth + 1)?);
                }
                serde_json::Value::Array(items)
            }
            Some('(') => return Err(self.error("an S-expression, which kestrel does not read")),
            Some('"' | '\'') => serde_json::Value::String(self.symbol_or_string()?),
            Some(c) if c.is_ascii_digit() || c == '-' || c == '+' => self.number()?,
            Some(_) => {
                let word = self.symbol_or_string()?;
                match word.as_str() {
                    "true" => serde_json::Value::Bool(true),
                    "false" => serde_json::Value::Bool(false),
                    "null" => {
                        // `null.string` and its kin are typed nulls.
                        if self.rest().starts_with('.') {
                            self.pos += 1;
                            self.symbol_or_string()?;
                        }
                        serde_json::Value::Null
                    }
                    _ => serde_json::Value::String(word),
                }
            }
        };
        // An annotation (`name::value`) is dropped: the value follows.
        if self.rest().starts_with("::") {
            self.pos += 2;
            return self.value(depth + 1);
        }
        Ok(value)
    }

    /// An identifier, a quoted symbol `'...'`, a string `"..."` or long strings `'''...'''`.
    fn symbol_or_string(&mut self) -> Result<String, Error> {
        self.skip_space()?;
        let rest = self.rest();
        if rest.starts_with("'''") {
            let mut out = String::new();
            while self.rest().starts_with("'''") {
                self.pos += 3;
                out.push_str(&self.quoted("'''")?);
                self.skip_space()?;
            }
            return Ok(out);
        }
        for quote in ["\"", "'"] {
            if rest.starts_with(quote) {
                self.pos += 1;
                return self.quoted(quote);
            }
        }
        let len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '$'))
            .unwrap_or(rest.len());
        if len == 0 {
            return Err(self.error("an unexpected character"));
        }
        self.pos += len;
        Ok(rest[..len].to_string())
    }

    /// The text up to `close`, escapes resolved.
    fn quoted(&mut self, close: &str) -> Result<String, Error> {
        let mut out = String::new();
        loop {
            let rest = self.rest();
            if rest.starts_with(close) {
                self.pos += close.len();
                return Ok(out);
            }
            let mut chars = rest.chars();
            let c = chars
                .next()
                .ok_or_else(|| self.error("an unclosed string"))?;
            self.pos += c.len_utf8();
            if c != '\\' {
                out.push(c);
                continue;
            }
            let e = chars
                .next()
                .ok_or_else(|| self.error("an unclosed string"))?;
            self.pos += e.len_utf8();
            let unicode = |reader: &mut Self, digits: usize| {
                let hex = reader.rest().get(..digits).unwrap_or_default().to_string();
                reader.pos += digits;
                u32::from_str_radix(&hex, 16)
                    .ok()
                    .and_then(char::from_u32)
                    .ok_or_else(|| reader.error("an invalid escape"))
            };
            out.push(match e {
                'n' => '\n',
                't' => '\t',
                'r' => '\r',
                '0' => '\0',
                'x' => unicode(self, 2)?,
                'u' => unicode(self, 4)?,
                'U' => unicode(self, 8)?,
                '\n' => continue,
                other => other,
            });
        }
    }

    /// An integer, a decimal, a float; a timestamp is kept as its text.
    fn number(&mut self) -> Result<serde_json::Value, Error> {
        let rest = self.rest();
        let len = rest
            .find(|c: char| {
                !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-' | '+'))
            })
            .unwrap_or(rest.len());
        let token = rest[..len].trim_end_matches(':').to_string();
        self.pos += token.len();
        if token.as_bytes().get(4) == Some(&b'-') || token.ends_with('T') {
            return Ok(serde_json::Value::String(token));
        }
        let plain = token.replace('_', "");
        if let Ok(n) = plain.parse::<i64>() {
            return Ok(serde_json::Value::from(n));
        }
        let hex = plain
            .strip_prefix("0x")
            .or_else(|| plain.strip_prefix("0X"))
            .and_then(|h| i64::from_str_radix(h, 16).ok());
        if let Some(n) = hex {
            return Ok(serde_json::Value::from(n));
        }
        plain
            .replace(['d', 'D'], "e")
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(serde_json::Value::Number)
            .ok_or_else(|| self.error("an invalid number"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cap() -> Cap {
        Cap::new(1 << 20)
    }

    fn json(text: &str) -> Value {
        Value::from_serialize(serde_json::from_str::<serde_json::Value>(text).unwrap())
    }

    #[test]
    fn yaml_follows_jacksons_layout() {
        assert_eq!(to_yaml(&Value::from("string"), cap()).unwrap(), "string\n");
        assert_eq!(
            to_yaml(&json(r#"["a", 1, 1.5]"#), cap()).unwrap(),
            " - a\n - 1\n - 1.5\n"
        );
        assert_eq!(
            to_yaml(&json(r#"{"a": {"b": [1, {"c": "true"}]}, "d": []}"#), cap()).unwrap(),
            "a:\n  b:\n   - 1\n   - c: \"true\"\nd: []\n"
        );
        assert_eq!(
            to_yaml(&Value::from("a\nb"), cap()).unwrap(),
            "|-\n  a\n  b\n"
        );
    }

    #[test]
    fn yaml_is_read_back() {
        let v = from_yaml(Value::from("a: 1\nb: [x, 'y']\n"), cap()).unwrap();
        assert_eq!(cap().json(&v).unwrap(), r#"{"a":1,"b":["x","y"]}"#);
        assert!(from_yaml(Value::from("a: [1"), cap()).is_err());
    }

    #[test]
    fn ion_in_and_out() {
        assert_eq!(
            to_ion(&json(r#"{"a b": [1, 1.5, 2.0, "s"], "c": null}"#), cap()).unwrap(),
            r#"{'a b':[1,1.5e0,2e0,"s"],c:null}"#
        );
        assert_eq!(ion_float(1.1230000257492065), "1.1230000257492065e0");
        assert_eq!(ion_float(1e10), "1.0e10");
        let v = from_ion(
            Value::from(
                "{date:2024-04-21T23:00:00.000Z, title:\"Main_Page\",views:109787, a::x: 'q'}",
            ),
            cap(),
        );
        assert!(v.is_err(), "an annotation on a field name is not Ion");
        let v = from_ion(
            Value::from("/* c */ {date:2024-04-21T23:00:00.000Z, title:\"Main_Page\",views:109787, l:[1.5, null.int, a::b]}"),
            cap(),
        )
        .unwrap();
        assert_eq!(
            cap().json(&v).unwrap(),
            r#"{"date":"2024-04-21T23:00:00.000Z","title":"Main_Page","views":109787,"l":[1.5,null,"b"]}"#
        );
        assert!(from_ion(Value::from("{not: ion"), cap()).is_err());
    }
}
