//! The audit trail: who read or changed which secret, when, newest first; for the namespaces
//! the caller reaches and may read secrets of.

use super::Ui;
use super::page::{self, UiError, when};
use super::session::Current;
use axum::extract::{Query, State};
use axum::response::Response;
use kestrel_store::{AuditFilter, SecretAccess, validate_namespace};
use minijinja::{Value, context};
use serde::Deserialize;

/// Entries shown at most.
const SHOWN: usize = 200;

#[derive(Debug, Deserialize)]
pub(super) struct Filter {
    namespace: Option<String>,
    key: Option<String>,
}

pub(super) async fn page(
    State(ui): State<Ui>,
    current: Current,
    Query(filter): Query<Filter>,
) -> Result<Response, UiError> {
    let caller = &current.caller;
    let given = |text: Option<String>| text.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty());
    let namespace = given(filter.namespace);
    let key = given(filter.key);
    match &namespace {
        Some(ns) => {
            validate_namespace(ns)?;
            caller.require_secrets(ns, SecretAccess::Read)?;
        }
        None => caller.require_secret_access(SecretAccess::Read)?,
    }
    let query = AuditFilter {
        tenant: ui.app.options().tenant.clone(),
        namespace: namespace.clone(),
        key: key.clone(),
        limit: SHOWN,
    };
    let entries: Vec<Value> = ui
        .app
        .secrets()
        .audit(&query)
        .await?
        .into_iter()
        // Keyring actions name no namespace: for those who reach every namespace only.
        .filter(|e| match &e.namespace {
            Some(ns) => caller.reaches(ns),
            None => caller.within().is_empty(),
        })
        .map(|e| {
            context! {
                at => when(e.at),
                actor => e.actor.to_string(),
                action => e.action.as_str(),
                namespace => e.namespace,
                key => e.key,
                version => e.version,
            }
        })
        .collect();
    let values = context! {
        title => "Audit trail",
        nav => "audit",
        entries,
        shown => SHOWN,
        filter => context! { namespace, key },
    };
    Ok(page::render(&current, "audit.html", values))
}
