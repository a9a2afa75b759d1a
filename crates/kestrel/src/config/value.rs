//! One configuration value: `${NAME}` replaced by the environment at load; credentials hidden
//! when the configuration is shown.

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_yaml_ng::Value;
use std::fmt;
use zeroize::Zeroizing;

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
        if names.is_empty() {
            Err(D::Error::custom(error))
        } else {
            // The error would quote the variable's value, which may be a secret.
            Err(D::Error::custom(format!(
                "the value of ${{{}}} does not fit here",
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
        let value = std::env::var(name)
            .map_err(|_| format!("environment variable {name} is not set (used as ${{{name}}})"))?;
        out.push_str(&value);
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

    /// A variable every test process has.
    fn path_var() -> String {
        std::env::var("PATH").unwrap()
    }

    #[test]
    fn references_are_replaced_anywhere_in_a_string() {
        let mut names = Vec::new();
        let out = substitute_str("a ${PATH} b", &mut names).unwrap();
        assert_eq!(out, format!("a {} b", path_var()));
        assert_eq!(names, ["PATH"]);
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
