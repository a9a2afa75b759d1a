//! The audit trail's chain: each row carries an HMAC-SHA256 of its own content and of the row
//! before it, under a key derived from the keyring's first data key (as Vault's audit devices
//! hash under a salt kept behind its barrier). The first data key is never removed, so the
//! chain key outlives rotations and master-key changes; whoever can change the database but
//! cannot read the master key can neither alter nor remove a row without the chain showing it.

use crate::Keyring;
use hmac::{Hmac, KeyInit as _, Mac as _};
use sha2_hmac::Sha256;
use std::fmt;
use zeroize::Zeroizing;

/// Length of a link: an HMAC-SHA256.
pub const LINK_LEN: usize = 32;

/// One row's link: the MAC of the row and of the link before it.
pub type Link = [u8; LINK_LEN];

/// What the chain key is derived for: changing it starts a new kind of chain.
const PURPOSE: &[u8] = b"kestrel-audit-chain-v1";

/// The key the audit rows are chained under. Zeroized on drop; `Debug` hides it.
pub struct ChainKey(Zeroizing<[u8; LINK_LEN]>);

impl fmt::Debug for ChainKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ChainKey(..)")
    }
}

fn mac(key: &[u8], parts: &[&[u8]]) -> Link {
    // HMAC takes a key of any length: this never fails.
    let mut mac = <Hmac<Sha256>>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

impl ChainKey {
    /// The link of a row whose canonical bytes are `row`, after the row linked by `previous`
    /// (all zeros for the first row of a chain).
    pub fn link(&self, previous: &Link, row: &[u8]) -> Link {
        mac(&*self.0, &[previous, row])
    }
}

impl Keyring {
    /// The key the audit trail is chained under, derived from the first data key.
    pub fn chain_key(&self) -> ChainKey {
        let first = self.first_key_bytes();
        ChainKey(Zeroizing::new(mac(first, &[PURPOSE])))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_depend_on_the_row_the_link_before_and_the_keyring() {
        let ring = Keyring::generate().unwrap();
        let key = ring.chain_key();
        let first = key.link(&[0; LINK_LEN], b"row 1");
        assert_eq!(first, ring.chain_key().link(&[0; LINK_LEN], b"row 1"));
        assert_ne!(first, key.link(&[0; LINK_LEN], b"row 2"));
        assert_ne!(
            key.link(&first, b"row 2"),
            key.link(&[0; LINK_LEN], b"row 2")
        );
        let other = Keyring::generate().unwrap().chain_key();
        assert_ne!(first, other.link(&[0; LINK_LEN], b"row 1"));
        assert_eq!(format!("{key:?}"), "ChainKey(..)");
    }

    #[test]
    fn the_chain_key_outlives_a_new_data_key() {
        let mut ring = Keyring::generate().unwrap();
        let before = ring.chain_key().link(&[0; LINK_LEN], b"row");
        let added = ring.add_key().unwrap();
        ring.set_current(added).unwrap();
        assert_eq!(ring.chain_key().link(&[0; LINK_LEN], b"row"), before);
    }
}
