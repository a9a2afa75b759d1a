//! ISO-8601 durations as Kestra writes them (`PT10S`, `P1DT2H`, `PT0.5S`).

use std::time::Duration;

/// Reads the subset of ISO-8601 that Java's `Duration.parse` accepts, without signs: days,
/// then after `T` hours, minutes and seconds with up to nine decimals. Case does not matter.
pub fn parse_iso8601(text: &str) -> Option<Duration> {
    let upper = text.to_ascii_uppercase();
    let rest = upper.strip_prefix('P')?;
    let (date, time) = match rest.split_once('T') {
        Some((date, time)) => (date, Some(time)),
        None => (rest, None),
    };
    let mut seconds = 0u64;
    let mut nanos = 0u32;
    let mut any = false;
    if !date.is_empty() {
        seconds = whole(date.strip_suffix('D')?)?.checked_mul(86_400)?;
        any = true;
    }
    if let Some(mut time) = time {
        if time.is_empty() {
            return None;
        }
        for (unit, factor) in [('H', 3_600u64), ('M', 60)] {
            if let Some((count, tail)) = time.split_once(unit) {
                seconds = seconds.checked_add(whole(count)?.checked_mul(factor)?)?;
                time = tail;
                any = true;
            }
        }
        if !time.is_empty() {
            let (secs, fraction) = seconds_part(time.strip_suffix('S')?)?;
            seconds = seconds.checked_add(secs)?;
            nanos = fraction;
            any = true;
        }
    }
    any.then(|| Duration::new(seconds, nanos))
}

/// `12` or `12.5` (or `12,5`) seconds: whole seconds and nanoseconds.
fn seconds_part(text: &str) -> Option<(u64, u32)> {
    let Some((secs, fraction)) = text.split_once(['.', ',']) else {
        return Some((whole(text)?, 0));
    };
    if fraction.len() > 9 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let padded = format!("{fraction:0<9}");
    Some((whole(secs)?, padded.parse().ok()?))
}

/// A non-empty run of ASCII digits.
fn whole(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_kestra_durations() {
        assert_eq!(parse_iso8601("PT10S"), Some(Duration::from_secs(10)));
        assert_eq!(parse_iso8601("PT1M30S"), Some(Duration::from_secs(90)));
        assert_eq!(parse_iso8601("P1DT2H"), Some(Duration::from_secs(93_600)));
        assert_eq!(parse_iso8601("pt0.5s"), Some(Duration::from_millis(500)));
        assert_eq!(parse_iso8601("PT2H"), Some(Duration::from_secs(7_200)));
        assert_eq!(parse_iso8601("P2D"), Some(Duration::from_secs(172_800)));
    }

    #[test]
    fn rejects_what_java_rejects() {
        for bad in [
            "",
            "P",
            "PT",
            "10S",
            "PT10",
            "PTS",
            "PT-1S",
            "PT1.1234567891S",
            "P1H",
            "PT1S2M",
            "PT1M1H",
            "PT1.xS",
        ] {
            assert_eq!(parse_iso8601(bad), None, "{bad}");
        }
    }

    #[test]
    fn overflow_is_rejected_not_wrapped() {
        assert_eq!(parse_iso8601("P99999999999999999D"), None);
        assert_eq!(parse_iso8601("PT99999999999999999999S"), None);
    }
}
