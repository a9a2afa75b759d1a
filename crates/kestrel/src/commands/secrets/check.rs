//! `secrets check [FLOW...]`: every `secret()` key a flow uses, looked for (never read) in its
//! namespace's backend, its parents and the environment, before anything runs; so switching
//! backends never fails at run time first. Exit 1 when a key is missing or refused.

use super::{Secrets, call};
use crate::commands::read_text;
use crate::error::{CliError, EXIT_FAILED};
use crate::output::{ListFormat, print_listing};
use clap::Args;
use kestrel_expr::{SecretReference, secret_references};
use kestrel_secrets::{EnvBackend, ReadPolicy, Reader, with_ancestors};
use kestrel_store::{DEFAULT_TENANT, SecretId, SecretStore};
use serde_json::json;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// Flow files (default: every flow the store holds, as `kestrel server` saved them).
    flows: Vec<PathBuf>,
    /// A dotenv file of SECRET_* values that count as present (overrides secret.env-file).
    #[arg(long, value_name = "FILE")]
    env_file: Option<PathBuf>,
    /// How to print the report.
    #[arg(long, value_enum, default_value_t)]
    output: ListFormat,
}

/// A flow to check: where it comes from, and its source.
struct Source {
    origin: String,
    text: String,
}

/// One `secret()` key of one flow, and what the check found.
struct Finding {
    flow: String,
    key: String,
    namespace: String,
    found: Result<String, String>,
}

pub(crate) fn check(args: &CheckArgs, access: &Secrets<'_>) -> Result<u8, CliError> {
    let store = access.existing()?;
    let env = crate::sources::load_env(access.settings, args.env_file.as_deref())?.backend;
    let policy = access.settings.engine_config()?.policy;
    let lookup = Lookup {
        store: store.as_deref(),
        env: &env,
        policy: &policy,
    };
    let mut findings = Vec::new();
    for source in sources(args, access)? {
        findings.extend(lookup.flow(&source)?);
    }
    report(args.output, &findings);
    let missing = findings.iter().any(|finding| finding.found.is_err());
    Ok(if missing { EXIT_FAILED } else { 0 })
}

/// The flow files given, or else every flow of the store.
fn sources(args: &CheckArgs, access: &Secrets<'_>) -> Result<Vec<Source>, CliError> {
    if !args.flows.is_empty() {
        return args
            .flows
            .iter()
            .map(|path| {
                let text = read_text(path)?;
                Ok(Source {
                    origin: path.display().to_string(),
                    text,
                })
            })
            .collect();
    }
    let Some(home) = access.open_existing()? else {
        return Ok(Vec::new());
    };
    let records = call(home.list_flows(DEFAULT_TENANT, None))?;
    Ok(records
        .into_iter()
        .filter(|record| !record.deleted)
        .map(|record| Source {
            origin: format!("stored flow {}.{}", record.namespace, record.id),
            text: record.source,
        })
        .collect())
}

/// Where keys are looked for.
struct Lookup<'a> {
    store: Option<&'a dyn SecretStore>,
    env: &'a EnvBackend,
    policy: &'a ReadPolicy,
}

impl Lookup<'_> {
    /// The findings of one flow; exit 2 for a flow that does not parse.
    fn flow(&self, source: &Source) -> Result<Vec<Finding>, CliError> {
        let flow = kestrel_flow::parse_flow(&source.text).map_err(|violations| {
            let lines = crate::commands::violation_lines(source.origin.as_ref(), &violations);
            CliError::usage_lines(lines)
        })?;
        let name = format!("{}.{}", flow.namespace, flow.id);
        let mut findings = Vec::new();
        for template in strings_of(&source.text) {
            let references = secret_references(&template).map_err(|error| {
                CliError::usage(format!("{}: flow {name}: {error}", source.origin))
            })?;
            for reference in references {
                if let SecretReference::Literal { key, namespace, .. } = reference {
                    let namespace = namespace.unwrap_or_else(|| flow.namespace.clone());
                    let found = self.find(&flow.namespace, &namespace, &key)?;
                    findings.push(Finding {
                        flow: name.clone(),
                        key,
                        namespace,
                        found,
                    });
                }
            }
        }
        Ok(findings)
    }

    /// Where `key` would be found from `namespace` by a flow of `flow_namespace`, or why not.
    fn find(
        &self,
        flow_namespace: &str,
        namespace: &str,
        key: &str,
    ) -> Result<Result<String, String>, CliError> {
        let reader = Reader::Trigger {
            namespace: flow_namespace.to_owned(),
            flow_id: String::new(),
        };
        if let Err(refusal) = self.policy.check(&reader, namespace) {
            return Ok(Err(format!("refused: {refusal}")));
        }
        let mut looked = Vec::new();
        if let Some(store) = self.store {
            for level in with_ancestors(namespace) {
                if self.policy.check(&reader, level).is_err() {
                    continue;
                }
                let Ok(id) = SecretId::main(level, key) else {
                    continue;
                };
                let backend = store.backend_name(level);
                if call(store.get_meta(&id))?.is_some_and(|info| info.readable) {
                    return Ok(Ok(format!("{backend} ({level})")));
                }
                looked.push(format!("{backend} ({level})"));
            }
        }
        if self.env.lookup(key).is_some() {
            return Ok(Ok("environment".into()));
        }
        looked.push("the environment".into());
        Ok(Err(format!("missing: not in {}", looked.join(", "))))
    }
}

/// Every string of the flow's YAML (templates live in strings).
fn strings_of(source: &str) -> Vec<String> {
    fn walk(value: &serde_yaml_ng::Value, out: &mut Vec<String>) {
        match value {
            serde_yaml_ng::Value::String(text) => out.push(text.clone()),
            serde_yaml_ng::Value::Sequence(items) => items.iter().for_each(|v| walk(v, out)),
            serde_yaml_ng::Value::Mapping(map) => map.values().for_each(|v| walk(v, out)),
            serde_yaml_ng::Value::Tagged(tagged) => walk(&tagged.value, out),
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let Ok(value) = serde_yaml_ng::from_str::<serde_yaml_ng::Value>(source) {
        walk(&value, &mut out);
    }
    out
}

fn report(format: ListFormat, findings: &[Finding]) {
    let header = ["FLOW", "KEY", "NAMESPACE", "FOUND IN"];
    let rows: Vec<Vec<String>> = findings
        .iter()
        .map(|f| {
            let found = f.found.clone().unwrap_or_else(|missing| missing);
            vec![f.flow.clone(), f.key.clone(), f.namespace.clone(), found]
        })
        .collect();
    let json: Vec<_> = findings
        .iter()
        .map(|f| match &f.found {
            Ok(found) => {
                json!({"flow": f.flow, "key": f.key, "namespace": f.namespace, "foundIn": found})
            }
            Err(missing) => {
                json!({"flow": f.flow, "key": f.key, "namespace": f.namespace, "missing": missing})
            }
        })
        .collect();
    print_listing(format, &header, &rows, &json!(json));
}
