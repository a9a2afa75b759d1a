//! `secrets set` and `secrets get`: a value in from stdin or a file, byte for byte, and out
//! exactly as stored.

use super::{SecretArgs, Secrets, absent, call, store_holding, version_named};
use crate::error::CliError;
use crate::output::{note, warn};
use crate::terminal;
use clap::Args;
use kestrel_secrets::SecretValue;
use kestrel_store::{SecretId, SecretMeta, SecretStore, Tag};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

#[derive(Debug, Args)]
pub(crate) struct SetArgs {
    #[command(flatten)]
    secret: SecretArgs,
    /// Read the value from this file instead of stdin (`-` is stdin).
    #[arg(long, value_name = "PATH")]
    from_file: Option<PathBuf>,
    /// A description of the secret (kept until replaced).
    #[arg(long, value_name = "TEXT")]
    description: Option<String>,
    /// A tag, repeatable; the tags given replace the secret's tags.
    #[arg(long = "tag", value_name = "K=V", value_parser = parse_tag)]
    tags: Vec<Tag>,
    /// Store a value shorter than `secret.mask-min-length`, which logs would show in clear.
    #[arg(long)]
    allow_short: bool,
    /// A value on the command line: refused (shell history and every user of the machine
    /// would see it), and dropped as it is parsed, so that nothing can echo it.
    #[arg(
        hide = true,
        num_args = 0..,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_parser = dropped
    )]
    value_on_command_line: Vec<Dropped>,
}

/// An argument that was given and dropped unread.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dropped;

fn dropped(_: &str) -> Result<Dropped, String> {
    Ok(Dropped)
}

/// Why a value on the command line is refused (the words scripts rely on).
const NOT_ON_THE_COMMAND_LINE: &str =
    "values are read from standard input or --from-file, never from the command line";

#[derive(Debug, Args)]
pub(crate) struct GetArgs {
    #[command(flatten)]
    secret: SecretArgs,
    /// A given version instead of the latest: its number, or the backend's own version id or
    /// stage (AWS's VersionId, AWSCURRENT, AWSPREVIOUS).
    #[arg(long, value_name = "N|ID|STAGE")]
    version: Option<String>,
}

fn parse_tag(arg: &str) -> Result<Tag, String> {
    match arg.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok(Tag {
            key: key.to_owned(),
            value: value.to_owned(),
        }),
        _ => Err("expected K=V with a non-empty K".into()),
    }
}

/// Stores a new version; the value never comes from the command line.
pub(crate) fn set(args: &SetArgs, access: &Secrets<'_>) -> Result<u8, CliError> {
    if !args.value_on_command_line.is_empty() {
        return Err(CliError::usage(NOT_ON_THE_COMMAND_LINE));
    }
    let id = args.secret.id()?;
    let value = read_value(args.from_file.as_deref(), id.key())?;
    if value.expose_secret().is_empty() {
        // Almost always a forgotten pipe; `import-env` stores an empty value a file spells out.
        return Err(CliError::usage(format!(
            "the value of {} is empty: give it on stdin (printf %s VALUE | kestrel secrets set \
             ...) or with --from-file PATH",
            id.key()
        )));
    }
    access.check_value_size(id.key(), &value)?;
    if !args.allow_short {
        access.check_value_length(id.key(), &value)?;
    }
    warn_trailing_newline(&value, id.key());
    let store = access.store()?;
    let meta = merged_meta(store.as_ref(), &id, args)?;
    let version = call(store.set(&access.actor(), &id, &value, meta.as_ref()))?;
    note(&format!("set version {version} of {id}"));
    Ok(0)
}

/// Prints the value exactly (no newline added); audited. Exit 1 when there is none.
pub(crate) fn get(args: &GetArgs, access: &Secrets<'_>) -> Result<u8, CliError> {
    let id = args.secret.id()?;
    let store = store_holding(access, &id)?;
    let version = version_named(store.as_ref(), &id, args.version.as_deref())?;
    let Some(revealed) = call(store.read(&access.actor(), &id, version))? else {
        return Err(absent(store.as_ref(), &id, version));
    };
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(revealed.value.expose_secret().as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|error| CliError::failed("cannot write to stdout").caused_by(error))?;
    Ok(0)
}

/// The description and tags to store: `None` (keep them) when neither flag is given, else
/// the stored ones with what the flags give replacing their part.
fn merged_meta(
    store: &dyn SecretStore,
    id: &SecretId,
    args: &SetArgs,
) -> Result<Option<SecretMeta>, CliError> {
    if args.description.is_none() && args.tags.is_empty() {
        return Ok(None);
    }
    let current = call(store.get_meta(id))?.map(|info| info.meta);
    let current = current.unwrap_or_default();
    Ok(Some(SecretMeta {
        description: args.description.clone().or(current.description),
        tags: if args.tags.is_empty() {
            current.tags
        } else {
            args.tags.clone()
        },
    }))
}

/// The value, byte for byte, from `file` or stdin (`None` or `-`; typed twice without echo on
/// a terminal); it must be UTF-8 text.
fn read_value(file: Option<&Path>, key: &str) -> Result<SecretValue, CliError> {
    let mut bytes = Zeroizing::new(Vec::new());
    match file.filter(|path| *path != Path::new("-")) {
        Some(path) => {
            let mut opened = std::fs::File::open(path).map_err(|error| {
                CliError::usage(format!("cannot read {}", path.display())).caused_by(error)
            })?;
            opened.read_to_end(&mut bytes).map_err(|error| {
                CliError::usage(format!("cannot read {}", path.display())).caused_by(error)
            })?;
        }
        None if terminal::interactive() => {
            let typed = terminal::read_hidden_twice(&format!("value of {key}"))?;
            return Ok(SecretValue::new(typed.to_string()));
        }
        None => {
            std::io::stdin()
                .lock()
                .read_to_end(&mut bytes)
                .map_err(|error| CliError::usage("cannot read standard input").caused_by(error))?;
        }
    }
    value_from_bytes(bytes)
}

fn value_from_bytes(mut bytes: Zeroizing<Vec<u8>>) -> Result<SecretValue, CliError> {
    match String::from_utf8(std::mem::take(&mut *bytes)) {
        Ok(text) => Ok(SecretValue::new(text)),
        Err(error) => {
            // The bytes are the secret: wiped before the error leaves.
            drop(Zeroizing::new(error.into_bytes()));
            Err(CliError::usage(
                "the value is not UTF-8 text; store binary data base64-encoded",
            ))
        }
    }
}

/// A value ending in a line break is stored as it is, which is rarely what was meant.
pub(super) fn warn_trailing_newline(value: &SecretValue, key: &str) {
    if value.expose_secret().ends_with('\n') {
        warn(&format!(
            "the value of {key} ends with a newline, which is kept as part of it \
             (printf %s or echo -n leave it out)"
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_key_equals_value() {
        let tag = parse_tag("team=data=eng").unwrap();
        assert_eq!((tag.key.as_str(), tag.value.as_str()), ("team", "data=eng"));
        assert_eq!(parse_tag("empty=").unwrap().value, "");
        assert!(parse_tag("=v").is_err());
        assert!(parse_tag("novalue").is_err());
    }

    #[test]
    fn a_value_must_be_utf8_and_is_not_echoed() {
        let value = value_from_bytes(Zeroizing::new(b"caf\xc3\xa9\n".to_vec())).unwrap();
        assert_eq!(value.expose_secret(), "café\n");
        let error = value_from_bytes(Zeroizing::new(vec![b's', 0xff, b'x'])).unwrap_err();
        assert_eq!(error.code(), 2);
        assert!(error.to_string().contains("not UTF-8"));
    }
}
