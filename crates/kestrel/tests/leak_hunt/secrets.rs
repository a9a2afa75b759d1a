//! The secrets the hunt registers (one of every awkward kind) and every form in which a
//! reader could find one of them, computed here, independently of kestrel's own encoders.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

/// The documented minimum length (`secret.mask-min-length`): shorter forms are not masked.
const MIN_CHARS: usize = 4;

/// One registered secret: its key (also its label in reports) and its value.
pub(crate) struct Secret {
    pub(crate) key: &'static str,
    pub(crate) value: String,
}

impl Secret {
    /// `SECRET_<KEY>=<base64>`, as the environment backend reads it.
    pub(crate) fn env(&self) -> (String, String) {
        (format!("SECRET_{}", self.key), STANDARD.encode(&self.value))
    }
}

/// Every secret the hunt registers.
pub(crate) fn catalogue() -> Vec<Secret> {
    let secret = |key, value: &str| Secret {
        key,
        value: value.to_owned(),
    };
    vec![
        // A character no generated id or token holds, so that no id matches by chance.
        secret("SHORT", "q7~Z"),
        Secret {
            key: "BIG",
            value: big_value(),
        },
        secret("UNICODE", "pässwörd-日本語-🔑-Ωmega"),
        secret(
            "MULTI",
            "line-one-alpha\nline-two-bravo\nline-three-charlie",
        ),
        secret(
            "BANK",
            r#"{"user":"svc-ledger","password":"Pw-json-7781!","pin":90417263}"#,
        ),
        secret("URLISH", "Url pa/ss!wo'rd&k?v#f%2B+z"),
        secret("WORD", "dragon"),
        secret("HOOK", "wh-Key-83mQ2xVb"),
    ]
}

/// The value of the catalogued secret `key`.
pub(crate) fn value_of<'a>(secrets: &'a [Secret], key: &str) -> &'a str {
    secrets
        .iter()
        .find(|secret| secret.key == key)
        .map(|secret| secret.value.as_str())
        .expect("a catalogued key")
}

/// 64 KiB of letters and digits from a fixed pseudo-random sequence (no repeats a reader
/// could find by chance).
fn big_value() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..64 * 1024)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let index = (state >> 33) as usize % ALPHABET.len();
            char::from(ALPHABET[index])
        })
        .collect()
}

/// A text to look for: which secret, which form (a name safe to print), and the text.
pub(crate) struct Needle {
    pub(crate) label: &'static str,
    pub(crate) form: String,
    pub(crate) text: String,
}

/// Every form of every secret at or over the minimum length, each text once per secret.
pub(crate) fn needles(secrets: &[Secret]) -> Vec<Needle> {
    let mut needles: Vec<Needle> = Vec::new();
    for secret in secrets {
        for (part, value) in parts(&secret.value) {
            for (form, text) in encodings(&value) {
                let duplicate = needles
                    .iter()
                    .any(|n| n.label == secret.key && n.text == text);
                if text.chars().count() >= MIN_CHARS && !duplicate {
                    needles.push(Needle {
                        label: secret.key,
                        form: format!("{part} as {form}"),
                        text,
                    });
                }
            }
        }
    }
    needles
}

/// The value itself, each of its lines, and each string and number leaf when it is JSON:
/// every value the registry holds for one secret.
fn parts(value: &str) -> Vec<(String, String)> {
    let mut parts = vec![("value".to_owned(), value.to_owned())];
    let lines: Vec<&str> = value.lines().collect();
    if lines.len() > 1 {
        for (index, line) in lines.iter().enumerate() {
            parts.push((format!("line {}", index + 1), (*line).to_owned()));
        }
    }
    if let Ok(json) = serde_json::from_str::<Value>(value) {
        leaves(&json, "$", &mut parts);
    }
    parts
}

fn leaves(json: &Value, path: &str, out: &mut Vec<(String, String)>) {
    match json {
        Value::String(text) => out.push((format!("leaf {path}"), text.clone())),
        Value::Number(number) => out.push((format!("leaf {path}"), number.to_string())),
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                leaves(item, &format!("{path}[{index}]"), out);
            }
        }
        Value::Object(fields) => {
            for (name, item) in fields {
                leaves(item, &format!("{path}.{name}"), out);
            }
        }
        Value::Bool(_) | Value::Null => {}
    }
}

/// Every encoded form of one value, by name.
fn encodings(value: &str) -> Vec<(String, String)> {
    let mut forms = vec![
        ("raw".to_owned(), value.to_owned()),
        ("upper case".to_owned(), value.to_uppercase()),
    ];
    forms.extend(base64_forms(value.as_bytes()));
    forms.extend(percent_forms(value));
    for upper in [true, false] {
        let case = if upper { "upper" } else { "lower" };
        let form = format!("URL as parsed: path, query after ?, fragment after # ({case} hex)");
        forms.push((form, url_parsed(value, upper)));
    }
    forms.extend(json_forms(value));
    forms.push(("hex lower".to_owned(), hex(value.as_bytes(), false)));
    forms.push(("hex upper".to_owned(), hex(value.as_bytes(), true)));
    if value.len() > 256 {
        // A reader that shortens a long value for display still shows its start.
        let head: String = value.chars().take(32).collect();
        forms.push(("first 32 characters".to_owned(), head));
    }
    forms
}

/// Standard base64 without padding, its first and last lines when wrapped at 64 and 76
/// columns, and the stable core at the two shifted byte offsets (values of 8 characters or
/// more, as docs/masking.md says they are registered).
fn base64_forms(bytes: &[u8]) -> Vec<(String, String)> {
    let plain = STANDARD.encode(bytes);
    let unpadded = plain.trim_end_matches('=').to_owned();
    let mut forms = Vec::new();
    for width in [64, 76] {
        if plain.len() > width {
            let last_start = (plain.len() - 1) / width * width;
            forms.push((
                format!("base64 first line at {width}"),
                plain[..width].to_owned(),
            ));
            forms.push((
                format!("base64 last line at {width}"),
                plain[last_start..].to_owned(),
            ));
        }
    }
    forms.push(("base64".to_owned(), unpadded));
    let chars = String::from_utf8_lossy(bytes).chars().count();
    if chars >= 8 {
        for shift in [1usize, 2] {
            let mut shifted = vec![0u8; shift];
            shifted.extend_from_slice(bytes);
            let encoded = STANDARD.encode(&shifted);
            // The first group holds the filler bytes; a trailing partial group depends on
            // whatever follows the value in the encoded stream.
            let end = shifted.len() / 3 * 4;
            forms.push((
                format!("base64 shifted by {shift}"),
                encoded[4..end].to_owned(),
            ));
        }
    }
    forms
}

/// Whether a percent-encoding variant writes a byte as it is.
type Keep = fn(u8) -> bool;

/// How one percent-encoding variant treats a byte.
#[derive(Clone, Copy)]
struct Percent {
    upper: bool,
    plus_for_space: bool,
    keep: Keep,
}

fn unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"-._~".contains(&byte)
}

fn unreserved_or_slash(byte: u8) -> bool {
    unreserved(byte) || byte == b'/'
}

/// The WHATWG URL path set, as an HTTP client encodes a path: everything printable but
/// space, `"`, `#`, `<`, `>`, `?`, `` ` ``, `{`, `}`.
fn url_path_keeps(byte: u8) -> bool {
    byte.is_ascii_graphic() && !b"\"#<>?`{}".contains(&byte)
}

/// The WHATWG URL special-query set: everything printable but space, `"`, `#`, `<`, `>`, `'`.
fn url_query_keeps(byte: u8) -> bool {
    byte.is_ascii_graphic() && !b"\"#<>'".contains(&byte)
}

/// The WHATWG URL fragment set: everything printable but space, `"`, `<`, `>`, `` ` ``.
fn url_fragment_keeps(byte: u8) -> bool {
    byte.is_ascii_graphic() && !b"\"<>`".contains(&byte)
}

/// The WHATWG URL userinfo set: the path set without `/`, `:`, `;`, `=`, `@`, `[`-`^`, `|`.
fn url_userinfo_keeps(byte: u8) -> bool {
    url_path_keeps(byte) && !b"/:;=@[\\]^|".contains(&byte)
}

fn percent_forms(value: &str) -> Vec<(String, String)> {
    let mut forms = Vec::new();
    for upper in [true, false] {
        let case = if upper { "upper" } else { "lower" };
        let variants: [(&str, bool, Keep); 6] = [
            ("percent", false, unreserved),
            ("percent with + for space", true, unreserved),
            ("percent keeping /", false, unreserved_or_slash),
            ("URL path encoding", false, url_path_keeps),
            ("URL query encoding", false, url_query_keeps),
            ("URL userinfo encoding", false, url_userinfo_keeps),
        ];
        for (name, plus_for_space, keep) in variants {
            let style = Percent {
                upper,
                plus_for_space,
                keep,
            };
            forms.push((format!("{name} ({case} hex)"), percent(value, style)));
        }
    }
    forms
}

fn percent(value: &str, style: Percent) -> String {
    let mut out = String::new();
    for &byte in value.as_bytes() {
        if byte == b' ' && style.plus_for_space {
            out.push('+');
        } else if (style.keep)(byte) {
            out.push(char::from(byte));
        } else if style.upper {
            out.push_str(&format!("%{byte:02X}"));
        } else {
            out.push_str(&format!("%{byte:02x}"));
        }
    }
    out
}

/// The value as a URL parser writes it when the value sits in a URL's path: encoded with
/// the path set up to its first `?`, the query set up to its first `#`, then the fragment set.
fn url_parsed(value: &str, upper: bool) -> String {
    let mut out = String::new();
    // 0: path, 1: query, 2: fragment.
    let mut part = 0;
    let sets: [Keep; 3] = [url_path_keeps, url_query_keeps, url_fragment_keeps];
    for ch in value.chars() {
        let next = match ch {
            '?' if part == 0 => 1,
            '#' if part < 2 => 2,
            _ => part,
        };
        if next != part {
            part = next;
            out.push(ch);
            continue;
        }
        let style = Percent {
            upper,
            plus_for_space: false,
            keep: sets[part],
        };
        out.push_str(&percent(ch.encode_utf8(&mut [0u8; 4]), style));
    }
    out
}

/// How one JSON string escaping variant writes characters.
#[derive(Clone, Copy, Default)]
struct JsonStyle {
    ascii_only: bool,
    upper_hex: bool,
    html_safe: bool,
    slash: bool,
}

fn json_forms(value: &str) -> Vec<(String, String)> {
    let styles = [
        ("JSON string", JsonStyle::default()),
        (
            "JSON string, ASCII only",
            JsonStyle {
                ascii_only: true,
                ..JsonStyle::default()
            },
        ),
        (
            "JSON string, ASCII only, upper hex",
            JsonStyle {
                ascii_only: true,
                upper_hex: true,
                ..JsonStyle::default()
            },
        ),
        (
            "JSON string, HTML-safe",
            JsonStyle {
                html_safe: true,
                ..JsonStyle::default()
            },
        ),
        (
            "JSON string, escaped /",
            JsonStyle {
                slash: true,
                ..JsonStyle::default()
            },
        ),
    ];
    styles
        .into_iter()
        .map(|(name, style)| (name.to_owned(), json_escape(value, style)))
        .collect()
}

fn json_escape(value: &str, style: JsonStyle) -> String {
    let unicode = |unit: u16| {
        if style.upper_hex {
            format!("\\u{unit:04X}")
        } else {
            format!("\\u{unit:04x}")
        }
    };
    let mut out = String::new();
    for ch in value.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '/' if style.slash => out.push_str("\\/"),
            '&' | '<' | '>' | '\'' if style.html_safe => out.push_str(&unicode(ch as u16)),
            c if (c as u32) < 0x20 || (style.ascii_only && !c.is_ascii()) => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&unicode(*unit));
                }
            }
            c => out.push(c),
        }
    }
    out
}

fn hex(bytes: &[u8], upper: bool) -> String {
    bytes
        .iter()
        .map(|byte| {
            if upper {
                format!("{byte:02X}")
            } else {
                format!("{byte:02x}")
            }
        })
        .collect()
}

#[test]
fn forms_are_the_encodings_common_tools_produce() {
    let form = |value: &str, name: &str| {
        encodings(value)
            .into_iter()
            .find(|(form, _)| form == name)
            .map(|(_, text)| text)
            .unwrap_or_default()
    };
    let urlish = "a b/c&d";
    assert_eq!(form(urlish, "percent (upper hex)"), "a%20b%2Fc%26d");
    assert_eq!(
        form(urlish, "percent with + for space (lower hex)"),
        "a+b%2fc%26d"
    );
    assert_eq!(form(urlish, "percent keeping / (upper hex)"), "a%20b/c%26d");
    assert_eq!(form(urlish, "URL path encoding (upper hex)"), "a%20b/c&d");
    assert_eq!(
        form(
            "a b?c d'#e f",
            "URL as parsed: path, query after ?, fragment after # (upper hex)"
        ),
        "a%20b?c%20d%27#e%20f"
    );
    assert_eq!(form("x&<ü", "JSON string, HTML-safe"), "x\\u0026\\u003cü");
    assert_eq!(form("🔑", "JSON string, ASCII only"), "\\ud83d\\udd11");
    assert_eq!(form("a/b", "JSON string, escaped /"), "a\\/b");
    assert_eq!(form("ok", "hex upper"), "6F6B");
    assert_eq!(form("test", "base64"), "dGVzdA");
    // base64 of "\0abcdefgh" is AGFiY2RlZmdo: the core past the first group is "Y2RlZmdo".
    assert_eq!(form("abcdefgh", "base64 shifted by 1"), "Y2RlZmdo");
}

#[test]
fn every_secret_has_its_lines_and_leaves_and_no_form_under_the_minimum() {
    let secrets = catalogue();
    let all = needles(&secrets);
    let has = |label: &str, form: &str| all.iter().any(|n| n.label == label && n.form == form);
    assert!(has("MULTI", "line 2 as raw"));
    assert!(has("BANK", "leaf $.pin as raw"));
    assert!(has("BANK", "leaf $.password as base64"));
    assert!(all.iter().all(|n| n.text.chars().count() >= MIN_CHARS));
    assert_eq!(
        secrets
            .iter()
            .find(|s| s.key == "BIG")
            .map(|s| s.value.len()),
        Some(65536)
    );
}
