//! JSON values to PostgreSQL parameters and columns to JSON, by the types the server gives:
//! booleans, integers, floats, `numeric`, texts, JSON, dates and timestamps. Other types are
//! refused, naming them, with the way out: a cast in the query (`::text`).

use bytes::BytesMut;
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use serde_json::{Map, Value};
use std::error::Error;
use tokio_postgres::Row;
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};

type BoxError = Box<dyn Error + Sync + Send>;

/// A parameter's value, bound as the type the server infers for its place.
#[derive(Debug)]
pub(crate) struct Param(pub(crate) Value);

impl ToSql for Param {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        let value = &self.0;
        if value.is_null() {
            return Ok(IsNull::Yes);
        }
        match *ty {
            Type::BOOL => need(value.as_bool(), ty)?.to_sql(ty, out),
            Type::INT2 => i16::try_from(need(value.as_i64(), ty)?)?.to_sql(ty, out),
            Type::INT4 => i32::try_from(need(value.as_i64(), ty)?)?.to_sql(ty, out),
            Type::INT8 => need(value.as_i64(), ty)?.to_sql(ty, out),
            // The float the JSON number is closest to, as a float column would store it.
            Type::FLOAT4 => (need(value.as_f64(), ty)? as f32).to_sql(ty, out),
            Type::FLOAT8 => need(value.as_f64(), ty)?.to_sql(ty, out),
            Type::JSON | Type::JSONB => value.to_sql(ty, out),
            Type::TIMESTAMPTZ => DateTime::parse_from_rfc3339(&text(value))?.to_sql(ty, out),
            Type::TIMESTAMP => {
                NaiveDateTime::parse_from_str(&text(value), "%Y-%m-%dT%H:%M:%S%.f")?.to_sql(ty, out)
            }
            Type::DATE => text(value).parse::<NaiveDate>()?.to_sql(ty, out),
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
                text(value).to_sql(ty, out)
            }
            _ => Err(
                format!("a parameter of type {ty} is not supported: cast it (:name::text)").into(),
            ),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// `value`, or an error naming the type it does not fit.
fn need<T>(value: Option<T>, ty: &Type) -> Result<T, BoxError> {
    value.ok_or_else(|| format!("the value does not fit type {ty}").into())
}

/// A JSON value as text: strings as they are, anything else as JSON.
fn text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// A row as a JSON object, column by column; timestamps with a time zone shown in `zone`.
pub(crate) fn row(row: &Row, zone: Option<Tz>) -> Result<Map<String, Value>, String> {
    let mut map = Map::new();
    for (index, column) in row.columns().iter().enumerate() {
        let value = cell(row, index, column.type_(), zone).map_err(|error| {
            format!(
                "column '{}' of type {}: {error}",
                column.name(),
                column.type_()
            )
        })?;
        map.insert(column.name().to_owned(), value);
    }
    Ok(map)
}

fn cell(row: &Row, index: usize, ty: &Type, zone: Option<Tz>) -> Result<Value, BoxError> {
    fn get<'a, T: FromSql<'a>>(row: &'a Row, index: usize) -> Result<Option<T>, BoxError> {
        Ok(row.try_get::<_, Option<T>>(index)?)
    }
    let value = match *ty {
        Type::BOOL => get::<bool>(row, index)?.map(Value::from),
        Type::INT2 => get::<i16>(row, index)?.map(Value::from),
        Type::INT4 => get::<i32>(row, index)?.map(Value::from),
        Type::INT8 => get::<i64>(row, index)?.map(Value::from),
        Type::OID => get::<u32>(row, index)?.map(Value::from),
        Type::FLOAT4 => get::<f32>(row, index)?.map(Value::from),
        Type::FLOAT8 => get::<f64>(row, index)?.map(Value::from),
        Type::NUMERIC => get::<Numeric>(row, index)?.map(|number| number.0),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
            get::<String>(row, index)?.map(Value::from)
        }
        Type::JSON | Type::JSONB => get::<Value>(row, index)?,
        Type::TIMESTAMPTZ => get::<DateTime<Utc>>(row, index)?.map(|at| instant(at, zone)),
        Type::TIMESTAMP => get::<NaiveDateTime>(row, index)?
            .map(|at| Value::from(at.format("%Y-%m-%dT%H:%M:%S%.f").to_string())),
        Type::DATE => get::<NaiveDate>(row, index)?.map(|day| Value::from(day.to_string())),
        Type::TIME => get::<NaiveTime>(row, index)?.map(|time| Value::from(time.to_string())),
        _ => return Err("this type is not supported: cast it in the query (::text)".into()),
    };
    Ok(value.unwrap_or(Value::Null))
}

/// An instant in ISO-8601, in `zone` (`timeZoneId`) or UTC.
fn instant(at: DateTime<Utc>, zone: Option<Tz>) -> Value {
    let text = match zone {
        Some(zone) => at
            .with_timezone(&zone)
            .to_rfc3339_opts(SecondsFormat::AutoSi, false),
        None => at.to_rfc3339_opts(SecondsFormat::AutoSi, true),
    };
    Value::from(text)
}

/// A `numeric` value, as a JSON number (a text for `NaN` and infinities, which JSON lacks).
struct Numeric(Value);

impl<'a> FromSql<'a> for Numeric {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        let text = numeric_text(raw).ok_or("a numeric value the server sent is malformed")?;
        let value = serde_json::from_str::<Value>(&text).unwrap_or(Value::String(text));
        Ok(Self(value))
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }
}

/// The decimal text of PostgreSQL's binary `numeric`: a count of base-10000 digits, the weight
/// of the first, a sign, the scale, then the digits.
fn numeric_text(raw: &[u8]) -> Option<String> {
    let word = |index: usize| {
        raw.get(index * 2..index * 2 + 2)
            .map(|pair| u16::from_be_bytes([pair[0], pair[1]]))
    };
    let (count, weight, sign, scale) = (word(0)?, word(1)? as i16, word(2)?, word(3)?);
    match sign {
        0xC000 => return Some("NaN".to_owned()),
        0xD000 => return Some("Infinity".to_owned()),
        0xF000 => return Some("-Infinity".to_owned()),
        _ => {}
    }
    let digits: Vec<u16> = (0..usize::from(count))
        .map(|index| word(4 + index))
        .collect::<Option<_>>()?;
    let digit = |position: i32| {
        usize::try_from(position)
            .ok()
            .and_then(|index| digits.get(index).copied())
            .unwrap_or(0)
    };
    let weight = i32::from(weight);
    let mut text = if sign == 0x4000 {
        "-".to_owned()
    } else {
        String::new()
    };
    let mut whole = String::new();
    for position in 0..=weight {
        let group = digit(position);
        whole.push_str(&if whole.is_empty() {
            group.to_string()
        } else {
            format!("{group:04}")
        });
    }
    text.push_str(if whole.is_empty() { "0" } else { &whole });
    if scale > 0 {
        let mut fraction = String::new();
        let mut position = weight + 1;
        while fraction.len() < usize::from(scale) {
            fraction.push_str(&format!("{:04}", digit(position)));
            position += 1;
        }
        fraction.truncate(usize::from(scale));
        text.push('.');
        text.push_str(&fraction);
    }
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(count: u16, weight: i16, sign: u16, scale: u16, digits: &[u16]) -> Vec<u8> {
        let mut words = vec![count, weight as u16, sign, scale];
        words.extend_from_slice(digits);
        words.iter().flat_map(|word| word.to_be_bytes()).collect()
    }

    #[test]
    fn numerics_are_read_as_decimal_text() {
        assert_eq!(
            numeric_text(&raw(2, 1, 0, 0, &[12, 3456])).unwrap(),
            "123456"
        );
        assert_eq!(
            numeric_text(&raw(2, 0, 0x4000, 2, &[3, 1400])).unwrap(),
            "-3.14"
        );
        assert_eq!(numeric_text(&raw(1, -2, 0, 8, &[1])).unwrap(), "0.00000001");
        assert_eq!(numeric_text(&raw(0, 0, 0, 0, &[])).unwrap(), "0");
        assert_eq!(numeric_text(&raw(1, 2, 0, 0, &[5])).unwrap(), "500000000");
        assert_eq!(numeric_text(&raw(0, 0, 0xC000, 0, &[])).unwrap(), "NaN");
        assert!(numeric_text(&[0, 1]).is_none());
    }
}
