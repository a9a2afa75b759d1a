//! Names the store accepts. Hand-written checks: they run on every lookup.

use crate::StoreError;

/// Checks a secret key: `^[A-Za-z0-9_.-]{1,255}$`, case-sensitive.
pub fn validate_key(key: &str) -> Result<(), StoreError> {
    let ok = (1..=255).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    ok.then_some(())
        .ok_or_else(|| StoreError::InvalidKey(key.to_owned()))
}

/// Checks a namespace: `^[a-z0-9][a-z0-9._-]*$`, at most 150 characters (Kestra's rule).
pub fn validate_namespace(namespace: &str) -> Result<(), StoreError> {
    lower_name(namespace, 150, b".-_")
        .then_some(())
        .ok_or_else(|| StoreError::InvalidNamespace(namespace.to_owned()))
}

/// Checks a tenant: `^[a-z0-9][a-z0-9_-]*$`, at most 64 characters.
pub fn validate_tenant(tenant: &str) -> Result<(), StoreError> {
    lower_name(tenant, 64, b"-_")
        .then_some(())
        .ok_or_else(|| StoreError::InvalidTenant(tenant.to_owned()))
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
        for bad in ["", "with space", "slash/key", "é", "k=v", &"k".repeat(256)] {
            let err = validate_key(bad).unwrap_err();
            assert!(err.to_string().contains("invalid secret key"), "{bad}");
        }
    }

    #[test]
    fn namespaces_follow_kestras_pattern() {
        for good in ["company", "company.team", "a-b_c.9"] {
            assert!(validate_namespace(good).is_ok(), "{good}");
        }
        for bad in ["", "Company", ".company", "a/b", &"a".repeat(151)] {
            assert!(validate_namespace(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tenants_have_no_dots() {
        assert!(validate_tenant("main").is_ok());
        assert!(validate_tenant("ma.in").is_err());
        assert!(validate_tenant("").is_err());
    }
}
