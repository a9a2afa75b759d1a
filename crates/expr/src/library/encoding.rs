//! Encodings (Base64, URL), JSON in and out, `jq` paths, and digests.
//!
//! Error messages here never quote the input: it may be a secret.

use crate::error::function_error;
use crate::limits::Cap;
use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use minijinja::Error;
use minijinja::value::Value;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sha2::Digest;

/// Standard alphabet; on decoding, padding is optional (as Java's decoder has it).
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

pub(super) fn base64_encode(v: &Value, cap: Cap) -> Result<String, Error> {
    let text = cap.text(v)?;
    cap.check(base64::encoded_len(text.len(), true))?;
    Ok(BASE64.encode(text.as_bytes()))
}

pub(super) fn base64_decode(v: &Value, cap: Cap) -> Result<String, Error> {
    // The decoder's own message names the offending character: it may belong to a secret.
    let bytes = BASE64.decode(cap.text(v)?.trim().as_bytes()).map_err(|_| {
        function_error(
            "The 'base64decode' filter got input that is not valid Base64 (standard alphabet).",
        )
    })?;
    String::from_utf8(bytes).map_err(|_| {
        function_error("The 'base64decode' filter decoded bytes that are not UTF-8 text.")
    })
}

/// What Java's `URLEncoder` leaves alone: letters, digits, `.`, `-`, `*`, `_`.
const URL_KEEP: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'.')
    .remove(b'-')
    .remove(b'*')
    .remove(b'_');

/// Java's `URLEncoder.encode(s, UTF_8)`: a space becomes `+`.
pub(super) fn url_encode(v: &Value, cap: Cap) -> Result<String, Error> {
    let text = cap.text(v)?;
    // Each byte becomes at most three (`%XX`).
    cap.check_growth(text.len(), 3, || {
        utf8_percent_encode(&text, URL_KEEP).map(str::len).sum()
    })?;
    Ok(utf8_percent_encode(&text, URL_KEEP)
        .to_string()
        .replace("%20", "+"))
}

/// Java's `URLDecoder.decode(s, UTF_8)`: `+` is a space.
pub(super) fn url_decode(v: &Value, cap: Cap) -> Result<String, Error> {
    let text = cap.text(v)?.replace('+', " ");
    let bad = || function_error("The 'urldecode' filter got an invalid percent-encoding.");
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(pos) = bytes
        .get(i..)
        .and_then(|b| b.iter().position(|&c| c == b'%'))
    {
        let hex = bytes.get(i + pos + 1..i + pos + 3).ok_or_else(bad)?;
        if !hex.iter().all(u8::is_ascii_hexdigit) {
            return Err(bad());
        }
        i += pos + 3;
    }
    percent_encoding::percent_decode_str(&text)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| bad())
}

/// `fromJson(s)` (and the `json` function): the value `s` holds. A non-string is returned as is.
/// The parsed value takes a few times the text's size at most, and the text is within the cap.
pub(super) fn from_json(v: Value, cap: Cap) -> Result<Value, Error> {
    let Some(text) = v.as_str() else {
        return Ok(v);
    };
    cap.check(Some(text.len()))?;
    let parsed: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        function_error(format!(
            "The 'fromJson' function got a string that is not valid JSON: {e}."
        ))
    })?;
    Ok(Value::from_serialize(parsed))
}

/// Kestra's `jq(expression)` for a path (`.`, `.a.b[0]`, `.["k"]`, `.a[]`): the list of its
/// results, as Kestra's filter always returns a list (`| jq('.a') | first`); `[]` iterates a
/// list's items or a map's values. A string input holding JSON is parsed first; null stays null.
pub(super) fn jq(v: &Value, path: &str, cap: Cap) -> Result<Value, Error> {
    if v.is_none() {
        return Ok(v.clone());
    }
    // Read through its text (the string, or the JSON of a list or map), which the cap bounds.
    let text = cap.text(v)?;
    let input = match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(parsed) => parsed,
        Err(_) => serde_json::to_value(v)
            .map_err(|e| function_error(format!("The 'jq' filter cannot read its input: {e}.")))?,
    };
    let mut current = vec![&input];
    for step in jq_steps(path)? {
        let mut next = Vec::with_capacity(current.len());
        for value in current {
            match (&step, value) {
                (JqStep::Key(_) | JqStep::Index(_), serde_json::Value::Null) => {
                    next.push(&serde_json::Value::Null);
                }
                (JqStep::Key(k), serde_json::Value::Object(map)) => {
                    next.push(map.get(k).unwrap_or(&serde_json::Value::Null));
                }
                (JqStep::Index(i), serde_json::Value::Array(items)) => {
                    let len = i64::try_from(items.len()).unwrap_or(i64::MAX);
                    let at = if *i < 0 { len + i } else { *i };
                    next.push(
                        usize::try_from(at)
                            .ok()
                            .and_then(|at| items.get(at))
                            .unwrap_or(&serde_json::Value::Null),
                    );
                }
                (JqStep::Iterate, serde_json::Value::Array(items)) => next.extend(items),
                (JqStep::Iterate, serde_json::Value::Object(map)) => next.extend(map.values()),
                (step, other) => {
                    let what = match step {
                        JqStep::Key(_) => "applies a key to",
                        JqStep::Index(_) => "applies an index to",
                        JqStep::Iterate => "iterates over",
                    };
                    return Err(function_error(format!(
                        "The 'jq' path '{path}' {what} a value of type {}.",
                        json_type(other)
                    )));
                }
            }
        }
        current = next;
    }
    Ok(Value::from_serialize(current))
}

fn json_type(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

enum JqStep {
    Key(String),
    Index(i64),
    /// `[]`: every item of a list, every value of a map.
    Iterate,
}

/// Parses `.a.b[0]["c"][]` into steps.
fn jq_steps(path: &str) -> Result<Vec<JqStep>, Error> {
    let bad = || {
        function_error(format!(
            "The 'jq' filter supports a path such as '.a.b[0]' or '.a[]' (no pipes or functions); '{path}' is not one."
        ))
    };
    let mut rest = path.trim().strip_prefix('.').ok_or_else(bad)?;
    let mut steps = Vec::new();
    while !rest.is_empty() {
        if let Some(inner) = rest.strip_prefix('[') {
            let end = inner.find(']').ok_or_else(bad)?;
            let key = inner[..end].trim();
            steps.push(match serde_json::from_str::<serde_json::Value>(key) {
                _ if key.is_empty() => JqStep::Iterate,
                Ok(serde_json::Value::String(s)) => JqStep::Key(s),
                Ok(serde_json::Value::Number(n)) => JqStep::Index(n.as_i64().ok_or_else(bad)?),
                _ => return Err(bad()),
            });
            rest = &inner[end + 1..];
        } else {
            let name_end = rest.find(['.', '[']).unwrap_or(rest.len());
            let name = &rest[..name_end];
            let valid = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '_' || c == '-');
            if !valid {
                return Err(bad());
            }
            steps.push(JqStep::Key(name.to_string()));
            rest = &rest[name_end..];
        }
        rest = rest.strip_prefix('.').unwrap_or(rest);
    }
    Ok(steps)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn digest<D: Digest>(v: &Value, cap: Cap) -> Result<String, Error> {
    Ok(hex(&D::digest(cap.text(v)?.as_bytes())))
}

pub(super) fn sha1(v: &Value, cap: Cap) -> Result<String, Error> {
    digest::<sha1::Sha1>(v, cap)
}

pub(super) fn sha256(v: &Value, cap: Cap) -> Result<String, Error> {
    digest::<sha2::Sha256>(v, cap)
}

pub(super) fn sha512(v: &Value, cap: Cap) -> Result<String, Error> {
    digest::<sha2::Sha512>(v, cap)
}

pub(super) fn md5(v: &Value, cap: Cap) -> Result<String, Error> {
    digest::<md5::Md5>(v, cap)
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

    fn to_json(v: Value) -> Result<String, Error> {
        cap().json(&v)
    }

    #[test]
    fn base64_round_trip_and_optional_padding() {
        assert_eq!(base64_encode(&s("test"), cap()).unwrap(), "dGVzdA==");
        assert_eq!(base64_decode(&s("dGVzdA"), cap()).unwrap(), "test");
        let err = base64_decode(&s("not base64!"), cap()).unwrap_err();
        assert!(err.to_string().contains("not valid Base64"), "{err}");
        assert!(!err.to_string().contains("not base64!"), "{err}");
    }

    #[test]
    fn url_encoding_is_javas() {
        assert_eq!(
            url_encode(&s("a b&c=d/é*"), cap()).unwrap(),
            "a+b%26c%3Dd%2F%C3%A9*"
        );
        assert_eq!(url_decode(&s("a+b%26c%3dd"), cap()).unwrap(), "a b&c=d");
        assert!(url_decode(&s("%zz"), cap()).is_err());
        assert!(url_decode(&s("%4"), cap()).is_err());
    }

    #[test]
    fn digests_are_lower_hex() {
        assert_eq!(
            md5(&s(""), cap()).unwrap(),
            "d41d8cd98f00b204e9800998ecf8427e"
        );
        assert_eq!(
            sha256(&s("password"), cap()).unwrap(),
            "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"
        );
        assert_eq!(
            sha1(&s("abc"), cap()).unwrap(),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
    }

    #[test]
    fn json_in_and_out() {
        let v = from_json(s(r#"{"b": 1, "a": [true, null]}"#), cap()).unwrap();
        assert_eq!(v.kind(), minijinja::value::ValueKind::Map);
        assert_eq!(to_json(v).unwrap(), r#"{"b":1,"a":[true,null]}"#);
        assert!(from_json(s("{"), cap()).is_err());
    }

    #[test]
    fn jq_single_paths() {
        let doc = from_json(s(r#"{"a": {"b": [10, 20]}, "x-y": "z"}"#), cap()).unwrap();
        let q = |p: &str| jq(&doc, p, cap()).map(|v| to_json(v).unwrap());
        assert_eq!(q(".a.b[1]").unwrap(), "[20]");
        assert_eq!(q(".a.b[-1]").unwrap(), "[20]");
        assert_eq!(q(".[\"x-y\"]").unwrap(), r#"["z"]"#);
        assert_eq!(q(".missing.deeper").unwrap(), "[null]");
        assert_eq!(
            q(".").unwrap().len(),
            to_json(doc.clone()).unwrap().len() + 2
        );
        assert!(q(".a.b.c").is_err());
        assert_eq!(q(".a.b[]").unwrap(), "[10,20]");
        assert_eq!(q(".a[][]").unwrap(), "[10,20]");
        assert!(q(".[\"x-y\"][]").is_err());
        assert!(q("a | b").is_err());
        assert_eq!(
            jq(&s(r#"{"k": 1}"#), ".k", cap())
                .map(|v| to_json(v).unwrap())
                .unwrap(),
            "[1]"
        );
    }
}
