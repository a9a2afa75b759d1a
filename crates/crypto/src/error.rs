//! What can go wrong with keys and ciphertexts; never carries key material or a plaintext.

use std::fmt;
use std::path::PathBuf;

/// Why sealing, opening or (un)wrapping failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum CryptoError {
    /// The master key does not unwrap a data key of the keyring: it is not the key the keyring
    /// was wrapped with (or the wrapped key was altered).
    WrongMasterKey {
        /// The data key that did not unwrap.
        key_id: u32,
    },
    /// A sealed value does not open: it was altered, or copied from another record (the
    /// additional data binds it to its own).
    DoesNotOpen,
    /// A sealed value names a data key this keyring does not hold.
    UnknownDataKey(u32),
    /// Bytes too short or too long to be a sealed value or a wrapped key.
    Malformed,
    /// The operating system's random source failed.
    Random(String),
}

impl fmt::Display for CryptoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::WrongMasterKey { key_id } => write!(
                f,
                "the master key does not open this data directory's keyring (data key {key_id}): \
                 use the master key this data directory was created with"
            ),
            Self::DoesNotOpen => f.write_str(
                "a stored ciphertext does not decrypt for its record: it was altered or copied \
                 from another record",
            ),
            Self::UnknownDataKey(id) => write!(f, "the keyring holds no data key {id}"),
            Self::Malformed => f.write_str("a stored ciphertext or wrapped key is malformed"),
            Self::Random(why) => write!(f, "the system's random source failed: {why}"),
        }
    }
}

impl std::error::Error for CryptoError {}

/// Why no master key could be had.
#[derive(Debug)]
#[non_exhaustive]
pub enum MasterKeyError {
    /// Both `KESTREL_MASTER_KEY` and `KESTREL_MASTER_KEY_FILE` are set.
    BothSet,
    /// The text is not the base64 of 32 bytes; `origin` says where it came from.
    Invalid {
        /// Where the text came from (`KESTREL_MASTER_KEY`, a file's path).
        origin: String,
        /// What is wrong with it (never the text itself).
        reason: String,
    },
    /// A key file could not be read, created or written.
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done (`read`, `create`).
        action: &'static str,
        /// The operating system's answer.
        error: std::io::Error,
    },
    /// The key file can be read by group or others, and the configuration does not allow it
    /// (`master-key.allow-readable-key-file`).
    ReadableKeyFile {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Neither variable is set and there is no config directory to keep a key file in.
    NoConfigDir,
    /// The operating system's random source failed while making a new key.
    Random(String),
}

impl fmt::Display for MasterKeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BothSet => f.write_str(
                "both KESTREL_MASTER_KEY and KESTREL_MASTER_KEY_FILE are set; set only one of them",
            ),
            Self::Invalid { origin, reason } => write!(
                f,
                "{origin} is not a master key: {reason} (expected the base64 of 32 random bytes, \
                 e.g. the output of `head -c 32 /dev/urandom | base64`)"
            ),
            Self::Io {
                path,
                action,
                error,
            } => write!(
                f,
                "cannot {action} the master key file {}: {error}",
                path.display()
            ),
            Self::ReadableKeyFile { path, mode } => write!(
                f,
                "the master key file {path} can be read by group or others (mode {mode:03o}), so \
                 it is not used: run `chmod 600 {path}` (or set master-key.allow-readable-key-file: \
                 true to accept it)",
                path = path.display()
            ),
            Self::NoConfigDir => f.write_str(
                "no master key: set KESTREL_MASTER_KEY or KESTREL_MASTER_KEY_FILE, or HOME so that \
                 a key file can be kept in the config directory",
            ),
            Self::Random(why) => write!(f, "the system's random source failed: {why}"),
        }
    }
}

impl std::error::Error for MasterKeyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { error, .. } => Some(error),
            _ => None,
        }
    }
}
