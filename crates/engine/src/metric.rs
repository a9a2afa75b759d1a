//! Metrics a task run records (`::{"metrics": [...]}::` lines of a script, as in Kestra).

use serde_json::{Number, Value};
use std::collections::BTreeMap;
use std::fmt;

/// One measurement recorded by a task run, as the task gives it. Readers see it as a
/// [`ShownMetric`].
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    /// The metric's name (`rows`).
    pub name: String,
    /// What the value measures.
    pub kind: MetricKind,
    /// The value: a count, a duration in seconds, or a level.
    pub value: f64,
    /// Tags, by name.
    pub tags: BTreeMap<String, String>,
}

/// The kinds of metrics, as Kestra names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricKind {
    /// `counter`: a count added to the total.
    Counter,
    /// `timer`: a duration, in seconds.
    Timer,
    /// `gauge`: a level at one moment.
    Gauge,
}

impl MetricKind {
    /// The kind of that name as Kestra writes it (`counter`), if any.
    pub fn from_name(name: &str) -> Option<MetricKind> {
        [MetricKind::Counter, MetricKind::Timer, MetricKind::Gauge]
            .into_iter()
            .find(|kind| kind.as_str() == name)
    }

    /// The kind's name as Kestra writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricKind::Counter => "counter",
            MetricKind::Timer => "timer",
            MetricKind::Gauge => "gauge",
        }
    }
}

impl fmt::Display for MetricKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A metric as readers see it: its name and tags masked, its value the mask when it equals
/// a numeric secret.
#[derive(Debug, Clone, PartialEq)]
pub struct ShownMetric {
    /// The metric's name, masked.
    pub name: String,
    /// What the value measures.
    pub kind: MetricKind,
    /// The value, or the mask.
    pub value: MetricValue,
    /// Tags, by name, names and values masked.
    pub tags: BTreeMap<String, String>,
}

/// A metric's value as readers see it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MetricValue {
    /// The value recorded.
    Number(f64),
    /// The value equals a registered (numeric) secret: readers see the mask.
    Masked,
}

impl MetricValue {
    /// The value as JSON: a whole number without a fraction, or the mask (a string).
    pub fn to_json(self) -> Value {
        match self {
            MetricValue::Number(number) => number_json(number),
            MetricValue::Masked => Value::String(kestrel_secrets::MASK.to_owned()),
        }
    }
}

/// `number` as JSON, written as a reader would: `48213377`, not `48213377.0`, so that its
/// decimal text is the one a secret would be registered with.
pub(crate) fn number_json(number: f64) -> Value {
    // Whole numbers within ±2^53 are exact both as f64 and as i64.
    const EXACT: f64 = 9_007_199_254_740_992.0;
    if number.fract() == 0.0 && number.abs() <= EXACT {
        return Value::from(number as i64);
    }
    Number::from_f64(number).map_or(Value::Null, Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_named_as_in_kestra() {
        assert_eq!(MetricKind::from_name("timer"), Some(MetricKind::Timer));
        assert_eq!(MetricKind::from_name("Timer"), None);
        assert_eq!(MetricKind::Gauge.to_string(), "gauge");
    }

    #[test]
    fn whole_numbers_are_written_without_a_fraction() {
        assert_eq!(number_json(48_213_377.0), serde_json::json!(48_213_377));
        assert_eq!(number_json(1.5), serde_json::json!(1.5));
        assert_eq!(MetricValue::Masked.to_json(), serde_json::json!("******"));
    }
}
