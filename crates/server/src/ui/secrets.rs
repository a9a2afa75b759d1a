//! A namespace's Secrets tab (README, "A team server"): its own keys, the keys it inherits (with the namespace
//! each comes from), the environment's keys as read-only global ones; add, replace a value,
//! edit description and tags, delete after a confirmation, copy `{{ secret('KEY') }}`.
//!
//! Values are write-only: they arrive from a password field and go to the store; no page
//! reads one back, not even as a placeholder. Every change is made as the signed-in caller,
//! so the audit trail names them.

use super::Ui;
use super::namespaces::{checked, tab_values};
use super::page::{self, Notice, UiError, when};
use super::session::Current;
use crate::extract::Path;
use crate::namespaces::with_ancestors;
use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse as _, Redirect, Response};
use kestrel_secrets::{SecretBackend as _, SecretValue};
use kestrel_store::{BackendCheck, SecretAccess, SecretId, SecretInfo, SecretMeta, Tag};
use minijinja::{Value, context};
use serde::Deserialize;
use std::fmt;
use zeroize::Zeroizing;

/// A value field of a form. `Debug` hides it; it is zeroized on drop.
#[derive(Default, Deserialize)]
#[serde(transparent)]
pub(super) struct Hidden(#[serde(deserialize_with = "zeroizing")] Zeroizing<String>);

impl fmt::Debug for Hidden {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("******")
    }
}

fn zeroizing<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Zeroizing<String>, D::Error> {
    String::deserialize(d).map(Zeroizing::new)
}

impl Hidden {
    /// The value, moved out (what was held is left empty); 422 when there is none.
    fn take(&mut self) -> Result<SecretValue, UiError> {
        if self.0.is_empty() {
            return Err(invalid("Enter a value: a secret cannot be empty."));
        }
        Ok(SecretValue::new(std::mem::take(&mut *self.0)))
    }
}

/// The "Add a secret" form.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Added {
    #[serde(default)]
    key: String,
    #[serde(default)]
    value: Hidden,
    #[serde(default)]
    description: String,
    #[serde(default)]
    tags: String,
}

/// The "Replace the value" form.
#[derive(Debug, Deserialize)]
pub(super) struct Replaced {
    #[serde(default)]
    value: Hidden,
}

/// The "Description and tags" form.
#[derive(Debug, Deserialize)]
pub(super) struct Described {
    #[serde(default)]
    description: String,
    #[serde(default)]
    tags: String,
}

/// The delete form: `confirmed=yes` once the person said so (the script's dialog, or the
/// confirmation page without a script).
#[derive(Debug, Deserialize)]
pub(super) struct Deleted {
    confirmed: Option<String>,
}

fn invalid(message: impl Into<String>) -> UiError {
    UiError::new(StatusCode::UNPROCESSABLE_ENTITY, message)
}

/// Tags as written in the form: one `key=value` a line.
fn parse_tags(text: &str) -> Result<Vec<Tag>, UiError> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(|line| match line.split_once('=') {
            Some((key, value)) if !key.trim().is_empty() => Ok(Tag {
                key: key.trim().to_owned(),
                value: value.trim().to_owned(),
            }),
            _ => Err(invalid(format!(
                "Tag '{line}' is not key=value: write one tag a line, as env=prod."
            ))),
        })
        .collect()
}

/// Tags as the form writes them.
fn tags_text(tags: &[Tag]) -> String {
    tags.iter()
        .map(|t| format!("{}={}", t.key, t.value))
        .collect::<Vec<_>>()
        .join("\n")
}

fn meta_of(description: &str, tags: &str) -> Result<SecretMeta, UiError> {
    let description = description.trim();
    Ok(SecretMeta {
        description: (!description.is_empty()).then(|| description.to_owned()),
        tags: parse_tags(tags)?,
    })
}

/// The backend holding `namespace`'s secrets and its state: the route serving the namespace
/// (the longest configured one it is within), else the default backend.
async fn backend_of(ui: &Ui, namespace: &str) -> BackendCheck {
    let checks = ui.app.secrets().check_backends().await;
    let serves = |check: &&BackendCheck| {
        check
            .namespace
            .as_deref()
            .is_none_or(|prefix| kestrel_secrets::is_within(namespace, prefix))
    };
    checks
        .iter()
        .filter(serves)
        .max_by_key(|check| check.namespace.as_ref().map_or(0, String::len))
        .cloned()
        .unwrap_or_else(|| BackendCheck::up(ui.app.secrets().backend_name(namespace)))
}

/// Why the caller may not change `namespace`'s secrets here, if it may not.
fn read_only_reason(ui: &Ui, current: &Current, namespace: &str) -> Option<String> {
    if let Err(refused) = current
        .caller
        .require_secrets(namespace, SecretAccess::Write)
    {
        return Some(refused.to_string());
    }
    ui.app.secrets_read_only(namespace)
}

/// 403 unless the caller may change `namespace`'s secrets.
fn writable(ui: &Ui, current: &Current, namespace: &str) -> Result<(), UiError> {
    checked(current, namespace)?;
    match read_only_reason(ui, current, namespace) {
        Some(reason) => Err(UiError::new(StatusCode::FORBIDDEN, reason)),
        None => Ok(()),
    }
}

/// 403 unless the caller may read `namespace`'s secrets (their keys).
fn readable(current: &Current, namespace: &str) -> Result<(), UiError> {
    checked(current, namespace)?;
    current
        .caller
        .require_secrets(namespace, SecretAccess::Read)?;
    Ok(())
}

/// The expression that reads `key`, to copy into a flow.
fn expression(key: &str) -> String {
    format!("{{{{ secret('{key}') }}}}")
}

/// A secret of the namespace as its own page shows it.
fn own_row(namespace: &str, info: &SecretInfo) -> Value {
    context! {
        key => info.key,
        description => info.meta.description,
        tags => tags_of(info),
        updated => when(info.updated_at),
        version => info.version,
        expression => expression(&info.key),
        link => format!("/ui/namespaces/{namespace}/secrets/{}", info.key),
    }
}

/// The tags of a secret as `key=value` texts.
fn tags_of(info: &SecretInfo) -> Vec<String> {
    info.meta
        .tags
        .iter()
        .map(|t| format!("{}={}", t.key, t.value))
        .collect()
}

/// Where global keys come from, as the table names it.
const ENVIRONMENT: &str = "environment";

/// One row per key and source, sorted by key, the source `secret()` uses first: each says
/// where it comes from, which sources it overrides (the one used) or which one overrides it.
/// The namespace's own rows carry their description, tags, version and edit link.
fn key_rows(namespace: &str, own: &[SecretInfo], sources: &[(String, Vec<String>)]) -> Vec<Value> {
    let mut keys: Vec<&String> = sources.iter().flat_map(|(_, keys)| keys).collect();
    keys.sort();
    keys.dedup();
    let mut rows = Vec::new();
    for key in keys {
        let holders: Vec<&str> = sources
            .iter()
            .filter(|(_, keys)| keys.contains(key))
            .map(|(source, _)| source.as_str())
            .collect();
        for (rank, source) in holders.iter().enumerate() {
            let info = (*source == namespace)
                .then(|| own.iter().find(|info| &info.key == key))
                .flatten();
            rows.push(context! {
                key,
                source,
                kind => match *source {
                    s if s == namespace => "own",
                    ENVIRONMENT => "global",
                    _ => "inherited",
                },
                overrides => (rank == 0 && holders.len() > 1).then(|| holders[1..].join(", ")),
                overridden_by => (rank > 0).then(|| holders[0]),
                description => info.and_then(|i| i.meta.description.clone()),
                tags => info.map(tags_of),
                updated => info.map(|i| when(i.updated_at)),
                version => info.map(|i| i.version),
                expression => expression(key),
                link => info.map(|i| format!("/ui/namespaces/{namespace}/secrets/{}", i.key)),
            });
        }
    }
    rows
}

/// What the form shows again after a refusal: never the value.
struct Kept<'a> {
    key: &'a str,
    description: &'a str,
    tags: &'a str,
    error: Option<String>,
}

/// The namespace's own secrets, and every key a flow of the namespace reads by source, in the
/// order `secret()` looks: the namespace, each parent closest first, then the server's
/// environment.
pub(super) async fn key_sources(
    ui: &Ui,
    namespace: &str,
) -> Result<(Vec<SecretInfo>, Vec<(String, Vec<String>)>), UiError> {
    let store = ui.app.secrets();
    let tenant = &ui.app.options().tenant;
    let own = store.list(tenant, namespace).await?;
    let mut sources: Vec<(String, Vec<String>)> = vec![(
        namespace.to_owned(),
        own.iter().map(|info| info.key.clone()).collect(),
    )];
    for ancestor in with_ancestors(namespace).skip(1) {
        let keys = store.list(tenant, ancestor).await?;
        sources.push((
            ancestor.to_owned(),
            keys.into_iter().map(|i| i.key).collect(),
        ));
    }
    let environment = ui.app.0.engines.env().list(tenant, namespace).await;
    sources.push((ENVIRONMENT.to_owned(), environment.unwrap_or_default()));
    Ok((own, sources))
}

async fn tab_page(
    ui: &Ui,
    current: &Current,
    namespace: &str,
    status: StatusCode,
    kept: Kept<'_>,
) -> Result<Response, UiError> {
    let (own, sources) = key_sources(ui, namespace).await?;
    let keys = key_rows(namespace, &own, &sources);
    let values = context! {
        keys,
        own_count => own.len(),
        read_only => read_only_reason(ui, current, namespace),
        backend => backend_of(ui, namespace).await,
        form => context! { key => kept.key, description => kept.description, tags => kept.tags },
        error => kept.error,
        ..tab_values(namespace, "Secrets")
    };
    Ok(page::render_status(current, status, "secrets.html", values))
}

pub(super) async fn tab(
    State(ui): State<Ui>,
    current: Current,
    Path(namespace): Path<String>,
) -> Result<Response, UiError> {
    readable(&current, &namespace)?;
    let kept = Kept {
        key: "",
        description: "",
        tags: "",
        error: None,
    };
    tab_page(&ui, &current, &namespace, StatusCode::OK, kept).await
}

/// Back to the tab, with a notice.
fn done(ui: &Ui, current: &Current, namespace: &str, notice: String) -> Response {
    ui.sessions.notify(&current.id, Notice::done(notice));
    Redirect::to(&format!("/ui/namespaces/{namespace}/secrets")).into_response()
}

pub(super) async fn add(
    State(ui): State<Ui>,
    current: Current,
    Path(namespace): Path<String>,
    Form(mut added): Form<Added>,
) -> Result<Response, UiError> {
    writable(&ui, &current, &namespace)?;
    let key = added.key.trim().to_owned();
    match store_new(&ui, &current, &namespace, &key, &mut added).await {
        Ok(version) => Ok(done(
            &ui,
            &current,
            &namespace,
            format!("Secret {key} added (version {version})."),
        )),
        Err(refused) => {
            let kept = Kept {
                key: &key,
                description: &added.description,
                tags: &added.tags,
                error: Some(refused.message().to_owned()),
            };
            tab_page(&ui, &current, &namespace, refused.status(), kept).await
        }
    }
}

/// Stores a new secret; refuses a key the namespace already holds (its value is replaced
/// from its own page, on purpose).
async fn store_new(
    ui: &Ui,
    current: &Current,
    namespace: &str,
    key: &str,
    added: &mut Added,
) -> Result<u64, UiError> {
    let id = SecretId::new(&ui.app.options().tenant, namespace, key)?;
    let meta = meta_of(&added.description, &added.tags)?;
    let store = ui.app.secrets();
    if store.get_meta(&id).await?.is_some_and(|info| info.readable) {
        return Err(UiError::new(
            StatusCode::CONFLICT,
            format!("{key} already exists in {namespace}: replace its value from its page."),
        ));
    }
    let value = added.value.take()?;
    Ok(store
        .set(current.caller.actor(), &id, &value, Some(&meta))
        .await?)
}

/// The page of one secret: its metadata form, the form that replaces its value, delete.
pub(super) async fn edit(
    State(ui): State<Ui>,
    current: Current,
    Path((namespace, key)): Path<(String, String)>,
) -> Result<Response, UiError> {
    readable(&current, &namespace)?;
    let id = SecretId::new(&ui.app.options().tenant, &namespace, &key)?;
    let info = ui.app.secrets().get_meta(&id).await?.ok_or_else(|| {
        UiError::new(
            StatusCode::NOT_FOUND,
            format!("No secret {key} in {namespace}."),
        )
    })?;
    let versions = ui.app.secrets().versions(&id).await?;
    let link = format!("/ui/namespaces/{namespace}/secrets/{key}/versions");
    let values = context! {
        secret => own_row(&namespace, &info),
        readable => info.readable,
        versions => versions.iter().rev().map(|v| version_row(v, &link)).collect::<Vec<_>>(),
        tags_text => tags_text(&info.meta.tags),
        created => when(info.created_at),
        read_only => read_only_reason(&ui, &current, &namespace),
        ..tab_values(&namespace, "Secrets")
    };
    Ok(page::render(&current, "secret.html", values))
}

/// One version as the secret's page lists it, with where its actions post.
fn version_row(version: &kestrel_store::VersionInfo, link: &str) -> Value {
    let status = if version.destroyed_at.is_some() {
        "destroyed"
    } else if version.deleted_at.is_some() {
        "deleted"
    } else {
        "readable"
    };
    context! {
        number => version.version,
        created => when(version.created_at),
        by => version.created_by.to_string(),
        status,
        restore => format!("{link}/{}/restore", version.version),
        destroy => format!("{link}/{}/destroy", version.version),
    }
}

/// `restore` or `destroy` of one version.
#[derive(Debug, Deserialize)]
pub(super) struct VersionForm {
    /// For `destroy`: the key, typed to confirm.
    #[serde(default)]
    confirm: String,
}

/// Restores a deleted version, or destroys one for good once its key is typed.
pub(super) async fn version_action(
    State(ui): State<Ui>,
    current: Current,
    Path((namespace, key, version, action)): Path<(String, String, u64, String)>,
    Form(form): Form<VersionForm>,
) -> Result<Response, UiError> {
    writable(&ui, &current, &namespace)?;
    let id = SecretId::new(&ui.app.options().tenant, &namespace, &key)?;
    let page = format!("/ui/namespaces/{namespace}/secrets/{key}");
    let actor = current.caller.actor();
    let notice = match action.as_str() {
        "restore" => {
            ui.app.secrets().undelete(actor, &id, Some(version)).await?;
            Notice::done(format!("Version {version} of {key} is readable again."))
        }
        "destroy" if form.confirm.trim() != key => Notice::error(format!(
            "Not destroyed: type the key ({key}) to confirm. A destroyed version is gone for good."
        )),
        "destroy" => {
            ui.app.secrets().destroy(actor, &id, Some(version)).await?;
            Notice::done(format!("Version {version} of {key} destroyed for good."))
        }
        _ => return Err(UiError::new(StatusCode::NOT_FOUND, "No such action.")),
    };
    ui.sessions.notify(&current.id, notice);
    Ok(Redirect::to(&page).into_response())
}

pub(super) async fn replace(
    State(ui): State<Ui>,
    current: Current,
    Path((namespace, key)): Path<(String, String)>,
    Form(mut replaced): Form<Replaced>,
) -> Result<Response, UiError> {
    writable(&ui, &current, &namespace)?;
    let id = SecretId::new(&ui.app.options().tenant, &namespace, &key)?;
    let store = ui.app.secrets();
    if store.get_meta(&id).await?.is_none() {
        return Err(id.not_found(None).into());
    }
    let value = replaced.value.take()?;
    let version = store.set(current.caller.actor(), &id, &value, None).await?;
    Ok(done(
        &ui,
        &current,
        &namespace,
        format!("New value of {key} saved (version {version})."),
    ))
}

pub(super) async fn describe(
    State(ui): State<Ui>,
    current: Current,
    Path((namespace, key)): Path<(String, String)>,
    Form(described): Form<Described>,
) -> Result<Response, UiError> {
    writable(&ui, &current, &namespace)?;
    let id = SecretId::new(&ui.app.options().tenant, &namespace, &key)?;
    let meta = meta_of(&described.description, &described.tags)?;
    ui.app
        .secrets()
        .update_meta(current.caller.actor(), &id, &meta)
        .await?;
    Ok(done(
        &ui,
        &current,
        &namespace,
        format!("Description and tags of {key} saved."),
    ))
}

pub(super) async fn delete(
    State(ui): State<Ui>,
    current: Current,
    Path((namespace, key)): Path<(String, String)>,
    Form(deleted): Form<Deleted>,
) -> Result<Response, UiError> {
    writable(&ui, &current, &namespace)?;
    let id = SecretId::new(&ui.app.options().tenant, &namespace, &key)?;
    if deleted.confirmed.as_deref() != Some("yes") {
        let values = context! {
            title => format!("Delete {key}?"),
            nav => "namespaces",
            question => format!("Delete secret {key} of namespace {namespace}? Flows that read it will fail."),
            action => format!("/ui/namespaces/{namespace}/secrets/{key}/delete"),
            button => "Delete",
            cancel => format!("/ui/namespaces/{namespace}/secrets"),
        };
        return Ok(page::render(&current, "confirm.html", values));
    }
    ui.app.secrets().delete(current.caller.actor(), &id).await?;
    Ok(done(
        &ui,
        &current,
        &namespace,
        format!("Secret {key} deleted."),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_read_one_a_line() {
        let tags = parse_tags("env=prod\n\n owner = data team \nurl=a=b").unwrap();
        let pairs: Vec<(&str, &str)> = tags
            .iter()
            .map(|t| (t.key.as_str(), t.value.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [("env", "prod"), ("owner", "data team"), ("url", "a=b")]
        );
        assert_eq!(tags_text(&tags), "env=prod\nowner=data team\nurl=a=b");
        let refused = parse_tags("env").unwrap_err();
        assert!(refused.message().contains("'env' is not key=value"));
        assert!(parse_tags("=x").is_err());
    }

    #[test]
    fn an_empty_description_is_none() {
        assert_eq!(meta_of("  ", "").unwrap(), SecretMeta::default());
    }

    #[test]
    fn the_copied_expression_reads_the_key() {
        assert_eq!(expression("DB_PASSWORD"), "{{ secret('DB_PASSWORD') }}");
    }

    #[test]
    fn a_value_field_never_shows_and_is_moved_out() {
        let mut hidden = Hidden(Zeroizing::new("hunter2".into()));
        assert_eq!(format!("{hidden:?}"), "******");
        assert_eq!(hidden.take().unwrap().expose_secret(), "hunter2");
        assert!(hidden.take().is_err(), "nothing is left behind");
    }
}
