//! Expression limits (configuration `expression`): a render that would run forever or build a
//! huge value fails with an error naming the limit, never hangs or aborts the process.

mod support;

use kestrel_expr::{Context, ExprErrorKind, ExpressionLimits, Expressions};
use std::collections::BTreeMap;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// Generous for a debug build on a loaded machine: the default fuel is spent in seconds.
const BOUND: Duration = Duration::from_secs(120);

/// Renders `template` with the default limits on another thread, waiting at most [`BOUND`].
fn render_bounded(template: &'static str) -> Result<String, kestrel_expr::ExprError> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let expressions = Expressions::new(serde_json::json!({}));
        let ctx = Context::new(serde_json::json!({}), None);
        let _ = tx.send(expressions.render(template, &ctx));
    });
    rx.recv_timeout(BOUND)
        .unwrap_or_else(|_| panic!("the render of {template} did not stop within {BOUND:?}"))
}

fn limited(limits: ExpressionLimits) -> Expressions {
    Expressions::with_limits(serde_json::json!({}), limits)
}

fn assert_limit(result: Result<String, kestrel_expr::ExprError>, limit: &str) {
    let err = result.expect_err("the render should fail on a limit");
    assert_eq!(err.kind, ExprErrorKind::Limit, "{err}");
    assert!(err.message.contains(limit), "{err}");
}

#[test]
fn issue_9_1_a_nested_loop_runs_out_of_fuel_instead_of_hanging() {
    let result = render_bounded(
        "{% for i in range(0, 99999) %}{% for j in range(0, 99999) %}{% endfor %}{% endfor %}",
    );
    assert_limit(result, "expression.fuel");
}

#[test]
fn issue_9_1_nested_renders_share_the_fuel_of_the_render() {
    let expressions = limited(ExpressionLimits {
        fuel: 20_000,
        ..ExpressionLimits::default()
    });
    let inner = "{% for i in range(1, 1000) %}{% endfor %}";
    let ctx = Context::new(serde_json::json!({"vars": {"inner": inner}}), None);
    // Each nested render alone fits in the fuel; forty of them do not.
    assert!(expressions.render("{{ render(vars.inner) }}", &ctx).is_ok());
    let result = expressions.render(
        "{% for i in range(1, 40) %}{{ render(vars.inner) }}{% endfor %}",
        &ctx,
    );
    assert_limit(result, "expression.fuel");
}

#[test]
fn issue_16_each_nested_render_costs_fuel_beyond_its_instructions() {
    let expressions = limited(ExpressionLimits {
        fuel: 1_000_000,
        ..ExpressionLimits::default()
    });
    let ctx = Context::new(serde_json::json!({"vars": {"tiny": "{{ 1 }}"}}), None);
    // A tiny template runs a handful of instructions, but each render() around it costs
    // thousands: a hundred fit in this fuel, a thousand do not.
    let calls =
        |n: u32| format!("{{% for i in range(1, {n}) %}}{{{{ render(vars.tiny) }}}}{{% endfor %}}");
    assert_eq!(
        expressions.render(&calls(100), &ctx).unwrap(),
        "1".repeat(100)
    );
    assert_limit(expressions.render(&calls(1000), &ctx), "expression.fuel");
}

#[test]
fn issue_16_a_billion_laughs_of_nested_renders_runs_out_of_fuel() {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut vars = serde_json::Map::new();
        for level in 0..9 {
            let call = format!("render(vars.l{})", level + 1);
            let body = vec![call; 10].join(" ~ ");
            vars.insert(format!("l{level}"), format!("{{{{ {body} }}}}").into());
        }
        vars.insert("l9".into(), "{{ 'lol' }}".into());
        let ctx = Context::new(serde_json::json!({ "vars": vars }), None);
        let expressions = Expressions::new(serde_json::json!({}));
        let _ = tx.send(expressions.render("{{ render(vars.l0) | length }}", &ctx));
    });
    let result = rx
        .recv_timeout(BOUND)
        .expect("the nested renders did not stop");
    assert_limit(result, "expression.fuel");
}

#[test]
fn issue_9_2_indent_by_30_billion_fails_naming_max_value_size() {
    assert_limit(
        render_bounded("{{ 'a\\nb' | indent(30000000000) | length }}"),
        "expression.max-value-size",
    );
}

#[test]
fn issue_9_2_indent_by_a_billion_fails_before_allocating() {
    assert_limit(
        render_bounded("{{ 'a\\nb' | indent(1000000000) }}"),
        "expression.max-value-size",
    );
}

#[test]
fn issue_9_2_every_growing_filter_and_function_is_bounded() {
    let expressions = limited(ExpressionLimits {
        max_value_size: 1000,
        ..ExpressionLimits::default()
    });
    let big = "x".repeat(600);
    let ctx = Context::new(
        serde_json::json!({"big": big, "list": vec![big.clone(); 2], "n": 5000}),
        Some(support::scope(BTreeMap::new())),
    );
    for template in [
        "{{ big ~ big }}",
        "{{ big | replace({'x': 'xy'}) }}",
        "{{ big | replace('x', 'xy') }}",
        "{{ list | join(',') }}",
        "{{ list | toJson }}",
        "{{ list | json }}",
        "{{ big | base64encode | base64encode }}",
        "{{ big | replace('x', '/') | urlencode }}",
        "{{ list | upper }}",
        "{{ big | nindent(500) }}",
        "{{ 'a\\nb\\nc' | indent(600) }}",
        "{{ range(1, n) }}",
        "{{ big | split('x') }}",
        "{% for i in range(1, 3) %}{{ big }}{% endfor %}",
        "{{ render('{{ big }}{{ big }}') }}",
        "{{ big | sha256 }}{{ list | sha256 }}",
        "{{ big | replace({'x': 'xy'}, regexp=true) }}",
        "{{ list | replace({'x': 'xy'}) }}",
        "{{ big | replace({'x': \"'\"}) | escapeChar('shell') }}",
        "{{ list | yaml }}",
        "{{ list | toIon }}",
        "{{ list | chunk(1) }}",
        "{{ render(['{{ big }}', '{{ big }}']) }}",
        "{{ yaml('a: &a [' ~ big ~ ']' ~ '\\nb: *a') }}",
    ] {
        assert_limit(
            expressions.render(template, &ctx),
            "expression.max-value-size",
        );
    }
    assert_eq!(
        expressions.render("{{ big | length }}", &ctx).unwrap(),
        "600"
    );
}

#[test]
fn the_default_limits_render_ordinary_templates() {
    let expressions = Expressions::new(serde_json::json!({}));
    assert_eq!(expressions.limits(), &ExpressionLimits::default());
    let ctx = Context::new(serde_json::json!({}), None);
    let out = expressions
        .render(
            "{% for i in range(1, 1000) %}{{ i }}{% endfor %}|{{ 'ab' | indent(10) }}",
            &ctx,
        )
        .unwrap();
    assert!(out.ends_with("9991000|ab"), "{out}");
}

#[test]
fn deep_nesting_of_loops_hits_the_recursion_limit_not_the_stack() {
    let expressions = Expressions::new(serde_json::json!({}));
    let ctx = Context::new(serde_json::json!({}), None);
    let open = "{% for i in [1] %}".repeat(120);
    let close = "{% endfor %}".repeat(120);
    let template = format!("{open}x{close}");
    let err = expressions.render(&template, &ctx).unwrap_err();
    assert_eq!(err.kind, ExprErrorKind::Limit, "{err}");
}
