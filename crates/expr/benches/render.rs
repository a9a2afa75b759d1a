//! Rendering throughput of cached templates (figures in bench/RESULTS.md).
//!
//! `cargo bench -p kestrel-expr --bench render -- --warm-up-time 1 --measurement-time 3`

// criterion_group! and criterion_main! generate undocumented public functions.
#![allow(missing_docs)]

#[path = "../tests/support/mod.rs"]
mod support;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kestrel_expr::{Context, Expressions};
use std::collections::BTreeMap;
use std::hint::black_box;

fn render(c: &mut Criterion) {
    let expressions = Expressions::new(serde_json::json!({"region": "eu-west-1"}));
    let secrets = BTreeMap::from([("X".to_string(), "s3cr3t-value".to_string())]);
    let ctx = Context::new(
        serde_json::json!({"inputs": {"name": "kestrel"}, "flow": {"id": "bench"}}),
        Some(support::scope(secrets)),
    );
    let mut group = c.benchmark_group("render");
    group.throughput(Throughput::Elements(1));
    let cases = [
        ("secret_cached", "{{ secret('X') }}"),
        ("plain_text", "no expression here"),
        (
            "variable_and_filter",
            "Hello {{ inputs.name | upper }} from {{ flow.id }}",
        ),
        (
            "derived_secret",
            "{{ 'Bearer ' ~ secret('X') | base64encode }}",
        ),
        ("coalesce", "{{ inputs.missing.deep ?? inputs.name }}"),
    ];
    for (name, template) in cases {
        // The first render lowers, compiles and resolves; the measured ones find it all cached.
        expressions
            .render(template, &ctx)
            .expect("the template renders");
        group.bench_function(name, |b| {
            b.iter(|| expressions.render(black_box(template), &ctx))
        });
    }
    let mut n = 0u64;
    group.bench_function("first_render_of_a_new_template", |b| {
        b.iter(|| {
            n += 1;
            expressions.render(&format!("{{{{ inputs.name ~ '{n}' | upper }}}}"), &ctx)
        })
    });
    group.finish();
}

criterion_group!(benches, render);
criterion_main!(benches);
