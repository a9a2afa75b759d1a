//! `masker`: the mask registry and the forms it promises to find (docs/masking.md).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use kestrel_secrets::MaskRegistry;
use std::borrow::Cow;
use std::fmt::Write as _;

/// Reads secrets and a text from the input, registers the secrets, masks the text, and checks
/// what the masker promises.
///
/// The input: a first byte (the minimum length, 2 to 6; how many secrets, 1 to 4; which are
/// registered as derived values), then each secret as a length byte (0 to 47) and its bytes,
/// then the text. In the text, a NUL followed by any character is replaced by a registered
/// value or one of its encoded forms (picked by that character): raw, base64 (padded,
/// unpadded, wrapped at 76), percent-encoded (RFC 3986 in both cases, forms with `+`),
/// JSON-escaped (serde_json, `\u00e9`, `\u00E9`, `\/`, Go's `\u0026`), hex in both cases.
///
/// Panics when masking panics; when the masked text still holds a registered value (the value,
/// each of its lines, each JSON leaf of a secret, and their lines, as long as the minimum) or
/// one of the forms above of one, counting only texts as long as the minimum and holding no
/// `*` (the mask's own character, which may join a neighbouring `*` into a value); when
/// masking the masked text again changes it although no registered value holds a `*`; or when
/// `contains_secret`, `mask_bytes`, `mask_json` and `is_registered` disagree with `mask`.
pub fn masker(data: &[u8]) {
    let Some((&head, mut rest)) = data.split_first() else {
        return;
    };
    let min_length = 2 + usize::from(head % 5);
    let count = 1 + usize::from((head / 5) % 4);
    let derived = head / 20;
    let registry = MaskRegistry::new(min_length);
    let mut registered: Vec<String> = Vec::new();
    let mut stars = false;
    for i in 0..count {
        let Some((&len, tail)) = rest.split_first() else {
            break;
        };
        let (value, tail) = tail.split_at(usize::from(len % 48).min(tail.len()));
        rest = tail;
        let value = String::from_utf8_lossy(value).into_owned();
        let is_derived = derived & (1 << i) != 0;
        if is_derived {
            registry.register_derived(&value);
        } else {
            registry.register(&format!("KEY{i}"), &value);
        }
        let values = registered_values(&value, is_derived, min_length);
        stars |= values.iter().any(|value| value.contains('*'));
        registered.extend(values);
    }
    for value in &registered {
        assert!(registry.is_registered(value), "not registered: {value:?}");
    }
    let text = embed(&String::from_utf8_lossy(rest), &registered);
    let masked = registry.mask(&text);

    for value in &registered {
        for form in checked_forms(value) {
            if form.chars().count() >= min_length && !form.contains('*') {
                assert!(
                    !masked.contains(form.as_str()),
                    "{form:?} (of registered {value:?}) survives masking: {masked:?}"
                );
            }
        }
    }
    if !stars {
        let again = registry.mask(&masked);
        assert!(
            matches!(again, Cow::Borrowed(_)),
            "masking the masked text again changes it: {masked:?} -> {again:?}"
        );
    }
    let changed = matches!(masked, Cow::Owned(_));
    assert_eq!(
        registry.contains_secret(&text),
        changed,
        "contains_secret disagrees with mask on {text:?}"
    );
    match registry.mask_bytes(text.as_bytes()) {
        None => assert!(!changed, "mask_bytes found nothing in {text:?}"),
        Some(bytes) => assert_eq!(bytes, masked.as_bytes(), "mask_bytes differs from mask"),
    }
    let mut json = json_of(&text);
    registry.mask_json(&mut json);
    assert_eq!(json, json_of(&masked), "mask_json differs from mask");
}

/// `[text, {text: 1}]`: a string and a key.
fn json_of(text: &str) -> serde_json::Value {
    let mut object = serde_json::Map::new();
    object.insert(text.to_owned(), serde_json::Value::from(1));
    serde_json::Value::Array(vec![
        serde_json::Value::String(text.to_owned()),
        serde_json::Value::Object(object),
    ])
}

/// What registering `value` adds as values (not forms): the value and its lines and, for a
/// secret, its JSON leaves and their lines; those at least `min_length` characters long.
fn registered_values(value: &str, derived: bool, min_length: usize) -> Vec<String> {
    let long_enough = |text: &str| !text.is_empty() && text.chars().count() >= min_length;
    if !long_enough(value) {
        return Vec::new();
    }
    let mut strings = vec![value.to_owned()];
    if !derived {
        json_leaves(value, &mut strings);
    }
    let mut values = Vec::new();
    for string in strings {
        if string.contains(['\n', '\r']) {
            values.extend(string.split(['\n', '\r']).map(str::to_owned));
        }
        values.push(string);
    }
    values.retain(|text| long_enough(text));
    values
}

/// The string and number leaves of `value` when it is JSON (docs/masking.md: "each string and
/// number leaf, when the value is JSON"); numbers as serde_json prints them, and a whole float
/// also as an integer.
fn json_leaves(value: &str, leaves: &mut Vec<String>) {
    let starts_like_json = value
        .trim_start()
        .starts_with(|c: char| matches!(c, '{' | '[' | '"' | '-') || c.is_ascii_digit());
    if !starts_like_json {
        return;
    }
    let Ok(json) = serde_json::from_str::<serde_json::Value>(value) else {
        return;
    };
    let mut stack = vec![json];
    while let Some(node) = stack.pop() {
        match node {
            serde_json::Value::String(text) => leaves.push(text),
            serde_json::Value::Number(number) => {
                leaves.push(number.to_string());
                if let Some(float) = number
                    .as_f64()
                    .filter(|f| number.is_f64() && f.is_finite() && f.fract() == 0.0)
                {
                    leaves.push(format!("{float:.0}"));
                }
            }
            serde_json::Value::Array(items) => stack.extend(items),
            serde_json::Value::Object(map) => stack.extend(map.into_iter().map(|(_, v)| v)),
            serde_json::Value::Null | serde_json::Value::Bool(_) => {}
        }
    }
}

/// `template` with each NUL and the character after it replaced by a value of `pool` or one of
/// its embedded forms.
fn embed(template: &str, pool: &[String]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut chars = template.chars();
    while let Some(c) = chars.next() {
        if c != '\0' {
            out.push(c);
            continue;
        }
        let Some(selector) = chars.next() else {
            break;
        };
        if pool.is_empty() {
            continue;
        }
        let selector = selector as usize;
        let value = &pool[selector % pool.len()];
        let forms = embedded_forms(value);
        out.push_str(&forms[(selector / pool.len()) % forms.len()]);
    }
    out
}

/// The whole spellings of `value` the text may hold.
fn embedded_forms(value: &str) -> Vec<String> {
    let base64 = STANDARD.encode(value);
    let mut forms = vec![
        value.to_owned(),
        base64.clone(),
        base64.trim_end_matches('=').to_owned(),
        wrapped(&base64, 76).join("\n"),
        hex(value, false),
        hex(value, true),
        wrapped(&hex(value, false), 60).join("\n"),
    ];
    forms.extend(percent_forms(value));
    forms.extend(json_forms(value));
    forms
}

/// The spellings checked in the masked text: the embedded ones, each line of the wrapped ones.
fn checked_forms(value: &str) -> Vec<String> {
    let base64 = STANDARD.encode(value);
    let mut forms = vec![
        value.to_owned(),
        base64.trim_end_matches('=').to_owned(),
        hex(value, false),
        hex(value, true),
    ];
    for columns in [64, 76] {
        forms.extend(wrapped(&base64, columns).into_iter().map(str::to_owned));
    }
    forms.extend(
        wrapped(&hex(value, false), 60)
            .into_iter()
            .map(str::to_owned),
    );
    forms.extend(
        wrapped(&hex(value, true), 60)
            .into_iter()
            .map(str::to_owned),
    );
    forms.push(base64);
    forms.extend(percent_forms(value));
    forms.extend(json_forms(value));
    forms
}

/// `ascii` cut every `columns` characters.
fn wrapped(ascii: &str, columns: usize) -> Vec<&str> {
    ascii
        .as_bytes()
        .chunks(columns)
        .filter_map(|chunk| std::str::from_utf8(chunk).ok())
        .collect()
}

fn hex(value: &str, upper: bool) -> String {
    let mut out = String::with_capacity(value.len() * 2);
    for byte in value.bytes() {
        let _ = if upper {
            write!(out, "{byte:02X}")
        } else {
            write!(out, "{byte:02x}")
        };
    }
    out
}

/// RFC 3986 (curl) and HTML forms (Java's `URLEncoder`), in both hex cases, with `%20` and
/// `+`; Python's `quote` (which keeps `/`).
fn percent_forms(value: &str) -> Vec<String> {
    let mut forms = Vec::new();
    for kept in ["-._~", "*-._", "-._~/"] {
        for upper in [true, false] {
            for plus in [false, true] {
                forms.push(percent(value, kept.as_bytes(), upper, plus));
            }
        }
    }
    forms
}

fn percent(value: &str, kept: &[u8], upper: bool, plus: bool) -> String {
    let mut out = String::with_capacity(value.len() * 3);
    for byte in value.bytes() {
        if plus && byte == b' ' {
            out.push('+');
        } else if byte.is_ascii_alphanumeric() || kept.contains(&byte) {
            out.push(char::from(byte));
        } else if upper {
            let _ = write!(out, "%{byte:02X}");
        } else {
            let _ = write!(out, "%{byte:02x}");
        }
    }
    out
}

/// JSON string escapings: serde_json's own, Python's and PHP's (`\u00e9`, PHP also `\/`),
/// Java's (`\u00E9`), Go's (`\u0026` for `&`, `<`, `>`).
fn json_forms(value: &str) -> Vec<String> {
    let serde = serde_json::to_string(value).unwrap_or_default();
    let serde = serde
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or_default()
        .to_owned();
    vec![
        serde.replace('/', "\\/"),
        json_escape(value, Some(false), false, false),
        json_escape(value, Some(false), true, false),
        json_escape(value, Some(true), false, false),
        json_escape(value, None, false, true),
        serde,
    ]
}

/// `value` escaped in a JSON string: non-ASCII as `\u` in lower or upper case (`ascii`), or
/// kept (`None`); `/` as `\/` (`slash`); `&`, `<`, `>`, U+2028, U+2029 as `\u` (`html`).
fn json_escape(value: &str, ascii: Option<bool>, slash: bool, html: bool) -> String {
    let upper = ascii == Some(true);
    let mut out = String::with_capacity(value.len() * 6);
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '/' if slash => out.push_str("\\/"),
            c if u32::from(c) < 0x20
                || (!c.is_ascii() && ascii.is_some())
                || (html && matches!(c, '&' | '<' | '>' | '\u{2028}' | '\u{2029}')) =>
            {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = if upper {
                        write!(out, "\\u{unit:04X}")
                    } else {
                        write!(out, "\\u{unit:04x}")
                    };
                }
            }
            c => out.push(c),
        }
    }
    out
}
