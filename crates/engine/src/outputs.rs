//! A flow's `outputs`, rendered once its execution succeeded: each `{id, type, value}` with
//! its value rendered (texts inside lists and maps too) and read by its type.

use crate::State;
use crate::runner::Run;
use chrono::Utc;
use kestrel_flow::{Flow, InputRules, InputType, Level, OutputDef};
use serde_json::{Map, Value};

impl Run<'_> {
    /// Renders the flow's outputs into the execution; `state` when they all render, FAILED
    /// otherwise, with one ERROR entry (of no task) saying which output and why. SECRET
    /// outputs are registered for masking.
    pub(crate) async fn flow_outputs(&self, flow: &Flow, state: State) -> State {
        if flow.outputs.is_empty() {
            return state;
        }
        let ctx = self.output_context();
        let mut outputs = Map::new();
        for def in &flow.outputs {
            let rendered = crate::render::render_value(&self.engine.expressions, &def.value, &ctx)
                .await
                .and_then(|value| typed(def, value));
            match rendered {
                Ok(value) => {
                    if let (Some(InputType::Secret), Value::String(text)) = (kind(def), &value) {
                        self.registry.register(&def.id, text);
                    }
                    outputs.insert(def.id.clone(), value);
                }
                Err(problem) => {
                    let message = format!(
                        "Failed to render output values: output '{}': {problem}",
                        def.id
                    );
                    self.execution_log(Level::Error, &message);
                    return State::Failed;
                }
            }
        }
        self.set_flow_outputs(outputs);
        state
    }

    /// Logs an entry of the execution itself (no task).
    pub(crate) fn execution_log(&self, level: Level, message: &str) {
        let entry = crate::held::HeldLog {
            task_id: String::new(),
            task_run_id: String::new(),
            level,
            message: message.to_owned(),
            timestamp: Utc::now(),
            attempt_number: 1,
        };
        self.listener.on_log(&self.edge().log(&entry));
        self.keep_logs(vec![entry]);
    }
}

/// The output's type, when it is one kestrel reads (the input types, FILE a `kestra://` URI);
/// others keep their rendered value as it is.
fn kind(def: &OutputDef) -> Option<InputType> {
    def.output_type.as_deref().and_then(InputType::from_name)
}

/// A rendered value read by the output's type, as an input of that type is read: a text
/// becomes a number, a boolean, JSON, a normalized date...
fn typed(def: &OutputDef, value: Value) -> Result<Value, String> {
    let Value::String(text) = &value else {
        return Ok(value);
    };
    match kind(def) {
        None | Some(InputType::String | InputType::Secret) => Ok(value),
        Some(kind) => kestrel_flow::read_value(kind, &InputRules::default(), text)
            .map_err(|error| format!("{error}, got '{}'", text.escape_debug())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn def(output_type: Option<&str>) -> OutputDef {
        OutputDef {
            id: "o".into(),
            value: json!(""),
            output_type: output_type.map(str::to_owned),
        }
    }

    #[test]
    fn rendered_texts_are_read_by_type() {
        assert_eq!(typed(&def(Some("INT")), json!(" 42 ")), Ok(json!(42)));
        assert_eq!(typed(&def(Some("FLOAT")), json!("1.5")), Ok(json!(1.5)));
        assert_eq!(typed(&def(Some("BOOLEAN")), json!("true")), Ok(json!(true)));
        assert_eq!(
            typed(&def(Some("JSON")), json!("{\"a\":[1]}")),
            Ok(json!({"a": [1]}))
        );
        assert_eq!(typed(&def(Some("STRING")), json!("7")), Ok(json!("7")));
        assert_eq!(
            typed(&def(Some("DATETIME")), json!("2024-05-01T12:00:00+02:00")),
            Ok(json!("2024-05-01T10:00:00Z"))
        );
        assert!(typed(&def(Some("DATETIME")), json!("2024")).is_err());
        let stored = json!("kestra:///dev/f/executions/e/tasks/t/r/a.csv");
        assert_eq!(typed(&def(Some("FILE")), stored.clone()), Ok(stored));
        assert!(typed(&def(Some("FILE")), json!("2024")).is_err());
        assert_eq!(typed(&def(None), json!({"k": "v"})), Ok(json!({"k": "v"})));
    }

    #[test]
    fn a_value_of_the_wrong_type_says_what_was_expected() {
        assert_eq!(
            typed(&def(Some("INT")), json!("many")),
            Err("expected an INT, got 'many'".into())
        );
        assert!(typed(&def(Some("JSON")), json!("{")).is_err());
    }
}
