//! A task's `retry`, Kestra's shape: `constant`, `exponential` or `random` delays between
//! attempts, bounded by `maxAttempts` (or the older `maxAttempt`) and `maxDuration`.

use crate::context::{Ctx, Props};
use crate::duration::parse_iso8601;
use crate::yaml::Yaml;
use serde_json::Value;
use std::time::Duration;

/// How a failed task run is tried again.
#[derive(Debug, Clone, PartialEq)]
pub struct Retry {
    /// The delay before each new attempt.
    pub backoff: Backoff,
    /// `maxAttempts`: attempts in all, the first included.
    pub max_attempts: Option<u32>,
    /// `maxDuration`: no attempt starts later than this after the first one started.
    pub max_duration: Option<Duration>,
    /// `warningOnRetry`: a task run that succeeds after a retry ends in WARNING.
    pub warning_on_retry: bool,
    /// `behavior: CREATE_NEW_EXECUTION`: a failed task run ends its execution RETRIED and a
    /// new execution of the flow runs in its place, up to the bounds, instead of a new
    /// attempt of the task run (`RETRY_FAILED_TASK`, the default).
    pub new_execution: bool,
}

/// The delays between attempts.
#[derive(Debug, Clone, PartialEq)]
pub enum Backoff {
    /// `type: constant`: `interval` each time.
    Constant {
        /// `interval`.
        interval: Duration,
    },
    /// `type: exponential`: `interval × delayFactor^(n-1)` before attempt n+1, at most
    /// `maxInterval`.
    Exponential {
        /// `interval`.
        interval: Duration,
        /// `maxInterval`.
        max_interval: Duration,
        /// `delayFactor`, default 2.
        delay_factor: f64,
    },
    /// `type: random`: between `minInterval` and `maxInterval`.
    Random {
        /// `minInterval`.
        min_interval: Duration,
        /// `maxInterval`.
        max_interval: Duration,
    },
}

/// Attempts in all when neither `maxAttempts` nor `maxDuration` bounds a retry: the default of
/// the retry library Kestra builds its policies with (Failsafe).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;

const TYPES: [&str; 3] = ["constant", "exponential", "random"];
const COMMON: &[&str] = &[
    "type",
    "maxAttempts",
    "maxAttempt",
    "maxDuration",
    "warningOnRetry",
    "behavior",
];

impl Retry {
    /// The retry a task's `retry` property describes (as [`TaskCommon::retry`] keeps it), if
    /// it is one; parsing a flow checked it.
    ///
    /// [`TaskCommon::retry`]: crate::TaskCommon::retry
    pub fn from_json(value: &Value) -> Option<Retry> {
        let duration = |key: &str| value.get(key).and_then(as_duration);
        let backoff = match value.get("type")?.as_str()? {
            "constant" => Backoff::Constant {
                interval: duration("interval")?,
            },
            "exponential" => Backoff::Exponential {
                interval: duration("interval")?,
                max_interval: duration("maxInterval")?,
                delay_factor: value.get("delayFactor").map_or(Some(2.0), as_factor)?,
            },
            "random" => Backoff::Random {
                min_interval: duration("minInterval")?,
                max_interval: duration("maxInterval")?,
            },
            _ => return None,
        };
        let attempts = value.get("maxAttempts").or_else(|| value.get("maxAttempt"));
        Some(Retry {
            backoff,
            max_attempts: match attempts {
                Some(count) => Some(as_attempts(count)?),
                None => None,
            },
            max_duration: match value.get("maxDuration") {
                Some(text) => Some(as_duration(text)?),
                None => None,
            },
            warning_on_retry: value
                .get("warningOnRetry")
                .is_some_and(|flag| flag == true || flag == "true"),
            new_execution: value
                .get("behavior")
                .is_some_and(|behavior| behavior == "CREATE_NEW_EXECUTION"),
        })
    }

    /// The delay before the attempt after `attempts_done` attempts; `unit` (in `[0, 1)`)
    /// places a random delay within its range.
    pub fn delay(&self, attempts_done: u32, unit: f64) -> Duration {
        match &self.backoff {
            Backoff::Constant { interval } => *interval,
            Backoff::Exponential {
                interval,
                max_interval,
                delay_factor,
            } => {
                let exponent = i32::try_from(attempts_done.saturating_sub(1)).unwrap_or(i32::MAX);
                let seconds = interval.as_secs_f64() * delay_factor.powi(exponent);
                // An overflow to infinity (or a NaN from a zero interval) lands on the cap.
                if seconds.is_finite() && seconds < max_interval.as_secs_f64() {
                    Duration::from_secs_f64(seconds)
                } else {
                    *max_interval
                }
            }
            Backoff::Random {
                min_interval,
                max_interval,
            } => {
                let span = max_interval.saturating_sub(*min_interval);
                *min_interval + span.mul_f64(unit.clamp(0.0, 1.0))
            }
        }
    }

    /// Whether another attempt may start after `attempts_done` attempts, `elapsed` after the
    /// first one started, once `delay` has passed.
    pub fn allows(&self, attempts_done: u32, elapsed: Duration, delay: Duration) -> bool {
        let max_attempts = match (self.max_attempts, self.max_duration) {
            (Some(max), _) => Some(max),
            (None, Some(_)) => None,
            (None, None) => Some(DEFAULT_MAX_ATTEMPTS),
        };
        let attempts_left = max_attempts.is_none_or(|max| attempts_done < max);
        let in_time = self
            .max_duration
            .is_none_or(|max| elapsed.saturating_add(delay) <= max);
        attempts_left && in_time
    }
}

/// Checks a task's `retry` map where it is written, recording each problem; Kestra's class
/// names in messages about unknown properties.
pub(crate) fn check_retry(ctx: &mut Ctx<'_>, task: &Props<'_>) {
    // A retry that is not a map is reported with the other common properties.
    let Some(node) = task
        .get("retry")
        .filter(|node| matches!(node.value, Yaml::Map(_)))
    else {
        return;
    };
    let field = task.field("retry");
    let Some(props) = Props::open(ctx, node, field.clone()) else {
        return;
    };
    let Some(kind) = props.choice(ctx, "type", &TYPES, |name| name) else {
        if props.get("type").is_none() {
            props.missing(ctx, "type");
        }
        return;
    };
    let (class, own): (&str, &[&str]) = match kind {
        "constant" => ("Constant", &["interval"]),
        "exponential" => ("Exponential", &["interval", "maxInterval", "delayFactor"]),
        _ => ("Random", &["minInterval", "maxInterval"]),
    };
    let class = format!("io.kestra.core.models.tasks.retrys.{class}");
    props.reject_unknown(ctx, &class, &[COMMON, own]);
    for key in own.iter().copied().filter(|key| key.ends_with("nterval")) {
        if props.get(key).is_none() {
            props.missing(ctx, key);
        }
    }
    for key in ["interval", "minInterval", "maxInterval", "maxDuration"] {
        check_with(
            ctx,
            &props,
            key,
            "must be an ISO-8601 duration such as PT30S",
            as_duration,
        );
    }
    for key in ["maxAttempts", "maxAttempt"] {
        check_with(
            ctx,
            &props,
            key,
            "must be greater than or equal to 1",
            as_attempts,
        );
    }
    check_with(ctx, &props, "delayFactor", "must be a number", as_factor);
    props.flag(ctx, "warningOnRetry");
    props.choice(
        ctx,
        "behavior",
        &["RETRY_FAILED_TASK", "CREATE_NEW_EXECUTION"],
        |name| name,
    );
    if let Some(retry) = Retry::from_json(&node.to_json()) {
        check_bounds(ctx, &props, &field, &retry);
    }
}

/// Reports `<field>: <problem>` when the property is there but `read` cannot read it.
fn check_with<T>(
    ctx: &mut Ctx<'_>,
    props: &Props<'_>,
    key: &str,
    problem: &str,
    read: fn(&Value) -> Option<T>,
) {
    if let Some(node) = props.get(key)
        && read(&node.to_json()).is_none()
    {
        let field = props.field(key);
        ctx.report(node, format!("{field}: {problem}"));
    }
}

/// Kestra's checks between intervals and `maxDuration`, reported at the retry.
fn check_bounds(ctx: &mut Ctx<'_>, props: &Props<'_>, field: &str, retry: &Retry) {
    let (low_name, low, high) = match retry.backoff {
        Backoff::Constant { interval } => ("interval", interval, None),
        Backoff::Exponential {
            interval,
            max_interval,
            ..
        } => ("interval", interval, Some(("maxInterval", max_interval))),
        Backoff::Random {
            min_interval,
            max_interval,
        } => (
            "minInterval",
            min_interval,
            Some(("maxInterval", max_interval)),
        ),
    };
    let mut problems = Vec::new();
    if let Some((high_name, high)) = high
        && low >= high
    {
        problems.push(format!("'{low_name}' must be less than '{high_name}'"));
    }
    if retry.max_duration.is_some_and(|max| max <= low) {
        problems.push(format!("'{low_name}' must be less than 'maxDuration'"));
    }
    for problem in problems {
        ctx.report(props.node, format!("{field}: {problem}"));
    }
}

fn as_duration(value: &Value) -> Option<Duration> {
    value.as_str().and_then(parse_iso8601)
}

fn as_attempts(value: &Value) -> Option<u32> {
    let count = match value {
        Value::Number(number) => number.as_u64(),
        Value::String(text) => text.parse().ok(),
        _ => None,
    };
    count
        .and_then(|n| u32::try_from(n).ok())
        .filter(|n| *n >= 1)
}

fn as_factor(value: &Value) -> Option<f64> {
    let factor = match value {
        Value::Number(number) => number.as_f64(),
        Value::String(text) => text.parse().ok(),
        _ => None,
    };
    factor.filter(|f| f.is_finite() && *f > 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_flow;
    use serde_json::json;

    fn retry(value: Value) -> Retry {
        Retry::from_json(&value).unwrap()
    }

    fn violations(retry: &str) -> Vec<String> {
        let source = format!(
            "id: f\nnamespace: dev\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.log.Log\n    message: x\n    retry:\n{retry}"
        );
        match parse_flow(&source) {
            Ok(_) => Vec::new(),
            Err(found) => found.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn constant_waits_the_same_each_time_up_to_max_attempts() {
        let constant = retry(json!({"type": "constant", "interval": "PT0.5S", "maxAttempts": 3}));
        assert_eq!(constant.delay(1, 0.0), Duration::from_millis(500));
        assert_eq!(constant.delay(5, 0.0), Duration::from_millis(500));
        let now = Duration::ZERO;
        assert!(constant.allows(1, now, constant.delay(1, 0.0)));
        assert!(constant.allows(2, now, constant.delay(2, 0.0)));
        assert!(!constant.allows(3, now, constant.delay(3, 0.0)));
    }

    #[test]
    fn the_older_max_attempt_spelling_counts_too() {
        let old = retry(json!({"type": "constant", "interval": "PT1S", "maxAttempt": 2}));
        assert_eq!(old.max_attempts, Some(2));
    }

    #[test]
    fn exponential_multiplies_by_the_factor_up_to_the_cap() {
        let exponential = retry(json!({
            "type": "exponential", "interval": "PT1S", "maxInterval": "PT5S", "delayFactor": 3
        }));
        let delays: Vec<u64> = (1..=4)
            .map(|n| exponential.delay(n, 0.0).as_secs())
            .collect();
        assert_eq!(delays, [1, 3, 5, 5]);
        let default_factor =
            retry(json!({"type": "exponential", "interval": "PT1S", "maxInterval": "PT1M"}));
        assert_eq!(default_factor.delay(3, 0.0), Duration::from_secs(4));
        assert_eq!(default_factor.delay(u32::MAX, 0.0), Duration::from_secs(60));
    }

    #[test]
    fn random_stays_within_its_range() {
        let random = retry(json!({"type": "random", "minInterval": "PT1S", "maxInterval": "PT3S"}));
        assert_eq!(random.delay(1, 0.0), Duration::from_secs(1));
        assert_eq!(random.delay(1, 0.5), Duration::from_secs(2));
    }

    #[test]
    fn max_duration_stops_an_attempt_that_would_start_too_late() {
        let bounded =
            retry(json!({"type": "constant", "interval": "PT1S", "maxDuration": "PT10S"}));
        assert!(bounded.allows(50, Duration::from_secs(8), Duration::from_secs(1)));
        assert!(!bounded.allows(2, Duration::from_secs(9500) / 1000, Duration::from_secs(1)));
    }

    #[test]
    fn without_bounds_three_attempts_in_all() {
        let unbounded = retry(json!({"type": "constant", "interval": "PT1S"}));
        assert!(unbounded.allows(2, Duration::ZERO, Duration::ZERO));
        assert!(!unbounded.allows(3, Duration::ZERO, Duration::ZERO));
    }

    #[test]
    fn a_good_retry_has_no_violation() {
        assert!(violations("      type: constant\n      interval: PT1S\n      maxAttempts: 2\n      warningOnRetry: true\n").is_empty());
        assert!(violations("      type: exponential\n      interval: PT1S\n      maxInterval: PT4S\n      delayFactor: 1.5\n      maxDuration: PT1M\n").is_empty());
    }

    #[test]
    fn bad_retries_are_reported_where_written() {
        assert_eq!(
            violations("      interval: PT1S\n"),
            ["8:7: tasks[0].retry.type: must not be null"]
        );
        assert_eq!(
            violations("      type: linear\n"),
            ["8:13: tasks[0].retry.type: must be one of [constant, exponential, random]"]
        );
        assert_eq!(
            violations(
                "      type: constant\n      interval: 1s\n      maxAttempts: 0\n      maxInterval: PT1S\n"
            ),
            [
                "9:17: tasks[0].retry.interval: must be an ISO-8601 duration such as PT30S",
                "10:20: tasks[0].retry.maxAttempts: must be greater than or equal to 1",
                "11:7: Unrecognized field \"maxInterval\" (class io.kestra.core.models.tasks.retrys.Constant), not marked as ignorable",
            ]
        );
        assert_eq!(
            violations("      type: exponential\n      interval: PT1S\n"),
            ["8:7: tasks[0].retry.maxInterval: must not be null"]
        );
    }

    #[test]
    fn intervals_must_fit_their_bounds() {
        assert_eq!(
            violations(
                "      type: exponential\n      interval: PT5S\n      maxInterval: PT1S\n      maxDuration: PT2S\n"
            ),
            [
                "8:7: tasks[0].retry: 'interval' must be less than 'maxInterval'",
                "8:7: tasks[0].retry: 'interval' must be less than 'maxDuration'",
            ]
        );
    }
}
