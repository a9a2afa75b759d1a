//! Property tests: rendering never panics, and valid Pebble always lowers to valid minijinja.

mod support;

use kestrel_expr::{Context, ExprErrorKind, Expressions};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::sync::OnceLock;

fn expressions() -> &'static Expressions {
    static EXPRESSIONS: OnceLock<Expressions> = OnceLock::new();
    EXPRESSIONS.get_or_init(|| Expressions::new(serde_json::json!({"g": 1})))
}

fn context() -> Context {
    let secrets = BTreeMap::from([("T".to_string(), "s3cr3t-value".to_string())]);
    Context::new(
        serde_json::json!({
            "inputs": {"name": "kestrel", "n": 3, "list": [1, 2], "map": {"k": "v"}, "nothing": null},
            "vars": {"t": "{{ inputs.name }}"},
        }),
        Some(support::scope(secrets)),
    )
}

/// Syntactically valid Pebble expressions, built from its grammar.
fn expr() -> impl Strategy<Value = String> {
    let leaf = prop::sample::select(vec![
        "inputs.name",
        "inputs.n",
        "inputs.list",
        "inputs.map",
        "inputs.nothing",
        "inputs.missing",
        "missing",
        "'s'",
        "\"d\"",
        "1",
        "2.5",
        "null",
        "true",
        "[1, 'a']",
        "{'k': 2}",
        "secret('T')",
        "secret('NOPE')",
        "loop",
        "vars.t",
    ])
    .prop_map(str::to_string);
    leaf.prop_recursive(4, 24, 3, |inner| {
        let binary = prop::sample::select(vec![
            "or", "and", "contains", "==", "equals", "!=", "<", ">=", "+", "-", "*", "/", "%", "~",
            "..", "??", "???",
        ]);
        let filter = prop::sample::select(vec![
            "upper",
            "length",
            "default('x')",
            "toJson",
            "base64encode",
            "first",
            "keys",
            "join(',')",
            "split(',')",
            "sha256",
            "jq('.k')",
            "replace({'a': 'b'})",
            "date('yyyy')",
        ]);
        let test = prop::sample::select(vec![
            "defined", "null", "empty", "even", "not null", "iterable",
        ]);
        prop_oneof![
            (inner.clone(), binary, inner.clone()).prop_map(|(l, op, r)| format!("{l} {op} {r}")),
            (inner.clone(), filter).prop_map(|(e, f)| format!("{e} | {f}")),
            (inner.clone(), test).prop_map(|(e, t)| format!("{e} is {t}")),
            inner.clone().prop_map(|e| format!("not {e}")),
            inner.clone().prop_map(|e| format!("-{e}")),
            inner.clone().prop_map(|e| format!("({e})")),
            inner.clone().prop_map(|e| format!("({e}).k")),
            inner.clone().prop_map(|e| format!("({e})[0]")),
            inner.clone().prop_map(|e| format!("render({e})")),
            (inner.clone(), inner.clone(), inner).prop_map(|(c, a, b)| format!("{c} ? {a} : {b}")),
        ]
    })
}

/// Syntactically valid templates: text, prints and blocks.
fn template() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        prop::sample::select(vec![
            "text ",
            "\n",
            "{ }",
            "{# c #}",
            "{% raw %}{{ x }}{% endraw %}"
        ])
        .prop_map(str::to_string),
        expr().prop_map(|e| format!("{{{{ {e} }}}}")),
        (expr(), expr())
            .prop_map(|(c, e)| format!("{{% if {c} %}}{{{{ {e} }}}}{{% else %}}e{{% endif %}}")),
        (expr(), expr())
            .prop_map(|(c, e)| format!("{{% for x in {c} %}}{{{{ {e} }}}}{{% endfor %}}")),
        expr().prop_map(|e| format!("{{% set v = {e} %}}{{{{ v }}}}")),
    ];
    prop::collection::vec(piece, 0..4).prop_map(|p| p.concat())
}

include!("support/fragments.rs");

/// Template-ish fragments glued at random: mostly invalid.
fn soup() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(FRAGMENTS), 0..40).prop_map(|f| f.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Valid Pebble renders or fails with a render-time error, never a syntax error (that would
    /// be the lowering writing invalid minijinja), and never panics.
    #[test]
    fn valid_templates_never_fail_to_compile(t in template()) {
        if let Err(e) = expressions().render(&t, &context()) {
            prop_assert!(e.kind != ExprErrorKind::Syntax, "{t:?}: {e}");
        }
    }

    /// Rendering anything returns Ok or Err; rendering the output again does too.
    #[test]
    fn rendering_never_panics(t in soup()) {
        let ctx = context();
        if let Ok(out) = expressions().render(&t, &ctx) {
            let _ = expressions().render(&out, &ctx);
        }
    }

    #[test]
    fn rendering_arbitrary_text_never_panics(t in "\\PC*") {
        let _ = expressions().render(&t, &context());
    }
}
