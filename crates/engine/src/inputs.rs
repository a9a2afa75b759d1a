//! A flow's inputs: raw values typed by the flow's input definitions.

use crate::edge::Edge;
use crate::held::HeldInputs;
use kestrel_flow::{InputDef, InputType};
use kestrel_secrets::{MaskRegistry, SecretValue};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;

/// An input that cannot be accepted: its id and why. Never holds a SECRET input's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    /// The input's id.
    pub input: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid input '{}': {}", self.input, self.message)
    }
}

impl std::error::Error for InputError {}

/// An execution's inputs, typed: the `inputs` map expressions see, and the values the
/// execution registers for masking at its start (SECRET inputs, and what
/// [`Inputs::register_secret`] adds). `Debug` shows the ids only.
#[derive(Default)]
pub struct Inputs {
    values: Map<String, Value>,
    /// The ids of the SECRET inputs.
    secret_ids: Vec<String>,
    secrets: Vec<(String, SecretValue)>,
}

impl fmt::Debug for Inputs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<&String> = self.values.keys().collect();
        f.debug_struct("Inputs").field("ids", &ids).finish()
    }
}

impl Inputs {
    /// Types `raw` values (held as secrets until their type is known) by `defs`: each given
    /// value parsed by its input's type, defaults for the others, null for optional ones. An
    /// unknown input, a value given twice, a missing required input or a value of the wrong
    /// type is an error naming the input.
    pub fn parse(
        defs: &[InputDef],
        raw: impl IntoIterator<Item = (String, SecretValue)>,
    ) -> Result<Self, InputError> {
        Self::parse_requiring(defs, raw, true)
    }

    /// [`Inputs::parse`] for an execution a Flow trigger starts: as in Kestra, which does not
    /// check a triggered execution's inputs against the flow's `required`, a required input
    /// the trigger does not give is null rather than an error.
    pub fn parse_triggered(
        defs: &[InputDef],
        raw: impl IntoIterator<Item = (String, SecretValue)>,
    ) -> Result<Self, InputError> {
        Self::parse_requiring(defs, raw, false)
    }

    fn parse_requiring(
        defs: &[InputDef],
        raw: impl IntoIterator<Item = (String, SecretValue)>,
        enforce_required: bool,
    ) -> Result<Self, InputError> {
        let mut given = BTreeMap::new();
        for (id, value) in raw {
            if !defs.iter().any(|def| def.id == id) {
                return Err(error(&id, "the flow has no such input"));
            }
            if given.insert(id.clone(), value).is_some() {
                return Err(error(&id, "given more than once"));
            }
        }
        let mut inputs = Inputs::default();
        for def in defs {
            let value = match (given.remove(&def.id), &def.defaults) {
                (Some(raw), _) => typed(def, raw.expose_secret())?,
                (None, Some(default)) => typed_default(def, default)?,
                (None, None) if def.required && enforce_required => {
                    return Err(error(&def.id, "missing required"));
                }
                (None, None) => Value::Null,
            };
            if def.input_type == InputType::Secret {
                inputs.secret_ids.push(def.id.clone());
            }
            if let (InputType::Secret, Value::String(text)) = (def.input_type, &value) {
                inputs
                    .secrets
                    .push((def.id.clone(), SecretValue::new(text.clone())));
            }
            inputs.values.insert(def.id.clone(), value);
        }
        Ok(inputs)
    }

    /// Registers `value` for masking, under `key` (named in warnings, never the value), from
    /// the start of the execution these inputs start, without making it an input: the key of
    /// the Webhook trigger that started it, when `secret()` resolved it.
    pub fn register_secret(&mut self, key: &str, value: SecretValue) {
        self.secrets.push((key.to_owned(), value));
    }

    /// The inputs as readers see them before the execution starts (built by the edge): SECRET
    /// inputs as the mask, every other masked with the values registered at start, those
    /// given no value left out. The execution shows them again as it registers more.
    pub(crate) fn shown(&self, mask_min_length: usize) -> Map<String, Value> {
        let registry = MaskRegistry::new(mask_min_length);
        self.register_in(&registry);
        Edge::new(&registry).inputs(&self.held()).into_inner()
    }

    /// The `inputs` map of expressions (SECRET inputs in clear: renders need them).
    pub(crate) fn values(&self) -> &Map<String, Value> {
        &self.values
    }

    /// Registers every value to mask from the start in `registry`.
    pub(crate) fn register_in(&self, registry: &MaskRegistry) {
        for (key, value) in &self.secrets {
            registry.register(key, value.expose_secret());
        }
    }

    /// What the execution holds of its inputs.
    pub(crate) fn held(&self) -> HeldInputs {
        HeldInputs {
            values: self.values.clone(),
            secret_ids: self.secret_ids.clone(),
        }
    }
}

fn error(input: &str, message: &str) -> InputError {
    InputError {
        input: input.to_owned(),
        message: message.to_owned(),
    }
}

/// Reads a value given as text by the input's type and checks it against the input's rules.
/// Errors name the input and what was expected, never the value: it may be a secret typed
/// into the wrong field, and the error reaches the API, the UI and the log.
fn typed(def: &InputDef, text: &str) -> Result<Value, InputError> {
    kestrel_flow::read_value(def.input_type, &def.rules, text)
        .map_err(|message| error(&def.id, &message))
}

/// A flow's `defaults` value, read and checked like a given value (numbers, booleans, lists
/// and maps through their text).
fn typed_default(def: &InputDef, default: &Value) -> Result<Value, InputError> {
    match default {
        Value::String(text) => typed(def, text),
        other => typed(def, &other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn def(id: &str, input_type: InputType, required: bool, defaults: Option<Value>) -> InputDef {
        InputDef {
            id: id.into(),
            input_type,
            required,
            defaults,
            description: None,
            rules: kestrel_flow::InputRules::default(),
        }
    }

    fn raw(pairs: &[(&str, &str)]) -> Vec<(String, SecretValue)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), SecretValue::new(v.to_string())))
            .collect()
    }

    #[test]
    fn values_are_typed_by_their_definition() {
        let defs = [
            def("s", InputType::String, true, None),
            def("i", InputType::Int, true, None),
            def("f", InputType::Float, true, None),
            def("b", InputType::Boolean, true, None),
            def("j", InputType::Json, true, None),
        ];
        let given = raw(&[
            ("s", "text"),
            ("i", "42"),
            ("f", "1.5"),
            ("b", "TRUE"),
            ("j", r#"{"a":[1]}"#),
        ]);
        let inputs = Inputs::parse(&defs, given).unwrap();
        assert_eq!(
            Value::Object(inputs.values().clone()),
            json!({"s": "text", "i": 42, "f": 1.5, "b": true, "j": {"a": [1]}})
        );
    }

    #[test]
    fn defaults_fill_in_and_optional_inputs_are_null() {
        let defs = [
            def("n", InputType::Int, true, Some(json!(7))),
            def("t", InputType::Int, true, Some(json!("8"))),
            def("o", InputType::String, false, None),
        ];
        let inputs = Inputs::parse(&defs, Vec::new()).unwrap();
        assert_eq!(
            Value::Object(inputs.values().clone()),
            json!({"n": 7, "t": 8, "o": null})
        );
    }

    #[test]
    fn errors_name_the_input() {
        let defs = [def("count", InputType::Int, true, None)];
        let bad = Inputs::parse(&defs, raw(&[("count", "many")])).unwrap_err();
        assert_eq!(bad.to_string(), "invalid input 'count': expected an INT");
        let missing = Inputs::parse(&defs, Vec::new()).unwrap_err();
        assert_eq!(missing.input, "count");
        let unknown = Inputs::parse(&defs, raw(&[("cuont", "1")])).unwrap_err();
        assert_eq!(unknown.input, "cuont");
        let twice = Inputs::parse(&defs, raw(&[("count", "1"), ("count", "2")])).unwrap_err();
        assert!(twice.message.contains("more than once"));
    }

    #[test]
    fn secret_inputs_are_kept_for_registration_and_hidden_from_debug() {
        let defs = [def("pw", InputType::Secret, true, None)];
        let inputs = Inputs::parse(&defs, raw(&[("pw", "hunter22")])).unwrap();
        let registry = MaskRegistry::new(4);
        inputs.register_in(&registry);
        assert_eq!(registry.mask("x hunter22"), "x ******");
        assert!(!format!("{inputs:?}").contains("hunter22"));
    }

    #[test]
    fn secret_inputs_are_shown_masked_and_others_typed() {
        let defs = [
            def("name", InputType::String, true, None),
            def("count", InputType::Int, true, None),
            def("password", InputType::Secret, true, None),
            def("level", InputType::String, true, Some(json!("low"))),
            def("unset", InputType::String, false, None),
            def("copy", InputType::String, true, None),
        ];
        let given = raw(&[
            ("name", "42"),
            ("count", "42"),
            ("password", "hunter2"),
            ("copy", "pw hunter2"),
        ]);
        let inputs = Inputs::parse(&defs, given).unwrap();
        assert_eq!(
            Value::Object(inputs.shown(4)),
            json!({"name": "42", "count": 42, "password": "******", "level": "low", "copy": "pw ******"})
        );
    }

    #[test]
    fn a_default_of_the_wrong_type_is_refused() {
        let defs = [def("flag", InputType::Boolean, true, Some(json!(3)))];
        assert!(Inputs::parse(&defs, Vec::new()).is_err());
    }

    #[test]
    fn a_triggered_execution_may_lack_a_required_input() {
        let defs = [def("from-parent", InputType::String, true, None)];
        assert!(Inputs::parse(&defs, Vec::new()).is_err());
        let inputs = Inputs::parse_triggered(&defs, Vec::new()).unwrap();
        let shown = inputs.shown(4);
        assert!(
            shown.get("from-parent").is_none_or(Value::is_null),
            "{shown:?}"
        );
    }
}
