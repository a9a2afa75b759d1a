//! The whole check of a flow's source, as `kestrel validate` and every save run it: the flow
//! model (`kestrel_flow::parse_flow`), then the syntax of every templated property, so that
//! `"{{ foo( }}"` is refused with its position before any execution, not when a task runs.

use kestrel_expr::Expressions;
use kestrel_flow::{Flow, Violation};
use std::sync::{Arc, OnceLock};

/// The flow `source` parsed and every template in it compiled; on failure, every violation.
pub fn check_flow(source: &str) -> Result<Flow, Vec<Violation>> {
    kestrel_flow::parse_flow_checking(source, &|text| {
        compiler()
            .check_syntax(text)
            .map_err(|error| error.to_string())
    })
}

/// The expression engine templates are compiled with (no variables: nothing is rendered).
fn compiler() -> &'static Arc<Expressions> {
    static COMPILER: OnceLock<Arc<Expressions>> = OnceLock::new();
    COMPILER.get_or_init(|| Arc::new(Expressions::new(serde_json::json!({}))))
}

#[cfg(test)]
mod tests {
    use super::check_flow;

    fn flow(message: &str) -> String {
        format!(
            "id: f\nnamespace: dev\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.log.Log\n    message: \"{message}\"\n"
        )
    }

    #[test]
    fn a_template_that_does_not_parse_is_refused_at_its_position() {
        let found = check_flow(&flow("{{ foo( }}")).unwrap_err();
        assert_eq!(found.len(), 1);
        let shown = found[0].to_string();
        assert!(shown.starts_with("6:14: tasks[0].message: "), "{shown}");
        assert!(check_flow(&flow("{{ flow.id | upper }} {% if true %}x{% endif %}")).is_ok());
    }

    #[test]
    fn template_and_model_violations_come_together_in_source_order() {
        let source = "id: f\nnamespace: dev\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.log.Log\n    message: \"{% if %}\"\n  - id: u\n    type: nope\n";
        let found: Vec<String> = check_flow(source)
            .unwrap_err()
            .iter()
            .map(|v| v.to_string())
            .collect();
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].starts_with("6:14: tasks[0].message: "));
        assert_eq!(found[1], "8:11: Invalid type: nope");
    }
}
