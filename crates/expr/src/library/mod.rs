//! Kestra's filters, functions and tests, registered in one place ([`register`]).
//!
//! Every filter and function a template can call goes through [`derived`], the one wrapper that
//! implements derived masking (spec §6): when any string inside the input or an argument contains
//! a value of the execution's mask registry, each string of the result is registered too, so
//! `secret('X') | upper` or `fromJson(secret('X')).field` is masked like the secret itself.
//! One-way results (digests, `length`) and booleans, numbers and null are never registered.
//! `secret()` registers what it resolves itself; the `_k_*` helpers of the lowering only read
//! parts of values they are given and need no wrapping.

mod collections;
mod dates;
mod encoding;
mod functions;
mod strings;

use crate::context::RenderState;
use kestrel_secrets::MaskRegistry;
use minijinja::functions::Function;
use minijinja::value::{FunctionArgs, FunctionResult, Rest, Value, ValueKind};
use minijinja::{Environment, Error, State};
use std::borrow::Cow;

/// Whether a function's result may carry a secret onward.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Taint {
    /// The result is derived from the inputs: register it when they hold a secret.
    Derived,
    /// The result cannot be turned back into its input (a digest, a length).
    OneWay,
}

/// Registers kestrel's filters, functions and tests on `env`, replacing minijinja's.
pub(crate) fn register(env: &mut Environment<'static>) {
    use Taint::{Derived, OneWay};
    // Strings.
    filter(env, "lower", Derived, strings::lower);
    filter(env, "upper", Derived, strings::upper);
    filter(env, "trim", Derived, strings::trim);
    filter(env, "capitalize", Derived, strings::capitalize);
    filter(env, "title", Derived, strings::title);
    filter(env, "replace", Derived, strings::replace);
    filter(env, "split", Derived, strings::split);
    filter(env, "abbreviate", Derived, strings::abbreviate);
    filter(env, "startsWith", Derived, strings::starts_with);
    filter(env, "endsWith", Derived, strings::ends_with);
    filter(env, "substringBefore", Derived, strings::substring_before);
    filter(env, "substringAfter", Derived, strings::substring_after);
    filter(
        env,
        "substringBeforeLast",
        Derived,
        strings::substring_before_last,
    );
    filter(
        env,
        "substringAfterLast",
        Derived,
        strings::substring_after_last,
    );
    filter(env, "indent", Derived, strings::indent);
    filter(env, "nindent", Derived, strings::nindent);
    filter(env, "slugify", Derived, strings::slugify);
    filter(env, "number", Derived, strings::number);
    // Collections.
    filter(env, "default", Derived, collections::default);
    filter(env, "join", Derived, collections::join);
    filter(env, "first", Derived, collections::first);
    filter(env, "last", Derived, collections::last);
    filter(env, "keys", Derived, collections::keys);
    filter(env, "values", Derived, collections::values);
    filter(env, "length", OneWay, collections::length);
    // Encodings, JSON, digests.
    filter(env, "base64encode", Derived, encoding::base64_encode);
    filter(env, "base64decode", Derived, encoding::base64_decode);
    filter(env, "urlencode", Derived, encoding::url_encode);
    filter(env, "urldecode", Derived, encoding::url_decode);
    filter(env, "toJson", Derived, encoding::to_json);
    filter(env, "json", Derived, encoding::to_json);
    filter(env, "jq", Derived, encoding::jq);
    filter(env, "sha1", OneWay, encoding::sha1);
    filter(env, "sha256", OneWay, encoding::sha256);
    filter(env, "sha512", OneWay, encoding::sha512);
    filter(env, "md5", OneWay, encoding::md5);
    // Dates.
    filter(env, "date", Derived, dates::date);
    filter(env, "dateAdd", Derived, dates::date_add);
    // Functions.
    env.add_function("secret", functions::secret);
    function(env, "render", Derived, functions::render);
    function(env, "fromJson", Derived, encoding::from_json);
    function(env, "json", Derived, encoding::from_json);
    function(env, "now", Derived, dates::now);
    function(env, "uuid", Derived, functions::uuid);
    function(env, "range", Derived, functions::range);
    function(env, "max", Derived, functions::max);
    function(env, "min", Derived, functions::min);
    // The lowering's helpers (see `pebble::print`).
    env.add_function("_k_get", functions::lenient_get);
    env.add_function("_k_nn", functions::is_present);
    env.add_function("_k_entries", functions::entries);
    env.add_function("_k_pairs", functions::pairs);
    env.add_function("_k_concat", functions::concat);
    env.add_function("_k_div", functions::divide);
    env.add_function("_k_mod", functions::remainder);
    register_tests(env);
}

/// Pebble's tests (`x is even`); `defined` and `null` are lowered to `_k_nn`.
fn register_tests(env: &mut Environment<'static>) {
    env.add_test("defined", |v: Value| !v.is_undefined());
    env.add_test("undefined", |v: Value| v.is_undefined());
    env.add_test("none", |v: Value| v.is_none());
    env.add_test("empty", collections::is_empty);
    env.add_test("even", |v: Value| v.as_i64().is_some_and(|n| n % 2 == 0));
    env.add_test("odd", |v: Value| v.as_i64().is_some_and(|n| n % 2 != 0));
    env.add_test("iterable", |v: Value| v.try_iter().is_ok());
    env.add_test("mapping", |v: Value| v.kind() == ValueKind::Map);
    env.add_test("string", |v: Value| v.kind() == ValueKind::String);
    env.add_test("number", |v: Value| v.is_number());
}

fn filter<F, Rv, Args>(env: &mut Environment<'static>, name: &'static str, taint: Taint, f: F)
where
    F: Function<Rv, Args>,
    Rv: FunctionResult,
    Args: for<'a> FunctionArgs<'a>,
{
    env.add_filter(name, derived(taint, f));
}

fn function<F, Rv, Args>(env: &mut Environment<'static>, name: &'static str, taint: Taint, f: F)
where
    F: Function<Rv, Args>,
    Rv: FunctionResult,
    Args: for<'a> FunctionArgs<'a>,
{
    env.add_function(name, derived(taint, f));
}

/// `f`, registering its result as a derived secret value when its inputs hold a secret.
fn derived<F, Rv, Args>(
    taint: Taint,
    f: F,
) -> impl Fn(&State<'_, '_>, Rest<Value>) -> Result<Value, Error> + Send + Sync + 'static
where
    F: Function<Rv, Args>,
    Rv: FunctionResult,
    Args: for<'a> FunctionArgs<'a>,
{
    let inner = Value::from_function(f);
    move |state: &State<'_, '_>, args: Rest<Value>| {
        let rv = inner.call(state, &args)?;
        if taint == Taint::Derived
            && carries_text(&rv)
            && let Some(registry) = RenderState::registry(state)
            && args
                .iter()
                .any(|a| any_string(a, &mut |s| registry.contains_secret(s)))
        {
            register_strings(&registry, &rv);
        }
        Ok(rv)
    }
}

fn carries_text(v: &Value) -> bool {
    matches!(
        v.kind(),
        ValueKind::String | ValueKind::Seq | ValueKind::Map | ValueKind::Iterable
    )
}

/// Nesting deeper than this is not searched for secrets (values from JSON are shallow).
const MAX_SEARCH_DEPTH: usize = 32;

/// Whether `test` holds for any string inside `v` (map keys included).
fn any_string(v: &Value, test: &mut dyn FnMut(&str) -> bool) -> bool {
    fn walk(v: &Value, depth: usize, test: &mut dyn FnMut(&str) -> bool) -> bool {
        match v.kind() {
            ValueKind::String => v.as_str().is_some_and(&mut *test),
            ValueKind::Seq | ValueKind::Map if depth < MAX_SEARCH_DEPTH => {
                let is_map = v.kind() == ValueKind::Map;
                v.try_iter().into_iter().flatten().any(|item| {
                    walk(&item, depth + 1, test)
                        || (is_map && v.get_item(&item).is_ok_and(|x| walk(&x, depth + 1, test)))
                })
            }
            _ => false,
        }
    }
    walk(v, 0, test)
}

/// Registers every string of `v` (map values, not keys) as derived.
fn register_strings(registry: &MaskRegistry, v: &Value) {
    fn walk(registry: &MaskRegistry, v: &Value, depth: usize) {
        match v.kind() {
            ValueKind::String => {
                if let Some(s) = v.as_str() {
                    registry.register_derived(s);
                }
            }
            ValueKind::Seq | ValueKind::Map | ValueKind::Iterable if depth < MAX_SEARCH_DEPTH => {
                let is_map = v.kind() == ValueKind::Map;
                for item in v.try_iter().into_iter().flatten() {
                    let item = if is_map {
                        v.get_item(&item).unwrap_or_default()
                    } else {
                        item
                    };
                    walk(registry, &item, depth + 1);
                }
            }
            _ => {}
        }
    }
    walk(registry, v, 0)
}

/// How Kestra prints a value: strings as they are, null and undefined as nothing, lists and
/// maps as compact JSON, anything else as minijinja formats it.
pub(crate) fn to_text(v: &Value) -> Cow<'_, str> {
    match v.kind() {
        ValueKind::String => Cow::Borrowed(v.as_str().unwrap_or_default()),
        ValueKind::None | ValueKind::Undefined => Cow::Borrowed(""),
        ValueKind::Bool => Cow::Borrowed(if v.is_true() { "true" } else { "false" }),
        ValueKind::Seq | ValueKind::Map | ValueKind::Iterable => {
            Cow::Owned(serde_json::to_string(v).unwrap_or_else(|_| v.to_string()))
        }
        _ => Cow::Owned(v.to_string()),
    }
}
