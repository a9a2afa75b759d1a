//! The `secret()` calls a template makes, read from its parsed form without rendering it: what
//! `kestrel secrets check` looks for in a backend before anything runs.

use crate::pebble::{Arg, Expr, lower};

/// One `secret()` call of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretReference {
    /// `secret('KEY')`, `secret('KEY', namespace='a.b')`: a key written as a literal.
    Literal {
        /// The key.
        key: String,
        /// The namespace asked for, when the call names one.
        namespace: Option<String>,
        /// The line of the call in the template, from 1.
        line: usize,
    },
    /// A key computed at run time (`secret(inputs.name)`): it cannot be checked in advance.
    Dynamic {
        /// The line of the call in the template, from 1.
        line: usize,
    },
}

/// The `secret()` calls of `template`, in order; a template that does not parse is an error
/// naming its line (never a value: templates hold none).
pub fn secret_references(template: &str) -> Result<Vec<SecretReference>, String> {
    let lowered =
        lower(template).map_err(|f| format!("line {}: {}", f.line.unwrap_or(1), f.message))?;
    let mut found = Vec::new();
    for span in &lowered.spans {
        for expr in &span.exprs {
            collect(expr, span.line, &mut found);
        }
    }
    Ok(found)
}

fn collect(expr: &Expr, line: usize, found: &mut Vec<SecretReference>) {
    if let Expr::Call(callee, args) = expr
        && matches!(callee.as_ref(), Expr::Var(name) if name == "secret")
    {
        found.push(reference(args, line));
    }
    for child in children(expr) {
        collect(child, line, found);
    }
}

fn reference(args: &[Arg], line: usize) -> SecretReference {
    let literal = |expr: &Expr| match expr {
        Expr::Str(text) => Some(text.clone()),
        _ => None,
    };
    let named = |wanted: &str| {
        args.iter().find_map(|arg| match arg {
            Arg::Named(name, expr) if name == wanted => Some(expr),
            _ => None,
        })
    };
    let key = args
        .iter()
        .find_map(|arg| match arg {
            Arg::Pos(expr) => Some(expr),
            Arg::Named(..) => None,
        })
        .or_else(|| named("key"))
        .and_then(literal);
    let namespace = named("namespace").map(literal);
    match (key, namespace) {
        (Some(key), None) => SecretReference::Literal {
            key,
            namespace: None,
            line,
        },
        (Some(key), Some(Some(namespace))) => SecretReference::Literal {
            key,
            namespace: Some(namespace),
            line,
        },
        _ => SecretReference::Dynamic { line },
    }
}

/// The expressions directly inside `expr`.
fn children(expr: &Expr) -> Vec<&Expr> {
    match expr {
        Expr::Str(_)
        | Expr::Int(_)
        | Expr::Float(_)
        | Expr::Bool(_)
        | Expr::Null
        | Expr::Var(_) => Vec::new(),
        Expr::List(items) => items.iter().collect(),
        Expr::Map(pairs) => pairs.iter().flat_map(|(k, v)| [k, v]).collect(),
        Expr::Attr(e, _) | Expr::Unary(_, e) => vec![e.as_ref()],
        Expr::Index(a, b) | Expr::Binary(_, a, b) => vec![a.as_ref(), b.as_ref()],
        Expr::Slice(e, from, to) => std::iter::once(e.as_ref())
            .chain(from.as_deref())
            .chain(to.as_deref())
            .collect(),
        Expr::Call(callee, call_args) => {
            let mut all = vec![callee.as_ref()];
            all.extend(call_args.iter().map(argument));
            all
        }
        Expr::Filter(e, _, filter_args) | Expr::Test(e, _, _, filter_args) => {
            let mut all = vec![e.as_ref()];
            all.extend(filter_args.iter().map(argument));
            all
        }
        Expr::Ternary(a, b, c) => vec![a.as_ref(), b.as_ref(), c.as_ref()],
    }
}

fn argument(arg: &Arg) -> &Expr {
    match arg {
        Arg::Pos(expr) | Arg::Named(_, expr) => expr,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn literal(key: &str, namespace: Option<&str>, line: usize) -> SecretReference {
        SecretReference::Literal {
            key: key.into(),
            namespace: namespace.map(Into::into),
            line,
        }
    }

    #[test]
    fn every_call_is_found_with_its_namespace_and_line() {
        let template = "Bearer {{ secret('API_TOKEN') | base64encode }}\n\
             {% if true %}{{ secret(key=\"DB\", namespace='company', subkey='user') }}{% endif %}\n\
             {{ 'x' ~ (secret('NESTED') ?? 'none') }} {{ secret(inputs.name) }}";
        assert_eq!(
            secret_references(template).unwrap(),
            [
                literal("API_TOKEN", None, 1),
                literal("DB", Some("company"), 2),
                literal("NESTED", None, 3),
                SecretReference::Dynamic { line: 3 },
            ]
        );
    }

    #[test]
    fn text_without_calls_has_none_and_bad_syntax_names_its_line() {
        assert!(
            secret_references("secret('not markup')")
                .unwrap()
                .is_empty()
        );
        let error = secret_references("ok\n{{ secret('A' }}").unwrap_err();
        assert!(error.starts_with("line 2:"), "{error}");
    }

    proptest! {
        #[test]
        fn reading_arbitrary_text_never_panics(t in "\\PC*") {
            let _ = secret_references(&t);
        }
    }
}
