//! Keys and ciphertexts: the master key, the keyring of data keys it wraps, and AES-256-GCM
//! sealing of stored values bound to their record.
//!
//! This crate owns every byte of key material in kestrel. The [`MasterKey`] lives outside the
//! database: [`load_master_key`] takes it from `KESTREL_MASTER_KEY`, `KESTREL_MASTER_KEY_FILE`,
//! or a key file created once (mode 0600) in the config directory, with every input passed in
//! explicitly. A [`Keyring`] holds the data keys (random, 256-bit, numbered), which the
//! database stores only as [`WrappedKey`]s under the master key; a wrong master key is
//! [`CryptoError::WrongMasterKey`], never garbage. [`Keyring::seal`] encrypts a value with a
//! random 96-bit nonce and additional data ([`Aad`]) naming its record (tenant, namespace, key,
//! version) and the data key, so a ciphertext copied onto another record does not open. Keys
//! and plaintexts are zeroized on drop and no `Debug` shows them.
//!
//! ```
//! use kestrel_crypto::{Aad, Keyring, MasterKey};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let master = MasterKey::generate()?;
//! let keyring = Keyring::generate()?;
//! let stored = keyring.wrap_all(&master)?; // what the database keeps
//! let keyring = Keyring::unwrap(&master, &stored, keyring.current())?;
//!
//! let record = Aad::secret("main", "company.team", "DB_PASSWORD", 1);
//! let sealed = keyring.seal(&record, b"hunter2")?;
//! assert_eq!(&keyring.open(&record, &sealed)?[..], b"hunter2");
//! // The same ciphertext offered as version 2 does not open.
//! let version_2 = Aad::secret("main", "company.team", "DB_PASSWORD", 2);
//! assert!(keyring.open(&version_2, &sealed).is_err());
//! // Nor does the keyring open under another master key.
//! assert!(Keyring::unwrap(&MasterKey::generate()?, &stored, 1).is_err());
//! # Ok(())
//! # }
//! ```

mod aad;
mod chain;
mod error;
mod keyring;
mod master;
mod seal;

pub use aad::Aad;
pub use chain::{ChainKey, LINK_LEN, Link};
pub use error::{CryptoError, MasterKeyError};
pub use keyring::{KeyId, Keyring, Sealed, WrappedKey};
pub use master::{
    KEY_LEN, KeyOrigin, LoadedMasterKey, MasterKey, MasterKeySources, create_key_file,
    default_key_file, load_master_key,
};
