//! Filters over lists, maps and strings as sequences.

use crate::error::function_error;
use crate::limits::Cap;
use minijinja::Error;
use minijinja::value::{Value, ValueKind};

/// Pebble's emptiness: null or undefined, a blank string, an empty list or map.
pub(super) fn is_empty(v: Value) -> bool {
    match v.kind() {
        ValueKind::None | ValueKind::Undefined => true,
        ValueKind::String => v.as_str().is_some_and(|s| s.trim().is_empty()),
        ValueKind::Seq | ValueKind::Map => v.len() == Some(0),
        _ => false,
    }
}

/// `default(d)`: `d` when the input is empty (see [`is_empty`]). The lowering passes a
/// missing input as undefined rather than failing, as Pebble does for this filter.
pub(super) fn default(v: Value, fallback: Option<Value>) -> Value {
    if is_empty(v.clone()) {
        fallback.unwrap_or_else(|| Value::from(""))
    } else {
        v
    }
}

/// `join(separator)`: the items' texts, each checked against the cap as the result grows.
pub(super) fn join(v: &Value, separator: Option<String>, cap: Cap) -> Result<String, Error> {
    if v.kind() == ValueKind::String {
        return Ok(cap.text(v)?.into_owned());
    }
    let items = v
        .try_iter()
        .map_err(|_| function_error("The 'join' filter expects a list."))?;
    let separator = separator.unwrap_or_default();
    let mut out = String::new();
    for (i, item) in items.enumerate() {
        let text = cap.text(&item)?;
        let sep = if i == 0 { "" } else { separator.as_str() };
        cap.check(out.len().checked_add(sep.len() + text.len()))?;
        out.push_str(sep);
        out.push_str(&text);
    }
    Ok(out)
}

/// `length`: characters of a string, items of a list or map; 0 for null.
pub(super) fn length(v: Value) -> Result<usize, Error> {
    match v.kind() {
        ValueKind::String => Ok(v.as_str().map_or(0, |s| s.chars().count())),
        ValueKind::None | ValueKind::Undefined => Ok(0),
        _ => match v.len() {
            Some(n) => Ok(n),
            None => Ok(v
                .try_iter()
                .map_err(|_| {
                    function_error("The 'length' filter expects a string, a list or a map.")
                })?
                .count()),
        },
    }
}

fn ends(v: &Value, name: &str, last: bool) -> Result<Value, Error> {
    if let Some(s) = v.as_str() {
        let c = if last {
            s.chars().next_back()
        } else {
            s.chars().next()
        };
        return Ok(c.map_or(Value::from(()), |c| Value::from(c.to_string())));
    }
    let items = v
        .try_iter()
        .map_err(|_| function_error(format!("The '{name}' filter expects a list or a string.")))?;
    let item = if last {
        items.last()
    } else {
        items.into_iter().next()
    };
    Ok(item.unwrap_or(Value::from(())))
}

pub(super) fn first(v: Value) -> Result<Value, Error> {
    ends(&v, "first", false)
}

pub(super) fn last(v: Value) -> Result<Value, Error> {
    ends(&v, "last", true)
}

/// `keys`: a map's keys, a list's indices (Kestra's); null stays null.
pub(super) fn keys(v: Value) -> Result<Value, Error> {
    match v.kind() {
        ValueKind::None => Ok(v),
        ValueKind::Map => Ok(v.try_iter()?.collect()),
        ValueKind::Seq => Ok((0..v.len().unwrap_or(0)).map(Value::from).collect()),
        _ => Err(function_error(
            "The 'keys' filter can only be applied to a list or a map.",
        )),
    }
}

/// `values`: a map's values; null stays null.
pub(super) fn values(v: Value) -> Result<Value, Error> {
    match v.kind() {
        ValueKind::None => Ok(v),
        ValueKind::Map => v.try_iter()?.map(|k| v.get_item(&k)).collect(),
        _ => Err(function_error(
            "The 'values' filter can only be applied to a map.",
        )),
    }
}

/// The items of the list `v` for the filter `name`; null is `None`.
fn list_items(v: &Value, name: &str) -> Result<Option<Vec<Value>>, Error> {
    match v.kind() {
        ValueKind::None => Ok(None),
        ValueKind::Seq | ValueKind::Iterable => Ok(Some(v.try_iter()?.collect())),
        _ => Err(function_error(format!(
            "The '{name}' filter can only be applied to a list."
        ))),
    }
}

/// Kestra's `chunk(size)`: the list cut into lists of `size` items, the last one shorter.
pub(super) fn chunk(v: &Value, size: Option<Value>, cap: Cap) -> Result<Value, Error> {
    let size = size
        .filter(|s| !s.is_none() && !s.is_undefined())
        .ok_or_else(|| function_error("The 'chunk' filter expects an argument 'size'."))?;
    let size = size
        .as_i64()
        .and_then(|n| usize::try_from(n).ok())
        .filter(|n| *n > 0)
        .ok_or_else(|| function_error("The 'chunk' filter expects a 'size' of at least 1."))?;
    let Some(items) = list_items(v, "chunk")? else {
        return Ok(Value::from(()));
    };
    // Each chunk adds its brackets and a comma to the list's JSON text.
    cap.check(
        cap.json(v)?
            .len()
            .checked_add(items.len().div_ceil(size).saturating_mul(3)),
    )?;
    Ok(items
        .chunks(size)
        .map(|chunk| Value::from(chunk.to_vec()))
        .collect())
}

/// Kestra's `flatten`: the items of the lists in a list spliced in, one level deep.
pub(super) fn flatten(v: Value) -> Result<Value, Error> {
    let Some(items) = list_items(&v, "flatten")? else {
        return Ok(Value::from(()));
    };
    let mut out = Vec::new();
    for item in items {
        if item.kind() == ValueKind::Seq {
            out.extend(item.try_iter()?);
        } else {
            out.push(item);
        }
    }
    Ok(Value::from(out))
}

/// Pebble's `abs`: the absolute value of a number.
pub(super) fn abs(v: Value) -> Result<Value, Error> {
    if let Some(n) = v.as_i64().filter(|_| v.is_integer()) {
        return n
            .checked_abs()
            .map(Value::from)
            .ok_or_else(|| function_error("The 'abs' filter overflowed."));
    }
    match f64::try_from(v.clone()) {
        Ok(f) if v.is_number() => Ok(Value::from(f.abs())),
        _ if v.is_none() => Ok(v),
        _ => Err(function_error("The 'abs' filter expects a number.")),
    }
}

/// Pebble's `reverse`: a list's items in reverse order.
pub(super) fn reverse(v: Value) -> Result<Value, Error> {
    let Some(mut items) = list_items(&v, "reverse")? else {
        return Ok(Value::from(()));
    };
    items.reverse();
    Ok(Value::from(items))
}

/// Pebble's `sort` and `rsort` (`descending`): a list of numbers or of strings, sorted. Java
/// cannot compare a number with a string: neither can kestrel.
pub(super) fn sort(v: &Value, name: &str, descending: bool) -> Result<Value, Error> {
    let Some(mut items) = list_items(v, name)? else {
        return Ok(Value::from(()));
    };
    let kinds = |kind: ValueKind| items.iter().all(|i| i.kind() == kind);
    if !(kinds(ValueKind::Number) || kinds(ValueKind::String)) {
        return Err(function_error(format!(
            "The '{name}' filter sorts a list of numbers or a list of strings."
        )));
    }
    items.sort();
    if descending {
        items.reverse();
    }
    Ok(Value::from(items))
}

/// Pebble's `slice(fromIndex=0, toIndex=length)`: part of a list or a string, `toIndex`
/// excluded; indices out of bounds are an error, as in Pebble.
pub(super) fn slice(v: &Value, from: Option<i64>, to: Option<i64>) -> Result<Value, Error> {
    let chars: Option<Vec<char>> = v.as_str().map(|s| s.chars().collect());
    let len = match &chars {
        Some(chars) => chars.len(),
        None => match v.kind() {
            ValueKind::Seq => v.len().unwrap_or(0),
            ValueKind::None => return Ok(v.clone()),
            _ => {
                return Err(function_error(
                    "The 'slice' filter expects a list or a string.",
                ));
            }
        },
    };
    let index = |i: Option<i64>, default: usize| match i {
        None => Some(default),
        Some(i) => usize::try_from(i).ok(),
    };
    let (from, to) = match (index(from, 0), index(to, len)) {
        (Some(from), Some(to)) if from <= to && to <= len => (from, to),
        _ => {
            return Err(function_error(format!(
                "The 'slice' filter expects 0 <= fromIndex <= toIndex <= {len}."
            )));
        }
    };
    Ok(match chars {
        Some(chars) => Value::from(chars[from..to].iter().collect::<String>()),
        None => v.try_iter()?.skip(from).take(to - from).collect(),
    })
}

/// Pebble's `merge(items)`: two lists one after the other, or two maps (the second's entries
/// winning).
pub(super) fn merge(v: &Value, items: &Value, cap: Cap) -> Result<Value, Error> {
    // The result is at most the two inputs side by side.
    cap.check(cap.json(v)?.len().checked_add(cap.json(items)?.len()))?;
    match (v.kind(), items.kind()) {
        (ValueKind::Seq, ValueKind::Seq) => Ok(v.try_iter()?.chain(items.try_iter()?).collect()),
        (ValueKind::Map, ValueKind::Map) => {
            let mut merged: Vec<(Value, Value)> = Vec::new();
            for map in [v, items] {
                for key in map.try_iter()? {
                    let item = map.get_item(&key)?;
                    match merged.iter_mut().find(|(k, _)| *k == key) {
                        Some(entry) => entry.1 = item,
                        None => merged.push((key, item)),
                    }
                }
            }
            Ok(Value::from_iter(merged))
        }
        _ => Err(function_error(
            "The 'merge' filter merges two lists or two maps.",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emptiness_follows_pebble() {
        assert!(is_empty(Value::from("  ")));
        assert!(is_empty(Value::UNDEFINED));
        assert!(is_empty(Value::from(Vec::<i32>::new())));
        assert!(!is_empty(Value::from(0)));
    }

    #[test]
    fn first_and_last_of_strings_and_lists() {
        assert_eq!(first(Value::from("héllo")).unwrap(), Value::from("h"));
        assert_eq!(last(Value::from(vec![1, 2, 3])).unwrap(), Value::from(3));
        assert!(first(Value::from(3)).is_err());
    }

    #[test]
    fn keys_of_a_list_are_its_indices_and_chunks_are_cut_in_order() {
        let list = Value::from(vec![1, 2, 3]);
        assert_eq!(keys(list.clone()).unwrap().to_string(), "[0, 1, 2]");
        let chunks = chunk(&list, Some(Value::from(2)), Cap::new(1 << 20)).unwrap();
        assert_eq!(chunks.to_string(), "[[1, 2], [3]]");
        assert!(chunk(&list, Some(Value::from(0)), Cap::new(1 << 20)).is_err());
        assert!(chunk(&Value::from(1), Some(Value::from(2)), Cap::new(1 << 20)).is_err());
    }

    #[test]
    fn pebbles_list_filters() {
        let list = Value::from(vec![3, 1, 2]);
        assert_eq!(sort(&list, "sort", false).unwrap().to_string(), "[1, 2, 3]");
        assert_eq!(sort(&list, "rsort", true).unwrap().to_string(), "[3, 2, 1]");
        assert!(
            sort(
                &Value::from_serialize(serde_json::json!([1, "a"])),
                "sort",
                false
            )
            .is_err()
        );
        assert_eq!(reverse(list.clone()).unwrap().to_string(), "[2, 1, 3]");
        assert_eq!(slice(&list, Some(1), None).unwrap().to_string(), "[1, 2]");
        assert_eq!(
            slice(&Value::from("héllo"), Some(1), Some(3)).unwrap(),
            Value::from("él")
        );
        assert!(slice(&list, Some(2), Some(5)).is_err());
        assert_eq!(abs(Value::from(-4)).unwrap(), Value::from(4));
        let merged = merge(&list, &Value::from(vec![4]), Cap::new(1 << 20)).unwrap();
        assert_eq!(merged.to_string(), "[3, 1, 2, 4]");
    }

    #[test]
    fn length_counts_characters() {
        assert_eq!(length(Value::from("héllo")).unwrap(), 5);
        assert_eq!(length(Value::from(())).unwrap(), 0);
    }
}
