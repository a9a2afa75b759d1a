//! `render`: the expression renderer under its limits (the defaults, but 1% of the fuel).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use kestrel_expr::{Context, ExpressionLimits, Expressions};
use kestrel_secrets::{EnvBackend, EnvOptions, MaskRegistry, Reader, Resolver, SecretScope};
use std::sync::{Arc, OnceLock};

/// The secrets `secret()` finds, by key: the keys of `crates/expr/tests/inputs/*.txt` (so that
/// the seeds taken from them resolve), with values found nowhere in the seeds.
const SECRETS: &[(&str, &str)] = &[
    ("T", "Tq7-pa55 word-Xy9z"),
    (
        "J",
        r#"{"user": "admin-Vx2", "pw": "hunter-two-Kx81", "port": 54329}"#,
    ),
    ("lower", "lower-case-secret-qv"),
];

/// The leaves of secret `J`, each registered with it.
const J_LEAVES: &[(&str, &str)] = &[
    ("J.user", "admin-Vx2"),
    ("J.pw", "hunter-two-Kx81"),
    ("J.port", "54329"),
];

/// The fuel of a fuzzed render: 1% of the default (50,000,000). A fuzz build (coverage
/// instrumentation, AddressSanitizer, debug assertions) runs the template machine some 20 to
/// 30 times slower than an uninstrumented build: the default fuel, which an uninstrumented
/// build spends in a few seconds, took 104 s there, far past libFuzzer's `-timeout=10`. The
/// fuel is checked by the same code whatever its amount; every other limit is the default.
pub(crate) const FUZZ_FUEL: u64 = 500_000;

/// The default limits, but [`FUZZ_FUEL`].
fn limits() -> ExpressionLimits {
    ExpressionLimits {
        fuel: FUZZ_FUEL,
        ..ExpressionLimits::default()
    }
}

/// What every render shares: the environment (its template cache) and the resolver.
struct Shared {
    expressions: Expressions,
    resolver: Arc<Resolver>,
    vars: serde_json::Value,
}

fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        let process = SECRETS
            .iter()
            .map(|(key, value)| (format!("SECRET_{key}"), STANDARD.encode(value)));
        let load = EnvBackend::load(process, None, &EnvOptions::default(), &|text| {
            Ok(text.to_owned())
        })
        .expect("the secrets load");
        // The variables of `crates/expr/tests/inputs/*.txt`, so that their templates find them.
        let vars = serde_json::json!({
            "inputs": {"name": "kestrel", "n": 5, "empty": "", "nothing": null,
                       "list": [3, 1, 2], "map": {"b": 2, "a": 1}},
            "flow": {"id": "hello", "namespace": "company.team"},
            "vars": {"greeting": "Hello {{ inputs.name }}",
                     "nested": "{{ render(vars.greeting) }}!",
                     "loop": "{{ render(vars.loop) }}",
                     "raw": "{% raw %}{{ inputs.name }}{% endraw %}"},
            "execution": {"id": "4wjtkzwVGBM9yKnjm3yv8r", "startDate": "2024-03-05T07:08:09.123456Z"},
            "labels": {"team": "data"},
            "outputs": {"login": {"token": "not-a-secret-output"}},
        });
        Shared {
            expressions: Expressions::with_limits(
                serde_json::json!({"region": "eu-west-1"}),
                limits(),
            ),
            resolver: Arc::new(Resolver::new(None, Arc::new(load.backend))),
            vars,
        }
    })
}

/// Renders the input (lossy UTF-8) as a template in a context with variables and a secret
/// scope, under the default [`ExpressionLimits`] but 1% of the fuel (500,000 instructions).
///
/// Panics when the render panics, when its output is larger than `expression.max-value-size`,
/// when the output masked by the render's registry still shows a secret value (or JSON leaf)
/// that `secret()` resolved, or when an error's message quotes a secret that `secret()`
/// resolved in this render (and that the template does not spell out itself). A render that
/// never ends is caught by the fuzzer's timeout: fuel bounds every render.
pub fn render(data: &[u8]) {
    let template = String::from_utf8_lossy(data);
    let shared = shared();
    let registry = Arc::new(MaskRegistry::new(4));
    let scope = SecretScope::new(
        Arc::clone(&shared.resolver),
        Reader::Operator("fuzz".into()),
        "main",
        "company.team",
        Arc::clone(&registry),
    );
    let ctx = Context::new(shared.vars.clone(), Some(Arc::new(scope)));
    let limit = ExpressionLimits::default().max_value_size;
    assert_eq!(*shared.expressions.limits(), limits());
    match shared.expressions.render(&template, &ctx) {
        Ok(output) => {
            assert!(
                output.len() <= limit,
                "the output has {} bytes, more than expression.max-value-size ({limit})",
                output.len()
            );
            // What a person reads is the output masked: no value the render resolved survives.
            let shown = registry.mask(&output);
            for (key, value) in SECRETS.iter().chain(J_LEAVES) {
                if registry.is_registered(value) {
                    assert!(
                        !shown.contains(value),
                        "the masked output shows the value of '{key}': {shown}"
                    );
                }
            }
        }
        Err(error) => {
            assert!(
                !error.message.is_empty(),
                "an error without a message: {error:?}"
            );
            assert!(error.line >= 1, "an error at line 0: {error:?}");
            for (key, value) in SECRETS {
                if registry.is_registered(value) && !template.contains(value) {
                    assert!(
                        !error.message.contains(value),
                        "the error quotes the value of secret '{key}': {}",
                        error.message
                    );
                }
            }
        }
    }
}
