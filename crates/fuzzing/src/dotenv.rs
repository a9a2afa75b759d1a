//! `dotenv`: the env-file parser behind `--env-file`, `kestrel secrets encode-env` and
//! `kestrel secrets import-env`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use kestrel_secrets::{DotenvEntry, EnvBackend, EnvOptions, decode_secret_value, parse_dotenv};
use std::collections::BTreeMap;

/// Parses the input (lossy UTF-8) as an env file, then checks the round trips it promises.
///
/// Panics when the parser panics; when an error has line 0, a line past the end, or no
/// message; when an entry has an invalid name or lines out of order; when the `encode-env`
/// round trip loses a value: each entry written as `SECRET_<KEY>=<base64>` (values written as
/// expressions as they are: rendering is the `render` target's), that file parsed again,
/// each value decoded by `decode_secret_value`, and the file loaded by `EnvBackend::load`
/// must give every value back under its key; or when a value written back double-quoted
/// (escaping `\`, `"`, line breaks), single-quoted (when it holds no `'`) or unquoted (when
/// nothing in it needs quotes) does not read back as itself.
pub fn dotenv(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let entries = match parse_dotenv(&text) {
        Ok(entries) => entries,
        Err(error) => {
            let lines = text.split('\n').count();
            assert!(
                error.line >= 1 && error.line <= lines,
                "an error at line {} of {lines}",
                error.line
            );
            assert!(!error.message.is_empty(), "an error without a message");
            return;
        }
    };
    let mut last_line = 0;
    for entry in &entries {
        assert!(valid_name(&entry.name), "an invalid name: {:?}", entry.name);
        assert!(
            entry.line > last_line,
            "entry {:?} at line {} after line {last_line}",
            entry.name,
            entry.line
        );
        last_line = entry.line;
    }
    encode_env_round_trip(&entries);
    rewritten_round_trip(&entries, double_quoted);
    rewritten_round_trip(&entries, single_quoted);
    rewritten_round_trip(&entries, unquoted);
}

/// `[A-Za-z_][A-Za-z0-9_.-]*`, as `parse_dotenv` documents.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// `kestrel secrets encode-env`, then the environment backend reading its output.
fn encode_env_round_trip(entries: &[DotenvEntry]) {
    let mut encoded = String::new();
    let mut written = Vec::new();
    for entry in entries {
        let key = entry.name.strip_prefix("SECRET_").unwrap_or(&entry.name);
        let value = STANDARD.encode(entry.value.as_bytes());
        encoded.push_str(&format!("SECRET_{key}={value}\n"));
        written.push((format!("SECRET_{key}"), value, entry.value.to_string()));
    }
    let reread = match parse_dotenv(&encoded) {
        Ok(reread) => reread,
        Err(error) => panic!("the encoded file does not parse: {error}"),
    };
    assert_eq!(reread.len(), written.len(), "the encoded file lost entries");
    for (entry, (name, base64, plain)) in reread.iter().zip(&written) {
        assert_eq!(&entry.name, name, "a name changed in the encoded file");
        assert_eq!(entry.value.as_str(), base64, "{name}: the base64 changed");
        match decode_secret_value(&entry.value) {
            Ok(decoded) => assert_eq!(decoded.expose_secret(), plain, "{name}: decoded"),
            Err(reason) => panic!("{name}: the encoded value does not decode: {reason}"),
        }
    }
    // The backend: the last entry of a name wins, keys are upper-cased, `SECRET_` alone is
    // no secret, and of names that upper-case alike one wins (with a warning).
    let mut by_name: BTreeMap<&str, &str> = BTreeMap::new();
    for (name, _, plain) in &written {
        by_name.insert(name, plain);
    }
    let mut by_key: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for (name, plain) in &by_name {
        let key = name.strip_prefix("SECRET_").unwrap_or(name).to_uppercase();
        by_key.entry(key).or_default().push(plain);
    }
    let load = EnvBackend::load(
        Vec::<(String, String)>::new(),
        Some(&encoded),
        &EnvOptions::default(),
        &|text| Ok(text.to_owned()),
    );
    let load = match load {
        Ok(load) => load,
        Err(error) => panic!("the backend refuses the encoded file: {error}"),
    };
    for (key, candidates) in &by_key {
        if key.is_empty() {
            continue;
        }
        let Some(found) = load.backend.lookup(key) else {
            panic!("secret {key} is missing after the load");
        };
        assert!(
            candidates.contains(&found.expose_secret()),
            "secret {key} has another value after the load"
        );
    }
}

/// `entries` written back by `write`, parsed again: the same names and values, where `write`
/// can write the value.
fn rewritten_round_trip(entries: &[DotenvEntry], write: fn(&str) -> Option<String>) {
    let mut text = String::new();
    let mut expected = Vec::new();
    for entry in entries {
        if let Some(value) = write(&entry.value) {
            text.push_str(&format!("{}={value}\n", entry.name));
            expected.push((entry.name.as_str(), entry.value.as_str()));
        }
    }
    let reread = match parse_dotenv(&text) {
        Ok(reread) => reread,
        Err(error) => panic!("values written back do not parse: {error}\n{text:?}"),
    };
    let reread: Vec<(&str, &str)> = reread
        .iter()
        .map(|entry| (entry.name.as_str(), entry.value.as_str()))
        .collect();
    assert_eq!(
        reread, expected,
        "values written back read differently: {text:?}"
    );
}

/// `"value"`, escaping what the double-quoted form resolves.
fn double_quoted(value: &str) -> Option<String> {
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out.push('"');
    Some(out)
}

/// `'value'`, literal: not for a value holding `'` or a CRLF (read as LF).
fn single_quoted(value: &str) -> Option<String> {
    (!value.contains('\'') && !value.contains("\r\n")).then(|| format!("'{value}'"))
}

/// The value as it is, when nothing in it needs quotes: no line break, no surrounding
/// whitespace, no opening quote, no `#` after whitespace.
fn unquoted(value: &str) -> Option<String> {
    let plain = !value.contains(['\n', '\r'])
        && value.trim() == value
        && !value.starts_with(['\'', '"'])
        && !value.contains(" #")
        && !value.contains("\t#");
    plain.then(|| value.to_owned())
}
