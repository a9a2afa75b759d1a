//! The master key: where it comes from, and the one file kestrel may create for it.

use crate::MasterKeyError;
use crate::seal::{self, SealKey};
use base64::DecodeSliceError;
use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use std::ffi::OsStr;
use std::fmt;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// The length of a master key and of a data key, in bytes.
pub const KEY_LEN: usize = 32;

/// Standard base64 (RFC 4648 alphabet), padding optional on input, written on output.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The key that wraps the keyring. It lives outside the database; zeroized on drop, and `Debug`
/// prints `MasterKey(******)`.
#[derive(Clone)]
pub struct MasterKey(SealKey);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(******)")
    }
}

impl MasterKey {
    /// A new random key from the operating system.
    pub fn generate() -> Result<Self, MasterKeyError> {
        seal::random_key()
            .map(Self)
            .map_err(|e| MasterKeyError::Random(e.to_string()))
    }

    /// Decodes the base64 of 32 bytes; ASCII whitespace (a trailing newline, line wrapping) is
    /// ignored. `origin` names where the text came from, for the error.
    pub fn from_base64(text: &str, origin: &str) -> Result<Self, MasterKeyError> {
        let invalid = |reason: String| MasterKeyError::Invalid {
            origin: origin.to_owned(),
            reason,
        };
        // Sized up front so no reallocation leaves a copy of the key text behind.
        let mut compact = Zeroizing::new(Vec::with_capacity(text.len()));
        compact.extend(text.bytes().filter(|b| !b.is_ascii_whitespace()));
        if compact.is_empty() {
            return Err(invalid("it is empty".into()));
        }
        // Room for more than a key, so a longer text is reported by its length.
        let mut raw = Zeroizing::new([0u8; 2 * KEY_LEN]);
        match BASE64.decode_slice(&compact[..], &mut raw[..]) {
            Ok(KEY_LEN) => {}
            Ok(n) => return Err(invalid(format!("it decodes to {n} bytes, not {KEY_LEN}"))),
            Err(DecodeSliceError::OutputSliceTooSmall) => {
                return Err(invalid(format!("it decodes to more than {KEY_LEN} bytes")));
            }
            Err(DecodeSliceError::DecodeError(_)) => {
                return Err(invalid("it is not standard base64".into()));
            }
        }
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        key.copy_from_slice(&raw[..KEY_LEN]);
        Ok(Self(SealKey::new(key)))
    }

    /// Reads a file holding the base64 of the key (as `KESTREL_MASTER_KEY_FILE` names).
    pub fn read_file(path: &Path) -> Result<Self, MasterKeyError> {
        let text =
            Zeroizing::new(
                fs::read_to_string(path).map_err(|error| MasterKeyError::Io {
                    path: path.to_owned(),
                    action: "read",
                    error,
                })?,
            );
        Self::from_base64(&text, &format!("the file {}", path.display()))
    }

    /// The key as standard base64, for writing a key file. The name says it: keep it out of
    /// sight.
    pub fn expose_secret_base64(&self) -> Zeroizing<String> {
        let mut text = Zeroizing::new(String::with_capacity(2 * KEY_LEN));
        BASE64.encode_string(self.0.bytes(), &mut text);
        text
    }

    pub(crate) fn seal_key(&self) -> &SealKey {
        &self.0
    }
}

/// Where the master key was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyOrigin {
    /// `KESTREL_MASTER_KEY`.
    Environment,
    /// The file `KESTREL_MASTER_KEY_FILE` names.
    EnvironmentFile(PathBuf),
    /// The key file in the config directory; `created` when this call made it.
    DefaultFile {
        /// The key file.
        path: PathBuf,
        /// Whether the file was created by this call.
        created: bool,
    },
}

/// The inputs that decide the master key, passed in explicitly so that the caller (the CLI)
/// reads the environment once and tests need none.
#[derive(Clone, Copy, Debug, Default)]
pub struct MasterKeySources<'a> {
    /// The value of `KESTREL_MASTER_KEY`, if the variable is set (set but empty counts as set).
    pub env_key: Option<&'a str>,
    /// The value of `KESTREL_MASTER_KEY_FILE`, if the variable is set.
    pub env_key_file: Option<&'a Path>,
    /// The key file to use (and create once) when neither variable is set: see
    /// [`default_key_file`]. `None`: there is no config directory.
    pub default_file: Option<&'a Path>,
    /// The data directory, to warn when a key file lies inside it.
    pub data_dir: Option<&'a Path>,
    /// `master-key.allow-readable-key-file`: use a key file that group or others can read
    /// (with a warning) instead of refusing it, as ssh refuses such a private key.
    pub allow_readable_key_file: bool,
}

/// A master key and where it came from, with warnings for stderr (a key file others can read,
/// a key file inside the data directory).
#[derive(Debug)]
pub struct LoadedMasterKey {
    /// The key.
    pub key: MasterKey,
    /// Where it came from.
    pub origin: KeyOrigin,
    /// Things the person should fix; never the key.
    pub warnings: Vec<String>,
}

/// The default key file: `$XDG_CONFIG_HOME/kestrel/master.key`, else
/// `$HOME/.config/kestrel/master.key`. A relative `XDG_CONFIG_HOME` is ignored, as the XDG
/// specification says.
pub fn default_key_file(xdg_config_home: Option<&OsStr>, home: Option<&OsStr>) -> Option<PathBuf> {
    let absolute = |v: Option<&OsStr>| v.map(PathBuf::from).filter(|p| p.is_absolute());
    let config = absolute(xdg_config_home).or_else(|| absolute(home).map(|h| h.join(".config")))?;
    Some(config.join("kestrel").join("master.key"))
}

/// Decides the master key: `KESTREL_MASTER_KEY`, or the file `KESTREL_MASTER_KEY_FILE` names
/// (both set is an error), or else the default key file, created with a new random key (mode
/// 0600, its directory 0700) the first time.
pub fn load_master_key(sources: &MasterKeySources<'_>) -> Result<LoadedMasterKey, MasterKeyError> {
    let (key, origin) = match (sources.env_key, sources.env_key_file) {
        (Some(_), Some(_)) => return Err(MasterKeyError::BothSet),
        (Some(text), None) => (
            MasterKey::from_base64(text, "KESTREL_MASTER_KEY")?,
            KeyOrigin::Environment,
        ),
        (None, Some(path)) => {
            refuse_readable_key_file(path, sources.allow_readable_key_file)?;
            (
                MasterKey::read_file(path)?,
                KeyOrigin::EnvironmentFile(path.to_owned()),
            )
        }
        (None, None) => {
            let path = sources.default_file.ok_or(MasterKeyError::NoConfigDir)?;
            refuse_readable_key_file(path, sources.allow_readable_key_file)?;
            let (key, created) = read_or_create_key_file(path)?;
            let origin = KeyOrigin::DefaultFile {
                path: path.to_owned(),
                created,
            };
            (key, origin)
        }
    };
    let warnings = match &origin {
        KeyOrigin::Environment => Vec::new(),
        KeyOrigin::EnvironmentFile(path) | KeyOrigin::DefaultFile { path, .. } => {
            key_file_warnings(path, sources.data_dir)
        }
    };
    Ok(LoadedMasterKey {
        key,
        origin,
        warnings,
    })
}

/// Creates a key file holding a new random key; fails if the file exists. The file appears
/// whole or not at all (written aside, then linked into place), mode 0600.
pub fn create_key_file(path: &Path) -> Result<MasterKey, MasterKeyError> {
    let io = |action: &'static str, at: &Path| {
        let at = at.to_owned();
        move |error| MasterKeyError::Io {
            path: at,
            action,
            error,
        }
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io("create the directory of", path))?;
    }
    let key = MasterKey::generate()?;
    let tmp = path.with_file_name(format!(".master.key.{}.tmp", std::process::id()));
    let written = write_new_file(&tmp, key.expose_secret_base64().as_bytes())
        .map_err(io("write", &tmp))
        .and_then(|()| fs::hard_link(&tmp, path).map_err(io("create", path)));
    // The temporary name goes whether or not the link succeeded; a failure to remove it
    // leaves only a mode-0600 file behind.
    let _ = fs::remove_file(&tmp);
    written.map(|()| key)
}

fn write_new_file(path: &Path, text: &[u8]) -> std::io::Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text)?;
    file.write_all(b"\n")?;
    file.sync_all()
}

fn read_or_create_key_file(path: &Path) -> Result<(MasterKey, bool), MasterKeyError> {
    match MasterKey::read_file(path) {
        Ok(key) => Ok((key, false)),
        Err(MasterKeyError::Io { error, .. }) if error.kind() == std::io::ErrorKind::NotFound => {
            match create_key_file(path) {
                Ok(key) => Ok((key, true)),
                // Another process created it first: use that one.
                Err(MasterKeyError::Io { error, .. })
                    if error.kind() == std::io::ErrorKind::AlreadyExists =>
                {
                    MasterKey::read_file(path).map(|key| (key, false))
                }
                Err(other) => Err(other),
            }
        }
        Err(other) => Err(other),
    }
}

/// The permission bits of a key file group or others can read (none when it is absent).
fn readable_mode(path: &Path) -> Option<u32> {
    let mode = fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then_some(mode)
}

/// Refuses, before reading it, a key file that group or others can read, unless `allowed`.
fn refuse_readable_key_file(path: &Path, allowed: bool) -> Result<(), MasterKeyError> {
    match readable_mode(path) {
        Some(mode) if !allowed => Err(MasterKeyError::ReadableKeyFile {
            path: path.to_owned(),
            mode,
        }),
        _ => Ok(()),
    }
}

fn key_file_warnings(path: &Path, data_dir: Option<&Path>) -> Vec<String> {
    let mut warnings = Vec::new();
    if let Some(mode) = readable_mode(path) {
        warnings.push(format!(
            "the master key file {} can be read by other users (mode {mode:o}), as \
             master-key.allow-readable-key-file allows; run: chmod 600 {}",
            path.display(),
            path.display()
        ));
    }
    let canonical = |p: &Path| fs::canonicalize(p).unwrap_or_else(|_| p.to_owned());
    if let Some(data_dir) = data_dir.filter(|d| canonical(path).starts_with(canonical(d))) {
        warnings.push(format!(
            "the master key file {} is inside the data directory {}: a copy of the data \
             directory then carries its own key; keep the key elsewhere",
            path.display(),
            data_dir.display()
        ));
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources<'a>() -> MasterKeySources<'a> {
        MasterKeySources::default()
    }

    const KEY_B64: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    #[test]
    fn both_variables_set_is_an_error() {
        let file = Path::new("/nonexistent");
        let err = load_master_key(&MasterKeySources {
            env_key: Some(KEY_B64),
            env_key_file: Some(file),
            ..sources()
        })
        .unwrap_err();
        assert!(matches!(err, MasterKeyError::BothSet));
        assert!(err.to_string().contains("set only one"));
    }

    #[test]
    fn environment_key_decodes_with_or_without_padding_and_newline() {
        for text in [
            KEY_B64,
            &format!("{KEY_B64}\n"),
            KEY_B64.trim_end_matches('='),
        ] {
            let loaded = load_master_key(&MasterKeySources {
                env_key: Some(text),
                ..sources()
            })
            .unwrap();
            assert_eq!(loaded.origin, KeyOrigin::Environment);
            assert_eq!(&*loaded.key.expose_secret_base64(), KEY_B64);
        }
    }

    #[test]
    fn bad_keys_say_why_without_echoing_the_text() {
        let short = "c2hvcnQ="; // "short"
        let err = MasterKey::from_base64(short, "KESTREL_MASTER_KEY").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("5 bytes, not 32"), "{msg}");
        assert!(!msg.contains(short));
        let err = MasterKey::from_base64("not base64 at all!!", "X").unwrap_err();
        assert!(err.to_string().contains("not standard base64"));
        let long = "A".repeat(120);
        assert!(
            MasterKey::from_base64(&long, "X")
                .unwrap_err()
                .to_string()
                .contains("more than 32")
        );
        assert!(
            MasterKey::from_base64("", "X")
                .unwrap_err()
                .to_string()
                .contains("empty")
        );
    }

    #[test]
    fn key_file_variable_reads_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        fs::write(&path, format!("{KEY_B64}\n")).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        let loaded = load_master_key(&MasterKeySources {
            env_key_file: Some(&path),
            ..sources()
        })
        .unwrap();
        assert_eq!(loaded.origin, KeyOrigin::EnvironmentFile(path.clone()));
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    }

    #[test]
    fn default_file_is_created_once_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config/kestrel/master.key");
        let src = MasterKeySources {
            default_file: Some(&path),
            ..sources()
        };
        let first = load_master_key(&src).unwrap();
        assert!(matches!(
            first.origin,
            KeyOrigin::DefaultFile { created: true, .. }
        ));
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dir_mode = fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(dir_mode & 0o777, 0o700);
        let second = load_master_key(&src).unwrap();
        assert!(matches!(
            second.origin,
            KeyOrigin::DefaultFile { created: false, .. }
        ));
        assert_eq!(
            *first.key.expose_secret_base64(),
            *second.key.expose_secret_base64()
        );
        assert!(
            create_key_file(&path).is_err(),
            "an existing key file is never replaced"
        );
    }

    #[test]
    fn issue_9_9_a_key_file_others_can_read_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        fs::write(&path, KEY_B64).unwrap();
        for mode in [0o644, 0o640, 0o604] {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
            for as_default in [false, true] {
                let sources = if as_default {
                    MasterKeySources {
                        default_file: Some(&path),
                        ..sources()
                    }
                } else {
                    MasterKeySources {
                        env_key_file: Some(&path),
                        ..sources()
                    }
                };
                let err = load_master_key(&sources).unwrap_err();
                assert!(matches!(err, MasterKeyError::ReadableKeyFile { .. }));
                let message = err.to_string();
                assert!(message.contains(&format!("chmod 600 {}", path.display())));
                assert!(!message.contains(KEY_B64), "{message}");
            }
        }
    }

    #[test]
    fn warns_about_open_permissions_when_allowed_and_a_key_inside_the_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        fs::write(&path, KEY_B64).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let loaded = load_master_key(&MasterKeySources {
            env_key_file: Some(&path),
            data_dir: Some(dir.path()),
            allow_readable_key_file: true,
            ..sources()
        })
        .unwrap();
        assert_eq!(loaded.warnings.len(), 2, "{:?}", loaded.warnings);
        assert!(loaded.warnings[0].contains("chmod 600"));
        assert!(loaded.warnings[1].contains("inside the data directory"));
    }

    #[test]
    fn no_config_dir_and_no_variable_is_an_error() {
        let err = load_master_key(&sources()).unwrap_err();
        assert!(err.to_string().contains("KESTREL_MASTER_KEY"));
    }

    #[test]
    fn default_key_file_follows_xdg() {
        let p = default_key_file(Some(OsStr::new("/x/cfg")), Some(OsStr::new("/home/u")));
        assert_eq!(p, Some(PathBuf::from("/x/cfg/kestrel/master.key")));
        let p = default_key_file(Some(OsStr::new("relative")), Some(OsStr::new("/home/u")));
        assert_eq!(p, Some(PathBuf::from("/home/u/.config/kestrel/master.key")));
        assert_eq!(default_key_file(None, None), None);
    }

    #[test]
    fn debug_hides_the_key() {
        let key = MasterKey::from_base64(KEY_B64, "X").unwrap();
        assert_eq!(format!("{key:?}"), "MasterKey(******)");
    }
}
