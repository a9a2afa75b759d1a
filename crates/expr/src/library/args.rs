//! Pebble's argument binding: a filter or function declares its argument names, positional
//! arguments take them in order and named ones must be among them. Kestra's filters and
//! functions are called either way (`substringAfter('.')`, `substringAfter(separator='.')`).

use crate::error::function_error;
use minijinja::Error;
use minijinja::value::{ArgType, Kwargs, Value};

/// What a filter or function accepts.
#[derive(Clone, Copy)]
pub(super) struct Signature {
    pub(super) name: &'static str,
    /// `filter` or `function`, for messages.
    pub(super) what: &'static str,
    /// Arguments before the declared ones: a filter's input.
    pub(super) leading: usize,
    /// The declared argument names, in order; `None` takes any number of positional arguments
    /// and no named one (`max`, `min`).
    pub(super) params: Option<&'static [&'static str]>,
}

impl Signature {
    /// `args` as positional arguments only: each named argument moved to its declared place,
    /// an argument not given there undefined. An undeclared name, an argument given twice or
    /// too many positional arguments is an error, never ignored.
    pub(super) fn bind(&self, mut args: Vec<Value>) -> Result<Vec<Value>, Error> {
        let kwargs = args.last().and_then(|v| Kwargs::from_value(Some(v)).ok());
        if kwargs.is_some() {
            args.pop();
        }
        let given = args.len().saturating_sub(self.leading);
        let Some(params) = self.params else {
            return match kwargs.as_ref().and_then(|k| k.args().next()) {
                Some(key) => Err(self.unknown(key)),
                None => Ok(args),
            };
        };
        if given > params.len() {
            return Err(function_error(format!(
                "The '{}' {} takes at most {} argument{} ({}), {given} given.",
                self.name,
                self.what,
                params.len(),
                if params.len() == 1 { "" } else { "s" },
                self.accepted(),
            )));
        }
        let Some(kwargs) = kwargs else {
            return Ok(args);
        };
        for key in kwargs.args() {
            match params.iter().position(|p| *p == key) {
                None => return Err(self.unknown(key)),
                Some(at) if at < given => {
                    return Err(function_error(format!(
                        "The '{}' {} got the argument '{key}' twice (by position and by name).",
                        self.name, self.what
                    )));
                }
                Some(_) => {}
            }
        }
        let last = params.iter().rposition(|p| kwargs.has(p)).unwrap_or(0);
        for param in params.iter().take(last + 1).skip(given) {
            args.push(
                kwargs
                    .peek::<Option<Value>>(param)?
                    .unwrap_or(Value::UNDEFINED),
            );
        }
        Ok(args)
    }

    fn accepted(&self) -> String {
        match self.params {
            Some([]) | None => "none by name".into(),
            Some(params) => params.join(", "),
        }
    }

    fn unknown(&self, key: &str) -> Error {
        function_error(format!(
            "The '{}' {} has no argument named '{key}' (it takes: {}).",
            self.name,
            self.what,
            self.accepted()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUBSTRING: Signature = Signature {
        name: "substringAfter",
        what: "filter",
        leading: 1,
        params: Some(&["separator"]),
    };

    fn kwargs(pairs: &[(&str, Value)]) -> Value {
        Value::from(pairs.iter().cloned().collect::<Kwargs>())
    }

    #[test]
    fn named_arguments_take_their_declared_place() {
        let args = vec![
            Value::from("a.b"),
            kwargs(&[("separator", Value::from("."))]),
        ];
        assert_eq!(
            SUBSTRING.bind(args).unwrap(),
            [Value::from("a.b"), Value::from(".")]
        );
    }

    #[test]
    fn a_gap_before_a_named_argument_is_undefined() {
        let date = Signature {
            name: "date",
            what: "filter",
            leading: 1,
            params: Some(&["format", "timeZone"]),
        };
        let args = vec![Value::from(0), kwargs(&[("timeZone", Value::from("UTC"))])];
        let bound = date.bind(args).unwrap();
        assert!(bound[1].is_undefined());
        assert_eq!(bound[2], Value::from("UTC"));
    }

    #[test]
    fn unknown_repeated_and_extra_arguments_are_errors() {
        let unknown = SUBSTRING.bind(vec![Value::from("a"), kwargs(&[("sep", Value::from("."))])]);
        assert!(
            unknown
                .unwrap_err()
                .to_string()
                .contains("no argument named 'sep'")
        );
        let twice = SUBSTRING.bind(vec![
            Value::from("a"),
            Value::from("."),
            kwargs(&[("separator", Value::from("."))]),
        ]);
        assert!(twice.unwrap_err().to_string().contains("twice"));
        let extra = SUBSTRING.bind(vec![Value::from("a"), Value::from("."), Value::from(",")]);
        assert!(
            extra
                .unwrap_err()
                .to_string()
                .contains("at most 1 argument")
        );
        let variadic = Signature {
            params: None,
            ..SUBSTRING
        };
        assert!(
            variadic
                .bind(vec![kwargs(&[("x", Value::from(1))])])
                .is_err()
        );
    }
}
