//! Kestra's functions (`secret`, `render`, `renderOnce`, `uuid`, `id`, `randomInt`, `range`,
//! `max`, `min`, `currentEachOutput`, `fetchContext`) and the helpers the lowering calls
//! (`_k_get`, `_k_nn`, `_k_entries`, `_k_pairs`).

use super::to_text;
use crate::context::{PerRender, RenderState};
use crate::error::{ExprErrorKind, Failure, function_error};
use crate::limits::{Bounded, Cap, RECURSION_LIMIT};
use crate::pebble::{has_markup, raw};
use minijinja::value::{Kwargs, Rest, Value, ValueKind};
use minijinja::{Error, ErrorKind, State};
use std::sync::Arc;

/// How many nested `render()` passes a render may make (a value that renders itself stops here).
const MAX_RENDER_DEPTH: usize = 16;

/// The fuel one nested render costs before it runs, plus one per byte of its text: the work
/// around the template machine (finding or compiling the template, building its variables,
/// protecting raw blocks) that its instructions do not count. Without it, a tiny template
/// rendered millions of times (`render()` nested ten deep, ten wide) spends little fuel and
/// minutes of CPU.
const NESTED_RENDER_FUEL: u64 = 2_000;

/// The most items `range` builds.
const MAX_RANGE: usize = 100_000;

fn secret_error(message: impl Into<String>) -> Error {
    Failure::new(ExprErrorKind::Secret, message).into_error()
}

/// `secret('KEY')`, `secret(key='KEY')`, `namespace='a.b'`, `subkey='field'`: resolves through
/// the render's secret scope, which registers the value for masking.
pub(super) fn secret(
    state: &State<'_, '_>,
    key: Option<Value>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let key = match key {
        Some(key) => Some(key),
        None => kwargs.get::<Option<Value>>("key")?,
    };
    let namespace: Option<String> = kwargs.get("namespace")?;
    let subkey: Option<String> = kwargs.get("subkey")?;
    kwargs.assert_all_used()?;
    let key = key
        .filter(|k| !k.is_none() && !k.is_undefined())
        .map(|k| to_text(&k).into_owned())
        .filter(|k| !k.is_empty())
        .ok_or_else(|| secret_error("The 'secret' function expects an argument 'key'."))?;
    let scope = RenderState::of(state)
        .and_then(|s| s.scope.clone())
        .ok_or_else(|| {
            secret_error(
                "Secrets are not available here: the 'secret' function needs a running execution.",
            )
        })?;
    let value = scope
        .get(&key, namespace.as_deref())
        .map_err(|e| secret_error(e.to_string()))?
        .ok_or_else(|| secret_error(format!("Cannot find secret for key '{key}'.")))?;
    let Some(subkey) = subkey else {
        return Ok(Value::from(value.expose_secret()));
    };
    let field = subkey_field(value.expose_secret(), &key, &subkey)?;
    scope.registry().register_derived(&field);
    Ok(Value::from(field))
}

/// One field of a secret holding a JSON object: strings as they are, other values as JSON.
fn subkey_field(value: &str, key: &str, subkey: &str) -> Result<String, Error> {
    let object = match serde_json::from_str::<serde_json::Value>(value) {
        Ok(serde_json::Value::Object(object)) => object,
        _ => {
            return Err(secret_error(format!(
                "Failed to read secret sub-key '{subkey}' from secret '{key}'. Ensure the secret contains valid JSON value."
            )));
        }
    };
    match object.get(subkey) {
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        Some(other) => Ok(other.to_string()),
        None => Err(secret_error(format!(
            "Cannot find secret sub-key '{subkey}' in secret '{key}'."
        ))),
    }
}

/// `render(value, recursive=true)` and `renderOnce(value)`: renders a string that is itself a
/// template, in the same variables and secret scope, again and again while it changes (unless
/// not `recursive`); a list's items and a map's keys and values are rendered each, anything
/// else is returned as it is. Raw blocks survive every pass as written and are replaced by their
/// text at the end, as Kestra does. A nested render shares the outer render's taint and fuel,
/// and its output is capped.
pub(super) fn render(
    state: &State<'_, '_>,
    v: Value,
    recursive: bool,
    cap: Cap,
) -> Result<Value, Error> {
    let me = RenderState::of(state)
        .ok_or_else(|| function_error("The 'render' function is not available here."))?;
    let rendered = render_value(state, &me, &v, recursive, 0, cap)?;
    // Each string was capped as it was rendered; the list or map they make is, too.
    if matches!(rendered.kind(), ValueKind::Seq | ValueKind::Map) {
        cap.json(&rendered)?;
    }
    Ok(rendered)
}

fn render_value(
    state: &State<'_, '_>,
    me: &RenderState,
    v: &Value,
    recursive: bool,
    depth: usize,
    cap: Cap,
) -> Result<Value, Error> {
    if depth > RECURSION_LIMIT {
        return Err(crate::limits::limit_error(format!(
            "The 'render' function got lists and maps nested more than {RECURSION_LIMIT} levels deep."
        )));
    }
    match v.kind() {
        ValueKind::String => {
            let text = v.as_str().unwrap_or_default();
            render_text(state, me, text, recursive, cap).map(Value::from)
        }
        ValueKind::Seq | ValueKind::Iterable => v
            .try_iter()?
            .map(|item| render_value(state, me, &item, recursive, depth + 1, cap))
            .collect(),
        ValueKind::Map => v
            .try_iter()?
            .map(|key| {
                let item = v.get_item(&key)?;
                // Kestra renders a key once, whatever `recursive` says.
                let key = render_value(state, me, &key, false, depth + 1, cap)?;
                Ok((
                    key,
                    render_value(state, me, &item, recursive, depth + 1, cap)?,
                ))
            })
            .collect(),
        _ => Ok(v.clone()),
    }
}

fn render_text(
    state: &State<'_, '_>,
    me: &RenderState,
    text: &str,
    recursive: bool,
    cap: Cap,
) -> Result<String, Error> {
    let per_render = PerRender::of(state);
    let mut depth = me.depth;
    let mut text = text.to_string();
    while has_markup(&text) {
        depth += 1;
        if depth > MAX_RENDER_DEPTH {
            return Err(function_error(format!(
                "Too many rendering attempts: the 'render' function went more than {MAX_RENDER_DEPTH} levels deep (a value may render itself)."
            )));
        }
        let nested = RenderState {
            scope: me.scope.clone(),
            files: me.files.clone(),
            vars: me.vars.clone(),
            depth,
            outer: Some(Arc::clone(&per_render)),
        };
        let protected = raw::Protected::new(&text);
        let out = render_nested(state, &protected.text, nested.root(), &per_render, cap)
            .map_err(|e| nested_error(&e, &text, me, state))?;
        let out = protected.restore(out);
        let unchanged = out == text;
        text = out;
        if !recursive || unchanged {
            break;
        }
    }
    Ok(raw::strip(&text).into_owned())
}

/// Renders `text` in `root`, its output within the cap, and charges the fuel it spent to the
/// outer render: the fuel of a render and everything it nests stays within `expression.fuel`.
fn render_nested(
    state: &State<'_, '_>,
    text: &str,
    root: Value,
    per_render: &PerRender,
    cap: Cap,
) -> Result<String, Error> {
    let overhead = NESTED_RENDER_FUEL.saturating_add(text.len() as u64);
    charge_nested_fuel(state, per_render, overhead)?;
    let template = state.env().get_template(text)?;
    let mut out = Bounded::new(cap.max());
    let captured = template.render_captured_to(root, &mut out);
    if out.overflowed {
        cap.check(None)?;
    }
    let captured = captured?;
    if let Some((spent, _)) = captured.state().fuel_levels() {
        charge_nested_fuel(state, per_render, spent)?;
    }
    drop(captured);
    String::from_utf8(out.bytes)
        .map_err(|_| function_error("The 'render' function produced text that is not UTF-8."))
}

/// Adds `fuel` to what the nested renders spent; out of fuel when that and what the current
/// render spent exceed `expression.fuel`.
fn charge_nested_fuel(
    state: &State<'_, '_>,
    per_render: &PerRender,
    fuel: u64,
) -> Result<(), Error> {
    let (Some((outer, _)), Some(limit)) = (state.fuel_levels(), state.env().fuel()) else {
        return Ok(());
    };
    if outer.saturating_add(per_render.spend_nested_fuel(fuel)) > limit {
        return Err(Error::from(ErrorKind::OutOfFuel));
    }
    Ok(())
}

/// The error of a nested render, as the outer render reports it. Its message quotes the inner
/// template, so it is withheld when that template holds a secret.
fn nested_error(err: &Error, text: &str, me: &RenderState, state: &State<'_, '_>) -> Error {
    let holds_secret = me
        .scope
        .as_ref()
        .is_some_and(|s| s.registry().contains_secret(text));
    if holds_secret {
        return function_error("The 'render' function failed on a value that holds a secret.");
    }
    let lookup = |name: &str| crate::render::lookup(&me.vars, state.env(), name);
    let nested = crate::error::convert(err, text, &lookup);
    Failure::new(nested.kind, nested.message).into_error()
}

pub(super) fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The alphabet of Kestra's identifiers (`IdUtils.create()`): a UUID in base 62.
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `id()`: a new random identifier like Kestra's, a UUID v4 in base 62 (22 characters).
pub(super) fn new_id() -> String {
    let mut n = uuid::Uuid::new_v4().as_u128();
    let mut digits = [b'0'; 22];
    for digit in digits.iter_mut().rev() {
        // The remainder is below 62: the index is in range.
        *digit = BASE62[(n % 62) as usize];
        n /= 62;
    }
    digits.iter().map(|&b| char::from(b)).collect()
}

/// Kestra's `randomInt(lower, upper)`: an integer from `lower` (included) to `upper`
/// (excluded), `lower` when they are equal.
pub(super) fn random_int(lower: Option<Value>, upper: Option<Value>) -> Result<i64, Error> {
    let bound = |v: Option<Value>, name: &str| {
        let v = v.ok_or_else(|| {
            function_error(format!(
                "The 'randomInt' function expects an argument '{name}'."
            ))
        })?;
        v.as_i64().filter(|_| v.is_integer()).ok_or_else(|| {
            function_error(format!(
                "The 'randomInt' function expects an argument '{name}' that is an integer."
            ))
        })
    };
    let (lower, upper) = (bound(lower, "lower")?, bound(upper, "upper")?);
    if upper < lower {
        return Err(function_error(
            "The 'randomInt' function expects 'upper' to be at least 'lower'.",
        ));
    }
    let span = u128::from(upper.abs_diff(lower));
    if span == 0 {
        return Ok(lower);
    }
    let offset = uuid::Uuid::new_v4().as_u128() % span;
    // `offset` is below `upper - lower`, so `lower + offset` is below `upper`: it fits.
    Ok(lower.wrapping_add(offset as i64))
}

/// Kestra's `currentEachOutput(outputs)`: the outputs of the current iteration of the
/// enclosing `ForEach` loops, read by `taskrun.value` of each parent (outermost first) and of
/// the current task run.
pub(super) fn current_each_output(state: &State<'_, '_>, outputs: Value) -> Result<Value, Error> {
    if outputs.kind() != ValueKind::Map {
        return Err(function_error(
            "The 'currentEachOutput' function expects an argument 'outputs' with type map.",
        ));
    }
    let value_of = |taskrun: &Value| taskrun.get_attr("value").ok().filter(|v| !v.is_undefined());
    let mut outputs = outputs;
    if let Some(parents) = state
        .lookup("parents")
        .filter(|p| p.kind() == ValueKind::Seq)
    {
        let parents: Vec<Value> = parents.try_iter()?.collect();
        for parent in parents.iter().rev() {
            if let Some(value) = parent.get_attr("taskrun").ok().as_ref().and_then(value_of) {
                outputs = outputs.get_item(&value).unwrap_or_default();
            }
        }
    }
    let value = state
        .lookup("taskrun")
        .as_ref()
        .and_then(value_of)
        .ok_or_else(|| {
            function_error(
                "The 'currentEachOutput' function needs `taskrun.value`: call it inside a ForEach.",
            )
        })?;
    Ok(outputs.get_item(&value).unwrap_or_default())
}

/// Kestra's `errorLogs()`: the execution's ERROR entries so far (at most 25, oldest first),
/// each a map (`taskId`, `taskRunId`, `level`, `message`, `timestamp`...), masked as readers
/// see them. The engine gives them, under [`crate::ERROR_LOGS`], to the tasks that call it.
pub(super) fn error_logs(state: &State<'_, '_>) -> Result<Value, Error> {
    state
        .lookup(crate::ERROR_LOGS)
        .filter(|logs| !logs.is_undefined())
        .ok_or_else(|| {
            function_error("The 'errorLogs' function reads an execution's logs: call it in a task.")
        })
}

/// Kestra's `fetchContext()` (and `printContext()`): the variables of the render, as a map.
pub(super) fn fetch_context(state: &State<'_, '_>) -> Result<Value, Error> {
    RenderState::of(state)
        .map(|me| me.vars.clone())
        .ok_or_else(|| function_error("The 'fetchContext' function is not available here."))
}

/// Pebble's `range(start, end, increment=1)`: `end` included.
pub(super) fn range(
    start: i64,
    end: i64,
    increment: Option<i64>,
    cap: Cap,
) -> Result<Vec<i64>, Error> {
    let step = increment.unwrap_or(1);
    if step == 0 {
        return Err(function_error("The 'range' increment cannot be 0."));
    }
    let count = (i128::from(end) - i128::from(start)) / i128::from(step) + 1;
    if count > MAX_RANGE as i128 {
        return Err(function_error(format!(
            "The range is too long (more than {MAX_RANGE} items)."
        )));
    }
    let count = usize::try_from(count).unwrap_or(0);
    // Each number counts for the 8 bytes it takes.
    cap.check(count.checked_mul(8))?;
    Ok((0..count)
        .filter_map(|i| i64::try_from(i).ok()?.checked_mul(step)?.checked_add(start))
        .collect())
}

/// The items of `max(a, b, ...)` or `max([a, b])`.
fn operands(args: Rest<Value>, name: &str) -> Result<Vec<Value>, Error> {
    let items = match &args[..] {
        [one] if one.kind() == ValueKind::Seq => one.try_iter()?.collect(),
        _ => args.0,
    };
    if items.is_empty() {
        return Err(function_error(format!(
            "The '{name}' function expects at least one value."
        )));
    }
    Ok(items)
}

pub(super) fn max(args: Rest<Value>) -> Result<Value, Error> {
    Ok(operands(args, "max")?.into_iter().max().unwrap_or_default())
}

pub(super) fn min(args: Rest<Value>) -> Result<Value, Error> {
    Ok(operands(args, "min")?.into_iter().min().unwrap_or_default())
}

/// `_k_get(root, step, ...)`: follows the steps, undefined as soon as a step is missing or
/// lands on null (a final null is kept, which `???` needs).
pub(super) fn lenient_get(root: Value, steps: Rest<Value>) -> Value {
    let mut v = root;
    for step in steps.iter() {
        if v.is_undefined() || v.is_none() {
            return Value::UNDEFINED;
        }
        v = match step.as_str() {
            Some(name) => v.get_attr(name),
            None => v.get_item(step),
        }
        .unwrap_or(Value::UNDEFINED);
    }
    v
}

/// `_k_concat(a, b, ...)`: Pebble's `~`, each operand printed as Kestra prints it
/// (`true`, JSON for lists and maps, nothing for null). Undefined stays an error.
pub(super) fn concat(parts: &[Value], cap: Cap) -> Result<String, Error> {
    let mut out = String::new();
    for part in parts {
        if part.is_undefined() {
            return Err(Error::from(ErrorKind::UndefinedError));
        }
        let text = cap.text(part)?;
        cap.check(out.len().checked_add(text.len()))?;
        out.push_str(&text);
    }
    Ok(out)
}

/// `_k_div(a, b)`: Pebble's `/`, integer division (truncating, as Java) when both are integers.
pub(super) fn divide(a: Value, b: Value) -> Result<Value, Error> {
    arithmetic(&a, &b, "/")
}

/// `_k_mod(a, b)`: Pebble's `%`, Java's remainder (its sign is the dividend's).
pub(super) fn remainder(a: Value, b: Value) -> Result<Value, Error> {
    arithmetic(&a, &b, "%")
}

fn arithmetic(a: &Value, b: &Value, op: &str) -> Result<Value, Error> {
    if a.is_undefined() || b.is_undefined() {
        return Err(Error::from(ErrorKind::UndefinedError));
    }
    if let (true, true, Some(x), Some(y)) = (a.is_integer(), b.is_integer(), a.as_i64(), b.as_i64())
    {
        if y == 0 {
            return Err(function_error(format!("Division by zero (`{op}`).")));
        }
        let result = if op == "/" {
            x.checked_div(y)
        } else {
            x.checked_rem(y)
        };
        return result
            .map(Value::from)
            .ok_or_else(|| function_error(format!("Integer overflow in `{op}`.")));
    }
    match (f64::try_from(a.clone()), f64::try_from(b.clone())) {
        (Ok(x), Ok(y)) if a.is_number() && b.is_number() => {
            Ok(Value::from(if op == "/" { x / y } else { x % y }))
        }
        _ => Err(function_error(format!(
            "Tried to use {op} operator on unsupported types {} and {}",
            a.kind(),
            b.kind()
        ))),
    }
}

/// `_k_nn(v)`: neither undefined nor null.
pub(super) fn is_present(v: Value) -> bool {
    !v.is_undefined() && !v.is_none()
}

/// `_k_entries(m)`: a map as Pebble iterates it, entries with `key` and `value`.
pub(super) fn entries(v: Value) -> Result<Value, Error> {
    if v.kind() != ValueKind::Map {
        return Ok(v);
    }
    v.try_iter()?
        .map(|key| {
            let value = v.get_item(&key)?;
            Ok(Value::from_iter([("key", key), ("value", value)]))
        })
        .collect()
}

/// `_k_pairs(m)`: `[key, value]` pairs of a map, `[index, item]` pairs of a list.
pub(super) fn pairs(v: Value) -> Result<Value, Error> {
    match v.kind() {
        ValueKind::Map => v
            .try_iter()?
            .map(|key| Ok(Value::from(vec![key.clone(), v.get_item(&key)?])))
            .collect(),
        ValueKind::Seq => Ok(v
            .try_iter()?
            .enumerate()
            .map(|(i, item)| Value::from(vec![Value::from(i), item]))
            .collect()),
        _ => Ok(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subkeys_follow_kestra() {
        let doc = r#"{"user": "admin", "port": 5432, "tls": true, "hosts": ["a", "b"]}"#;
        assert_eq!(subkey_field(doc, "DB", "user").unwrap(), "admin");
        assert_eq!(subkey_field(doc, "DB", "port").unwrap(), "5432");
        assert_eq!(subkey_field(doc, "DB", "tls").unwrap(), "true");
        assert_eq!(subkey_field(doc, "DB", "hosts").unwrap(), r#"["a","b"]"#);
        assert_eq!(
            subkey_field(doc, "DB", "nope").unwrap_err().detail(),
            Some("Cannot find secret sub-key 'nope' in secret 'DB'.")
        );
        assert_eq!(
            subkey_field("plain", "DB", "user").unwrap_err().detail(),
            Some(
                "Failed to read secret sub-key 'user' from secret 'DB'. Ensure the secret contains valid JSON value."
            )
        );
    }

    #[test]
    fn ranges_are_inclusive_and_bounded() {
        assert_eq!(range(0, 3, None, Cap::new(1 << 20)).unwrap(), [0, 1, 2, 3]);
        assert_eq!(range(5, 1, Some(-2), Cap::new(1 << 20)).unwrap(), [5, 3, 1]);
        assert!(range(3, 0, None, Cap::new(1 << 20)).unwrap().is_empty());
        assert!(range(0, 1, Some(0), Cap::new(1 << 20)).is_err());
        assert!(range(0, i64::MAX, None, Cap::new(1 << 20)).is_err());
    }

    #[test]
    fn lenient_get_stops_at_missing_or_null_steps() {
        let doc = Value::from_serialize(serde_json::json!({"a": {"b": null, "c": [1, 2]}}));
        let get = |steps: Vec<Value>| lenient_get(doc.clone(), Rest(steps));
        assert!(get(vec![Value::from("x"), Value::from("y")]).is_undefined());
        assert!(get(vec![Value::from("a"), Value::from("b")]).is_none());
        assert!(get(vec![Value::from("a"), Value::from("b"), Value::from("z")]).is_undefined());
        assert_eq!(
            get(vec![Value::from("a"), Value::from("c"), Value::from(1)]),
            Value::from(2)
        );
    }
}
