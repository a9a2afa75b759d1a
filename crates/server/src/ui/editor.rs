//! What the flow editor's script asks while someone types (`static/editor.js`, CodeMirror):
//! the violations of the YAML at their lines, for its inline markers, and what it completes
//! (task types and their properties, a flow's keys, the secret keys a flow of the namespace
//! reads). Both answer JSON; neither changes anything, and no secret value is ever in them.

use super::Ui;
use super::namespaces::checked;
use super::page::UiError;
use super::secrets::key_sources;
use super::session::Current;
use crate::extract::Path;
use axum::Json;
use axum::extract::State;
use kestrel_store::SecretAccess;
use serde::Deserialize;
use serde_json::{Value, json};

/// The editor's text, checked as Save checks it.
#[derive(Deserialize)]
pub(super) struct Draft {
    source: String,
}

/// `{"diagnostics": [{"line", "column", "message"}]}`: every violation of the draft, the line
/// 1-based (null when it is about the whole flow).
pub(super) async fn check(_current: Current, Json(draft): Json<Draft>) -> Json<Value> {
    let violations = crate::flows::check(&draft.source)
        .await
        .err()
        .unwrap_or_default();
    let diagnostics: Vec<Value> = violations
        .iter()
        .map(|v| json!({"line": v.line, "column": v.column, "message": v.message}))
        .collect();
    Json(json!({ "diagnostics": diagnostics }))
}

/// `{"tasks": [{"type", "properties"}], "keys": [...], "secrets": [...]}` for a flow of
/// `namespace`. The secret keys are those the caller may see (none without secret access):
/// the namespace's, its parents' and the environment's.
pub(super) async fn hints(
    State(ui): State<Ui>,
    current: Current,
    Path(namespace): Path<String>,
) -> Result<Json<Value>, UiError> {
    checked(&current, &namespace)?;
    let tasks: Vec<Value> = kestrel_flow::task_catalog()
        .map(|(class, properties)| json!({"type": class, "properties": properties}))
        .collect();
    let may_read = current
        .caller
        .require_secrets(&namespace, SecretAccess::Read)
        .is_ok();
    let mut secrets: Vec<String> = Vec::new();
    if may_read {
        let (_, sources) = key_sources(&ui, &namespace).await?;
        secrets = sources.into_iter().flat_map(|(_, keys)| keys).collect();
        secrets.sort();
        secrets.dedup();
    }
    Ok(Json(json!({
        "tasks": tasks,
        "keys": kestrel_flow::FLOW_PROPERTIES,
        "secrets": secrets,
    })))
}
