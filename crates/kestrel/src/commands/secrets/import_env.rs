//! `secrets import-env FILE --namespace NS`: every variable of a `.env_encoded`
//! (`SECRET_X=<base64>`) or plain `.env` (`X=value`) file stored as a secret of a namespace.

use super::Secrets;
use super::call;
use super::encode_env::rendered_value;
use super::values::warn_trailing_newline;
use crate::commands::read_text;
use crate::error::CliError;
use crate::output::note;
use crate::store::store_error;
use clap::Args;
use kestrel_expr::Expressions;
use kestrel_secrets::{SecretValue, decode_secret_value, parse_dotenv};
use kestrel_store::SecretId;
use std::path::PathBuf;
use zeroize::Zeroizing;

#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    /// The env file (`-` reads stdin).
    file: PathBuf,
    /// The namespace the secrets go to.
    #[arg(long, value_name = "NS")]
    namespace: String,
}

/// Reads and checks every variable first, then stores each one: a file with one bad line
/// stores nothing.
pub(crate) fn run(args: &ImportArgs, access: &Secrets<'_>) -> Result<u8, CliError> {
    let text = Zeroizing::new(read_text(&args.file)?);
    let shown = args.file.display();
    let secrets = secrets_of(&text, &args.namespace)
        .map_err(|error| CliError::usage(format!("{shown}: {error}")))?;
    if secrets.is_empty() {
        note(&format!("{shown} holds no variable: nothing imported"));
        return Ok(0);
    }
    for (id, value) in &secrets {
        access.check_value_size(&format!("{shown}: {}", id.key()), value)?;
    }
    let store = access.store()?;
    let actor = access.actor();
    for (id, value) in &secrets {
        warn_trailing_newline(value, id.key());
        call(store.set(&actor, id, value, None))?;
    }
    let keys: Vec<&str> = secrets.iter().map(|(id, _)| id.key()).collect();
    note(&format!(
        "imported {} secret{} into {}: {}",
        keys.len(),
        if keys.len() == 1 { "" } else { "s" },
        args.namespace,
        keys.join(", ")
    ));
    Ok(0)
}

/// The secrets an env file's `text` holds for `namespace`, in order: `SECRET_X=<base64>`
/// becomes `X` with the decoded value, `X=value` becomes `X` as it is; a value written as an
/// expression is rendered first (pure filters only). Errors name the line and the variable,
/// never the value.
fn secrets_of(text: &str, namespace: &str) -> Result<Vec<(SecretId, SecretValue)>, String> {
    let expressions = Expressions::new(serde_json::json!({}));
    let entries = parse_dotenv(text).map_err(|error| error.to_string())?;
    let mut secrets = Vec::with_capacity(entries.len());
    for entry in entries {
        let value = rendered_value(&entry, &expressions)?;
        let (key, value) = match entry.name.strip_prefix("SECRET_") {
            Some(key) => {
                let decoded = decode_secret_value(&value).map_err(|reason| {
                    format!(
                        "line {}: could not decode {}, make sure it is base64-encoded: {reason}",
                        entry.line, entry.name
                    )
                })?;
                (key, decoded)
            }
            None => (entry.name.as_str(), SecretValue::new(value.to_string())),
        };
        let id = SecretId::main(namespace, key)
            .map_err(|error| format!("line {}: {}", entry.line, store_error(error)))?;
        secrets.push((id, value));
    }
    Ok(secrets)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn imported(text: &str) -> Result<Vec<(String, String)>, String> {
        let secrets = secrets_of(text, "company.team")?;
        Ok(secrets
            .into_iter()
            .map(|(id, value)| (id.key().to_owned(), value.expose_secret().to_owned()))
            .collect())
    }

    #[test]
    fn an_encoded_file_is_decoded_and_a_plain_one_kept() {
        let encoded = "SECRET_MYPASSWORD=cGFzc3dvcmQ=\nSECRET_token=bXlwYXQ=\n";
        assert_eq!(
            imported(encoded).unwrap(),
            [
                ("MYPASSWORD".into(), "password".into()),
                ("token".into(), "mypat".into())
            ]
        );
        let plain = "export MYPASSWORD=password\nQUOTED='a b'\n";
        assert_eq!(
            imported(plain).unwrap(),
            [
                ("MYPASSWORD".into(), "password".into()),
                ("QUOTED".into(), "a b".into())
            ]
        );
    }

    #[test]
    fn expressions_are_rendered_like_encode_env_does() {
        let text = "SECRET_P={{ \"password\" | base64encode }}\nPLAIN={{ 'x' | upper }}\n";
        assert_eq!(
            imported(text).unwrap(),
            [
                ("P".into(), "password".into()),
                ("PLAIN".into(), "X".into())
            ]
        );
    }

    #[test]
    fn a_bad_line_is_named_without_its_value() {
        let error = imported("OK=1\nSECRET_BAD=not base64 hunter2\n").unwrap_err();
        assert!(
            error.contains("line 2") && error.contains("SECRET_BAD"),
            "{error}"
        );
        assert!(!error.contains("hunter2"), "{error}");
        let error = imported("bad/key=hunter2\n");
        // The parser or the key check refuses it, never echoing the value.
        assert!(!error.unwrap_err().contains("hunter2"));
    }
}
