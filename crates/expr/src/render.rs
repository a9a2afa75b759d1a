//! The environment, the template cache, and rendering.

use crate::error::{Failure, convert};
use crate::library::{self, to_text};
use crate::limits::{Bounded, Cap, ExpressionLimits, RECURSION_LIMIT};
use crate::pebble::{self, has_markup, raw};
use crate::{Context, ExprError};
use minijinja::value::{Value, ValueKind};
use minijinja::{Environment, ErrorKind, Output, State, UndefinedBehavior};
use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

/// Past this many compiled templates the cache starts afresh (a bound on memory when
/// templates are built at run time, e.g. through `render()`).
const MAX_CACHED_TEMPLATES: usize = 10_000;

/// Kestra's expression language: filters, functions, and cached compiled templates.
///
/// Thread-safe: share one per process and render from any thread. A template is lowered and
/// compiled once, on its first render, and found again by its text.
pub struct Expressions {
    env: RwLock<Arc<Environment<'static>>>,
    /// Templates compiled by the current environment.
    loaded: Arc<AtomicUsize>,
    globals: Value,
    limits: ExpressionLimits,
    pure: Context,
}

impl fmt::Debug for Expressions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Expressions")
            .field("cached_templates", &self.loaded.load(Ordering::Relaxed))
            .finish()
    }
}

impl Expressions {
    /// An environment whose `globals` variable is `globals` (from configuration), with the
    /// default [`ExpressionLimits`].
    pub fn new(globals: serde_json::Value) -> Self {
        Self::with_limits(globals, ExpressionLimits::default())
    }

    /// An environment whose `globals` variable is `globals`, rendering under `limits`
    /// (configuration `expression`).
    pub fn with_limits(globals: serde_json::Value, limits: ExpressionLimits) -> Self {
        let globals = Value::from_serialize(&globals);
        let loaded = Arc::new(AtomicUsize::new(0));
        Self {
            env: RwLock::new(Arc::new(build_env(&globals, &loaded, &limits))),
            loaded,
            globals,
            limits,
            pure: Context::new(serde_json::json!({}), None),
        }
    }

    /// The limits every render runs under. `render_timeout` is for the caller to enforce: run
    /// renders off the async runtime's threads and abandon one that outlives it.
    pub fn limits(&self) -> &ExpressionLimits {
        &self.limits
    }

    /// Whether `template` is plain text, which renders to itself without running anything:
    /// callers may skip the work of a render (such as moving it to another thread).
    pub fn is_plain(template: &str) -> bool {
        !has_markup(template)
    }

    /// Renders `template` in `ctx`. Fails (never aborts) when the render exceeds its fuel or
    /// builds a value, or an output, larger than `expression.max-value-size`.
    pub fn render(&self, template: &str, ctx: &Context) -> Result<String, ExprError> {
        if !has_markup(template) {
            return Ok(template.to_string());
        }
        let env = self.env();
        let mut out = Bounded::new(self.limits.max_value_size);
        let rendered = env
            .get_template(template)
            .and_then(|t| t.render_captured_to(ctx.root(), &mut out).map(drop));
        let rendered = match rendered {
            Err(_) if out.overflowed => Cap::new(self.limits.max_value_size).check(None),
            other => other,
        };
        rendered
            .and_then(|()| {
                String::from_utf8(out.bytes).map_err(|_| {
                    minijinja::Error::new(ErrorKind::BadSerialization, "the output is not UTF-8")
                })
            })
            // Kestra replaces the raw blocks of its output by their text, those of a printed
            // value included.
            .map(|out| match raw::strip(&out) {
                Cow::Borrowed(_) => out,
                Cow::Owned(stripped) => stripped,
            })
            .map_err(|e| convert(&e, template, &|name| lookup(ctx.root(), &env, name)))
    }

    /// Checks that `template` parses (Pebble lowered, then compiled), without rendering it:
    /// what `kestrel validate` and a flow's save check in every templated property.
    pub fn check_syntax(&self, template: &str) -> Result<(), ExprError> {
        if !has_markup(template) {
            return Ok(());
        }
        self.env()
            .get_template(template)
            .map(drop)
            .map_err(|e| convert(&e, template, &|_| None))
    }

    /// Renders every string inside `value` (maps and lists recursively, map keys included).
    pub fn render_value(
        &self,
        value: &serde_json::Value,
        ctx: &Context,
    ) -> Result<serde_json::Value, ExprError> {
        use serde_json::Value as J;
        Ok(match value {
            J::String(s) => J::String(self.render(s, ctx)?),
            J::Array(items) => J::Array(
                items
                    .iter()
                    .map(|v| self.render_value(v, ctx))
                    .collect::<Result<_, _>>()?,
            ),
            J::Object(map) => J::Object(
                map.iter()
                    .map(|(k, v)| Ok((self.render(k, ctx)?, self.render_value(v, ctx)?)))
                    .collect::<Result<_, ExprError>>()?,
            ),
            other => other.clone(),
        })
    }

    /// Renders with pure filters only: no variables, no secrets (env-file values).
    pub fn render_pure(&self, template: &str) -> Result<String, ExprError> {
        self.render(template, &self.pure)
    }

    /// The current environment, replaced by a fresh one when its cache has grown too big.
    fn env(&self) -> Arc<Environment<'static>> {
        if self.loaded.load(Ordering::Relaxed) > MAX_CACHED_TEMPLATES {
            let mut env = self.env.write().unwrap_or_else(PoisonError::into_inner);
            if self.loaded.load(Ordering::Relaxed) > MAX_CACHED_TEMPLATES {
                self.loaded.store(0, Ordering::Relaxed);
                *env = Arc::new(build_env(&self.globals, &self.loaded, &self.limits));
            }
        }
        Arc::clone(&self.env.read().unwrap_or_else(PoisonError::into_inner))
    }
}

/// The value of a root name: a variable of the render, else a global (function or `globals`).
pub(crate) fn lookup(vars: &Value, env: &Environment<'_>, name: &str) -> Option<Value> {
    vars.get_attr(name)
        .ok()
        .filter(|v| !v.is_undefined())
        .or_else(|| env.globals().find(|(n, _)| *n == name).map(|(_, v)| v))
}

fn build_env(
    globals: &Value,
    loaded: &Arc<AtomicUsize>,
    limits: &ExpressionLimits,
) -> Environment<'static> {
    let mut env = Environment::empty();
    env.set_fuel(Some(limits.fuel));
    env.set_recursion_limit(RECURSION_LIMIT);
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_keep_trailing_newline(true);
    env.set_debug(false);
    env.set_formatter(write_value);
    let loaded = Arc::clone(loaded);
    // The template's name is its Pebble text: the loader lowers it once, minijinja keeps the
    // compiled result.
    env.set_loader(move |template| {
        loaded.fetch_add(1, Ordering::Relaxed);
        pebble::lower(template)
            .map(|lowered| Some(lowered.source))
            .map_err(Failure::into_error)
    });
    library::register(&mut env, Cap::new(limits.max_value_size));
    env.add_global("globals", globals.clone());
    env
}

/// Prints a value as Kestra does (see [`to_text`]); an undefined value is an error.
fn write_value(
    out: &mut Output<'_>,
    _: &State<'_, '_>,
    value: &Value,
) -> Result<(), minijinja::Error> {
    if value.kind() == ValueKind::Undefined {
        return Err(minijinja::Error::from(ErrorKind::UndefinedError));
    }
    out.write_str(&to_text(value))
        .map_err(minijinja::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx() -> Context {
        Context::new(json!({"inputs": {"name": "kestrel", "n": 2}}), None)
    }

    #[test]
    fn text_without_markup_is_returned_without_compiling() {
        let expr = Expressions::new(json!({}));
        assert_eq!(expr.render("a { b } c", &ctx()).unwrap(), "a { b } c");
        assert_eq!(format!("{expr:?}"), "Expressions { cached_templates: 0 }");
    }

    #[test]
    fn a_template_is_compiled_once() {
        let expr = Expressions::new(json!({}));
        for _ in 0..3 {
            assert_eq!(expr.render("{{ inputs.n * 2 }}", &ctx()).unwrap(), "4");
        }
        assert_eq!(expr.loaded.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn the_cache_starts_afresh_past_its_bound_and_keeps_working() {
        let expr = Expressions::new(json!({}));
        for i in 0..=MAX_CACHED_TEMPLATES + 1 {
            expr.render(&format!("{{{{ {i} }}}}"), &ctx()).unwrap();
        }
        assert_eq!(expr.render("{{ inputs.name }}", &ctx()).unwrap(), "kestrel");
        assert!(expr.loaded.load(Ordering::Relaxed) <= 2);
    }

    #[test]
    fn renders_from_many_threads() {
        let expr = Arc::new(Expressions::new(json!({})));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let expr = Arc::clone(&expr);
                std::thread::spawn(move || {
                    (0..200).all(|i| {
                        let template = format!("{{{{ inputs.name }}}}-{}", i % 7);
                        expr.render(&template, &ctx()).unwrap() == format!("kestrel-{}", i % 7)
                    })
                })
            })
            .collect();
        assert!(handles.into_iter().all(|h| h.join().unwrap()));
    }

    #[test]
    fn render_value_renders_strings_keys_and_nested_values() {
        let expr = Expressions::new(json!({}));
        let value =
            json!({"{{ inputs.name }}": ["{{ inputs.n }}", 3, {"k": "x{{ 1 + 1 }}"}], "b": true});
        assert_eq!(
            expr.render_value(&value, &ctx()).unwrap(),
            json!({"kestrel": ["2", 3, {"k": "x2"}], "b": true})
        );
    }

    #[test]
    fn render_pure_has_filters_but_no_variables_or_secrets() {
        let expr = Expressions::new(json!({}));
        assert_eq!(
            expr.render_pure("{{ \"password\" | base64encode }}")
                .unwrap(),
            "cGFzc3dvcmQ="
        );
        let err = expr.render_pure("{{ inputs.name }}").unwrap_err();
        assert_eq!(err.kind, crate::ExprErrorKind::Undefined);
        let err = expr.render_pure("{{ secret('X') }}").unwrap_err();
        assert_eq!(err.kind, crate::ExprErrorKind::Secret);
    }

    #[test]
    fn minijinja_builtins_outside_kestras_list_are_not_available() {
        let expr = Expressions::new(json!({}));
        for template in [
            "{{ 'a' | safe }}",
            "{{ 'abc' | wordcount }}",
            "{{ lipsum() }}",
        ] {
            let err = expr.render(template, &ctx()).unwrap_err();
            assert_eq!(err.kind, crate::ExprErrorKind::Function, "{template}");
        }
    }

    #[test]
    fn globals_are_a_variable() {
        let expr = Expressions::new(json!({"env": "prod"}));
        assert_eq!(expr.render("{{ globals.env }}", &ctx()).unwrap(), "prod");
    }
}
