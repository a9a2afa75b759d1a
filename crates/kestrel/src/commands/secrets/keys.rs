//! `secrets rotate-key` and `secrets rekey`: a new data key for every stored version, and the
//! keyring wrapped under a new master key.

use super::Secrets;
use super::call;
use crate::error::CliError;
use crate::output::{note, warn};
use clap::Args;
use kestrel_crypto::{MasterKey, MasterKeyError, MasterKeySources};
use std::path::{Path, PathBuf};

#[derive(Debug, Args)]
pub(crate) struct RekeyArgs {
    /// The file holding the new master key (base64 of 32 bytes); created with a new random
    /// key, mode 0600, when it does not exist.
    #[arg(long, value_name = "F")]
    new_master_key_file: PathBuf,
}

/// Re-encrypts every stored version under a new data key (resuming an interrupted rotation).
pub(crate) fn rotate(access: &Secrets<'_>) -> Result<u8, CliError> {
    let Some(store) = access.existing()? else {
        note(&format!(
            "no store at {} yet: nothing to re-encrypt",
            access.shown()
        ));
        return Ok(0);
    };
    let report = call(store.rotate_key(&access.actor()))?;
    let resumed = if report.resumed {
        ", finishing an interrupted rotation"
    } else {
        ""
    };
    note(&format!(
        "every stored version is now encrypted with data key {} ({} re-encrypted{resumed})",
        report.key_id, report.reencrypted
    ));
    Ok(0)
}

/// Wraps the keyring under the key in the new file; the old master key no longer opens it.
pub(crate) fn rekey(args: &RekeyArgs, access: &Secrets<'_>) -> Result<u8, CliError> {
    let Some(store) = access.existing()? else {
        return Err(CliError::failed(format!(
            "no store at {} yet: there is no keyring to re-wrap",
            access.shown()
        )));
    };
    let new_key = new_master_key(&args.new_master_key_file, access)?;
    call(store.rekey(&access.actor(), &new_key))?;
    note(&format!(
        "the keyring is now wrapped by the master key in {path}; the previous master key no \
         longer opens it: from now on set KESTREL_MASTER_KEY_FILE={path} (or replace the key \
         file or KESTREL_MASTER_KEY you used with it)",
        path = args.new_master_key_file.display()
    ));
    Ok(0)
}

/// The key in `path`, or a new one written there when the file does not exist.
fn new_master_key(path: &Path, access: &Secrets<'_>) -> Result<MasterKey, CliError> {
    let data_dir = Some(access.data_dir());
    let loaded = kestrel_crypto::load_master_key(&MasterKeySources {
        env_key_file: Some(path),
        data_dir,
        allow_readable_key_file: access.allow_readable_key_file(),
        ..MasterKeySources::default()
    });
    match loaded {
        Ok(loaded) => {
            for warning in &loaded.warnings {
                warn(warning);
            }
            Ok(loaded.key)
        }
        Err(MasterKeyError::Io { error, .. }) if error.kind() == std::io::ErrorKind::NotFound => {
            let key = kestrel_crypto::create_key_file(path)
                .map_err(|error| CliError::usage(error.to_string()))?;
            note(&format!(
                "created {} with a new random master key (mode 0600)",
                path.display()
            ));
            Ok(key)
        }
        Err(error) => Err(CliError::usage(error.to_string())),
    }
}
