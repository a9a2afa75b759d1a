//! The one type that holds a secret's plaintext.

use std::fmt;
use zeroize::Zeroizing;

/// A secret's plaintext (UTF-8). Zeroized on drop; `Debug` prints `******`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(Zeroizing<String>);

impl SecretValue {
    /// Wraps a plaintext value.
    pub fn new(value: String) -> Self {
        Self(Zeroizing::new(value))
    }

    /// The plaintext. The name says it: whatever receives it must not show it.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue(******)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let value = SecretValue::new("hunter2".into());
        assert_eq!(format!("{value:?}"), "SecretValue(******)");
        assert_eq!(
            format!("{:?}", Some(value.clone())),
            "Some(SecretValue(******))"
        );
        assert_eq!(value.expose_secret(), "hunter2");
    }
}
