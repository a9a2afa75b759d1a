//! What `kestrel users` and `kestrel tokens` share: the namespaces and secret access a user or
//! token is given (no `--namespace` reaches every namespace; the first user or token
//! gets `--secrets write` unless told otherwise, later ones `none`), and the store they live in.

use crate::error::CliError;
use crate::output::{ListFormat, print_listing, timestamp};
use crate::settings::Settings;
use crate::sources::call;
use crate::store::store_error;
use clap::{Args, ValueEnum};
use kestrel_store::{AuthStore, SecretAccess, validate_namespace};
use serde_json::json;

/// `--namespace NS...` and `--secrets read|write|none`.
#[derive(Debug, Args)]
pub(crate) struct GrantArgs {
    /// A namespace reached, with its children (repeat for more; none: every namespace).
    #[arg(long = "namespace", value_name = "NS")]
    namespaces: Vec<String>,
    /// What it may do with secrets (default: write for the first user or token, else none).
    #[arg(long, value_enum, value_name = "ACCESS")]
    secrets: Option<Access>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Access {
    Read,
    Write,
    None,
}

impl GrantArgs {
    /// The namespaces, each checked; exit 2 for one that cannot exist.
    fn namespaces(&self) -> Result<Vec<String>, CliError> {
        for namespace in &self.namespaces {
            validate_namespace(namespace).map_err(store_error)?;
        }
        Ok(self.namespaces.clone())
    }

    /// The namespaces (each checked) and the secret access of a new user or token, the
    /// default access depending on whether anyone can sign in yet.
    pub(crate) fn grant(
        &self,
        store: &dyn AuthStore,
        settings: &Settings,
    ) -> Result<(Vec<String>, SecretAccess), CliError> {
        let namespaces = self.namespaces()?;
        let secrets = self.access(nobody_yet(store, settings)?);
        Ok((namespaces, secrets))
    }

    /// The access asked for, or the default: write for the first principal, else none.
    fn access(&self, first: bool) -> SecretAccess {
        match (self.secrets, first) {
            (Some(Access::Read), _) => SecretAccess::Read,
            (Some(Access::Write), _) | (None, true) => SecretAccess::Write,
            (Some(Access::None), _) | (None, false) => SecretAccess::None,
        }
    }
}

/// `--output text|json` of the listings.
#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = ListFormat::Text)]
    output: ListFormat,
}

/// Whether nobody can sign in yet: no user and no live token, in the store or the
/// configuration file.
fn nobody_yet(store: &dyn AuthStore, settings: &Settings) -> Result<bool, CliError> {
    let auth = &settings.config.server.auth;
    if !auth.users.is_empty() || !auth.tokens.is_empty() {
        return Ok(false);
    }
    let users = call(store.users())?;
    let tokens = call(store.tokens())?;
    Ok(users.is_empty() && tokens.iter().all(|t| t.revoked_at.is_some()))
}

/// Reach as listings print it.
pub(crate) fn reach(namespaces: &[String]) -> String {
    if namespaces.is_empty() {
        "*".to_owned()
    } else {
        namespaces.join(",")
    }
}

/// Prints users or tokens: name, namespaces, secret access, creation (and revocation).
pub(crate) fn print_principals(args: &ListArgs, header: &[&str], rows: Vec<Row>) {
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            let mut cells = vec![
                row.name.clone(),
                reach(&row.namespaces),
                row.secrets.to_string(),
                row.created.clone(),
            ];
            cells.extend(row.revoked.clone());
            cells
        })
        .collect();
    let json: Vec<serde_json::Value> = rows
        .iter()
        .map(|row| {
            let mut value = json!({
                "name": row.name,
                "namespaces": row.namespaces,
                "secrets": row.secrets.as_str(),
                "createdAt": row.created,
            });
            if let Some(revoked) = &row.revoked {
                value["revokedAt"] = json!(Some(revoked).filter(|r| !r.is_empty()));
            }
            value
        })
        .collect();
    print_listing(args.output, header, &table, &json!(json));
}

/// One user or token as listed.
pub(crate) struct Row {
    pub(crate) name: String,
    pub(crate) namespaces: Vec<String>,
    pub(crate) secrets: SecretAccess,
    pub(crate) created: String,
    /// Tokens only: when revoked, empty if live.
    pub(crate) revoked: Option<String>,
}

impl Row {
    pub(crate) fn new(
        name: &str,
        namespaces: &[String],
        secrets: SecretAccess,
        created: &chrono::DateTime<chrono::Utc>,
    ) -> Self {
        Self {
            name: name.to_owned(),
            namespaces: namespaces.to_vec(),
            secrets,
            created: timestamp(created),
            revoked: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(secrets: Option<Access>) -> GrantArgs {
        GrantArgs {
            namespaces: Vec::new(),
            secrets,
        }
    }

    #[test]
    fn the_first_principal_writes_secrets_unless_told_otherwise() {
        assert_eq!(grant(None).access(true), SecretAccess::Write);
        assert_eq!(grant(None).access(false), SecretAccess::None);
        assert_eq!(grant(Some(Access::Read)).access(true), SecretAccess::Read);
        assert_eq!(
            grant(Some(Access::Write)).access(false),
            SecretAccess::Write
        );
        assert_eq!(reach(&[]), "*");
    }

    #[test]
    fn a_namespace_that_cannot_exist_is_a_usage_error() {
        let args = GrantArgs {
            namespaces: vec!["Bad NS".into()],
            secrets: None,
        };
        assert_eq!(args.namespaces().unwrap_err().code(), 2);
    }
}
