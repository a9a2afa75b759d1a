//! The encoded forms under which a registered value may reappear.
//!
//! A secret rarely leaks verbatim: it goes into a base64 `Authorization` header, a URL query, a
//! JSON body, a hex dump. [`encoded_forms`] lists the spellings the masker also looks for
//! (docs/masking.md): base64 (wrapped, and the stable cores at shifted offsets), percent-encoding as common
//! tools write it and exactly as kestrel's HTTP client (the `url` crate) writes it into each
//! part of a URI, JSON string escaping as serde_json, Python, Jackson, Go and PHP write it, and
//! the bytes in hex. Every buffer is sized before it is filled, so no reallocation leaves a
//! stray copy of a secret in freed memory, and every form is zeroized on drop.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use zeroize::Zeroizing;

/// Columns at which tools wrap base64: PEM at 64, MIME (and GNU `base64`) at 76.
const WRAP_COLUMNS: [usize; 2] = [64, 76];

/// Columns at which `xxd -p` wraps its hex.
const HEX_WRAP_COLUMNS: usize = 60;

/// Values shorter than this (in Unicode scalar values) get no shifted-offset cores: a core is
/// about 4/3 of the value minus up to 3 characters, too short to be specific below this.
const SHIFTED_CORE_MIN_CHARS: usize = 8;

/// Which encoded forms a registry looks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EncodedForms {
    /// Every form docs/masking.md lists.
    #[default]
    All,
    /// Only the forms masked before issue 8 (base64, RFC 3986 percent-encoding in both cases,
    /// form encoding, three JSON escapings): kept so the masking benchmark can measure the
    /// cost of the newer forms in the same run. Never use it to mask.
    BeforeIssue8,
}

/// Every encoded spelling of `value` in `set` (the value itself excluded; duplicates possible).
/// Forms shorter than `min_length` are left for the caller to drop; it only lets the hex forms
/// avoid a redundant pattern.
pub(crate) fn encoded_forms(
    value: &str,
    set: EncodedForms,
    min_length: usize,
) -> Vec<Zeroizing<String>> {
    let mut forms = Vec::new();
    base64_forms(value, &mut forms);
    match set {
        EncodedForms::All => {
            percent_forms(value, &mut forms);
            url_forms(value, &mut forms);
            json_forms(value, &mut forms);
            hex_forms(value.as_bytes(), min_length, &mut forms);
        }
        EncodedForms::BeforeIssue8 => {
            forms.push(percent_encode(value, RFC_3986, Hex::Upper, Space::Percent));
            forms.push(percent_encode(value, RFC_3986, Hex::Lower, Space::Percent));
            forms.push(percent_encode(value, FORM, Hex::Upper, Space::Plus));
            for unicode in [Unicode::Raw, Unicode::EscapedLower, Unicode::EscapedUpper] {
                forms.push(json_escape(value, JsonStyle::plain(unicode)));
            }
        }
    }
    forms
}

/// Base64 padded and unpadded, each line of the wrapped forms, and the stable cores.
fn base64_forms(value: &str, forms: &mut Vec<Zeroizing<String>>) {
    let padded = Zeroizing::new(STANDARD.encode(value));
    for columns in WRAP_COLUMNS {
        push_wrapped_lines(&padded, columns, forms);
    }
    forms.push(owned(padded.trim_end_matches('=')));
    let shifts = if value.chars().count() >= SHIFTED_CORE_MIN_CHARS {
        0..3
    } else {
        0..1
    };
    forms.extend(shifts.filter_map(|shift| stable_core(value.as_bytes(), shift)));
    forms.push(padded);
}

/// Each line of `ascii` wrapped at `columns`, when it is longer than that.
fn push_wrapped_lines(ascii: &str, columns: usize, forms: &mut Vec<Zeroizing<String>>) {
    if ascii.len() > columns {
        // Only ever called on ASCII, so every chunk is valid UTF-8.
        let lines = ascii.as_bytes().chunks(columns);
        forms.extend(lines.filter_map(|line| std::str::from_utf8(line).ok().map(owned)));
    }
}

/// The characters of the base64 encoding of `value` that depend on `value` alone when it sits
/// `shift` bytes past a 3-byte boundary inside a longer encoded text: characters mixing bits of
/// the bytes before or after it are dropped.
pub(crate) fn stable_core(value: &[u8], shift: usize) -> Option<Zeroizing<String>> {
    let mut shifted = Zeroizing::new(Vec::with_capacity(shift + value.len()));
    shifted.resize(shift, 0);
    shifted.extend_from_slice(value);
    let encoded = Zeroizing::new(STANDARD_NO_PAD.encode(&*shifted));
    // Character i covers bits [6i, 6i + 6) of the stream; the value's bits are
    // [8 * shift, 8 * (shift + len)).
    let first = (8 * shift).div_ceil(6);
    let end = 8 * (shift + value.len()) / 6;
    encoded
        .get(first..end)
        .filter(|core| !core.is_empty())
        .map(owned)
}

/// Which bytes percent-encoding writes as `%XX`. Bytes outside ASCII are always encoded.
#[derive(Clone, Copy)]
enum Charset {
    /// ASCII letters, digits and these bytes are kept; every other byte is encoded.
    Keep(&'static [u8]),
    /// ASCII control bytes and these bytes are encoded; every other ASCII byte is kept (the
    /// WHATWG URL percent-encode sets, as the `url` crate defines them).
    Encode(&'static [u8]),
}

impl Charset {
    fn encodes(self, byte: u8) -> bool {
        match self {
            Self::Keep(kept) => !(byte.is_ascii_alphanumeric() || kept.contains(&byte)),
            Self::Encode(encoded) => {
                !byte.is_ascii() || byte.is_ascii_control() || encoded.contains(&byte)
            }
        }
    }
}

/// RFC 3986's unreserved characters (curl, JavaScript's `encodeURIComponent` minus `!'()*`).
const RFC_3986: Charset = Charset::Keep(b"-._~");
/// Python's `urllib.parse.quote`, whose default keeps `/`.
const PYTHON_QUOTE: Charset = Charset::Keep(b"-._~/");
/// `application/x-www-form-urlencoded` (the `form_urlencoded` crate, Java's `URLEncoder`).
const FORM: Charset = Charset::Keep(b"*-._");

/// The `url` crate's sets (its `parser.rs`), which reqwest applies to each part of a URI.
const URL_FRAGMENT: Charset = Charset::Encode(b" \"<>`");
const URL_PATH: Charset = Charset::Encode(b" \"<>`#?{}");
const URL_USERINFO: Charset = Charset::Encode(b" \"<>`#?{}/:;=@[\\]^|");
const URL_SPECIAL_PATH_SEGMENT: Charset = Charset::Encode(b" \"<>`#?{}/%\\");
const URL_SPECIAL_QUERY: Charset = Charset::Encode(b" \"#<>'");

#[derive(Clone, Copy, PartialEq, Eq)]
enum Hex {
    Upper,
    Lower,
}

/// How a space is written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Space {
    /// As its charset says (`%20` unless kept).
    Percent,
    /// As `+` (forms, Python's `quote_plus`, `curl --data-urlencode`).
    Plus,
}

/// Percent-encoding as tools write it: each charset in both hex cases, with `%20` or `+`.
fn percent_forms(value: &str, forms: &mut Vec<Zeroizing<String>>) {
    let encodes_any = !value.bytes().all(|byte| byte.is_ascii_alphanumeric());
    // Python's `quote` differs from RFC 3986 only on `/`.
    let python = value.contains('/').then_some(PYTHON_QUOTE);
    for charset in [RFC_3986, FORM].into_iter().chain(python) {
        for hex in options([Hex::Upper, Hex::Lower], encodes_any) {
            for space in options([Space::Percent, Space::Plus], value.contains(' ')) {
                forms.push(percent_encode(value, charset, hex, space));
            }
        }
    }
}

/// The encodings the `url` crate gives `value` in a URI's fragment, path, userinfo, path
/// segment and query. Its parser drops tabs and line breaks (its userinfo setters keep them),
/// and in an `http(s)` path reads `\` as `/`.
fn url_forms(value: &str, forms: &mut Vec<Zeroizing<String>>) {
    let mut parsed = Zeroizing::new(String::with_capacity(value.len()));
    parsed.extend(value.chars().filter(|c| !matches!(c, '\t' | '\n' | '\r')));
    let inputs = options([parsed.as_str(), value], parsed.len() < value.len());
    for input in inputs {
        for charset in [
            URL_FRAGMENT,
            URL_USERINFO,
            URL_SPECIAL_PATH_SEGMENT,
            URL_SPECIAL_QUERY,
        ] {
            forms.push(percent_encode(input, charset, Hex::Upper, Space::Percent));
        }
    }
    let mut path = Zeroizing::new(String::with_capacity(parsed.len()));
    path.extend(parsed.chars().map(|c| if c == '\\' { '/' } else { c }));
    forms.push(percent_encode(&path, URL_PATH, Hex::Upper, Space::Percent));
}

/// Each of `all` when the choice between them `matters` for the value at hand, else the first
/// alone: the others would spell it the same way.
fn options<T, const N: usize>(all: [T; N], matters: bool) -> impl Iterator<Item = T> {
    all.into_iter().take(if matters { N } else { 1 })
}

fn percent_encode(value: &str, charset: Charset, hex: Hex, space: Space) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(value.len() * 3));
    for &byte in value.as_bytes() {
        if byte == b' ' && space == Space::Plus {
            out.push('+');
        } else if charset.encodes(byte) {
            out.push('%');
            push_hex(&mut out, u32::from(byte), 2, hex);
        } else {
            out.push(char::from(byte));
        }
    }
    out
}

/// How non-ASCII characters are written inside a JSON string literal.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Unicode {
    /// Kept as they are (serde_json, JavaScript, Go).
    Raw,
    /// As `\uxxxx` (Python's `json.dumps`, PHP's `json_encode`).
    EscapedLower,
    /// As `\uXXXX` (Java encoders).
    EscapedUpper,
}

/// How a string is escaped inside a JSON string literal.
#[derive(Clone, Copy)]
struct JsonStyle {
    unicode: Unicode,
    /// `&`, `<`, `>`, U+2028 and U+2029 as `\u0026`-style escapes (Go's `encoding/json`).
    html: bool,
    /// `/` as `\/` (PHP's `json_encode`).
    slash: bool,
}

impl JsonStyle {
    fn plain(unicode: Unicode) -> Self {
        Self {
            unicode,
            html: false,
            slash: false,
        }
    }
}

/// Every combination of the escapings JSON encoders apply.
fn json_forms(value: &str, forms: &mut Vec<Zeroizing<String>>) {
    let unicodes = [Unicode::Raw, Unicode::EscapedLower, Unicode::EscapedUpper];
    let escapes_unicode = value.chars().any(|c| !c.is_ascii() || u32::from(c) < 0x20);
    let html = value.contains(['&', '<', '>', '\u{2028}', '\u{2029}']);
    for unicode in options(unicodes, escapes_unicode) {
        for html in options([false, true], html) {
            for slash in options([false, true], value.contains('/')) {
                let style = JsonStyle {
                    unicode,
                    html,
                    slash,
                };
                forms.push(json_escape(value, style));
            }
        }
    }
}

fn json_escape(value: &str, style: JsonStyle) -> Zeroizing<String> {
    // Worst case: a control byte becomes the six characters `\u001f`.
    let mut out = Zeroizing::new(String::with_capacity(value.len() * 6));
    let hex = match style.unicode {
        Unicode::EscapedUpper => Hex::Upper,
        Unicode::Raw | Unicode::EscapedLower => Hex::Lower,
    };
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '/' if style.slash => out.push_str("\\/"),
            c if u32::from(c) < 0x20
                || (!c.is_ascii() && style.unicode != Unicode::Raw)
                || (style.html && matches!(c, '&' | '<' | '>' | '\u{2028}' | '\u{2029}')) =>
            {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str("\\u");
                    push_hex(&mut out, u32::from(*unit), 4, hex);
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// The bytes in lower- and upper-case hex, as `xxd -p` wraps them. The lines also cover the
/// unwrapped hex (their ranges touch, so they merge into one mask); when the last line is too
/// short to mask, the last full line's worth of hex covers the tail.
fn hex_forms(value: &[u8], min_length: usize, forms: &mut Vec<Zeroizing<String>>) {
    for hex in [Hex::Lower, Hex::Upper] {
        let mut out = Zeroizing::new(String::with_capacity(value.len() * 2));
        for &byte in value {
            push_hex(&mut out, u32::from(byte), 2, hex);
        }
        let last_line = out.len() % HEX_WRAP_COLUMNS;
        if out.len() > HEX_WRAP_COLUMNS && last_line > 0 && last_line < min_length {
            forms.extend(out.get(out.len() - HEX_WRAP_COLUMNS..).map(owned));
        }
        push_wrapped_lines(&out, HEX_WRAP_COLUMNS, forms);
        if out.len() <= HEX_WRAP_COLUMNS {
            forms.push(out);
        }
    }
}

fn push_hex(out: &mut String, value: u32, digits: u32, hex: Hex) {
    for position in (0..digits).rev() {
        let nibble = (value >> (4 * position)) & 0xf;
        let digit = char::from_digit(nibble, 16).unwrap_or('0');
        out.push(match hex {
            Hex::Upper => digit.to_ascii_uppercase(),
            Hex::Lower => digit,
        });
    }
}

fn owned(form: &str) -> Zeroizing<String> {
    Zeroizing::new(form.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forms(value: &str) -> Vec<String> {
        encoded_forms(value, EncodedForms::All, 4)
            .iter()
            .map(|f| f.to_string())
            .collect()
    }

    #[test]
    fn base64_padded_and_unpadded() {
        let forms = forms("password");
        assert!(forms.contains(&"cGFzc3dvcmQ=".to_owned()));
        assert!(forms.contains(&"cGFzc3dvcmQ".to_owned()));
    }

    #[test]
    fn wrapped_base64_lines_at_64_and_76_columns() {
        let value = "x".repeat(100);
        let encoded = STANDARD.encode(&value);
        let forms = forms(&value);
        for columns in WRAP_COLUMNS {
            for line in encoded.as_bytes().chunks(columns) {
                let line = std::str::from_utf8(line).unwrap();
                assert!(forms.contains(&line.to_owned()), "missing line {line}");
            }
        }
    }

    #[test]
    fn stable_cores_appear_in_any_surrounding_encoding() {
        let value = b"correct horse battery";
        for prefix in 0..6 {
            for suffix in 0..4 {
                let mut text = vec![b'!'; prefix];
                text.extend_from_slice(value);
                text.extend(std::iter::repeat_n(b'?', suffix));
                let encoded = STANDARD.encode(&text);
                let core = stable_core(value, prefix % 3).unwrap();
                assert!(
                    encoded.contains(core.as_str()),
                    "prefix {prefix} suffix {suffix}"
                );
            }
        }
    }

    #[test]
    fn no_shifted_cores_below_eight_characters() {
        // 7 characters: only offset 0 has a core.
        let forms = forms("abcdefg");
        let shifted = stable_core(b"abcdefg", 1).unwrap();
        assert!(!forms.contains(&shifted));
    }

    #[test]
    fn percent_encodings() {
        let forms = forms("a b/ü~");
        assert!(forms.contains(&"a%20b%2F%C3%BC~".to_owned()));
        assert!(forms.contains(&"a%20b%2f%c3%bc~".to_owned()));
        assert!(forms.contains(&"a+b%2F%C3%BC%7E".to_owned()));
    }

    #[test]
    fn json_escapings_match_serde_json_and_ascii_only_encoders() {
        let value = "p\"a\\s\ns\u{1}é😀";
        let serde = serde_json::to_string(value).unwrap();
        let forms = forms(value);
        assert!(forms.contains(&serde.trim_matches('"').to_owned()));
        assert!(forms.contains(&r#"p\"a\\s\ns\u0001\u00e9\ud83d\ude00"#.to_owned()));
        assert!(forms.contains(&r#"p\"a\\s\ns\u0001\u00E9\uD83D\uDE00"#.to_owned()));
    }
}
