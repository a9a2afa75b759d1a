//! `secrets list` and `secrets audit`: what a namespace sees, and who read or changed what.
//! Neither ever shows a value.

use super::Secrets;
use super::call;
use crate::error::CliError;
use crate::output::{ListFormat, print_listing, timestamp};
use crate::store::store_error;
use clap::Args;
use kestrel_store::{
    AuditEntry, AuditFilter, DEFAULT_TENANT, SecretInfo, validate_key, validate_namespace,
};
use serde_json::{Value, json};
use std::collections::BTreeMap;

#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// The namespace, e.g. company.team.project.
    namespace: String,
    /// How to print the listing.
    #[arg(long, value_enum, default_value_t)]
    output: ListFormat,
}

#[derive(Debug, Args)]
pub(crate) struct AuditArgs {
    /// Only this namespace's entries (default: every namespace's, and the keyring's).
    namespace: Option<String>,
    /// Only this key's entries.
    #[arg(long)]
    key: Option<String>,
    /// At most this many entries, newest first.
    #[arg(long, default_value_t = 100)]
    limit: usize,
    /// How to print the listing.
    #[arg(long, value_enum, default_value_t)]
    output: ListFormat,
    /// Check every row of the trail against its chain instead of listing: names each row
    /// altered or removed since it was written, and exits 1 when any was.
    #[arg(long, conflicts_with_all = ["namespace", "key"])]
    verify: bool,
}

/// The keys `namespace` sees: its own, then its parents' that it does not shadow, each with
/// the namespace it comes from, sorted by key.
pub(crate) fn list(args: &ListArgs, access: &Secrets<'_>) -> Result<u8, CliError> {
    validate_namespace(&args.namespace).map_err(store_error)?;
    let mut seen: BTreeMap<String, SecretInfo> = BTreeMap::new();
    if let Some(store) = access.existing()? {
        for level in namespace_walk(&args.namespace) {
            for info in call(store.list(DEFAULT_TENANT, level))? {
                // The walk goes from the namespace up: the first one found shadows the rest.
                seen.entry(info.key.clone()).or_insert(info);
            }
        }
    }
    let header = ["KEY", "NAMESPACE", "VERSION", "UPDATED", "DESCRIPTION"];
    let rows: Vec<Vec<String>> = seen
        .values()
        .map(|info| {
            vec![
                info.key.clone(),
                info.namespace.clone(),
                info.version.to_string(),
                timestamp(&info.updated_at),
                info.meta.description.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let json: Vec<Value> = seen
        .values()
        .map(|info| listed_json(info, &args.namespace))
        .collect();
    print_listing(args.output, &header, &rows, &Value::Array(json));
    Ok(0)
}

/// A listed key as JSON: its metadata (Kestra's shape) and whether it is inherited.
fn listed_json(info: &SecretInfo, namespace: &str) -> Value {
    let mut value = serde_json::to_value(info).unwrap_or_else(|_| json!({}));
    value["inherited"] = json!(info.namespace != namespace);
    value
}

/// `a.b.c`, `a.b`, `a`.
fn namespace_walk(namespace: &str) -> impl Iterator<Item = &str> {
    let ends = namespace
        .match_indices('.')
        .map(|(at, _)| at)
        .chain([namespace.len()]);
    let levels: Vec<&str> = ends.filter_map(|end| namespace.get(..end)).collect();
    levels.into_iter().rev()
}

/// The audit trail, newest first.
pub(crate) fn audit(args: &AuditArgs, access: &Secrets<'_>) -> Result<u8, CliError> {
    if args.verify {
        return verify_audit(access);
    }
    if let Some(namespace) = &args.namespace {
        validate_namespace(namespace).map_err(store_error)?;
    }
    if let Some(key) = &args.key {
        validate_key(key).map_err(store_error)?;
    }
    let filter = AuditFilter {
        tenant: DEFAULT_TENANT.to_owned(),
        namespace: args.namespace.clone(),
        key: args.key.clone(),
        limit: args.limit,
    };
    let entries = match access.existing()? {
        Some(store) => call(store.audit(&filter))?,
        None => Vec::new(),
    };
    let header = ["TIME", "ACTOR", "ACTION", "NAMESPACE", "KEY", "VERSION"];
    let rows: Vec<Vec<String>> = entries.iter().map(audit_row).collect();
    let json = serde_json::to_value(&entries)
        .map_err(|error| CliError::failed("cannot show the audit trail").caused_by(error))?;
    print_listing(args.output, &header, &rows, &json);
    Ok(0)
}

/// Checks the audit trail's chain: 0 when it holds, 1 (each break named) when it does not.
fn verify_audit(access: &Secrets<'_>) -> Result<u8, CliError> {
    let Some(store) = access.existing()? else {
        println!("The audit trail is empty: nothing to verify.");
        return Ok(0);
    };
    let report = call(store.verify_audit())?;
    for broken in &report.breaks {
        println!("BROKEN: {broken}");
    }
    let before = match report.unchained {
        0 => String::new(),
        n => format!(" ({n} older rows, from before the trail was chained, are not covered)"),
    };
    if report.breaks.is_empty() {
        println!(
            "The audit trail holds: {} rows verified{before}.",
            report.chained
        );
        Ok(0)
    } else {
        println!(
            "The audit trail was tampered with: {} break(s) in {} chained rows{before}.",
            report.breaks.len(),
            report.chained
        );
        Ok(1)
    }
}

fn audit_row(entry: &AuditEntry) -> Vec<String> {
    let or_dash = |value: Option<&str>| value.unwrap_or("-").to_owned();
    vec![
        timestamp(&entry.at),
        entry.actor.to_string(),
        entry.action.to_string(),
        or_dash(entry.namespace.as_deref()),
        or_dash(entry.key.as_deref()),
        entry
            .version
            .map_or_else(|| "-".to_owned(), |version| version.to_string()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_walk_goes_from_the_namespace_to_its_root() {
        assert_eq!(
            namespace_walk("a.b.c").collect::<Vec<_>>(),
            ["a.b.c", "a.b", "a"]
        );
        assert_eq!(namespace_walk("solo").collect::<Vec<_>>(), ["solo"]);
    }
}
