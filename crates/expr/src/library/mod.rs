//! Kestra's filters, functions and tests, registered in one place ([`register`]).
//!
//! Every filter and function a template can call goes through [`derived`], the one wrapper that
//! implements derived masking (docs/masking.md): when the input or an argument is tainted (holds a
//! registered value, or a value this render derived from one, at any depth; see [`taint`]),
//! every string and number of the result is tainted and registered too, so
//! `secret('X') | upper`, `secret('PIN') | number | date` or `fromJson(secret('X')).field` is
//! masked like the secret itself, however the filters are chained. One-way results (digests,
//! `length`), booleans and null are never registered. `secret()` registers what it resolves
//! itself; of the `_k_*` helpers of the lowering, only `_k_concat` (Pebble's `~`) builds new
//! text and is wrapped, the others only read parts of values they are given.
//!
//! The same wrapper binds the arguments as Pebble does ([`args::Signature`]): by position or by
//! Kestra's names, an undeclared name being an error. Functions are registered under
//! [`FUNCTION_PREFIX`], as the lowering calls them, so that no variable hides one.
//!
//! Filters and functions that build a value check its size against `expression.max-value-size`
//! (a [`Cap`]) before allocating it.

mod args;
mod collections;
mod dates;
mod encoding;
mod files;
mod formats;
mod functions;
mod strings;
mod taint;

use crate::context::PerRender;
use crate::error::function_error;
use crate::limits::Cap;
use crate::pebble::FUNCTION_PREFIX;
use args::Signature;
use minijinja::functions::Function;
use minijinja::value::{FunctionArgs, FunctionResult, Rest, Value, ValueKind};
use minijinja::{Environment, Error, State};
use std::borrow::Cow;
use taint::Taint;

/// How a function's result carries its inputs' secrets onward.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Flow {
    /// The result is derived from the inputs: tainted when any of them is.
    Derived,
    /// Like `Derived`, but a map input counts by its keys only: the result is drawn from them
    /// (`first`, `last`, `join` of a map).
    FromKeys,
    /// `keys`: a map counts by its keys, a list for nothing (its keys are its indices).
    Keys,
    /// The result cannot be turned back into its input (a digest, a length).
    OneWay,
}

/// The arguments of Kestra's date filters and `now()`.
const DATE_ARGS: &[&str] = &["format", "timeZone", "existingFormat", "locale"];
/// The arguments of `timestamp`, `timestampMicro` and `timestampNano`.
const TIMESTAMP_ARGS: &[&str] = &["timeZone", "existingFormat"];

/// Registers kestrel's filters, functions and tests on `env`, replacing minijinja's; `cap`
/// bounds every value they build.
pub(crate) fn register(env: &mut Environment<'static>, cap: Cap) {
    register_strings(env, cap);
    register_collections(env, cap);
    register_encodings(env, cap);
    register_dates(env);
    register_functions(env, cap);
    files::register(env, cap);
    register_unsupported(env);
    // The lowering's helpers (see `pebble::print`): positional, never named by a template.
    env.add_function("_k_get", functions::lenient_get);
    env.add_function("_k_nn", functions::is_present);
    env.add_function("_k_entries", functions::entries);
    env.add_function("_k_pairs", functions::pairs);
    let concat = Signature {
        name: "~",
        what: "operator",
        leading: 0,
        params: None,
    };
    env.add_function(
        "_k_concat",
        derived(concat, Flow::Derived, move |parts: Rest<Value>| {
            functions::concat(&parts, cap)
        }),
    );
    env.add_function("_k_div", functions::divide);
    env.add_function("_k_mod", functions::remainder);
    register_tests(env);
}

fn register_strings(env: &mut Environment<'static>, cap: Cap) {
    use Flow::Derived;
    filter(env, "lower", &[], Derived, move |v: Value| {
        strings::lower(&v, cap)
    });
    filter(env, "upper", &[], Derived, move |v: Value| {
        strings::upper(&v, cap)
    });
    filter(env, "trim", &[], Derived, move |v: Value| {
        strings::trim(&v, cap)
    });
    filter(env, "capitalize", &[], Derived, move |v: Value| {
        strings::capitalize(&v, cap)
    });
    filter(env, "title", &[], Derived, move |v: Value| {
        strings::title(&v, cap)
    });
    filter(
        env,
        "replace",
        &["replace_pairs", "regexp"],
        Derived,
        move |v: Value, pairs: Value, second: Option<Value>| {
            strings::replace(&v, &pairs, second, cap)
        },
    );
    filter(
        env,
        "split",
        &["delimiter", "limit"],
        Derived,
        move |v: Value, delimiter: String, limit: Option<i64>| {
            strings::split(&v, &delimiter, limit, cap)
        },
    );
    filter(
        env,
        "abbreviate",
        &["length"],
        Derived,
        move |v: Value, width: usize| strings::abbreviate(&v, width, cap),
    );
    filter(env, "startsWith", &["value"], Derived, strings::starts_with);
    filter(env, "endsWith", &["value"], Derived, strings::ends_with);
    let substrings: [(&'static str, strings::Around); 4] = [
        ("substringBefore", strings::Around::BeforeFirst),
        ("substringAfter", strings::Around::AfterFirst),
        ("substringBeforeLast", strings::Around::BeforeLast),
        ("substringAfterLast", strings::Around::AfterLast),
    ];
    for (name, around) in substrings {
        filter(
            env,
            name,
            &["separator"],
            Derived,
            move |v: Value, sep: Value| strings::substring(&v, &sep, around, cap),
        );
    }
    for (name, first) in [("indent", false), ("nindent", true)] {
        filter(
            env,
            name,
            &["amount", "prefix"],
            Derived,
            move |v: Value, amount: Option<Value>, prefix: Option<String>| {
                strings::indent(&v, name, amount, prefix, first, cap)
            },
        );
    }
    filter(env, "slugify", &[], Derived, move |v: Value| {
        strings::slugify(&v, cap)
    });
    filter(
        env,
        "escapeChar",
        &["type"],
        Derived,
        move |v: Value, kind: Option<String>| strings::escape_char(&v, kind, cap),
    );
    filter(
        env,
        "number",
        &["type"],
        Derived,
        move |v: Value, kind: Option<String>| strings::number(&v, kind, cap),
    );
    filter(
        env,
        "numberFormat",
        &["format"],
        Derived,
        move |v: Value, format: Option<String>| strings::number_format(&v, format, cap),
    );
}

fn register_collections(env: &mut Environment<'static>, cap: Cap) {
    use Flow::{Derived, FromKeys, OneWay};
    filter(env, "default", &["default"], Derived, collections::default);
    filter(
        env,
        "join",
        &["separator"],
        FromKeys,
        move |v: Value, separator: Option<String>| collections::join(&v, separator, cap),
    );
    filter(env, "first", &[], FromKeys, collections::first);
    filter(env, "last", &[], FromKeys, collections::last);
    filter(env, "keys", &[], Flow::Keys, collections::keys);
    filter(env, "values", &[], Derived, collections::values);
    filter(env, "length", &[], OneWay, collections::length);
    filter(
        env,
        "chunk",
        &["size"],
        Derived,
        move |v: Value, size: Option<Value>| collections::chunk(&v, size, cap),
    );
    filter(env, "flatten", &[], Derived, collections::flatten);
    filter(env, "abs", &[], Derived, collections::abs);
    filter(env, "reverse", &[], Derived, collections::reverse);
    filter(env, "sort", &[], Derived, |v: Value| {
        collections::sort(&v, "sort", false)
    });
    filter(env, "rsort", &[], Derived, |v: Value| {
        collections::sort(&v, "rsort", true)
    });
    filter(
        env,
        "slice",
        &["fromIndex", "toIndex"],
        Derived,
        |v: Value, from: Option<i64>, to: Option<i64>| collections::slice(&v, from, to),
    );
    filter(
        env,
        "merge",
        &["items"],
        Derived,
        move |v: Value, items: Value| collections::merge(&v, &items, cap),
    );
    filter(
        env,
        "className",
        &[],
        OneWay,
        |_: Value| -> Result<Value, Error> {
            Err(function_error(
                "The 'className' filter is not supported: kestrel's values have no Java class (use the tests `is string`, `is number`, `is map`, `is iterable`).",
            ))
        },
    );
}

/// Encodings, JSON, YAML, Ion, digests.
fn register_encodings(env: &mut Environment<'static>, cap: Cap) {
    use Flow::{Derived, OneWay};
    filter(env, "base64encode", &[], Derived, move |v: Value| {
        encoding::base64_encode(&v, cap)
    });
    filter(env, "base64decode", &[], Derived, move |v: Value| {
        encoding::base64_decode(&v, cap)
    });
    filter(env, "urlencode", &[], Derived, move |v: Value| {
        encoding::url_encode(&v, cap)
    });
    filter(env, "urldecode", &[], Derived, move |v: Value| {
        encoding::url_decode(&v, cap)
    });
    for name in ["toJson", "json"] {
        filter(env, name, &[], Derived, move |v: Value| cap.json(&v));
    }
    filter(env, "toIon", &[], Derived, move |v: Value| {
        formats::to_ion(&v, cap)
    });
    filter(env, "yaml", &[], Derived, move |v: Value| {
        formats::to_yaml(&v, cap)
    });
    filter(
        env,
        "jq",
        &["expression"],
        Derived,
        move |v: Value, path: String| encoding::jq(&v, &path, cap),
    );
    for name in ["fromJson", "json"] {
        function(env, name, Some(&["json"]), Derived, move |v: Value| {
            encoding::from_json(v, cap)
        });
    }
    function(env, "fromIon", Some(&["ion"]), Derived, move |v: Value| {
        formats::from_ion(v, cap)
    });
    function(env, "yaml", Some(&["yaml"]), Derived, move |v: Value| {
        formats::from_yaml(v, cap)
    });
    filter(env, "sha1", &[], OneWay, move |v: Value| {
        encoding::sha1(&v, cap)
    });
    filter(env, "sha256", &[], OneWay, move |v: Value| {
        encoding::sha256(&v, cap)
    });
    filter(env, "sha512", &[], OneWay, move |v: Value| {
        encoding::sha512(&v, cap)
    });
    filter(env, "md5", &[], OneWay, move |v: Value| {
        encoding::md5(&v, cap)
    });
}

fn register_dates(env: &mut Environment<'static>) {
    use Flow::Derived;
    filter(env, "date", DATE_ARGS, Derived, dates::date);
    filter(
        env,
        "dateAdd",
        &[
            "amount",
            "unit",
            "format",
            "timeZone",
            "existingFormat",
            "locale",
        ],
        Derived,
        dates::date_add,
    );
    for (name, unit) in [
        ("timestamp", dates::Epoch::Seconds),
        ("timestampMicro", dates::Epoch::Micros),
        ("timestampNano", dates::Epoch::Nanos),
    ] {
        filter(
            env,
            name,
            TIMESTAMP_ARGS,
            Derived,
            move |v: Value, zone: Option<String>, existing: Option<String>| {
                dates::timestamp(&v, zone, existing, unit)
            },
        );
    }
    function(env, "now", Some(DATE_ARGS), Derived, dates::now);
}

fn register_functions(env: &mut Environment<'static>, cap: Cap) {
    use Flow::Derived;
    env.add_function(format!("{FUNCTION_PREFIX}secret"), functions::secret);
    function(
        env,
        "render",
        Some(&["toRender", "recursive"]),
        Derived,
        move |state: &State<'_, '_>, v: Value, recursive: Option<bool>| {
            functions::render(state, v, recursive.unwrap_or(true), cap)
        },
    );
    function(
        env,
        "renderOnce",
        Some(&["toRender"]),
        Derived,
        move |state: &State<'_, '_>, v: Value| functions::render(state, v, false, cap),
    );
    function(env, "uuid", Some(&[]), Derived, functions::uuid);
    function(env, "id", Some(&[]), Derived, functions::new_id);
    function(
        env,
        "randomInt",
        Some(&["lower", "upper"]),
        Derived,
        functions::random_int,
    );
    function(
        env,
        "range",
        Some(&["start", "end", "increment"]),
        Derived,
        move |start: i64, end: i64, increment: Option<i64>| {
            functions::range(start, end, increment, cap)
        },
    );
    function(env, "max", None, Derived, functions::max);
    function(env, "min", None, Derived, functions::min);
    function(
        env,
        "currentEachOutput",
        Some(&["outputs"]),
        Derived,
        functions::current_each_output,
    );
    for name in ["fetchContext", "printContext"] {
        function(env, name, Some(&[]), Derived, functions::fetch_context);
    }
    function(env, "errorLogs", Some(&[]), Derived, functions::error_logs);
}

/// Kestra's functions that need what kestrel does not have: a clear error, never a guess.
fn register_unsupported(env: &mut Environment<'static>) {
    let unsupported: [(&'static str, &'static str); 4] = [
        (
            "block",
            "it takes the name of a block defined earlier in the template, as a literal ('name')",
        ),
        ("kv", "kestrel has no key-value store"),
        (
            "encrypt",
            "kestrel has no server encryption key (use secret())",
        ),
        (
            "decrypt",
            "kestrel has no server encryption key (use secret())",
        ),
    ];
    for (name, why) in unsupported {
        function(
            env,
            name,
            None,
            Flow::OneWay,
            move |_: Rest<Value>| -> Result<Value, Error> {
                Err(function_error(format!(
                    "The '{name}' function is not supported: {why}."
                )))
            },
        );
    }
}

/// Pebble's tests (`x is even`) and Kestra's `json`; `defined` and `null` are lowered to `_k_nn`.
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
    env.add_test("json", |v: Value| {
        v.as_str()
            .is_some_and(|s| serde_json::from_str::<serde::de::IgnoredAny>(s).is_ok())
    });
}

fn filter<F, Rv, Args>(
    env: &mut Environment<'static>,
    name: &'static str,
    params: &'static [&'static str],
    flow: Flow,
    f: F,
) where
    F: Function<Rv, Args>,
    Rv: FunctionResult,
    Args: for<'a> FunctionArgs<'a>,
{
    let signature = Signature {
        name,
        what: "filter",
        leading: 1,
        params: Some(params),
    };
    env.add_filter(name, derived(signature, flow, f));
}

fn function<F, Rv, Args>(
    env: &mut Environment<'static>,
    name: &'static str,
    params: Option<&'static [&'static str]>,
    flow: Flow,
    f: F,
) where
    F: Function<Rv, Args>,
    Rv: FunctionResult,
    Args: for<'a> FunctionArgs<'a>,
{
    let signature = Signature {
        name,
        what: "function",
        leading: 0,
        params,
    };
    env.add_function(
        format!("{FUNCTION_PREFIX}{name}"),
        derived(signature, flow, f),
    );
}

/// `f` with its arguments bound to `signature` (see [`Signature::bind`]), marking its result
/// tainted (and registering it) when its inputs are.
fn derived<F, Rv, Args>(
    signature: Signature,
    flow: Flow,
    f: F,
) -> impl Fn(&State<'_, '_>, Rest<Value>) -> Result<Value, Error> + Send + Sync + 'static
where
    F: Function<Rv, Args>,
    Rv: FunctionResult,
    Args: for<'a> FunctionArgs<'a>,
{
    let inner = Value::from_function(f);
    move |state: &State<'_, '_>, args: Rest<Value>| {
        let args = signature.bind(args.0)?;
        let rv = inner.call(state, &args)?;
        if flow != Flow::OneWay
            && may_carry_a_secret(&rv)
            && let Some(taint) = Taint::of(state)
            && inputs_tainted(&taint, flow, &args)
        {
            taint.spread(&PerRender::of(state), &rv)?;
        }
        Ok(rv)
    }
}

/// Booleans, null and undefined never carry a secret.
fn may_carry_a_secret(v: &Value) -> bool {
    matches!(
        v.kind(),
        ValueKind::String
            | ValueKind::Number
            | ValueKind::Seq
            | ValueKind::Map
            | ValueKind::Iterable
    )
}

fn inputs_tainted(taint: &Taint, flow: Flow, args: &[Value]) -> bool {
    args.iter()
        .enumerate()
        .any(|(i, arg)| match (flow, arg.kind()) {
            (Flow::FromKeys | Flow::Keys, ValueKind::Map) if i == 0 => taint.holds_in_keys(arg),
            (Flow::Keys, ValueKind::Seq) if i == 0 => false,
            _ => taint.holds(arg),
        })
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
