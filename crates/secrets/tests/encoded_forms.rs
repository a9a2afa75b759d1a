//! Every encoded form docs/masking.md lists, spelled by encoders written apart from the
//! masker's own (the `url` crate that reqwest uses, `percent-encoding`, serde_json), is masked
//! wherever it sits in a text.

#![allow(clippy::unwrap_used)] // Test code: a failure is a failed test.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use kestrel_secrets::{MASK, MaskRegistry};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use proptest::prelude::*;
use url::Url;

/// RFC 3986's unreserved characters stay; everything else is encoded (curl).
const RFC_3986: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Python's `urllib.parse.quote` with its default `safe='/'`.
const PYTHON_QUOTE: &AsciiSet = &RFC_3986.remove(b'/');

const MIN_LENGTH: usize = 4;

fn registry(value: &str) -> MaskRegistry {
    let registry = MaskRegistry::new(MIN_LENGTH);
    registry.register("KEY", value);
    registry
}

/// `encoded` with the hex digits of every `%XX` escape in lower case (every `%` in it starts
/// an escape).
fn lower_hex_escapes(encoded: &str) -> String {
    let mut out = String::with_capacity(encoded.len());
    let mut hex_digits_left = 0;
    for c in encoded.chars() {
        if hex_digits_left > 0 {
            out.push(c.to_ascii_lowercase());
            hex_digits_left -= 1;
        } else {
            hex_digits_left = if c == '%' { 2 } else { 0 };
            out.push(c);
        }
    }
    out
}

/// The percent-encodings docs/masking.md lists, as curl, Python and form encoders write them.
fn percent_forms(value: &str) -> Vec<(&'static str, String)> {
    let rfc = utf8_percent_encode(value, RFC_3986).to_string();
    let curl = rfc.replace("%20", "+");
    vec![
        ("rfc 3986", rfc.clone()),
        ("rfc 3986, lower-case hex", lower_hex_escapes(&rfc)),
        ("curl --data-urlencode", curl.clone()),
        (
            "curl --data-urlencode, lower-case hex",
            lower_hex_escapes(&curl),
        ),
        (
            "python quote",
            utf8_percent_encode(value, PYTHON_QUOTE).to_string(),
        ),
        (
            "form_urlencoded",
            url::form_urlencoded::byte_serialize(value.as_bytes()).collect(),
        ),
    ]
}

/// Whether the `url` crate would resolve a `.` or `..` segment of `value` in a path (the
/// encoded path is then not the value's encoding but what is left of it). Its parser drops
/// tabs and line breaks first.
fn has_dot_segment(value: &str) -> bool {
    let parsed = value.replace(['\t', '\n', '\r'], "");
    parsed.split(['/', '\\']).any(|segment| {
        let segment = segment.to_ascii_lowercase().replace("%2e", ".");
        segment == "." || segment == ".."
    })
}

/// What the `url` crate (through which reqwest sends every request) writes for `value` in each
/// part of a URI.
fn url_forms(value: &str) -> Vec<(&'static str, String)> {
    let base = Url::parse("https://example.com/").unwrap();
    let mut forms = Vec::new();
    let mut url = base.clone();
    url.set_query(Some(value));
    forms.push(("url query", url.query().unwrap().to_owned()));
    let mut url = base.clone();
    url.set_fragment(Some(value));
    forms.push(("url fragment", url.fragment().unwrap().to_owned()));
    let mut url = base.clone();
    url.set_username(value).unwrap();
    forms.push(("url username", url.username().to_owned()));
    let mut url = base.clone();
    url.set_password(Some(value)).unwrap();
    forms.push(("url password", url.password().unwrap().to_owned()));
    let mut url = base.clone();
    url.path_segments_mut().unwrap().pop().push(value);
    forms.push(("url path segment", url.path()[1..].to_owned()));
    if !has_dot_segment(value) {
        let mut url = base;
        url.set_path(value);
        let path = url.path();
        // The parser drops tabs and line breaks, and adds a `/` unless the path starts with one.
        let kept = value.trim_start_matches(['\t', '\n', '\r']);
        let path = if kept.starts_with(['/', '\\']) {
            path
        } else {
            &path[1..]
        };
        forms.push(("url path", path.to_owned()));
    }
    forms
}

/// The JSON string escapings docs/masking.md lists: serde_json, Python's `json.dumps` (`\uxxxx`), Go's
/// `encoding/json` (`&`, `<`, `>` as `\u0026`), PHP's `json_encode` (`\/`, `\uxxxx`).
fn json_forms(value: &str) -> Vec<(&'static str, String)> {
    let serde = serde_json::to_string(value).unwrap();
    let serde = serde[1..serde.len() - 1].to_owned();
    let escape = |escaped: fn(char) -> bool| -> String {
        let mut out = String::new();
        for c in serde.chars() {
            if escaped(c) {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            } else {
                out.push(c);
            }
        }
        out
    };
    let python = escape(|c| !c.is_ascii());
    let go = escape(|c| matches!(c, '&' | '<' | '>' | '\u{2028}' | '\u{2029}'));
    let php = python.replace('/', "\\/");
    vec![
        ("serde_json", serde),
        ("python json.dumps", python),
        ("go encoding/json", go),
        ("php json_encode", php),
    ]
}

/// The value's bytes in hex, whole and as `xxd -p` prints them (60 columns a line).
fn hex_forms(value: &str) -> Vec<(&'static str, String)> {
    let lower: String = value.bytes().map(|b| format!("{b:02x}")).collect();
    let upper = lower.to_ascii_uppercase();
    let xxd = lower
        .as_bytes()
        .chunks(60)
        .map(|line| std::str::from_utf8(line).unwrap())
        .collect::<Vec<_>>()
        .join("\n");
    vec![("hex", lower), ("hex, upper-case", upper), ("xxd -p", xxd)]
}

/// Every spelling of `value` docs/masking.md names, each with its name.
fn tool_forms(value: &str) -> Vec<(&'static str, String)> {
    let mut forms = vec![
        ("raw", value.to_owned()),
        ("base64", STANDARD.encode(value)),
    ];
    forms.extend(percent_forms(value));
    forms.extend(url_forms(value));
    forms.extend(json_forms(value));
    forms.extend(hex_forms(value));
    forms
}

/// Whether `form`, placed in a text and masked, is gone: each of its lines that could be masked
/// (at least [`MIN_LENGTH`] characters) no longer appears.
fn survives(masked: &str, form: &str) -> bool {
    form.split('\n')
        .filter(|line| line.chars().count() >= MIN_LENGTH)
        .any(|line| masked.contains(line))
}

fn assert_every_form_is_masked(value: &str) {
    let registry = registry(value);
    for (name, form) in tool_forms(value) {
        let masked = registry.mask(&format!("<{form}>")).into_owned();
        assert!(!survives(&masked, &form), "{name}: {form} -> {masked}");
    }
}

#[test]
fn leak_3_the_http_clients_encoding_next_to_quote_slash_and_bang_is_masked() {
    // A `/` in the userinfo would end it: that secret has none.
    let (secret, password) = ("pa ss'w/ö!rd", "pa ss'wö!rd");
    let registry = registry(secret);
    registry.register("PASSWORD", password);
    // As the HTTP task builds its request: the rendered URI, spaces as `%20`, parsed by `url`.
    let rendered = format!("https://user:{password}@example.com/a/{secret}/b?q={secret}");
    let url = Url::parse(&rendered.replace(' ', "%20")).unwrap();
    assert_eq!(
        registry.mask(url.as_str()),
        "https://user:******@example.com/a/******/b?q=******"
    );
    let error = format!("error sending request for url ({url})");
    assert!(!survives(&registry.mask(&error), "ss"));
}

#[test]
fn leak_3_a_secret_with_a_space_or_non_ascii_character_is_masked_in_every_uri_part() {
    for secret in ["it's a/b!", "ünïcode'/!", "x !'/é~*(;)"] {
        assert_every_form_is_masked(secret);
    }
}

#[test]
fn python_quote_keeping_slash_is_masked() {
    let registry = registry("path/to my/sécret");
    assert_eq!(registry.mask("?p=path/to%20my/s%C3%A9cret&"), "?p=******&");
}

#[test]
fn curl_data_urlencode_with_plus_and_lower_case_hex_is_masked() {
    let registry = registry("pass wörd/1");
    assert_eq!(registry.mask("d=pass+w%c3%b6rd%2f1"), "d=******");
    assert_eq!(registry.mask("d=pass+w%C3%B6rd%2F1"), "d=******");
}

#[test]
fn go_json_escaping_of_html_characters_is_masked() {
    let registry = registry("a<b>&c-secret");
    assert_eq!(
        registry.mask(r#"{"v":"a\u003cb\u003e\u0026c-secret"}"#),
        r#"{"v":"******"}"#
    );
}

#[test]
fn php_json_escaping_of_slash_is_masked() {
    let registry = registry("https://h/é-token");
    assert_eq!(
        registry.mask(r#"{"v":"https:\/\/h\/\u00e9-token"}"#),
        r#"{"v":"******"}"#
    );
    assert_eq!(
        registry.mask(r#"{"v":"https:\/\/h\/é-token"}"#),
        r#"{"v":"******"}"#
    );
}

#[test]
fn xxd_hex_in_both_cases_is_masked_whole_and_wrapped() {
    let secret = "correct horse battery staple, and more";
    let registry = registry(secret);
    for (name, form) in hex_forms(secret) {
        let masked = registry.mask(&form);
        assert!(!survives(&masked, &form), "{name}: {masked}");
    }
}

#[test]
fn forms_under_the_minimum_length_are_not_masked() {
    // 31 bytes: `xxd -p` prints 60 hex characters, then a line of 2 ("61") that is too short.
    let registry = registry(&"a".repeat(31));
    assert_eq!(registry.mask("x61 ab"), "x61 ab");
}

#[test]
fn unwrapped_hex_is_masked_whole_when_its_last_xxd_line_is_short() {
    for length in [30, 31, 32, 61] {
        let secret = "s".repeat(length);
        let registry = registry(&secret);
        for (_, hex) in &hex_forms(&secret)[..2] {
            assert_eq!(registry.mask(&format!("<{hex}>")), "<******>", "{length}");
        }
    }
}

fn secret() -> impl Strategy<Value = String> {
    // URL- and JSON-special characters, non-ASCII, line breaks; no `*`, which the mask itself
    // is made of.
    "[a-zA-Z0-9 !#$%&'()+,./:;=?@_~\"<>`{}|^\\[\\]\\\\\n\té€😀\u{2028}-]{8,40}"
}

fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 .,:/=%+\n\t{}\"é-]{0,200}"
}

/// `text` with `inserted` placed at the character boundary nearest `at`.
fn insert(text: &str, at: usize, inserted: &str) -> String {
    let mut at = at % (text.len() + 1);
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    format!("{}{inserted}{}", &text[..at], &text[at..])
}

proptest! {
    #[test]
    fn every_tool_form_of_a_registered_value_is_masked_in_any_text(
        secret in secret(),
        text in text(),
        at in any::<usize>(),
    ) {
        let registry = registry(&secret);
        for (name, form) in tool_forms(&secret) {
            let masked = registry.mask(&insert(&text, at, &form)).into_owned();
            prop_assert!(!survives(&masked, &form), "{}: {:?} -> {:?}", name, form, masked);
        }
    }

    #[test]
    fn masking_never_panics(
        values in prop::collection::vec(any::<String>(), 0..4),
        text in any::<String>(),
        min_length in 0..6usize,
        number in any::<f64>(),
    ) {
        let registry = MaskRegistry::new(min_length);
        for value in &values {
            registry.register("KEY", value);
            registry.register_derived(value);
        }
        let masked = registry.mask(&text);
        prop_assert!(masked.len() <= text.len().max(MASK.len()) * MASK.len());
        registry.contains_secret(&text);
        registry.is_registered(&text);
        let mut json = serde_json::json!({ text.clone(): [text, number, 42] });
        registry.mask_json(&mut json);
    }
}
