//! Names the store accepts, and the size of the values it takes. Hand-written checks: they
//! run on every lookup.

use crate::StoreError;
use std::fmt;

/// Checks a secret key: `^[A-Za-z0-9_.-]{1,255}$`, case-sensitive, and neither `.` nor `..`
/// (which read as paths to a file-like backend).
pub fn validate_key(key: &str) -> Result<(), StoreError> {
    let ok = (1..=255).contains(&key.len())
        && !matches!(key, "." | "..")
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    ok.then_some(())
        .ok_or_else(|| StoreError::InvalidKey(key.to_owned()))
}

/// Checks a namespace: `^[a-z0-9][a-z0-9_-]*(\.[a-z0-9][a-z0-9_-]*)*$`, at most 150
/// characters: a dot-separated hierarchy with no empty segment (`a..b` and `m.ns.` are not
/// namespaces).
pub fn validate_namespace(namespace: &str) -> Result<(), StoreError> {
    let ok = namespace.len() <= 150
        && namespace
            .split('.')
            .all(|segment| lower_name(segment, 150, b"-_"));
    ok.then_some(())
        .ok_or_else(|| StoreError::InvalidNamespace(namespace.to_owned()))
}

/// Checks a tenant: `^[a-z0-9][a-z0-9_-]*$`, at most 64 characters.
pub fn validate_tenant(tenant: &str) -> Result<(), StoreError> {
    lower_name(tenant, 64, b"-_")
        .then_some(())
        .ok_or_else(|| StoreError::InvalidTenant(tenant.to_owned()))
}

/// The largest secret value a store takes by default (`secret.max-size`: 64 KiB).
pub const DEFAULT_MAX_VALUE_SIZE: usize = 64 * 1024;

/// A secret value over `secret.max-size`: what a store answers (inside
/// [`StoreError::Backend`]) when asked to keep one. Neither the value nor its length is
/// part of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValueTooLarge {
    /// The limit, in bytes.
    pub max: usize,
}

impl fmt::Display for ValueTooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the value is larger than secret.max-size ({} bytes)",
            self.max
        )
    }
}

impl std::error::Error for ValueTooLarge {}

/// Checks that a value of `len` bytes fits under `max`.
pub fn validate_value_size(len: usize, max: usize) -> Result<(), ValueTooLarge> {
    (len <= max).then_some(()).ok_or(ValueTooLarge { max })
}

/// The [`ValueTooLarge`] behind `error`, when a store refused a value for its size.
pub fn value_too_large(error: &StoreError) -> Option<&ValueTooLarge> {
    match error {
        StoreError::Backend { source, .. } => source.downcast_ref::<ValueTooLarge>(),
        _ => None,
    }
}

fn lower_name(name: &str, max: usize, extra: &[u8]) -> bool {
    let lower_or_digit = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let mut bytes = name.bytes();
    name.len() <= max
        && bytes.next().is_some_and(lower_or_digit)
        && bytes.all(|b| lower_or_digit(b) || extra.contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_pattern() {
        for good in ["A", "db_password", "My.Key-1", &"k".repeat(255)] {
            assert!(validate_key(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "with space",
            "slash/key",
            "é",
            "k=v",
            ".",
            "..",
            &"k".repeat(256),
        ] {
            let err = validate_key(bad).unwrap_err();
            assert!(err.to_string().contains("invalid secret key"), "{bad}");
        }
    }

    #[test]
    fn namespaces_follow_kestras_pattern() {
        for good in ["company", "company.team", "a-b_c.9", "m.ns.x1"] {
            assert!(validate_namespace(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Company",
            ".company",
            "a/b",
            "a..b",
            "m.ns.",
            "a.-b",
            &"a".repeat(151),
        ] {
            assert!(validate_namespace(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn issue_9_9_empty_namespace_segments_and_dot_keys_are_refused() {
        assert!(validate_namespace("a..b").is_err());
        assert!(validate_namespace("m.ns.").is_err());
        assert!(validate_key("..").is_err());
        assert!(validate_key(".").is_err());
        assert!(
            validate_key("...").is_ok(),
            "only the two path names are reserved"
        );
    }

    #[test]
    fn a_value_over_the_limit_is_refused_without_its_length() {
        assert!(validate_value_size(64, 64).is_ok());
        let refused = validate_value_size(65, 64).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "the value is larger than secret.max-size (64 bytes)"
        );
        let error = StoreError::backend("store a secret", refused);
        assert_eq!(value_too_large(&error), Some(&ValueTooLarge { max: 64 }));
        assert_eq!(value_too_large(&StoreError::Conflict("x".into())), None);
    }

    #[test]
    fn tenants_have_no_dots() {
        assert!(validate_tenant("main").is_ok());
        assert!(validate_tenant("ma.in").is_err());
        assert!(validate_tenant("").is_err());
    }
}
