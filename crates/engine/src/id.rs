//! Kestra-like identifiers: a random UUID v4 written in base 62, 22 characters.

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Length of every id: 62^22 > 2^128, so any UUID fits.
const LEN: usize = 22;

/// A new random id (executions, task runs).
pub fn new_id() -> String {
    base62(uuid::Uuid::new_v4().as_u128())
}

fn base62(mut n: u128) -> String {
    let mut digits = [b'0'; LEN];
    for digit in digits.iter_mut().rev() {
        // The remainder is below 62, so the cast and the index are in range.
        *digit = ALPHABET[(n % 62) as usize];
        n /= 62;
    }
    digits.iter().map(|&b| char::from(b)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_22_alphanumeric_characters_and_differ() {
        let a = new_id();
        let b = new_id();
        assert_eq!(a.len(), 22);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }

    #[test]
    fn base62_covers_the_extremes() {
        assert_eq!(base62(0), "0".repeat(22));
        assert_eq!(base62(61), format!("{}z", "0".repeat(21)));
        assert_eq!(base62(u128::MAX).len(), 22);
    }
}
