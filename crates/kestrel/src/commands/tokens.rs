//! `kestrel tokens create|list|revoke`: API tokens for the server's `Bearer` authentication,
//! printed once at creation and stored as their SHA-256 only.

use super::principals::{GrantArgs, ListArgs, Row, print_principals, reach};
use crate::error::CliError;
use crate::output::{note, timestamp};
use crate::settings::Settings;
use crate::sources::call;
use crate::store::StoreAccess;
use clap::{Args, Subcommand};
use kestrel_server::NewToken;
use kestrel_store::TokenRecord;
use std::io::Write as _;

#[derive(Debug, Subcommand)]
pub(crate) enum TokensCommand {
    /// Creates a token and prints it once (only its hash is kept).
    #[command(
        after_help = "Examples:\n  kestrel tokens create ci --namespace company.team --secrets read"
    )]
    Create(CreateArgs),
    /// Lists tokens: name, namespaces, secret access, revocation (never the tokens).
    #[command(after_help = "Examples:\n  kestrel tokens list")]
    List(ListArgs),
    /// Revokes a token.
    #[command(after_help = "Examples:\n  kestrel tokens revoke ci")]
    Revoke(NameArgs),
}

#[derive(Debug, Args)]
pub(crate) struct CreateArgs {
    /// The token's name.
    name: String,
    #[command(flatten)]
    grant: GrantArgs,
}

#[derive(Debug, Args)]
pub(crate) struct NameArgs {
    /// The token's name.
    name: String,
}

pub(crate) fn run(command: &TokensCommand, settings: &Settings) -> Result<u8, CliError> {
    let store = StoreAccess::new(settings)?.open()?;
    match command {
        TokensCommand::Create(args) => {
            let (namespaces, secrets) = args.grant.grant(store.as_ref(), settings)?;
            let token = NewToken::generate().map_err(CliError::failed)?;
            let record = TokenRecord {
                name: args.name.clone(),
                namespaces,
                secrets,
                created_at: chrono::Utc::now(),
                revoked_at: None,
            };
            call(store.add_token(&record, &token.hash()))?;
            note(&format!(
                "token '{}' created (namespaces: {}, secrets: {secrets}); it is shown once, keep it now",
                record.name,
                reach(&record.namespaces)
            ));
            let _ = writeln!(std::io::stdout().lock(), "{}", token.expose_secret());
            Ok(0)
        }
        TokensCommand::List(args) => {
            let rows = call(store.tokens())?
                .iter()
                .map(|t| Row {
                    revoked: Some(t.revoked_at.as_ref().map(timestamp).unwrap_or_default()),
                    ..Row::new(&t.name, &t.namespaces, t.secrets, &t.created_at)
                })
                .collect();
            let header = ["NAME", "NAMESPACES", "SECRETS", "CREATED", "REVOKED"];
            print_principals(args, &header, rows);
            Ok(0)
        }
        TokensCommand::Revoke(args) => {
            if !call(store.revoke_token(&args.name))? {
                return Err(CliError::failed(format!(
                    "no live token named '{}'",
                    args.name
                )));
            }
            note(&format!("token '{}' revoked", args.name));
            Ok(0)
        }
    }
}
