//! Dates: Kestra's `date` and `dateAdd` filters and `now()`, with Java `DateTimeFormatter`
//! patterns (`yyyy-MM-dd'T'HH:mm:ss.SSSXXX`) and IANA time zones.
//!
//! An input date is an ISO-8601 string (with an offset, or local and then read in the requested
//! zone, or a date alone), epoch seconds as a number, or any string when `existingFormat`
//! gives its pattern. Output is formatted in `timeZone` (default UTC).

use super::to_text;
use crate::error::function_error;
use chrono::{
    DateTime, Datelike, Days, FixedOffset, Months, NaiveDate, NaiveDateTime, Offset, TimeDelta,
    TimeZone, Timelike, Utc,
};
use chrono_tz::Tz;
use minijinja::Error;
use minijinja::value::{Rest, Value};
use std::fmt::Write;

/// A time zone: a fixed offset (`UTC`, `+02:00`) or a named one (`Europe/Paris`).
#[derive(Clone, Copy)]
enum Zone {
    Fixed(FixedOffset),
    Named(Tz),
}

impl Zone {
    fn parse(name: Option<&str>) -> Result<Zone, Error> {
        let utc = FixedOffset::east_opt(0).map(Zone::Fixed);
        match name.map(str::trim) {
            None | Some("" | "UTC" | "Z" | "GMT") => {
                utc.ok_or_else(|| function_error("The UTC offset is unavailable."))
            }
            Some(name) => name
                .parse::<FixedOffset>()
                .map(Zone::Fixed)
                .or_else(|_| name.parse::<Tz>().map(Zone::Named))
                .map_err(|_| function_error(format!("Unknown time zone '{name}'."))),
        }
    }

    fn at(self, instant: DateTime<Utc>) -> DateTime<FixedOffset> {
        match self {
            Zone::Fixed(offset) => instant.with_timezone(&offset),
            Zone::Named(tz) => instant.with_timezone(&tz).fixed_offset(),
        }
    }

    fn local(self, naive: NaiveDateTime) -> Option<DateTime<FixedOffset>> {
        match self {
            Zone::Fixed(offset) => offset.from_local_datetime(&naive).earliest(),
            Zone::Named(tz) => tz
                .from_local_datetime(&naive)
                .earliest()
                .map(|d| d.fixed_offset()),
        }
    }
}

/// The common arguments of the date filters.
struct DateArgs {
    format: String,
    zone: Zone,
    existing: Option<String>,
}

impl DateArgs {
    fn new(
        format: Option<String>,
        zone: Option<String>,
        existing: Option<String>,
        locale: Option<String>,
    ) -> Result<Self, Error> {
        // Month and day names are written in English only: another locale would be ignored.
        if let Some(locale) = locale.filter(|l| !is_english(l)) {
            return Err(function_error(format!(
                "The locale '{locale}' is not supported: kestrel writes dates in English ('en') only."
            )));
        }
        Ok(Self {
            format: format.unwrap_or_else(|| "iso".into()),
            zone: Zone::parse(zone.as_deref())?,
            existing,
        })
    }
}

fn is_english(locale: &str) -> bool {
    let language = locale.split(['_', '-']).next().unwrap_or_default();
    language.eq_ignore_ascii_case("en") || language.eq_ignore_ascii_case("root")
}

/// `date(format, timeZone, existingFormat, locale)`: formats a date; null stays null.
pub(super) fn date(
    v: Value,
    format: Option<String>,
    zone: Option<String>,
    existing: Option<String>,
    locale: Option<String>,
) -> Result<Value, Error> {
    if v.is_none() {
        return Ok(v);
    }
    let args = DateArgs::new(format, zone, existing, locale)?;
    let instant = read_date(&v, &args)?;
    format_date(args.zone.at(instant), args.zone, &args.format).map(Value::from)
}

/// `dateAdd(amount, unit, format, timeZone, existingFormat, locale)`: adds `amount` Java
/// `ChronoUnit`s (`DAYS`, `HOURS`, ...); null stays null.
pub(super) fn date_add(
    v: Value,
    amount: i64,
    unit: String,
    rest: Rest<Value>,
) -> Result<Value, Error> {
    if v.is_none() {
        return Ok(v);
    }
    let text = |i: usize| -> Result<Option<String>, Error> {
        match rest.get(i) {
            None => Ok(None),
            Some(v) if v.is_none() || v.is_undefined() => Ok(None),
            Some(v) => v.as_str().map(|s| Some(s.to_string())).ok_or_else(|| {
                function_error("The 'dateAdd' filter expects text for 'format', 'timeZone', 'existingFormat' and 'locale'.")
            }),
        }
    };
    let args = DateArgs::new(text(0)?, text(1)?, text(2)?, text(3)?)?;
    let local = args.zone.at(read_date(&v, &args)?);
    let overflow = || function_error("The 'dateAdd' result is out of range.");
    let months = |n: i64| -> Result<DateTime<FixedOffset>, Error> {
        let m = Months::new(u32::try_from(n.unsigned_abs()).map_err(|_| overflow())?);
        if n >= 0 {
            local.checked_add_months(m)
        } else {
            local.checked_sub_months(m)
        }
        .ok_or_else(overflow)
    };
    let days = |n: i64| {
        let d = Days::new(n.unsigned_abs());
        if n >= 0 {
            local.checked_add_days(d)
        } else {
            local.checked_sub_days(d)
        }
        .ok_or_else(overflow)
    };
    let delta = |d: Option<TimeDelta>| {
        d.and_then(|d| local.checked_add_signed(d))
            .ok_or_else(overflow)
    };
    let result = match unit.to_ascii_uppercase().as_str() {
        "NANOS" => delta(Some(TimeDelta::nanoseconds(amount))),
        "MICROS" => delta(Some(TimeDelta::microseconds(amount))),
        "MILLIS" => delta(TimeDelta::try_milliseconds(amount)),
        "SECONDS" => delta(TimeDelta::try_seconds(amount)),
        "MINUTES" => delta(TimeDelta::try_minutes(amount)),
        "HOURS" => delta(TimeDelta::try_hours(amount)),
        "HALF_DAYS" => delta(amount.checked_mul(12).and_then(TimeDelta::try_hours)),
        "DAYS" => days(amount),
        "WEEKS" => amount.checked_mul(7).ok_or_else(overflow).and_then(days),
        "MONTHS" => months(amount),
        "YEARS" => amount.checked_mul(12).ok_or_else(overflow).and_then(months),
        "DECADES" => amount
            .checked_mul(120)
            .ok_or_else(overflow)
            .and_then(months),
        "CENTURIES" => amount
            .checked_mul(1200)
            .ok_or_else(overflow)
            .and_then(months),
        _ => Err(function_error(format!(
            "The 'dateAdd' filter does not know the unit '{unit}' (SECONDS, MINUTES, HOURS, DAYS, WEEKS, MONTHS, YEARS, ...)."
        ))),
    }?;
    format_date(result, args.zone, &args.format).map(Value::from)
}

/// `now(format, timeZone, existingFormat, locale)`: the current instant, by default in `iso`
/// (six fractional digits).
pub(super) fn now(
    format: Option<String>,
    zone: Option<String>,
    existing: Option<String>,
    locale: Option<String>,
) -> Result<String, Error> {
    let args = DateArgs::new(format, zone, existing, locale)?;
    format_date(args.zone.at(Utc::now()), args.zone, &args.format)
}

/// What `timestamp`, `timestampMicro` and `timestampNano` count since the epoch.
#[derive(Clone, Copy)]
pub(super) enum Epoch {
    Seconds,
    Micros,
    Nanos,
}

/// `timestamp(timeZone, existingFormat)` and its kin: the date as a count since the epoch;
/// null stays null.
pub(super) fn timestamp(
    v: &Value,
    zone: Option<String>,
    existing: Option<String>,
    unit: Epoch,
) -> Result<Value, Error> {
    if v.is_none() {
        return Ok(v.clone());
    }
    let args = DateArgs::new(None, zone, existing, None)?;
    let instant = read_date(v, &args)?;
    let (secs, nanos) = (
        instant.timestamp(),
        i64::from(instant.timestamp_subsec_nanos()),
    );
    let count = match unit {
        Epoch::Seconds => Some(secs),
        Epoch::Micros => secs
            .checked_mul(1_000_000)
            .and_then(|n| n.checked_add(nanos / 1_000)),
        Epoch::Nanos => secs
            .checked_mul(1_000_000_000)
            .and_then(|n| n.checked_add(nanos)),
    };
    count
        .map(Value::from)
        .ok_or_else(|| function_error("The date is too far from 1970 to count it in this unit."))
}

fn read_date(v: &Value, args: &DateArgs) -> Result<DateTime<Utc>, Error> {
    if let Some(secs) = v.as_i64() {
        return DateTime::from_timestamp(secs, 0)
            .ok_or_else(|| function_error("The epoch seconds given are out of range."));
    }
    if v.is_number() {
        let secs = f64::try_from(v.clone()).unwrap_or(f64::NAN);
        let whole = secs.floor();
        return DateTime::from_timestamp(whole as i64, ((secs - whole) * 1e9) as u32)
            .filter(|_| secs.is_finite())
            .ok_or_else(|| function_error("The epoch seconds given are out of range."));
    }
    let text = to_text(v);
    let text = text.trim();
    let parsed = match args.existing.as_deref() {
        Some(name) if name.eq_ignore_ascii_case("rfc_1123_date_time") => {
            DateTime::parse_from_rfc2822(text).ok()
        }
        Some(name) if name.to_ascii_lowercase().starts_with("iso") => parse_iso(text, args.zone),
        Some(pattern) => parse_with(text, named_format(pattern).unwrap_or(pattern), args.zone)?,
        None => parse_iso(text, args.zone),
    };
    parsed.map(|d| d.with_timezone(&Utc)).ok_or_else(|| {
        function_error(match &args.existing {
            Some(p) => format!("The date does not match the format '{p}'."),
            None => "The value is not an ISO-8601 date (give `existingFormat` for another format)."
                .into(),
        })
    })
}

fn parse_iso(text: &str, zone: Zone) -> Option<DateTime<FixedOffset>> {
    // `2024-01-01T10:00:00+01:00[Europe/Paris]`: the bracketed zone id adds nothing.
    let text = text.split('[').next().unwrap_or(text);
    DateTime::parse_from_rfc3339(text)
        .ok()
        .or_else(|| {
            [
                "%Y-%m-%dT%H:%M:%S%.f",
                "%Y-%m-%dT%H:%M",
                "%Y-%m-%d %H:%M:%S%.f",
            ]
            .iter()
            .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
            .and_then(|n| zone.local(n))
        })
        .or_else(|| {
            let day = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
            zone.local(day.and_hms_opt(0, 0, 0)?)
        })
}

fn parse_with(
    text: &str,
    pattern: &str,
    zone: Zone,
) -> Result<Option<DateTime<FixedOffset>>, Error> {
    let format = to_strftime(pattern)?;
    Ok(DateTime::parse_from_str(text, &format)
        .ok()
        .or_else(|| {
            NaiveDateTime::parse_from_str(text, &format)
                .ok()
                .and_then(|n| zone.local(n))
        })
        .or_else(|| {
            let day = NaiveDate::parse_from_str(text, &format).ok()?;
            zone.local(day.and_hms_opt(0, 0, 0)?)
        }))
}

/// A piece of a Java date pattern.
enum Field {
    /// A pattern letter and how many times it repeats (`yyyy` is `('y', 4)`).
    Letter(char, usize),
    Literal(String),
}

fn java_fields(pattern: &str) -> Result<Vec<Field>, Error> {
    let mut fields = Vec::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_alphabetic() {
            let mut count = 1;
            while chars.next_if_eq(&c).is_some() {
                count += 1;
            }
            fields.push(Field::Letter(c, count));
        } else if c == '\'' {
            let mut literal = String::new();
            loop {
                match chars.next() {
                    Some('\'') if chars.next_if_eq(&'\'').is_some() => literal.push('\''),
                    Some('\'') => break,
                    Some(c) => literal.push(c),
                    None => {
                        return Err(function_error(format!(
                            "Unclosed quote in the date pattern '{pattern}'."
                        )));
                    }
                }
            }
            // `''` outside a literal is a single quote.
            fields.push(Field::Literal(if literal.is_empty() {
                "'".into()
            } else {
                literal
            }));
        } else {
            fields.push(Field::Literal(c.to_string()));
        }
    }
    Ok(fields)
}

/// Kestra's named formats (`AbstractDate`), as patterns of this module; `#` is Java's ISO
/// fraction (shortest form, absent when zero).
fn named_format(name: &str) -> Option<&'static str> {
    Some(match name {
        "iso" => "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX",
        "iso_sec" => "yyyy-MM-dd'T'HH:mm:ssXXX",
        "sql" => "yyyy-MM-dd HH:mm:ss.SSSSSS",
        "sql_seq" => "yyyy-MM-dd HH:mm:ss",
        "iso_date_time" | "iso_zoned_date_time" => "yyyy-MM-dd'T'HH:mm:ss#XXX@",
        "iso_date" => "yyyy-MM-ddXXX",
        "iso_time" | "iso_offset_time" => "HH:mm:ss#XXX",
        "iso_local_date" => "yyyy-MM-dd",
        "iso_instant" => "yyyy-MM-dd'T'HH:mm:ss#'Z'",
        "iso_local_date_time" => "yyyy-MM-dd'T'HH:mm:ss#",
        "iso_local_time" => "HH:mm:ss#",
        "iso_ordinal_date" => "yyyy-DDDXXX",
        "iso_week_date" => "YYYY-'W'ww-eXXX",
        "rfc_1123_date_time" => "EEE, d MMM yyyy HH:mm:ss ZZZZZZ",
        _ => return None,
    })
}

fn format_date(dt: DateTime<FixedOffset>, zone: Zone, format: &str) -> Result<String, Error> {
    if ["full", "long", "medium", "short"].contains(&format) {
        return Err(function_error(format!(
            "The date format '{format}' is a localized style, which kestrel does not write: give a pattern such as 'yyyy-MM-dd HH:mm'."
        )));
    }
    let named = named_format(format);
    let dt = if format == "iso_instant" {
        dt.with_timezone(&Utc).fixed_offset()
    } else {
        dt
    };
    let mut out = String::new();
    for field in java_fields(named.unwrap_or(format))? {
        match field {
            Field::Literal(l) if l == "#" && named.is_some() => {
                iso_fraction(&mut out, dt.nanosecond())
            }
            // ISO_DATE_TIME's `[zone]`, written for a zone with a name only.
            Field::Literal(l) if l == "@" && named.is_some() => {
                if let Zone::Named(tz) = zone {
                    let _ = write!(out, "[{}]", tz.name());
                }
            }
            // RFC 1123 writes a zero offset as `GMT`.
            Field::Letter('Z', 6) => {
                let secs = dt.offset().fix().local_minus_utc();
                if secs == 0 {
                    out.push_str("GMT");
                } else {
                    offset(&mut out, secs, 'Z', 1);
                }
            }
            Field::Literal(l) => out.push_str(&l),
            Field::Letter(c, n) => letter(&mut out, &dt, zone, c, n)?,
        }
    }
    Ok(out)
}

fn iso_fraction(out: &mut String, nanos: u32) {
    if nanos > 0 {
        let digits = format!("{:09}", nanos % 1_000_000_000);
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// Writes one pattern letter of `dt`.
fn letter(
    out: &mut String,
    dt: &DateTime<FixedOffset>,
    zone: Zone,
    c: char,
    n: usize,
) -> Result<(), Error> {
    let num = |out: &mut String, v: i64| {
        let _ = write!(out, "{v:0n$}");
    };
    match c {
        'y' | 'u' if n == 2 => num(out, i64::from(dt.year().rem_euclid(100))),
        'y' | 'u' => num(out, i64::from(dt.year())),
        'Y' => num(out, i64::from(dt.iso_week().year())),
        'M' | 'L' => match n {
            1 | 2 => num(out, i64::from(dt.month())),
            _ => {
                let name = MONTHS
                    .get(dt.month0() as usize)
                    .copied()
                    .unwrap_or_default();
                out.push_str(if n == 3 { &name[..3] } else { name });
            }
        },
        'd' => num(out, i64::from(dt.day())),
        'D' => num(out, i64::from(dt.ordinal())),
        'H' => num(out, i64::from(dt.hour())),
        'h' => num(out, i64::from(dt.hour12().1)),
        'k' => num(out, i64::from(if dt.hour() == 0 { 24 } else { dt.hour() })),
        'K' => num(out, i64::from(dt.hour() % 12)),
        'm' => num(out, i64::from(dt.minute())),
        's' => num(out, i64::from(dt.second())),
        'S' => {
            let digits = format!("{:09}", dt.nanosecond() % 1_000_000_000);
            out.push_str(&digits[..n.min(9)]);
            out.push_str(&"0".repeat(n.saturating_sub(9)));
        }
        'n' => num(out, i64::from(dt.nanosecond() % 1_000_000_000)),
        'a' => out.push_str(if dt.hour12().0 { "PM" } else { "AM" }),
        'E' => {
            let name = dt.format("%A").to_string();
            out.push_str(if n <= 3 {
                name.get(..3).unwrap_or(&name)
            } else {
                &name
            });
        }
        'e' | 'c' => num(out, i64::from(dt.weekday().number_from_monday())),
        'w' => num(out, i64::from(dt.iso_week().week())),
        'Q' | 'q' => num(out, i64::from(dt.month0() / 3 + 1)),
        'G' => out.push_str("AD"),
        'X' | 'x' | 'Z' => offset(out, dt.offset().fix().local_minus_utc(), c, n),
        'z' => match zone {
            Zone::Named(tz) => {
                let _ = write!(out, "{}", dt.with_timezone(&tz).format("%Z"));
            }
            Zone::Fixed(_) => offset(out, dt.offset().fix().local_minus_utc(), 'X', 3),
        },
        'V' => match zone {
            Zone::Named(tz) => out.push_str(tz.name()),
            Zone::Fixed(_) => offset(out, dt.offset().fix().local_minus_utc(), 'X', 3),
        },
        other => {
            return Err(function_error(format!(
                "The date pattern letter '{other}' is not supported."
            )));
        }
    }
    Ok(())
}

/// Java's offset letters: `X` writes `Z` for zero, `x` and `Z` never do (but `ZZZZZ` does).
fn offset(out: &mut String, secs: i32, c: char, n: usize) {
    if secs == 0 && (c == 'X' || (c == 'Z' && n == 5)) {
        out.push('Z');
        return;
    }
    let sign = if secs < 0 { '-' } else { '+' };
    let (h, m) = (secs.abs() / 3600, secs.abs() / 60 % 60);
    let _ = match (c, n) {
        ('Z', 4) => write!(out, "GMT{sign}{h:02}:{m:02}"),
        ('Z', 1..=3) | ('X' | 'x', 2 | 4) => write!(out, "{sign}{h:02}{m:02}"),
        ('X' | 'x', 1) if m == 0 => write!(out, "{sign}{h:02}"),
        ('X' | 'x', 1) => write!(out, "{sign}{h:02}{m:02}"),
        _ => write!(out, "{sign}{h:02}:{m:02}"),
    };
}

/// A Java pattern as a chrono format string, for reading dates (`existingFormat`).
fn to_strftime(pattern: &str) -> Result<String, Error> {
    let mut out = String::new();
    for field in java_fields(pattern)? {
        let item = match field {
            Field::Literal(l) => {
                out.push_str(&l.replace('%', "%%"));
                continue;
            }
            Field::Letter(c, n) => match (c, n) {
                ('y' | 'u', 2) => "%y",
                ('y' | 'u', _) => "%Y",
                ('M', 1 | 2) => "%m",
                ('M', 3) => "%b",
                ('M', _) => "%B",
                ('d', _) => "%d",
                ('D', _) => "%j",
                ('H', _) => "%H",
                ('h', _) => "%I",
                ('m', _) => "%M",
                ('s', _) => "%S",
                ('S', 3) => "%3f",
                ('S', 6) => "%6f",
                ('S', 9) => "%9f",
                ('a', _) => "%p",
                ('E', 1..=3) => "%a",
                ('E', _) => "%A",
                ('X' | 'x' | 'Z', 3 | 5) => "%:z",
                ('X' | 'x' | 'Z', _) => "%z",
                _ => {
                    return Err(function_error(format!(
                        "The date pattern '{pattern}' cannot be used to read dates."
                    )));
                }
            },
        };
        out.push_str(item);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(date: &str, pattern: &str, zone: Option<&str>) -> String {
        let args = DateArgs {
            format: pattern.into(),
            zone: Zone::parse(zone).unwrap(),
            existing: None,
        };
        let instant = read_date(&Value::from(date), &args).unwrap();
        format_date(args.zone.at(instant), args.zone, &args.format).unwrap()
    }

    #[test]
    fn java_patterns() {
        let d = "2024-03-05T07:08:09.123456Z";
        assert_eq!(
            fmt(d, "yyyy-MM-dd'T'HH:mm:ss.SSSXXX", None),
            "2024-03-05T07:08:09.123Z"
        );
        assert_eq!(fmt(d, "dd/MM/yy hh:mm a", None), "05/03/24 07:08 AM");
        assert_eq!(fmt(d, "EEE, d MMM yyyy", None), "Tue, 5 Mar 2024");
        assert_eq!(fmt(d, "EEEE MMMM", None), "Tuesday March");
        assert_eq!(fmt(d, "'It''s' HH'h'", None), "It's 07h");
    }

    #[test]
    fn zones_and_offsets() {
        let d = "2024-07-01T10:00:00Z";
        assert_eq!(fmt(d, "HH:mm XXX", Some("Europe/Paris")), "12:00 +02:00");
        assert_eq!(fmt(d, "HH:mm Z", Some("-05:30")), "04:30 -0530");
        assert_eq!(fmt(d, "z VV", Some("Europe/Paris")), "CEST Europe/Paris");
        assert!(Zone::parse(Some("Mars/Olympus")).is_err());
    }

    #[test]
    fn named_formats_follow_java() {
        assert_eq!(
            fmt("2024-01-01T10:00:00.5+01:00", "iso", None),
            "2024-01-01T09:00:00.500000Z"
        );
        assert_eq!(
            fmt(
                "2024-01-01T10:00:00.5+01:00",
                "iso_date_time",
                Some("Europe/Paris")
            ),
            "2024-01-01T10:00:00.5+01:00[Europe/Paris]"
        );
        assert_eq!(
            fmt("2022-02-08T19:38:26Z", "rfc_1123_date_time", None),
            "Tue, 8 Feb 2022 19:38:26 GMT"
        );
        assert_eq!(
            fmt("2022-02-08T19:38:26Z", "rfc_1123_date_time", Some("+01:00")),
            "Tue, 8 Feb 2022 20:38:26 +0100"
        );
        assert_eq!(
            fmt("2024-01-01", "iso", Some("+01:00")),
            "2024-01-01T00:00:00.000000+01:00"
        );
        assert_eq!(
            fmt("2024-01-01T10:00:00", "sql", None),
            "2024-01-01 10:00:00.000000"
        );
    }

    #[test]
    fn reading_with_an_existing_format() {
        let args = DateArgs {
            format: "yyyy-MM-dd".into(),
            zone: Zone::parse(None).unwrap(),
            existing: Some("dd/MM/yyyy HH:mm".into()),
        };
        let instant = read_date(&Value::from("31/12/2023 23:59"), &args).unwrap();
        assert_eq!(
            format_date(args.zone.at(instant), args.zone, "iso").unwrap(),
            "2023-12-31T23:59:00.000000Z"
        );
        assert!(read_date(&Value::from("nope"), &args).is_err());
    }

    #[test]
    fn epoch_seconds() {
        let args = DateArgs {
            format: "iso".into(),
            zone: Zone::parse(None).unwrap(),
            existing: None,
        };
        let instant = read_date(&Value::from(0), &args).unwrap();
        assert_eq!(instant.timestamp(), 0);
    }
}
