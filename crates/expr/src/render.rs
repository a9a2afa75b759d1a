//! The environment, the template cache, and rendering.

use crate::{Context, ExprError};

/// Kestra's expression language: filters, functions, and cached compiled templates.
#[derive(Debug)]
pub struct Expressions {
    globals: serde_json::Value,
}

impl Expressions {
    /// An environment whose `globals` variable is `globals` (from configuration).
    pub fn new(globals: serde_json::Value) -> Self {
        Self { globals }
    }

    /// Renders `template` in `ctx`.
    pub fn render(&self, template: &str, ctx: &Context) -> Result<String, ExprError> {
        todo!("{template}{ctx:?}{}", self.globals)
    }

    /// Renders every string inside `value` (maps and lists recursively).
    pub fn render_value(
        &self,
        value: &serde_json::Value,
        ctx: &Context,
    ) -> Result<serde_json::Value, ExprError> {
        todo!("{value}{ctx:?}")
    }

    /// Renders with pure filters only: no variables, no secrets (env-file values).
    pub fn render_pure(&self, template: &str) -> Result<String, ExprError> {
        todo!("{template}")
    }
}
