//! The one AES-256-GCM primitive everything here uses: `nonce || ciphertext || tag`.

use crate::CryptoError;
use crate::master::KEY_LEN;
use aes_gcm::aead::{AeadInOut as _, KeyInit as _, Nonce, Tag};
use aes_gcm::{Aes256Gcm, Key};
use zeroize::Zeroizing;

/// Nonce length: 96 bits, random per write.
pub(crate) const NONCE_LEN: usize = 12;
/// Authentication tag length.
pub(crate) const TAG_LEN: usize = 16;

/// A 256-bit key with its expanded cipher; both zeroized on drop (the cipher through
/// `aes-gcm`'s `zeroize` feature).
#[derive(Clone)]
pub(crate) struct SealKey {
    raw: Zeroizing<[u8; KEY_LEN]>,
    cipher: Aes256Gcm,
}

impl SealKey {
    pub(crate) fn new(raw: Zeroizing<[u8; KEY_LEN]>) -> Self {
        let key: &Key<Aes256Gcm> = (&*raw).into();
        let cipher = Aes256Gcm::new(key);
        Self { raw, cipher }
    }

    pub(crate) fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.raw
    }

    /// Encrypts `plaintext` bound to `aad` under a fresh random nonce.
    pub(crate) fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|e| CryptoError::Random(e.to_string()))?;
        // Sized up front so the buffer never moves while it holds plaintext; encrypted in place.
        let mut out = Zeroizing::new(Vec::with_capacity(NONCE_LEN + plaintext.len() + TAG_LEN));
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        let body = out.get_mut(NONCE_LEN..).ok_or(CryptoError::Malformed)?;
        let tag = self
            .cipher
            .encrypt_inout_detached(&Nonce::<Aes256Gcm>::from(nonce), aad, body.into())
            .map_err(|_| CryptoError::Malformed)?;
        out.extend_from_slice(&tag);
        Ok(std::mem::take(&mut *out))
    }

    /// Decrypts `nonce || ciphertext || tag` bound to `aad`; any mismatch is
    /// [`CryptoError::DoesNotOpen`].
    pub(crate) fn open(
        &self,
        aad: &[u8],
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        if sealed.len() < NONCE_LEN + TAG_LEN {
            return Err(CryptoError::Malformed);
        }
        let (nonce, rest) = sealed.split_at(NONCE_LEN);
        let (body, tag) = rest.split_at(rest.len() - TAG_LEN);
        let nonce = Nonce::<Aes256Gcm>::try_from(nonce).map_err(|_| CryptoError::Malformed)?;
        let tag = Tag::<Aes256Gcm>::try_from(tag).map_err(|_| CryptoError::Malformed)?;
        let mut plain = Zeroizing::new(body.to_vec());
        self.cipher
            .decrypt_inout_detached(&nonce, aad, plain.as_mut_slice().into(), &tag)
            .map_err(|_| CryptoError::DoesNotOpen)?;
        Ok(plain)
    }
}

/// A new random 256-bit key.
pub(crate) fn random_key() -> Result<SealKey, CryptoError> {
    let mut raw = Zeroizing::new([0u8; KEY_LEN]);
    getrandom::fill(&mut raw[..]).map_err(|e| CryptoError::Random(e.to_string()))?;
    Ok(SealKey::new(raw))
}
