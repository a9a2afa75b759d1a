//! One configuration value: `${NAME}` replaced by the environment at load; credentials hidden
//! when the configuration is shown; errors that never quote the value written.

use crate::environment::{Environment, NotText};
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_yaml_ng::Value;
use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;
use zeroize::Zeroizing;

thread_local! {
    /// The variables `${NAME}` reads while a configuration is parsed ([`with_environment`]):
    /// serde hands a deserializer no context of its own.
    static ENVIRONMENT: RefCell<Option<Arc<Environment>>> = const { RefCell::new(None) };
}

/// Runs `parse` with `${NAME}` read from `env` (outside it, every variable is unset).
pub(crate) fn with_environment<R>(env: &Arc<Environment>, parse: impl FnOnce() -> R) -> R {
    ENVIRONMENT.with_borrow_mut(|slot| *slot = Some(Arc::clone(env)));
    let parsed = parse();
    ENVIRONMENT.with_borrow_mut(|slot| *slot = None);
    parsed
}

/// The document `text` read as `T`. An error names the whole key at fault (the parser alone
/// names the section around a value it could not read) and the type expected, never the value.
pub(crate) fn from_yaml<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    let deserializer = serde_yaml_ng::Deserializer::from_str(text);
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let path = error.path().to_string();
        let message = without_values(&error.inner().to_string());
        let message = match message.split_once(": ") {
            Some((section, rest)) if holds(section, &path) => rest,
            _ => &message,
        };
        if path == "." || path.contains('?') {
            message.to_owned()
        } else {
            format!("{path}: {message}")
        }
    })
}

/// Whether the parser's `section` prefix names `path` or a section that holds it.
fn holds(section: &str, path: &str) -> bool {
    path.strip_prefix(section)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
}

/// A parser's error message without the value it quotes: `invalid type: string "hunter2",
/// expected usize` becomes `invalid type, expected usize` (the key and the line, which
/// the parser puts around it, stay). A value may be a credential, and the person who wrote it
/// knows it already.
pub(crate) fn without_values(message: &str) -> String {
    let mut message = message.to_owned();
    for quoting in ["invalid type", "invalid value", "unknown variant"] {
        let Some(start) = message.find(quoting) else {
            continue;
        };
        let label = start + quoting.len();
        // Serde's `expected ...` describes a type, never a value; the last one is the
        // parser's own, after any quoted value that holds the same words.
        let end = message[label..]
            .rfind(", expected ")
            .or_else(|| message[label..].rfind(" at line "))
            .map_or(message.len(), |end| label + end);
        message.replace_range(label..end, "");
    }
    message
}

/// A value as written in the file, with every `${NAME}` in its strings replaced by the
/// environment variable NAME. A string that does not fit the expected type is read as YAML, so
/// `threads: ${THREADS}` gives a number.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Subst<T>(pub(crate) T);

impl<'de, T: DeserializeOwned> Deserialize<'de> for Subst<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let written = Value::deserialize(deserializer)?;
        let mut names = Vec::new();
        let value = substitute(written, &mut names).map_err(D::Error::custom)?;
        let error = match T::deserialize(value.clone()) {
            Ok(typed) => return Ok(Subst(typed)),
            Err(error) => error,
        };
        if let Value::String(text) = &value
            && let Ok(typed) = serde_yaml_ng::from_str(text)
        {
            return Ok(Subst(typed));
        }
        let error = without_values(&error.to_string());
        if names.is_empty() {
            Err(D::Error::custom(error))
        } else {
            Err(D::Error::custom(format!(
                "the value of ${{{}}} does not fit here ({error})",
                names.join("}, ${")
            )))
        }
    }
}

impl<T: Serialize> Serialize for Subst<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

/// A credential (token, password hash): read like [`Subst`], zeroized on drop, shown as
/// `******`.
pub(crate) struct Hidden(Zeroizing<String>);

impl fmt::Debug for Hidden {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Hidden(******)")
    }
}

impl Hidden {
    /// The credential itself, for the code that uses it (never to print).
    pub(crate) fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Hidden {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let Subst(text) = Subst::<String>::deserialize(deserializer)?;
        Ok(Hidden(Zeroizing::new(text)))
    }
}

impl Serialize for Hidden {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // An empty credential is a mistake worth seeing; any other is masked.
        let shown = if self.0.is_empty() {
            ""
        } else {
            kestrel_secrets::MASK
        };
        serializer.serialize_str(shown)
    }
}

/// `value` with `${NAME}` replaced in every string it holds; `names` collects the variables
/// used. An unset variable is an error naming it.
fn substitute(value: Value, names: &mut Vec<String>) -> Result<Value, String> {
    Ok(match value {
        Value::String(text) => Value::String(substitute_str(&text, names)?),
        Value::Sequence(items) => Value::Sequence(
            items
                .into_iter()
                .map(|item| substitute(item, names))
                .collect::<Result<_, _>>()?,
        ),
        Value::Mapping(map) => Value::Mapping(
            map.into_iter()
                .map(|(key, item)| Ok((key, substitute(item, names)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other,
    })
}

/// `text` with each `${NAME}` (NAME: letters, digits, `_`) replaced by the variable's value.
fn substitute_str(text: &str, names: &mut Vec<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let (before, reference) = rest.split_at(start);
        out.push_str(before);
        let name_and_rest = &reference[2..];
        let end = name_and_rest
            .find('}')
            .filter(|&end| is_name(&name_and_rest[..end]));
        let Some(end) = end else {
            out.push_str("${");
            rest = name_and_rest;
            continue;
        };
        let name = &name_and_rest[..end];
        let found = ENVIRONMENT.with_borrow(|env| {
            let value = env.as_ref().map_or(Ok(None), |env| env.text(name))?;
            Ok(value.map(|value| out.push_str(value)).is_some())
        });
        match found {
            Ok(true) => {}
            Ok(false) => {
                return Err(format!(
                    "environment variable {name} is not set (used as ${{{name}}})"
                ));
            }
            Err(NotText) => {
                return Err(format!(
                    "environment variable {name} is not text (used as ${{{name}}})"
                ));
            }
        }
        names.push(name.to_owned());
        rest = &name_and_rest[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Arc<Environment> {
        Arc::new(Environment::from_pairs(
            pairs
                .iter()
                .map(|(name, value)| (name.into(), value.into())),
        ))
    }

    #[test]
    fn references_are_replaced_anywhere_in_a_string() {
        let mut names = Vec::new();
        let env = env(&[("DIR", "/srv/x")]);
        let out = with_environment(&env, || substitute_str("a ${DIR} b", &mut names)).unwrap();
        assert_eq!(out, "a /srv/x b");
        assert_eq!(names, ["DIR"]);
        let error = substitute_str("${DIR}", &mut names).unwrap_err();
        assert!(
            error.contains("DIR is not set"),
            "read outside the environment: {error}"
        );
    }

    #[test]
    fn errors_lose_the_values_they_quote() {
        for (message, shown) in [
            (
                "worker.threads: invalid type: string \"s3cr3t\", expected usize at line 2 column 12",
                "worker.threads: invalid type, expected usize at line 2 column 12",
            ),
            (
                "secret.type: unknown variant `s3cr3t`, expected one of `embedded`, `vault`",
                "secret.type: unknown variant, expected one of `embedded`, `vault`",
            ),
            (
                "x: invalid value: string \"s3cr3t, expected usize\", expected u8 at line 1",
                "x: invalid value, expected u8 at line 1",
            ),
            (
                "x: unknown variant `s3cr3t`, there are no variants at line 4",
                "x: unknown variant at line 4",
            ),
            (
                "unknown field `colour`, expected one of `a`",
                "unknown field `colour`, expected one of `a`",
            ),
        ] {
            assert_eq!(without_values(message), shown);
        }
    }

    #[test]
    fn an_unset_variable_is_named() {
        let error = substitute_str("${KESTREL_TEST_SURELY_UNSET_7Q}", &mut Vec::new()).unwrap_err();
        assert!(
            error.contains("KESTREL_TEST_SURELY_UNSET_7Q is not set"),
            "{error}"
        );
    }

    #[test]
    fn text_that_is_no_reference_stays() {
        let mut names = Vec::new();
        for text in ["$", "${", "${}", "${1X}", "cost: $5", "${a-b}", "é${"] {
            assert_eq!(substitute_str(text, &mut names).unwrap(), text);
        }
        assert!(names.is_empty());
    }

    #[test]
    fn a_hidden_value_is_masked_when_shown() {
        let hidden: Hidden = serde_yaml_ng::from_str("s3cr3t-token").unwrap();
        assert_eq!(
            serde_yaml_ng::to_string(&hidden).unwrap().trim(),
            "'******'"
        );
        assert!(!format!("{hidden:?}").contains("s3cr3t"));
    }
}
