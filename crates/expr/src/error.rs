//! Rendering errors: what went wrong, in which template, at which line.
//!
//! Inside a render, kestrel's own failures (a syntax error of the front end, a missing secret, a
//! misused filter) travel through minijinja as the `source` of a minijinja error: a [`Failure`]
//! carrying the kind and the exact message. [`convert`] turns whatever minijinja returns into an
//! [`ExprError`], tracing the error back to the tag as written through the lowered template's
//! spans, and naming the undefined variable for strict-undefined errors.

use crate::pebble::{self, Arg, Expr};
use minijinja::{ErrorKind, Value};
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
    /// A resource limit was exceeded (`expression.fuel`, `expression.max-value-size`, the
    /// nesting of the template machine).
    Limit,
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

/// A failure raised by kestrel's code during lowering or rendering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    pub(crate) kind: ExprErrorKind,
    pub(crate) message: String,
    /// Known for syntax errors; otherwise the line of the failing tag is used.
    pub(crate) line: Option<usize>,
}

impl Failure {
    pub(crate) fn new(kind: ExprErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            line: None,
        }
    }

    pub(crate) fn syntax(message: impl Into<String>, line: usize) -> Self {
        Self {
            kind: ExprErrorKind::Syntax,
            message: message.into(),
            line: Some(line),
        }
    }

    /// Wraps the failure so that it survives minijinja's error handling.
    pub(crate) fn into_error(self) -> minijinja::Error {
        let kind = match self.kind {
            ExprErrorKind::Syntax => ErrorKind::SyntaxError,
            _ => ErrorKind::InvalidOperation,
        };
        minijinja::Error::new(kind, self.message.clone()).with_source(self)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// A filter or function misused: the error to return from it.
pub(crate) fn function_error(message: impl Into<String>) -> minijinja::Error {
    Failure::new(ExprErrorKind::Function, message).into_error()
}

/// Turns a minijinja error raised while rendering `template` into an [`ExprError`].
/// `lookup` answers whether a root variable exists (for naming an undefined one).
pub(crate) fn convert(
    err: &minijinja::Error,
    template: &str,
    lookup: &dyn Fn(&str) -> Option<Value>,
) -> ExprError {
    let failure = find_failure(err);
    let lowered = pebble::lower(template).ok();
    let offset = err.range().map(|r| r.start);
    let span = lowered.as_ref().and_then(|l| l.span_at(offset, err.line()));
    let line = failure
        .and_then(|f| f.line)
        .or(span.map(|s| s.line))
        .or(err.line())
        .unwrap_or(1);
    let (kind, message) = match failure {
        Some(f) => (f.kind, f.message.clone()),
        None => {
            let locals = lowered.as_ref().map_or(&[][..], |l| &l.locals[..]);
            let (text, exprs) = span.map_or((template, &[][..]), |s| (s.text, &s.exprs[..]));
            describe(err, text, exprs, &|name| {
                if locals.iter().any(|l| l == name) {
                    Some(Value::UNDEFINED)
                } else {
                    lookup(name)
                }
            })
        }
    };
    ExprError {
        kind,
        message,
        template: template.to_string(),
        line,
    }
}

fn find_failure(err: &minijinja::Error) -> Option<&Failure> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(err);
    while let Some(e) = source {
        if let Some(failure) = e.downcast_ref::<Failure>() {
            return Some(failure);
        }
        source = e.source();
    }
    None
}

/// The message for an error minijinja raised itself.
fn describe(
    err: &minijinja::Error,
    text: &str,
    exprs: &[Expr],
    lookup: &dyn Fn(&str) -> Option<Value>,
) -> (ExprErrorKind, String) {
    match err.kind() {
        ErrorKind::UndefinedError => {
            let message = match exprs.iter().find_map(|e| undefined_in(e, lookup)) {
                Some(name) => format!("Unable to find `{name}` used in the expression `{text}`"),
                None => format!("Unable to evaluate the expression `{text}`: a value is undefined"),
            };
            (ExprErrorKind::Undefined, message)
        }
        ErrorKind::UnknownFilter | ErrorKind::UnknownFunction | ErrorKind::UnknownTest => {
            let what = match err.kind() {
                ErrorKind::UnknownFilter => "filter",
                ErrorKind::UnknownTest => "test",
                _ => "function",
            };
            // minijinja says `filter x is unknown`, `x is unknown`: keep the name only.
            let name = err
                .detail()
                .and_then(|d| d.strip_suffix(" is unknown"))
                .map(|d| d.strip_prefix(what).unwrap_or(d).trim())
                .map(|d| {
                    d.strip_prefix(pebble::FUNCTION_PREFIX)
                        .unwrap_or(d)
                        .to_string()
                })
                .unwrap_or_default();
            (
                ExprErrorKind::Function,
                format!("Unknown {what} `{name}` in the expression `{text}`"),
            )
        }
        ErrorKind::OutOfFuel => (
            ExprErrorKind::Limit,
            format!(
                "The expression ran out of fuel (expression.fuel): it executed too many instructions, e.g. a loop too long, in the expression `{text}`"
            ),
        ),
        ErrorKind::InvalidOperation if err.detail() == Some("recursion limit exceeded") => (
            ExprErrorKind::Limit,
            format!(
                "The expression nests loops, conditions or calls more than {} levels deep in the expression `{text}`",
                crate::limits::RECURSION_LIMIT
            ),
        ),
        ErrorKind::SyntaxError => (
            ExprErrorKind::Syntax,
            format!("{} in the expression `{text}`", detail(err)),
        ),
        _ => (
            ExprErrorKind::Function,
            format!("{} in the expression `{text}`", detail(err)),
        ),
    }
}

fn detail(err: &minijinja::Error) -> String {
    let detail = err
        .detail()
        .map_or_else(|| err.kind().to_string(), str::to_string);
    let mut chars = detail.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or(detail)
}

/// The first variable or attribute of `e`, in evaluation order, that the context lacks.
/// Parts read leniently (the left of `??`, the input of `default`, `is defined`) are skipped;
/// names the template defines itself answer `Some(UNDEFINED)` and are not followed.
fn undefined_in(e: &Expr, lookup: &dyn Fn(&str) -> Option<Value>) -> Option<String> {
    let walk = |e: &Expr| undefined_in(e, lookup);
    // A path read leniently cannot be what is undefined; anything else in that place can.
    let lenient = |e: &Expr| match e {
        Expr::Var(_) | Expr::Attr(..) | Expr::Index(..) => None,
        other => walk(other),
    };
    let args = |args: &[Arg]| {
        args.iter().find_map(|a| match a {
            Arg::Pos(e) | Arg::Named(_, e) => walk(e),
        })
    };
    match e {
        Expr::Var(_) | Expr::Attr(..) | Expr::Index(..) => undefined_path(e, lookup),
        Expr::List(items) => items.iter().find_map(walk),
        Expr::Map(entries) => entries
            .iter()
            .find_map(|(k, v)| walk(k).or_else(|| walk(v))),
        Expr::Slice(obj, a, b) => walk(obj)
            .or_else(|| a.as_deref().and_then(walk))
            .or_else(|| b.as_deref().and_then(walk)),
        // A function is not a variable: only its arguments can be undefined.
        Expr::Call(f, a) if matches!(f.as_ref(), Expr::Var(_)) => args(a),
        Expr::Call(f, a) => walk(f).or_else(|| args(a)),
        Expr::Filter(input, name, a) if name == "default" => lenient(input).or_else(|| args(a)),
        Expr::Filter(input, _, a) => walk(input).or_else(|| args(a)),
        Expr::Test(input, _, name, a) => match name.as_str() {
            "defined" | "null" | "none" | "empty" => lenient(input).or_else(|| args(a)),
            _ => walk(input).or_else(|| args(a)),
        },
        Expr::Unary(_, x) => walk(x),
        Expr::Binary(op, l, r) => match op {
            pebble::Binary::Coalesce | pebble::Binary::CoalesceUndefined => {
                lenient(l).or_else(|| walk(r))
            }
            _ => walk(l).or_else(|| walk(r)),
        },
        Expr::Ternary(c, a, b) => walk(c).or_else(|| walk(a)).or_else(|| walk(b)),
        Expr::Str(_) | Expr::Int(_) | Expr::Float(_) | Expr::Bool(_) | Expr::Null => None,
    }
}

/// Follows `a.b[0].c` through the context; names the first missing step.
fn undefined_path(e: &Expr, lookup: &dyn Fn(&str) -> Option<Value>) -> Option<String> {
    let mut steps = Vec::new();
    let mut root = e;
    while let Expr::Attr(obj, _) | Expr::Index(obj, _) = root {
        steps.push(root);
        root = obj;
    }
    steps.reverse();
    let mut value = match root {
        Expr::Var(name) => match lookup(name) {
            None => return Some(name.clone()),
            Some(v) => v,
        },
        other => return undefined_in(other, lookup),
    };
    for step in steps {
        if value.is_undefined() {
            // A template-defined name or a computed index: nothing more to check statically.
            return None;
        }
        let (next, name) = match step {
            Expr::Attr(_, name) => (value.get_attr(name).ok(), name.clone()),
            Expr::Index(_, index) => match index.as_ref() {
                Expr::Str(s) => (value.get_item(&Value::from(s.as_str())).ok(), s.clone()),
                Expr::Int(i) => (
                    i.parse::<i64>()
                        .ok()
                        .and_then(|i| value.get_item(&Value::from(i)).ok()),
                    i.clone(),
                ),
                other => return undefined_in(other, lookup),
            },
            _ => return None,
        };
        match next {
            Some(v) if !v.is_undefined() => value = v,
            _ => return Some(name),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_message_template_and_line() {
        let e = ExprError {
            kind: ExprErrorKind::Secret,
            message: "Cannot find secret for key 'X'.".into(),
            template: "{{ secret('X') }}".into(),
            line: 1,
        };
        assert_eq!(
            e.to_string(),
            "Cannot find secret for key 'X'. ({{ secret('X') }}:1)"
        );
    }

    #[test]
    fn a_failure_survives_a_trip_through_minijinja() {
        let err = Failure::new(ExprErrorKind::Secret, "nope").into_error();
        let e = convert(&err, "{{ x }}", &|_| None);
        assert_eq!(
            (e.kind, e.message.as_str()),
            (ExprErrorKind::Secret, "nope")
        );
    }
}
