//! Five-field cron expressions, as Kestra's Schedule trigger reads them (Unix cron), and the
//! next time one fires in a time zone.

use chrono::{DateTime, Datelike, Days, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use std::fmt;

/// A parsed cron expression: `minute hour day-of-month month day-of-week`, each field `*`,
/// a number, a range `a-b`, a step `*/n` or `a-b/n`, or a comma list of those; months and
/// days of the week also by name (`JAN`, `MON`); day 7 is Sunday too. `@hourly`, `@daily`
/// (`@midnight`), `@weekly`, `@monthly` and `@yearly` (`@annually`) stand for the usual
/// expressions.
///
/// As in Unix cron, when both day fields are restricted a day matching either one fires.
#[derive(Clone, PartialEq, Eq)]
pub struct Cron {
    source: String,
    minutes: u64,
    hours: u32,
    days: u32,
    months: u16,
    weekdays: u8,
    /// Whether the day-of-month field is `*` (or `?`).
    any_day: bool,
    /// Whether the day-of-week field is `*` (or `?`).
    any_weekday: bool,
}

impl fmt::Debug for Cron {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Cron").field(&self.source).finish()
    }
}

impl fmt::Display for Cron {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// How far ahead a next fire time is looked for: long enough for any real schedule (the 29th
/// of February on a given weekday), short enough that one never matching ends the search.
const SEARCH_DAYS: u64 = 366 * 30;

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// One field's rules: its name for messages, its range, its names.
struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
    /// The first name's number.
    names_from: u32,
}

const FIELDS: [Field; 5] = [
    Field {
        name: "minute",
        min: 0,
        max: 59,
        names: &[],
        names_from: 0,
    },
    Field {
        name: "hour",
        min: 0,
        max: 23,
        names: &[],
        names_from: 0,
    },
    Field {
        name: "day of month",
        min: 1,
        max: 31,
        names: &[],
        names_from: 0,
    },
    Field {
        name: "month",
        min: 1,
        max: 12,
        names: &MONTHS,
        names_from: 1,
    },
    // 7 is Sunday as well as 0; it is folded onto 0 once parsed.
    Field {
        name: "day of week",
        min: 0,
        max: 7,
        names: &WEEKDAYS,
        names_from: 0,
    },
];

impl Cron {
    /// Parses an expression; the error says what is wrong, for a person.
    pub fn parse(expression: &str) -> Result<Cron, String> {
        let text = expression.trim();
        let expanded = match text.to_ascii_lowercase().as_str() {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            nickname if nickname.starts_with('@') => {
                return Err(format!("unknown nickname {text}"));
            }
            _ => text,
        };
        let parts: Vec<&str> = expanded.split_whitespace().collect();
        let [minute, hour, day, month, weekday] = parts[..] else {
            return Err(format!("expected 5 fields, found {}", parts.len()));
        };
        let [f_minute, f_hour, f_day, f_month, f_weekday] = &FIELDS;
        let weekdays = bits(weekday, f_weekday)?;
        Ok(Cron {
            source: text.to_owned(),
            minutes: bits(minute, f_minute)?,
            hours: narrow(bits(hour, f_hour)?),
            days: narrow(bits(day, f_day)?),
            months: narrow(bits(month, f_month)?),
            // Sunday is 0 and 7: both land on bit 0.
            weekdays: narrow((weekdays | (weekdays >> 7)) & 0x7f),
            any_day: matches!(day, "*" | "?"),
            any_weekday: matches!(weekday, "*" | "?"),
        })
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The first time strictly after `after` at which the expression fires, read in `zone`.
    /// A local time skipped by a daylight-saving change fires when the clocks have moved on
    /// (as Java's zoned times place it); one repeated fires once, the first time. `None` when
    /// the expression never fires (the 30th of February).
    pub fn next_after(&self, after: DateTime<Utc>, zone: Tz) -> Option<DateTime<Utc>> {
        let local = after.with_timezone(&zone).naive_local();
        let first_day = local.date();
        for offset in 0..SEARCH_DAYS {
            let date = first_day.checked_add_days(Days::new(offset))?;
            if !self.fires_on(date) {
                continue;
            }
            let found = self
                .times()
                .map(|time| NaiveDateTime::new(date, time))
                .filter_map(|naive| resolve(naive, zone))
                .find(|at| *at > after);
            if found.is_some() {
                return found;
            }
        }
        None
    }

    /// Whether the expression fires on `date` (day of month, month and day of week).
    fn fires_on(&self, date: NaiveDate) -> bool {
        let month = has(u64::from(self.months), date.month());
        let day = has(u64::from(self.days), date.day());
        let weekday = has(
            u64::from(self.weekdays),
            date.weekday().num_days_from_sunday(),
        );
        let day_matches = match (self.any_day, self.any_weekday) {
            (true, true) => true,
            (false, true) => day,
            (true, false) => weekday,
            (false, false) => day || weekday,
        };
        month && day_matches
    }

    /// The times of day the expression fires at, in order.
    fn times(&self) -> impl Iterator<Item = NaiveTime> + '_ {
        (0..24u32)
            .filter(|hour| has(u64::from(self.hours), *hour))
            .flat_map(move |hour| {
                (0..60u32)
                    .filter(|minute| has(self.minutes, *minute))
                    .filter_map(move |minute| NaiveTime::from_hms_opt(hour, minute, 0))
            })
    }
}

/// The instant a local time stands for in `zone`: the first of two in a repeated hour, and in
/// a skipped one, the same time read with the offset from before the change.
fn resolve(naive: NaiveDateTime, zone: Tz) -> Option<DateTime<Utc>> {
    if let Some(at) = zone.from_local_datetime(&naive).earliest() {
        return Some(at.with_timezone(&Utc));
    }
    let before = naive.checked_sub_days(Days::new(1))?;
    let offset = zone.offset_from_local_datetime(&before).earliest()?;
    let utc = naive - chrono::offset::Offset::fix(&offset);
    Some(Utc.from_utc_datetime(&utc))
}

fn has(set: u64, n: u32) -> bool {
    n < 64 && set & (1 << n) != 0
}

/// A field's bits into a narrower integer; the field's range guarantees it fits.
fn narrow<T: TryFrom<u64> + Default>(set: u64) -> T {
    T::try_from(set).unwrap_or_default()
}

/// The set of values one field allows, as bits.
fn bits(text: &str, field: &Field) -> Result<u64, String> {
    let mut set = 0u64;
    for item in text.split(',') {
        set |= item_bits(item, field)
            .map_err(|problem| format!("{} field '{text}': {problem}", field.name))?;
    }
    Ok(set)
}

fn item_bits(item: &str, field: &Field) -> Result<u64, String> {
    let (range, step) = match item.split_once('/') {
        Some((range, step)) => {
            let step: u32 = step
                .parse()
                .ok()
                .filter(|step| *step > 0)
                .ok_or_else(|| format!("'{step}' is not a step (a number above 0)"))?;
            (range, step)
        }
        None => (item, 1),
    };
    let (low, high) = match range {
        "*" | "?" => (field.min, field.max),
        _ => match range.split_once('-') {
            Some((low, high)) => (value(low, field)?, value(high, field)?),
            // `5/15` is from 5 to the end, by 15.
            None if step > 1 => (value(range, field)?, field.max),
            None => {
                let single = value(range, field)?;
                (single, single)
            }
        },
    };
    if low > high {
        return Err(format!("the range {low}-{high} is backwards"));
    }
    Ok((low..=high)
        .step_by(usize::try_from(step).unwrap_or(usize::MAX))
        .fold(0, |set, n| set | (1 << n)))
}

/// One value of a field: a number within its range, or a name.
fn value(text: &str, field: &Field) -> Result<u32, String> {
    let upper = text.to_ascii_uppercase();
    let named = field
        .names
        .iter()
        .zip(field.names_from..)
        .find(|(name, _)| **name == upper)
        .map(|(_, number)| number);
    let number = named.or_else(|| text.parse().ok());
    number
        .filter(|n| (field.min..=field.max).contains(n))
        .ok_or_else(|| {
            format!(
                "'{text}' is not a value from {} to {}",
                field.min, field.max
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    /// Asserts each `(cron, after, zone, fires)`: the expression in that zone next fires at
    /// `fires`, strictly after `after`. The tables of cases keep one case a line
    /// (`rustfmt::skip`).
    fn assert_fires(cases: &[(&str, &str, &str, &str)]) {
        for &(cron, after, zone, fires) in cases {
            let zone: Tz = zone.parse().unwrap();
            let next = Cron::parse(cron).unwrap().next_after(at(after), zone);
            let next = next.unwrap().to_rfc3339();
            assert_eq!(next, fires, "{cron} after {after} in {zone}");
        }
    }

    #[test]
    #[rustfmt::skip]
    fn fires_at_the_next_matching_minute_strictly_after() {
        assert_fires(&[
            ("*/15 * * * *", "2024-01-01T10:07:30Z", "UTC", "2024-01-01T10:15:00+00:00"),
            ("*/15 * * * *", "2024-01-01T10:15:00Z", "UTC", "2024-01-01T10:30:00+00:00"),
            ("0 9 * * MON-FRI", "2024-01-05T09:00:00Z", "UTC", "2024-01-08T09:00:00+00:00"),
            ("0 0 1 JAN *", "2024-06-01T00:00:00Z", "UTC", "2025-01-01T00:00:00+00:00"),
            ("0 0 29 2 *", "2024-03-01T00:00:00Z", "UTC", "2028-02-29T00:00:00+00:00"),
        ]);
    }

    #[test]
    fn nicknames_stand_for_their_expressions() {
        let after = "2024-01-01T10:07:00Z";
        assert_fires(&[
            ("@hourly", after, "UTC", "2024-01-01T11:00:00+00:00"),
            ("@daily", after, "UTC", "2024-01-02T00:00:00+00:00"),
            ("@weekly", after, "UTC", "2024-01-07T00:00:00+00:00"),
            ("@monthly", after, "UTC", "2024-02-01T00:00:00+00:00"),
            ("@yearly", after, "UTC", "2025-01-01T00:00:00+00:00"),
        ]);
    }

    #[test]
    #[rustfmt::skip]
    fn the_time_zone_decides_the_instant() {
        // 09:00 in Paris is 08:00 UTC in winter and 07:00 UTC in summer.
        assert_fires(&[
            ("0 9 * * *", "2024-03-30T00:00:00Z", "Europe/Paris", "2024-03-30T08:00:00+00:00"),
            ("0 9 * * *", "2024-03-30T08:00:00Z", "Europe/Paris", "2024-03-31T07:00:00+00:00"),
            ("0 0 * * *", "2024-01-01T00:00:00Z", "Asia/Tokyo", "2024-01-01T15:00:00+00:00"),
        ]);
    }

    #[test]
    #[rustfmt::skip]
    fn daylight_saving_gaps_fire_late_and_repeats_fire_once() {
        assert_fires(&[
            // 02:30 does not exist in Paris on 2024-03-31: it fires at 03:30 local (01:30 UTC).
            ("30 2 * * *", "2024-03-31T00:00:00Z", "Europe/Paris", "2024-03-31T01:30:00+00:00"),
            // 02:30 happens twice on 2024-10-27: only the first (00:30 UTC) fires.
            ("30 2 * * *", "2024-10-27T00:00:00Z", "Europe/Paris", "2024-10-27T00:30:00+00:00"),
            ("30 2 * * *", "2024-10-27T00:30:00Z", "Europe/Paris", "2024-10-28T01:30:00+00:00"),
        ]);
    }

    #[test]
    #[rustfmt::skip]
    fn both_day_fields_restricted_means_either() {
        // The 13th, or any Friday.
        assert_fires(&[
            ("0 0 13 * FRI", "2024-09-01T00:00:00Z", "UTC", "2024-09-06T00:00:00+00:00"),
            ("0 0 13 * 5", "2024-09-07T00:00:00Z", "UTC", "2024-09-13T00:00:00+00:00"),
        ]);
    }

    #[test]
    fn lists_ranges_steps_and_sunday_as_seven() {
        let cron = Cron::parse("0,30 8-10/2 * * 7").unwrap();
        let zone = chrono_tz::UTC;
        let mut times = Vec::new();
        let mut after = at("2024-01-06T00:00:00Z");
        for _ in 0..5 {
            after = cron.next_after(after, zone).unwrap();
            times.push(after.format("%a %H:%M").to_string());
        }
        assert_eq!(
            times,
            [
                "Sun 08:00",
                "Sun 08:30",
                "Sun 10:00",
                "Sun 10:30",
                "Sun 08:00"
            ]
        );
    }

    #[test]
    fn a_date_that_never_comes_has_no_next_time() {
        let cron = Cron::parse("0 0 30 2 *").unwrap();
        assert_eq!(
            cron.next_after(at("2024-01-01T00:00:00Z"), chrono_tz::UTC),
            None
        );
    }

    #[test]
    fn bad_expressions_say_what_is_wrong() {
        let error = |text: &str| Cron::parse(text).unwrap_err();
        assert_eq!(error("* * * *"), "expected 5 fields, found 4");
        assert_eq!(
            error("60 * * * *"),
            "minute field '60': '60' is not a value from 0 to 59"
        );
        assert_eq!(
            error("* * * FOO *"),
            "month field 'FOO': 'FOO' is not a value from 1 to 12"
        );
        assert_eq!(
            error("*/0 * * * *"),
            "minute field '*/0': '0' is not a step (a number above 0)"
        );
        assert_eq!(
            error("* 5-2 * * *"),
            "hour field '5-2': the range 5-2 is backwards"
        );
        assert_eq!(error("@reboot"), "unknown nickname @reboot");
        assert_eq!(
            error("* * * * L"),
            "day of week field 'L': 'L' is not a value from 0 to 7"
        );
    }
}
