//! Namespace secrets (README, "A team server"): create or update (values write-only), list metadata (own,
//! across namespaces, inherited), change metadata, delete. Every change is audited with the
//! caller as actor; no answer ever holds a value.

use crate::auth::Caller;
use crate::error::AppError;
use crate::extract::{Json, Paging, Params, Path, Query};
use crate::namespaces::with_ancestors;
use crate::state::AppState;
use crate::view::secret_json;
use axum::extract::State;
use axum::http::StatusCode;
use kestrel_secrets::SecretValue;
use kestrel_store::{SecretAccess, SecretId, SecretInfo, SecretMeta, Tag, validate_namespace};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::fmt;
use zeroize::Zeroizing;

/// The body of `PUT .../secrets`. `Debug` leaves the value out.
#[derive(Deserialize)]
pub(super) struct NewSecret {
    key: String,
    #[serde(deserialize_with = "zeroizing")]
    value: Zeroizing<String>,
    description: Option<String>,
    tags: Option<Vec<Tag>>,
}

impl fmt::Debug for NewSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewSecret")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

fn zeroizing<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Zeroizing<String>, D::Error> {
    String::deserialize(d).map(Zeroizing::new)
}

/// The body of `PATCH .../secrets/{key}`: metadata only.
#[derive(Debug, Deserialize)]
pub(super) struct Metadata {
    description: Option<String>,
    #[serde(default)]
    tags: Vec<Tag>,
    /// Refused when present: a value is never changed by this route.
    value: Option<serde::de::IgnoredAny>,
}

fn writable(state: &AppState, caller: &Caller, namespace: &str) -> Result<(), AppError> {
    caller.require_secrets(namespace, SecretAccess::Write)?;
    if let Some(refusal) = state.secrets_read_only(namespace) {
        return Err(AppError::Conflict(refusal));
    }
    Ok(())
}

async fn meta_of(state: &AppState, id: &SecretId) -> Result<Value, AppError> {
    let info = state
        .0
        .secrets
        .get_meta(id)
        .await?
        .ok_or_else(|| id.not_found(None))?;
    Ok(secret_json(&info))
}

pub(super) async fn put(
    State(state): State<AppState>,
    caller: Caller,
    Path(namespace): Path<String>,
    Json(secret): Json<NewSecret>,
) -> Result<axum::Json<Value>, AppError> {
    writable(&state, &caller, &namespace)?;
    let id = SecretId::new(&state.options().tenant, &namespace, &secret.key)?;
    let meta = (secret.description.is_some() || secret.tags.is_some()).then(|| SecretMeta {
        description: secret.description.clone(),
        tags: secret.tags.clone().unwrap_or_default(),
    });
    let value = SecretValue::new(secret.value.to_string());
    state
        .0
        .secrets
        .set(caller.actor(), &id, &value, meta.as_ref())
        .await?;
    Ok(axum::Json(json!([meta_of(&state, &id).await?])))
}

/// `{"readOnly", "results", "total"}` for the secrets of `namespaces` the caller may read.
async fn listing(
    state: &AppState,
    namespaces: &[String],
    paging: Paging,
    read_only: bool,
) -> Result<Value, AppError> {
    let tenant = &state.options().tenant;
    let mut infos: Vec<SecretInfo> = Vec::new();
    for namespace in namespaces {
        infos.extend(state.0.secrets.list(tenant, namespace).await?);
    }
    let total = infos.len();
    let results: Vec<Value> = paging.slice(infos).iter().map(secret_json).collect();
    Ok(json!({"readOnly": read_only, "results": results, "total": total}))
}

pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(namespace): Path<String>,
    Query(params): Query<Params>,
) -> Result<axum::Json<Value>, AppError> {
    caller.require_secrets(&namespace, SecretAccess::Read)?;
    validate_namespace(&namespace)?;
    let paging = Paging::from_params(&params)?;
    let read_only = state.secrets_read_only(&namespace).is_some();
    Ok(axum::Json(
        listing(&state, &[namespace], paging, read_only).await?,
    ))
}

/// `GET /api/v1/main/secrets?filters[namespace][EQUALS]=NS`: across the namespaces the
/// caller may read, or the one asked for.
pub(super) async fn search(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<Params>,
) -> Result<axum::Json<Value>, AppError> {
    let paging = Paging::from_params(&params)?;
    let tenant = &state.options().tenant;
    let namespaces: Vec<String> = match params
        .get("filters[namespace][EQUALS]")
        .filter(|ns| !ns.is_empty())
    {
        Some(namespace) => {
            caller.require_secrets(namespace, SecretAccess::Read)?;
            validate_namespace(namespace)?;
            vec![namespace.clone()]
        }
        None => {
            caller.require_secret_access(SecretAccess::Read)?;
            state
                .0
                .secrets
                .list_namespaces(tenant)
                .await?
                .into_iter()
                .filter(|ns| caller.reaches(ns))
                .collect()
        }
    };
    // Across namespaces: the mode of the default backend (a namespace of its own says it
    // when listed alone).
    let read_only = match namespaces.as_slice() {
        [one] => state.secrets_read_only(one),
        _ => state.secrets_read_only(""),
    }
    .is_some();
    Ok(axum::Json(
        listing(&state, &namespaces, paging, read_only).await?,
    ))
}

/// Each ancestor namespace with the keys it holds (its readable ones), nearest first.
pub(super) async fn inherited(
    State(state): State<AppState>,
    caller: Caller,
    Path(namespace): Path<String>,
) -> Result<axum::Json<Value>, AppError> {
    caller.require_secrets(&namespace, SecretAccess::Read)?;
    validate_namespace(&namespace)?;
    let tenant = &state.options().tenant;
    let mut inherited = Map::new();
    for ancestor in with_ancestors(&namespace).skip(1) {
        let keys: Vec<Value> = state
            .0
            .secrets
            .list(tenant, ancestor)
            .await?
            .into_iter()
            .map(|info| json!(info.key))
            .collect();
        if !keys.is_empty() {
            inherited.insert(ancestor.to_owned(), Value::Array(keys));
        }
    }
    Ok(axum::Json(Value::Object(inherited)))
}

pub(super) async fn patch(
    State(state): State<AppState>,
    caller: Caller,
    Path((namespace, key)): Path<(String, String)>,
    Json(metadata): Json<Metadata>,
) -> Result<axum::Json<Value>, AppError> {
    writable(&state, &caller, &namespace)?;
    if metadata.value.is_some() {
        return Err(AppError::invalid(
            "PATCH changes metadata only; set a new value with PUT .../secrets",
        ));
    }
    let id = SecretId::new(&state.options().tenant, &namespace, &key)?;
    let meta = SecretMeta {
        description: metadata.description,
        tags: metadata.tags,
    };
    state
        .0
        .secrets
        .update_meta(caller.actor(), &id, &meta)
        .await?;
    Ok(axum::Json(json!([meta_of(&state, &id).await?])))
}

pub(super) async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path((namespace, key)): Path<(String, String)>,
) -> Result<StatusCode, AppError> {
    writable(&state, &caller, &namespace)?;
    let id = SecretId::new(&state.options().tenant, &namespace, &key)?;
    state.0.secrets.delete(caller.actor(), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
