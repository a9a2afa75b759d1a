//! The encoded forms under which a registered value may reappear.
//!
//! A secret rarely leaks verbatim: it goes into a base64 `Authorization` header, a URL query, a
//! JSON body. [`encoded_forms`] lists the spellings the masker also looks for (spec §6). Every
//! buffer is sized before it is filled, so no reallocation leaves a stray copy of a secret in
//! freed memory, and every form is zeroized on drop.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use zeroize::Zeroizing;

/// Columns at which tools wrap base64: PEM at 64, MIME (and GNU `base64`) at 76.
const WRAP_COLUMNS: [usize; 2] = [64, 76];

/// Values shorter than this (in Unicode scalar values) get no shifted-offset cores: a core is
/// about 4/3 of the value minus up to 3 characters, too short to be specific below this.
const SHIFTED_CORE_MIN_CHARS: usize = 8;

/// Every encoded spelling of `value` (the value itself excluded; duplicates possible).
pub(crate) fn encoded_forms(value: &str) -> Vec<Zeroizing<String>> {
    let mut forms = Vec::new();
    base64_forms(value, &mut forms);
    for style in [Percent::Upper, Percent::Lower, Percent::Form] {
        forms.push(percent_encode(value, style));
    }
    for style in [JsonStyle::Raw, JsonStyle::AsciiLower, JsonStyle::AsciiUpper] {
        forms.push(json_escape(value, style));
    }
    forms
}

/// Base64 padded and unpadded, each line of the wrapped forms, and the stable cores.
fn base64_forms(value: &str, forms: &mut Vec<Zeroizing<String>>) {
    let padded = Zeroizing::new(STANDARD.encode(value));
    for columns in WRAP_COLUMNS {
        if padded.len() > columns {
            // Base64 is ASCII, so every chunk is valid UTF-8.
            let lines = padded.as_bytes().chunks(columns);
            forms.extend(lines.filter_map(|line| std::str::from_utf8(line).ok().map(owned)));
        }
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

/// How a byte outside the unreserved set is written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Percent {
    /// RFC 3986, upper-case hex (`%2F`).
    Upper,
    /// RFC 3986, lower-case hex (`%2f`).
    Lower,
    /// `application/x-www-form-urlencoded`: `+` for a space, upper-case hex.
    Form,
}

fn percent_encode(value: &str, style: Percent) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(value.len() * 3));
    for &byte in value.as_bytes() {
        let kept = match style {
            Percent::Form => byte.is_ascii_alphanumeric() || b"*-._".contains(&byte),
            Percent::Upper | Percent::Lower => {
                byte.is_ascii_alphanumeric() || b"-._~".contains(&byte)
            }
        };
        if kept {
            out.push(char::from(byte));
        } else if style == Percent::Form && byte == b' ' {
            out.push('+');
        } else {
            out.push('%');
            push_hex(&mut out, u32::from(byte), 2, style != Percent::Lower);
        }
    }
    out
}

/// How a string is escaped inside a JSON string literal.
#[derive(Clone, Copy, PartialEq, Eq)]
enum JsonStyle {
    /// serde_json's (and JavaScript's) escaping: non-ASCII characters kept as they are.
    Raw,
    /// Every non-ASCII character as `\uxxxx` (Python's `json.dumps`).
    AsciiLower,
    /// Every non-ASCII character as `\uXXXX` (Jackson, Java).
    AsciiUpper,
}

fn json_escape(value: &str, style: JsonStyle) -> Zeroizing<String> {
    // Worst case: a control byte becomes the six characters `\u001f`.
    let mut out = Zeroizing::new(String::with_capacity(value.len() * 6));
    let upper = style == JsonStyle::AsciiUpper;
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if u32::from(c) < 0x20 || (!c.is_ascii() && style != JsonStyle::Raw) => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str("\\u");
                    push_hex(&mut out, u32::from(*unit), 4, upper);
                }
            }
            c => out.push(c),
        }
    }
    out
}

fn push_hex(out: &mut String, value: u32, digits: u32, upper: bool) {
    for position in (0..digits).rev() {
        let nibble = (value >> (4 * position)) & 0xf;
        let digit = char::from_digit(nibble, 16).unwrap_or('0');
        out.push(if upper {
            digit.to_ascii_uppercase()
        } else {
            digit
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
        encoded_forms(value).iter().map(|f| f.to_string()).collect()
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
