//! Resource limits of a render (configuration `expression`): fuel, the largest value a filter
//! or function may build, and the wall-clock backstop.

use crate::error::{ExprErrorKind, Failure};
use minijinja::Error;
use minijinja::value::Value;
use std::borrow::Cow;
use std::io;
use std::time::Duration;

/// The limits every render of an [`crate::Expressions`] runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpressionLimits {
    /// `expression.fuel`: instructions one render may execute, nested `render()` calls
    /// included. The deterministic limit: a render that exceeds it fails, whatever the
    /// machine's speed.
    pub fuel: u64,
    /// `expression.max-value-size`: bytes of the largest string, list or map a filter or
    /// function may build, and of a render's output. Checked before allocating.
    pub max_value_size: usize,
    /// `expression.render-timeout`: the wall-clock backstop for a render that fuel did not
    /// stop. Carried here for the engine, which runs renders off the async runtime's threads
    /// and abandons one that outlives it; [`crate::Expressions::render`] does not enforce it.
    pub render_timeout: Duration,
}

impl Default for ExpressionLimits {
    /// The configuration defaults: 50,000,000 instructions, 16 MiB, 10 s.
    fn default() -> Self {
        Self {
            fuel: 50_000_000,
            max_value_size: 16 * 1024 * 1024,
            render_timeout: Duration::from_secs(10),
        }
    }
}

/// How deep the template machine may recurse (loops, conditions, macros in one another).
pub(crate) const RECURSION_LIMIT: usize = 100;

/// The failure of a render that exceeded `limit` (named as in the configuration).
pub(crate) fn limit_error(message: String) -> Error {
    Failure::new(ExprErrorKind::Limit, message).into_error()
}

/// `expression.max-value-size`, as filters and functions check it before building a value.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cap(usize);

impl Cap {
    pub(crate) fn new(max_value_size: usize) -> Self {
        Self(max_value_size)
    }

    /// The limit, in bytes.
    pub(crate) fn max(self) -> usize {
        self.0
    }

    /// Fails unless a value of `bytes` bytes (`None`: more than `usize` can count) fits.
    pub(crate) fn check(self, bytes: Option<usize>) -> Result<(), Error> {
        match bytes {
            Some(n) if n <= self.0 => Ok(()),
            _ => Err(limit_error(format!(
                "The value would be larger than expression.max-value-size ({} bytes).",
                self.0
            ))),
        }
    }

    /// Fails unless `len` bytes, grown at most `factor` times, fit; when the bound does not
    /// fit, `exact` computes the real size.
    pub(crate) fn check_growth(
        self,
        len: usize,
        factor: usize,
        exact: impl FnOnce() -> usize,
    ) -> Result<(), Error> {
        if len.checked_mul(factor).is_some_and(|n| n <= self.0) {
            return Ok(());
        }
        self.check(Some(exact()))
    }

    /// How Kestra prints `v` (see [`crate::library::to_text`]), refusing a list or map whose
    /// JSON text would exceed the limit before it is built past it.
    pub(crate) fn text(self, v: &Value) -> Result<Cow<'_, str>, Error> {
        match v.kind() {
            minijinja::value::ValueKind::Seq
            | minijinja::value::ValueKind::Map
            | minijinja::value::ValueKind::Iterable => self.json(v).map(Cow::Owned),
            _ => {
                let text = crate::library::to_text(v);
                self.check(Some(text.len()))?;
                Ok(text)
            }
        }
    }

    /// `v` as compact JSON, refused past the limit.
    pub(crate) fn json(self, v: &Value) -> Result<String, Error> {
        let mut out = Bounded::new(self.0);
        match serde_json::to_writer(&mut out, v) {
            Ok(()) => String::from_utf8(out.bytes)
                .map_err(|_| crate::error::function_error("The value cannot be written as JSON.")),
            Err(_) if out.overflowed => self.check(None).map(|()| String::new()),
            Err(e) => Err(crate::error::function_error(format!(
                "The value cannot be written as JSON: {e}."
            ))),
        }
    }
}

/// A byte buffer that refuses to grow past a limit (a render's output, JSON text).
pub(crate) struct Bounded {
    pub(crate) bytes: Vec<u8>,
    limit: usize,
    /// A write was refused because it would have passed the limit.
    pub(crate) overflowed: bool,
}

impl Bounded {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            bytes: Vec::new(),
            limit,
            overflowed: false,
        }
    }
}

impl io::Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.bytes.len().saturating_add(buf.len()) > self.limit {
            self.overflowed = true;
            return Err(io::Error::other("expression.max-value-size"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_configurations() {
        let limits = ExpressionLimits::default();
        assert_eq!(limits.fuel, 50_000_000);
        assert_eq!(limits.max_value_size, 16_777_216);
        assert_eq!(limits.render_timeout, Duration::from_secs(10));
    }

    #[test]
    fn a_cap_refuses_sizes_past_it_and_uncountable_ones() {
        let cap = Cap::new(10);
        assert!(cap.check(Some(10)).is_ok());
        let err = cap.check(Some(11)).unwrap_err();
        assert!(
            format!("{err:#}").contains("expression.max-value-size"),
            "{err:#}"
        );
        assert!(cap.check(None).is_err());
        assert!(cap.check_growth(4, 3, || 12).is_err());
        assert!(cap.check_growth(4, 3, || 10).is_ok());
    }

    #[test]
    fn json_text_stops_at_the_cap() {
        let cap = Cap::new(8);
        assert_eq!(cap.json(&Value::from(vec![1, 2])).unwrap(), "[1,2]");
        assert!(cap.json(&Value::from(vec![1, 2, 3, 4, 5])).is_err());
        assert!(cap.text(&Value::from("123456789")).is_err());
    }
}
