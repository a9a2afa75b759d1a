//! A text read as an input type: the value a given input (or a typed output, or a bound such
//! as `min`) stands for, checked against the input's rules. Shared by validation, which reads
//! the bounds a flow writes, and the engine, which reads the values an execution is given.
//!
//! Messages never quote the value read: it may be a secret typed into the wrong field, and
//! the message reaches the API, the UI and the log. They quote the flow's own rules
//! (`it must match the values `[a, b]``) in Kestra's words.

use crate::duration::parse_iso8601;
use crate::{InputRules, InputType};
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, SecondsFormat, Timelike, Utc};
use regex::{Regex, RegexBuilder};
use serde_json::{Number, Value};
use std::time::Duration;

/// The largest compiled `validator` accepted: a hostile pattern is refused, never built.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Kestra's pattern of an email address.
const EMAIL: &str = "^$|^[a-zA-Z0-9_!#$%&’*+/=?`{|}~^.-]+@[a-zA-Z0-9.-]+$";

/// Kestra's pattern of a URI input.
const URI: &str = r"^[a-z]+://(?:www\.)?[-a-zA-Z0-9@:%._+~#=]{1,256}\.[a-zA-Z0-9()]{1,6}\b(?:[-a-zA-Z0-9()@:%_+.~#?&/=]*)$";

/// `pattern` compiled to match a whole text, as Java's `Pattern.matches` does.
pub(crate) fn whole_match(pattern: &str) -> Result<Regex, String> {
    RegexBuilder::new(&format!("^(?:{pattern})$"))
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|error| {
            // The parser's message quotes the pattern over several lines: its last line says
            // what is wrong.
            let text = error.to_string();
            let why = text.lines().last().unwrap_or_default();
            let why = why.strip_prefix("error: ").unwrap_or(why);
            format!("not a regular expression kestrel reads ({why})")
        })
}

/// `text` read as `kind`, then checked against `rules`.
pub fn read_value(kind: InputType, rules: &InputRules, text: &str) -> Result<Value, String> {
    let value = parse(kind, rules, text)?;
    check(kind, rules, &value)?;
    Ok(value)
}

fn parse(kind: InputType, rules: &InputRules, text: &str) -> Result<Value, String> {
    let trimmed = text.trim();
    match kind {
        InputType::String
        | InputType::Secret
        | InputType::Enum
        | InputType::Select
        | InputType::Email => Ok(Value::String(text.to_owned())),
        InputType::Int => trimmed
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| "expected an INT".to_owned()),
        InputType::Float => trimmed
            .parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| "expected a FLOAT".to_owned()),
        InputType::Boolean => match trimmed.to_ascii_lowercase().as_str() {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err("expected a BOOLEAN (true or false)".into()),
        },
        InputType::DateTime => datetime(trimmed).map(Value::String),
        InputType::Date => date(trimmed).map(Value::String),
        InputType::Time => time(trimmed).map(Value::String),
        InputType::Duration => duration(trimmed).map(|d| Value::String(java_duration(d))),
        InputType::Json => serde_json::from_str(text).map_err(|e| format!("expected JSON: {e}")),
        InputType::Yaml => crate::yaml::load(text)
            .map(|node| node.to_json())
            .map_err(|violation| format!("expected YAML: {}", violation.message)),
        InputType::File if trimmed.starts_with("kestra:///") => {
            Ok(Value::String(trimmed.to_owned()))
        }
        InputType::File => Err("expected a file: its kestra:/// URI, once stored".into()),
        InputType::Uri => {
            let pattern = whole_match(URI)?;
            if pattern.is_match(trimmed) {
                Ok(Value::String(trimmed.to_owned()))
            } else {
                Err("expected a URI (such as https://example.com/path)".into())
            }
        }
        InputType::Array | InputType::Multiselect => list(kind, rules, text),
    }
}

/// ARRAY and MULTISELECT: a JSON list, each item read as the `itemType` (texts for
/// MULTISELECT without one).
fn list(kind: InputType, rules: &InputRules, text: &str) -> Result<Value, String> {
    let Ok(Value::Array(items)) = serde_json::from_str::<Value>(text) else {
        return Err(format!(
            "expected a JSON list (such as [\"a\", \"b\"]) for {kind}"
        ));
    };
    let item_type = rules.item_type.unwrap_or(InputType::String);
    items
        .into_iter()
        .enumerate()
        .map(|(index, item)| {
            let text = match item {
                Value::String(text) => text,
                other => other.to_string(),
            };
            read_value(item_type, &InputRules::default(), &text).map_err(|error| {
                format!("Unable to parse array element {index} as `{item_type}`: {error}")
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Value::Array)
}

fn check(kind: InputType, rules: &InputRules, value: &Value) -> Result<(), String> {
    match (kind, value) {
        (InputType::String, Value::String(text)) => match &rules.validator {
            Some(validator) if !whole_match(validator)?.is_match(text) => {
                Err(format!("it must match the pattern `{validator}`"))
            }
            _ => Ok(()),
        },
        (InputType::Email, Value::String(text)) if !whole_match(EMAIL)?.is_match(text) => {
            Err("The input must be a valid email".into())
        }
        (InputType::Enum, Value::String(text)) => one_of(rules, text, false),
        (InputType::Select, Value::String(text)) => one_of(rules, text, rules.allow_custom_value),
        (InputType::Multiselect, Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .try_for_each(|text| one_of(rules, text, rules.allow_custom_value)),
        (InputType::Int | InputType::Float, Value::Number(number)) => {
            let number = number.as_f64().unwrap_or_default();
            let bound = |b: &Option<Value>| b.as_ref().and_then(Value::as_f64);
            let bounds = (bound(&rules.min), bound(&rules.max));
            within(number, bounds, |b| b.to_string(), "it")
        }
        (InputType::Duration, Value::String(text)) => {
            let length = duration(text)?;
            let bound =
                |b: &Option<Value>| b.as_ref().and_then(Value::as_str).and_then(parse_iso8601);
            let bounds = (bound(&rules.min), bound(&rules.max));
            within(length, bounds, |b| java_duration(*b), "It")
        }
        (InputType::DateTime | InputType::Date | InputType::Time, Value::String(text)) => {
            in_order(kind, rules, text)
        }
        _ => Ok(()),
    }
}

fn one_of(rules: &InputRules, text: &str, custom: bool) -> Result<(), String> {
    let values = rules.values.as_deref().unwrap_or_default();
    if custom || values.iter().any(|v| v == text) {
        Ok(())
    } else {
        Err(format!(
            "it must match the values `[{}]`",
            values.join(", ")
        ))
    }
}

/// Kestra's "more than" and "less than" (`It` for durations, as Kestra writes it), the
/// bound shown by `show`.
fn within<T: PartialOrd>(
    value: T,
    (min, max): (Option<T>, Option<T>),
    show: impl Fn(&T) -> String,
    it: &str,
) -> Result<(), String> {
    if let Some(min) = min.filter(|min| value < *min) {
        return Err(format!("{it} must be more than `{}`", show(&min)));
    }
    if let Some(max) = max.filter(|max| value > *max) {
        return Err(format!("{it} must be less than `{}`", show(&max)));
    }
    Ok(())
}

/// DATETIME, DATE and TIME within `after` and `before`, compared as points in time.
fn in_order(kind: InputType, rules: &InputRules, text: &str) -> Result<(), String> {
    let at = |text: &str| moment(kind, text);
    let value = at(text);
    if let Some(after) = &rules.after
        && value < at(after)
    {
        return Err(format!("it must be after `{after}`"));
    }
    if let Some(before) = &rules.before
        && value > at(before)
    {
        return Err(format!("it must be before `{before}`"));
    }
    Ok(())
}

/// A DATETIME, DATE or TIME as a point that orders as time does (a date at its midnight, a
/// time on the first day of 1970); `None` for a text that is none of them.
fn moment(kind: InputType, text: &str) -> Option<NaiveDateTime> {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1)?;
    match kind {
        InputType::DateTime => DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|at| at.naive_utc()),
        InputType::Date => parse_date(text).map(|day| day.and_time(NaiveTime::MIN)),
        InputType::Time => parse_time(text).map(|time| epoch.and_time(time)),
        _ => None,
    }
}

/// An instant, as Java's `Instant.toString` writes it (UTC, `Z`, fractions only when any).
fn datetime(text: &str) -> Result<String, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|at| {
            at.with_timezone(&Utc)
                .to_rfc3339_opts(SecondsFormat::AutoSi, true)
        })
        .map_err(|_| "expected a DATETIME (ISO-8601, such as 2024-05-01T10:00:00Z)".into())
}

fn date(text: &str) -> Result<String, String> {
    parse_date(text)
        .map(|day| day.format("%Y-%m-%d").to_string())
        .ok_or_else(|| "expected a DATE (such as 2024-05-01)".into())
}

fn parse_date(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

fn parse_time(text: &str) -> Option<NaiveTime> {
    NaiveTime::parse_from_str(text, "%H:%M:%S%.f")
        .or_else(|_| NaiveTime::parse_from_str(text, "%H:%M"))
        .ok()
}

/// A time of day, as Java's `LocalTime.toString` writes it (`10:15`, `10:15:30`).
fn time(text: &str) -> Result<String, String> {
    let read = parse_time(text).ok_or_else(|| "expected a TIME (such as 10:15:30)".to_owned())?;
    Ok(if read.second() == 0 && read.nanosecond() == 0 {
        read.format("%H:%M").to_string()
    } else if read.nanosecond() == 0 {
        read.format("%H:%M:%S").to_string()
    } else {
        read.format("%H:%M:%S%.f").to_string()
    })
}

fn duration(text: &str) -> Result<Duration, String> {
    parse_iso8601(text).ok_or_else(|| "expected a DURATION (ISO-8601, such as PT5M)".into())
}

/// `duration` as Java's `Duration.toString()` writes it (`PT5S`, `PT1M30S`, `PT0.5S`).
pub fn java_duration(duration: Duration) -> String {
    let seconds = duration.as_secs();
    let (hours, minutes, whole) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    let mut text = String::from("PT");
    if hours > 0 {
        text.push_str(&format!("{hours}H"));
    }
    if minutes > 0 {
        text.push_str(&format!("{minutes}M"));
    }
    let nanos = duration.subsec_nanos();
    if whole > 0 || nanos > 0 || text.len() == 2 {
        text.push_str(&whole.to_string());
        if nanos > 0 {
            let fraction = format!("{nanos:09}");
            text.push('.');
            text.push_str(fraction.trim_end_matches('0'));
        }
        text.push('S');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(kind: InputType, text: &str) -> Result<Value, String> {
        read_value(kind, &InputRules::default(), text)
    }

    fn with(kind: InputType, rules: InputRules, text: &str) -> Result<Value, String> {
        read_value(kind, &rules, text)
    }

    #[test]
    fn dates_times_and_durations_read_as_java_writes_them() {
        assert_eq!(
            read(InputType::DateTime, "2024-05-01T12:00:00.500+02:00"),
            Ok(json!("2024-05-01T10:00:00.500Z"))
        );
        assert_eq!(read(InputType::Date, "2024-05-01"), Ok(json!("2024-05-01")));
        assert_eq!(read(InputType::Time, "10:15:00"), Ok(json!("10:15")));
        assert_eq!(read(InputType::Time, "10:15:30"), Ok(json!("10:15:30")));
        assert_eq!(read(InputType::Duration, "PT90S"), Ok(json!("PT1M30S")));
        assert_eq!(java_duration(Duration::from_millis(500)), "PT0.5S");
        assert_eq!(java_duration(Duration::from_secs(3600)), "PT1H");
        assert_eq!(java_duration(Duration::ZERO), "PT0S");
        for (kind, text) in [
            (InputType::DateTime, "2024-05-01"),
            (InputType::Date, "01/05/2024"),
            (InputType::Time, "noon"),
            (InputType::Duration, "5 minutes"),
        ] {
            assert!(read(kind, text).is_err(), "{kind} {text}");
        }
    }

    #[test]
    fn choices_take_their_values_and_say_which_in_kestras_words() {
        let rules = || InputRules {
            values: Some(vec!["a".into(), "b".into()]),
            ..InputRules::default()
        };
        assert_eq!(with(InputType::Enum, rules(), "a"), Ok(json!("a")));
        assert_eq!(
            with(InputType::Enum, rules(), "secret-typed-here"),
            Err("it must match the values `[a, b]`".into())
        );
        let custom = InputRules {
            allow_custom_value: true,
            ..rules()
        };
        assert_eq!(with(InputType::Select, custom, "z"), Ok(json!("z")));
        assert_eq!(
            with(InputType::Multiselect, rules(), "[\"a\", \"b\"]"),
            Ok(json!(["a", "b"]))
        );
        assert!(with(InputType::Multiselect, rules(), "[\"c\"]").is_err());
        assert!(with(InputType::Multiselect, rules(), "a").is_err());
    }

    #[test]
    fn bounds_and_patterns_are_checked_without_showing_the_value() {
        let range = InputRules {
            min: Some(json!(1)),
            max: Some(json!(10)),
            ..InputRules::default()
        };
        assert_eq!(with(InputType::Int, range.clone(), "5"), Ok(json!(5)));
        assert_eq!(
            with(InputType::Int, range.clone(), "11"),
            Err("it must be less than `10`".into())
        );
        let durations = InputRules {
            min: Some(json!("PT1M")),
            ..InputRules::default()
        };
        assert_eq!(
            with(InputType::Duration, durations, "PT30S"),
            Err("It must be more than `PT1M`".into())
        );
        let pattern = InputRules {
            validator: Some("[a-z]+".into()),
            ..InputRules::default()
        };
        assert_eq!(
            with(InputType::String, pattern, "abc1"),
            Err("it must match the pattern `[a-z]+`".into())
        );
        let window = InputRules {
            after: Some("2024-01-01".into()),
            before: Some("2024-12-31".into()),
            ..InputRules::default()
        };
        assert_eq!(
            with(InputType::Date, window, "2025-01-01"),
            Err("it must be before `2024-12-31`".into())
        );
        let after_noon = InputRules {
            after: Some("2024-05-01T12:00:00Z".into()),
            ..InputRules::default()
        };
        assert!(
            with(
                InputType::DateTime,
                after_noon.clone(),
                "2024-05-01T12:00:00.500Z"
            )
            .is_ok()
        );
        assert_eq!(
            with(InputType::DateTime, after_noon, "2024-05-01T13:00:00+02:00"),
            Err("it must be after `2024-05-01T12:00:00Z`".into())
        );
        assert_eq!(
            read(InputType::Email, "not an email"),
            Err("The input must be a valid email".into())
        );
        assert_eq!(
            read(InputType::Email, "ada@example.com"),
            Ok(json!("ada@example.com"))
        );
        assert!(read(InputType::Uri, "https://kestra.io/docs").is_ok());
        assert!(read(InputType::Uri, "kestra").is_err());
        let stored = "kestra:///dev/f/executions/e/inputs/file/a.csv";
        assert_eq!(read(InputType::File, stored), Ok(json!(stored)));
        assert_eq!(
            read(InputType::File, "/home/ada/a.csv"),
            Err("expected a file: its kestra:/// URI, once stored".into())
        );
    }

    #[test]
    fn arrays_read_each_item_as_their_item_type_and_yaml_reads_as_json() {
        let ints = InputRules {
            item_type: Some(InputType::Int),
            ..InputRules::default()
        };
        assert_eq!(
            with(InputType::Array, ints.clone(), "[1, \"2\"]"),
            Ok(json!([1, 2]))
        );
        assert_eq!(
            with(InputType::Array, ints, "[1, \"x\"]"),
            Err("Unable to parse array element 1 as `INT`: expected an INT".into())
        );
        assert_eq!(
            read(InputType::Yaml, "a: 1\nb: [x]\n"),
            Ok(json!({"a": 1, "b": ["x"]}))
        );
    }

    #[test]
    fn a_hostile_validator_is_refused_not_built() {
        assert!(whole_match("(a{1000}){1000}").is_err());
        assert!(whole_match("(?=lookahead)").is_err());
    }
}
