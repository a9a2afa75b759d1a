//! Rendering errors: what went wrong, in which template, at which line.

use std::fmt;

/// Kinds of expression errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExprErrorKind {
    /// The template does not parse.
    Syntax,
    /// A variable or attribute is not defined.
    Undefined,
    /// `secret()` failed (missing key, sub-key, backend).
    Secret,
    /// A filter or function was misused or failed.
    Function,
}

/// An expression error: `<message> (<template>:<line>)`. Never holds a secret value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExprError {
    /// What kind.
    pub kind: ExprErrorKind,
    /// The message, e.g. `Cannot find secret for key 'X'.`
    pub message: String,
    /// The template as written.
    pub template: String,
    /// 1-based line within the template.
    pub line: usize,
}

impl fmt::Display for ExprError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}:{})", self.message, self.template, self.line)
    }
}

impl std::error::Error for ExprError {}
