//! Additional authenticated data: what a ciphertext is bound to.

/// The record a ciphertext belongs to, encoded without ambiguity: a domain string, then fields,
/// each string prefixed by its length and each number fixed-width, so no two different records
/// share an encoding (`("ab", "c")` and `("a", "bc")` differ).
///
/// The data key's id is appended by [`crate::Keyring::seal`], so a ciphertext is bound to its key
/// too. Names in here are not secret; `Debug` shows the bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Aad(Vec<u8>);

impl Aad {
    /// Starts the data for a kind of record (`kestrel-secret-v1`); a new layout takes a new domain.
    pub fn new(domain: &str) -> Self {
        Self(Vec::with_capacity(64)).with_str(domain)
    }

    /// A stored secret's version: tenant, namespace, key and version number.
    pub fn secret(tenant: &str, namespace: &str, key: &str, version: u64) -> Self {
        Self::new("kestrel-secret-v1")
            .with_str(tenant)
            .with_str(namespace)
            .with_str(key)
            .with_u64(version)
    }

    /// Appends a string field, length-prefixed.
    pub fn with_str(mut self, field: &str) -> Self {
        // usize -> u64 never truncates on the platforms Rust supports.
        self.0
            .extend_from_slice(&(field.len() as u64).to_be_bytes());
        self.0.extend_from_slice(field.as_bytes());
        self
    }

    /// Appends a number field, fixed width.
    pub fn with_u64(mut self, field: u64) -> Self {
        self.0.extend_from_slice(&field.to_be_bytes());
        self
    }

    /// The encoded bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_boundaries_are_unambiguous() {
        let a = Aad::new("d").with_str("ab").with_str("c");
        let b = Aad::new("d").with_str("a").with_str("bc");
        assert_ne!(a, b);
    }

    #[test]
    fn every_field_of_a_secret_counts() {
        let base = Aad::secret("main", "a.b", "K", 1);
        assert_ne!(base, Aad::secret("other", "a.b", "K", 1));
        assert_ne!(base, Aad::secret("main", "a", "K", 1));
        assert_ne!(base, Aad::secret("main", "a.b", "k", 1));
        assert_ne!(base, Aad::secret("main", "a.b", "K", 2));
        assert_eq!(base, Aad::secret("main", "a.b", "K", 1));
    }
}
