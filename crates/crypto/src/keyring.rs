//! Data keys, wrapped by the master key, and the sealing of stored values under them.

use crate::seal::{SealKey, random_key};
use crate::{Aad, CryptoError, MasterKey};
use std::collections::BTreeMap;
use std::fmt;
use zeroize::Zeroizing;

/// A data key's number in its keyring (1, 2, …); stored beside every ciphertext.
pub type KeyId = u32;

/// A data key encrypted by the master key (`nonce || ciphertext || tag`, additional data
/// `kestrel-keyring-v1` and the key's id): what the database keeps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrappedKey {
    /// The data key's id.
    pub id: KeyId,
    /// The wrapped bytes.
    pub bytes: Vec<u8>,
}

/// A value encrypted under a data key: `nonce || ciphertext || tag`. Not secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sealed {
    /// The data key that sealed it.
    pub key_id: KeyId,
    /// The sealed bytes.
    pub bytes: Vec<u8>,
}

/// The data keys of one data directory, unwrapped, and which one seals new values.
/// `Debug` shows the ids only; the keys are zeroized on drop.
#[derive(Clone)]
pub struct Keyring {
    keys: BTreeMap<KeyId, SealKey>,
    current: KeyId,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("ids", &self.ids())
            .field("current", &self.current)
            .finish()
    }
}

fn wrap_aad(id: KeyId) -> Vec<u8> {
    let mut aad = b"kestrel-keyring-v1".to_vec();
    aad.extend_from_slice(&id.to_be_bytes());
    aad
}

fn value_aad(aad: &Aad, key_id: KeyId) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(aad.as_bytes().len() + 4);
    bytes.extend_from_slice(aad.as_bytes());
    bytes.extend_from_slice(&key_id.to_be_bytes());
    bytes
}

impl Keyring {
    /// A new keyring with one random data key, id 1, current.
    pub fn generate() -> Result<Self, CryptoError> {
        Ok(Self {
            keys: BTreeMap::from([(1, random_key()?)]),
            current: 1,
        })
    }

    /// Unwraps the stored keys with `master`. A master key that does not open them is
    /// [`CryptoError::WrongMasterKey`], never a keyring of garbage.
    pub fn unwrap(
        master: &MasterKey,
        wrapped: &[WrappedKey],
        current: KeyId,
    ) -> Result<Self, CryptoError> {
        let mut keys = BTreeMap::new();
        for w in wrapped {
            let plain = master
                .seal_key()
                .open(&wrap_aad(w.id), &w.bytes)
                .map_err(|e| match e {
                    CryptoError::DoesNotOpen => CryptoError::WrongMasterKey { key_id: w.id },
                    other => other,
                })?;
            let mut raw = Zeroizing::new([0u8; crate::KEY_LEN]);
            if plain.len() != raw.len() {
                return Err(CryptoError::Malformed);
            }
            raw.copy_from_slice(&plain);
            keys.insert(w.id, SealKey::new(raw));
        }
        if !keys.contains_key(&current) {
            return Err(CryptoError::UnknownDataKey(current));
        }
        Ok(Self { keys, current })
    }

    /// Adds a new random data key (the next id) and returns its id; it does not become current.
    pub fn add_key(&mut self) -> Result<KeyId, CryptoError> {
        let id = self.keys.keys().next_back().map_or(1, |last| last + 1);
        self.keys.insert(id, random_key()?);
        Ok(id)
    }

    /// Makes `id` the key that seals new values.
    pub fn set_current(&mut self, id: KeyId) -> Result<(), CryptoError> {
        if !self.keys.contains_key(&id) {
            return Err(CryptoError::UnknownDataKey(id));
        }
        self.current = id;
        Ok(())
    }

    /// The key that seals new values.
    pub fn current(&self) -> KeyId {
        self.current
    }

    /// The raw bytes of the first data key (the lowest id), which a keyring never loses.
    pub(crate) fn first_key_bytes(&self) -> &[u8] {
        self.keys
            .values()
            .next()
            .map_or(&[][..], |key| &key.bytes()[..])
    }

    /// Every key's id, ascending.
    pub fn ids(&self) -> Vec<KeyId> {
        self.keys.keys().copied().collect()
    }

    /// Whether the keyring holds key `id`.
    pub fn contains(&self, id: KeyId) -> bool {
        self.keys.contains_key(&id)
    }

    /// Key `id` wrapped by `master`, for storing.
    pub fn wrap(&self, master: &MasterKey, id: KeyId) -> Result<WrappedKey, CryptoError> {
        let key = self.key(id)?;
        let bytes = master.seal_key().seal(&wrap_aad(id), key.bytes())?;
        Ok(WrappedKey { id, bytes })
    }

    /// Every key wrapped by `master` (what `rekey` stores).
    pub fn wrap_all(&self, master: &MasterKey) -> Result<Vec<WrappedKey>, CryptoError> {
        self.keys.keys().map(|&id| self.wrap(master, id)).collect()
    }

    /// Seals `plaintext` for the record `aad` under the current key.
    pub fn seal(&self, aad: &Aad, plaintext: &[u8]) -> Result<Sealed, CryptoError> {
        self.seal_with(self.current, aad, plaintext)
    }

    /// Seals `plaintext` for the record `aad` under key `key_id`.
    pub fn seal_with(
        &self,
        key_id: KeyId,
        aad: &Aad,
        plaintext: &[u8],
    ) -> Result<Sealed, CryptoError> {
        let bytes = self.key(key_id)?.seal(&value_aad(aad, key_id), plaintext)?;
        Ok(Sealed { key_id, bytes })
    }

    /// Opens a value sealed for the record `aad`. A ciphertext of another record, altered bytes
    /// or a changed key id give [`CryptoError::DoesNotOpen`].
    pub fn open(&self, aad: &Aad, sealed: &Sealed) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        self.key(sealed.key_id)?
            .open(&value_aad(aad, sealed.key_id), &sealed.bytes)
    }

    /// Opens `sealed` and seals it again under key `to` (what `rotate-key` does to each value).
    pub fn reseal(&self, aad: &Aad, sealed: &Sealed, to: KeyId) -> Result<Sealed, CryptoError> {
        let plain = self.open(aad, sealed)?;
        self.seal_with(to, aad, &plain)
    }

    fn key(&self, id: KeyId) -> Result<&SealKey, CryptoError> {
        self.keys.get(&id).ok_or(CryptoError::UnknownDataKey(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aad(version: u64) -> Aad {
        Aad::secret("main", "company.team", "DB_PASSWORD", version)
    }

    #[test]
    fn a_value_opens_for_its_own_record_only() {
        let ring = Keyring::generate().unwrap();
        let sealed = ring.seal(&aad(1), b"hunter2").unwrap();
        assert_eq!(&ring.open(&aad(1), &sealed).unwrap()[..], b"hunter2");
        for other in [
            aad(2),
            Aad::secret("main", "company", "DB_PASSWORD", 1),
            Aad::secret("main", "company.team", "DB_PASSWORD2", 1),
            Aad::secret("acme", "company.team", "DB_PASSWORD", 1),
        ] {
            assert!(matches!(
                ring.open(&other, &sealed),
                Err(CryptoError::DoesNotOpen)
            ));
        }
    }

    #[test]
    fn the_plaintext_is_not_in_the_ciphertext_and_nonces_differ() {
        let ring = Keyring::generate().unwrap();
        let a = ring.seal(&aad(1), b"hunter2hunter2").unwrap();
        let b = ring.seal(&aad(1), b"hunter2hunter2").unwrap();
        assert_ne!(a.bytes, b.bytes);
        assert!(!a.bytes.windows(7).any(|w| w == b"hunter2"));
    }

    #[test]
    fn altered_bytes_or_key_id_do_not_open() {
        let mut ring = Keyring::generate().unwrap();
        let two = ring.add_key().unwrap();
        let sealed = ring.seal(&aad(1), b"hunter2").unwrap();
        let mut flipped = sealed.clone();
        if let Some(b) = flipped.bytes.last_mut() {
            *b ^= 1;
        }
        assert!(matches!(
            ring.open(&aad(1), &flipped),
            Err(CryptoError::DoesNotOpen)
        ));
        let relabelled = Sealed {
            key_id: two,
            ..sealed
        };
        assert!(ring.open(&aad(1), &relabelled).is_err());
        let truncated = Sealed {
            key_id: 1,
            bytes: vec![0; 5],
        };
        assert!(matches!(
            ring.open(&aad(1), &truncated),
            Err(CryptoError::Malformed)
        ));
    }

    #[test]
    fn wrapped_keys_unwrap_with_the_right_master_only() {
        let master = MasterKey::generate().unwrap();
        let mut ring = Keyring::generate().unwrap();
        ring.add_key().unwrap();
        let sealed = ring.seal(&aad(1), b"v").unwrap();
        let wrapped = ring.wrap_all(&master).unwrap();
        let again = Keyring::unwrap(&master, &wrapped, 1).unwrap();
        assert_eq!(&again.open(&aad(1), &sealed).unwrap()[..], b"v");
        let wrong = MasterKey::generate().unwrap();
        let err = Keyring::unwrap(&wrong, &wrapped, 1).unwrap_err();
        assert!(matches!(err, CryptoError::WrongMasterKey { key_id: 1 }));
        assert!(err.to_string().contains("master key does not open"));
    }

    #[test]
    fn a_wrapped_key_cannot_pose_as_another_id() {
        let master = MasterKey::generate().unwrap();
        let ring = Keyring::generate().unwrap();
        let mut wrapped = ring.wrap_all(&master).unwrap();
        wrapped[0].id = 2;
        assert!(Keyring::unwrap(&master, &wrapped, 2).is_err());
    }

    #[test]
    fn reseal_moves_a_value_to_the_new_key() {
        let mut ring = Keyring::generate().unwrap();
        let sealed = ring.seal(&aad(3), b"v").unwrap();
        let two = ring.add_key().unwrap();
        ring.set_current(two).unwrap();
        let moved = ring.reseal(&aad(3), &sealed, two).unwrap();
        assert_eq!(moved.key_id, two);
        assert_eq!(&ring.open(&aad(3), &moved).unwrap()[..], b"v");
        assert!(matches!(
            ring.set_current(9),
            Err(CryptoError::UnknownDataKey(9))
        ));
    }

    #[test]
    fn debug_shows_ids_only() {
        let ring = Keyring::generate().unwrap();
        assert_eq!(format!("{ring:?}"), "Keyring { ids: [1], current: 1 }");
    }
}
