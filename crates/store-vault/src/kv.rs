//! The KV v2 engine as kestrel's secrets: values, versions and custom metadata of one secret
//! per path; every failure names the backend and the secret or namespace, never a value.

use crate::auth::json_body;
use crate::client::{Client, Failure, Method, Reply};
use crate::paths::{Op, Paths};
use chrono::{DateTime, Utc};
use futures_util::{StreamExt as _, TryStreamExt as _};
use kestrel_secrets::SecretValue;
use kestrel_store::{
    Actor, Revealed, SecretId, SecretInfo, SecretMeta, StoreError, Tag, VersionInfo, validate_key,
    validate_namespace, validate_tenant,
};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The field holding the value in the data kestrel writes.
pub(crate) const VALUE_FIELD: &str = "value";
/// The custom metadata field holding the description.
const DESCRIPTION_FIELD: &str = "description";
/// The prefix of custom metadata fields holding tags.
const TAG_PREFIX: &str = "tag.";
/// The most folders and keys a namespace walk or a listing visits.
pub(crate) const MAX_NODES: usize = 10_000;
/// Metadata reads in flight at once while listing.
const LIST_CONCURRENCY: usize = 8;

/// Vault's metadata of one secret, as kestrel reads it.
struct Metadata {
    current_version: u64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    meta: SecretMeta,
    /// Oldest first.
    versions: Vec<VersionInfo>,
}

impl Metadata {
    fn version(&self, number: u64) -> Option<&VersionInfo> {
        self.versions.iter().find(|v| v.version == number)
    }

    fn readable(&self) -> bool {
        self.version(self.current_version)
            .is_some_and(VersionInfo::is_readable)
    }

    fn info(self, id: &SecretId) -> SecretInfo {
        SecretInfo {
            namespace: id.namespace().to_owned(),
            key: id.key().to_owned(),
            readable: self.readable(),
            version: self.current_version,
            meta: self.meta,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

#[derive(Serialize)]
struct DataWrite<'a> {
    data: ValueField<'a>,
}

#[derive(Serialize)]
struct ValueField<'a> {
    value: &'a str,
}

#[derive(Serialize)]
struct Versions {
    versions: [u64; 1],
}

#[derive(Serialize)]
struct CustomMetadata {
    custom_metadata: BTreeMap<String, String>,
}

/// "vault: {what} secret '{key}' of namespace '{namespace}'".
fn doing(what: &str, id: &SecretId) -> String {
    format!(
        "vault: {what} secret '{}' of namespace '{}'",
        id.key(),
        id.namespace()
    )
}

fn invalid(what: impl Into<String>) -> Failure {
    Failure::InvalidReply(what.into())
}

/// KV v2 operations on one mount and prefix.
pub(crate) struct Kv {
    pub(crate) client: Client,
    pub(crate) paths: Paths,
}

impl Kv {
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&[u8]>,
        context: impl FnOnce() -> String,
    ) -> Result<Reply, StoreError> {
        self.client
            .call(method, path, body)
            .await
            .map_err(|failure| failure.doing(context()))
    }

    pub(crate) async fn get(
        &self,
        id: &SecretId,
        version: Option<u64>,
    ) -> Result<Option<Revealed>, StoreError> {
        let context = || match version {
            Some(v) => doing(&format!("reading version {v} of"), id),
            None => doing("reading", id),
        };
        if version == Some(0) {
            // Vault reads version 0 as the current one; kestrel numbers from 1.
            return Ok(None);
        }
        let mut path = self.paths.secret(Op::Data, id);
        if let Some(v) = version {
            path.push_str(&format!("?version={v}"));
        }
        let reply = self.call(Method::Get, &path, None, context).await?;
        if !reply.found() {
            return Ok(None);
        }
        let data = reply.data();
        let fields = match &data["data"] {
            Value::Object(fields) => fields,
            // Deleted or destroyed.
            Value::Null => return Ok(None),
            _ => return Err(invalid("data that is not a map").doing(context())),
        };
        let number = data["metadata"]["version"]
            .as_u64()
            .ok_or_else(|| invalid("no version number").doing(context()))?;
        let value = secret_of(fields).map_err(|f| f.doing(context()))?;
        Ok(Some(Revealed {
            version: number,
            value,
        }))
    }

    pub(crate) async fn set(
        &self,
        id: &SecretId,
        value: &SecretValue,
        meta: Option<&SecretMeta>,
    ) -> Result<u64, StoreError> {
        let context = || doing("writing", id);
        let payload = DataWrite {
            data: ValueField {
                value: value.expose_secret(),
            },
        };
        let body = json_body(&payload).map_err(|f| f.doing(context()))?;
        let path = self.paths.secret(Op::Data, id);
        let reply = self.call(Method::Post, &path, Some(&body), context).await?;
        let version = reply.data()["version"]
            .as_u64()
            .ok_or_else(|| invalid("no version number").doing(context()))?;
        if let Some(meta) = meta {
            self.write_meta(id, meta).await?;
        }
        Ok(version)
    }

    async fn metadata(&self, id: &SecretId) -> Result<Option<Metadata>, StoreError> {
        let context = || doing("reading the metadata of", id);
        let path = self.paths.secret(Op::Metadata, id);
        let reply = self.call(Method::Get, &path, None, context).await?;
        if !reply.found() {
            return Ok(None);
        }
        metadata_of(reply.data(), Utc::now())
            .map(Some)
            .map_err(|f| f.doing(context()))
    }

    /// The metadata of `id`, or [`StoreError::NotFound`].
    async fn existing(&self, id: &SecretId, version: Option<u64>) -> Result<Metadata, StoreError> {
        self.metadata(id)
            .await?
            .ok_or_else(|| id.not_found(version))
    }

    pub(crate) async fn get_meta(&self, id: &SecretId) -> Result<Option<SecretInfo>, StoreError> {
        Ok(self.metadata(id).await?.map(|m| m.info(id)))
    }

    pub(crate) async fn versions(&self, id: &SecretId) -> Result<Vec<VersionInfo>, StoreError> {
        Ok(self
            .metadata(id)
            .await?
            .map(|m| m.versions)
            .unwrap_or_default())
    }

    pub(crate) async fn update_meta(
        &self,
        id: &SecretId,
        meta: &SecretMeta,
    ) -> Result<(), StoreError> {
        self.existing(id, None).await?;
        self.write_meta(id, meta).await
    }

    async fn write_meta(&self, id: &SecretId, meta: &SecretMeta) -> Result<(), StoreError> {
        let context = || doing("writing the description and tags of", id);
        let body = json_body(&CustomMetadata {
            custom_metadata: custom_metadata_of(meta),
        })
        .map_err(|f| f.doing(context()))?;
        let path = self.paths.secret(Op::Metadata, id);
        self.call(Method::Post, &path, Some(&body), context).await?;
        Ok(())
    }

    /// Soft-deletes the current version, named explicitly so that a write in between is not
    /// the one deleted.
    pub(crate) async fn delete(&self, id: &SecretId) -> Result<u64, StoreError> {
        let metadata = self.existing(id, None).await?;
        if !metadata.readable() {
            return Err(id.not_found(None));
        }
        let current = metadata.current_version;
        self.on_version(Op::Delete, "deleting", id, current).await?;
        Ok(current)
    }

    pub(crate) async fn undelete(
        &self,
        id: &SecretId,
        version: Option<u64>,
    ) -> Result<u64, StoreError> {
        let metadata = self.existing(id, version).await?;
        let number = version.unwrap_or(metadata.current_version);
        match metadata.version(number) {
            Some(v) if v.destroyed_at.is_none() => {}
            _ => return Err(id.not_found(Some(number))),
        }
        self.on_version(Op::Undelete, "restoring", id, number)
            .await?;
        Ok(number)
    }

    pub(crate) async fn destroy(
        &self,
        id: &SecretId,
        version: Option<u64>,
    ) -> Result<Vec<u64>, StoreError> {
        let metadata = self.existing(id, version).await?;
        let Some(number) = version else {
            let destroyed = metadata
                .versions
                .iter()
                .filter(|v| v.destroyed_at.is_none())
                .map(|v| v.version)
                .collect();
            let path = self.paths.secret(Op::Metadata, id);
            self.call(Method::Delete, &path, None, || {
                doing("destroying every version of", id)
            })
            .await?;
            return Ok(destroyed);
        };
        match metadata.version(number) {
            Some(v) if v.destroyed_at.is_none() => {}
            _ => return Err(id.not_found(Some(number))),
        }
        self.on_version(Op::Destroy, "destroying", id, number)
            .await?;
        Ok(vec![number])
    }

    /// POSTs `{"versions": [number]}` to the `op` path of `id`.
    async fn on_version(
        &self,
        op: Op,
        what: &str,
        id: &SecretId,
        number: u64,
    ) -> Result<(), StoreError> {
        let context = || doing(&format!("{what} version {number} of"), id);
        let body = json_body(&Versions { versions: [number] }).map_err(|f| f.doing(context()))?;
        let path = self.paths.secret(op, id);
        self.call(Method::Post, &path, Some(&body), context).await?;
        Ok(())
    }

    /// The entries of a folder (`child/` for folders), empty when it does not exist.
    async fn folder(&self, path: &str, context: &str) -> Result<Vec<String>, StoreError> {
        let reply = self
            .call(Method::List, path, None, || context.to_owned())
            .await?;
        if !reply.found() {
            return Ok(Vec::new());
        }
        let keys = reply.data()["keys"]
            .as_array()
            .ok_or_else(|| invalid("a listing without keys").doing(context.to_owned()))?;
        if keys.len() > MAX_NODES {
            return Err(too_many(path).doing(context.to_owned()));
        }
        Ok(keys
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect())
    }

    pub(crate) async fn list(
        &self,
        tenant: &str,
        namespace: &str,
    ) -> Result<Vec<SecretInfo>, StoreError> {
        validate_tenant(tenant)?;
        validate_namespace(namespace)?;
        let context = format!("vault: listing the secrets of namespace '{namespace}'");
        let path = self.paths.namespace(Op::Metadata, tenant, namespace);
        let ids = self
            .folder(&path, &context)
            .await?
            .into_iter()
            .filter(|entry| !entry.ends_with('/') && validate_key(entry).is_ok())
            .map(|key| SecretId::new(tenant, namespace, &key))
            .collect::<Result<Vec<_>, _>>()?;
        let mut infos: Vec<SecretInfo> = futures_util::stream::iter(ids)
            .map(|id| async move { self.get_meta(&id).await })
            .buffered(LIST_CONCURRENCY)
            .try_filter_map(|info| async move { Ok(info.filter(|i| i.readable)) })
            .try_collect()
            .await?;
        infos.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(infos)
    }

    /// Walks the tenant's folders; a namespace is listed when one of its keys is readable.
    pub(crate) async fn list_namespaces(&self, tenant: &str) -> Result<Vec<String>, StoreError> {
        validate_tenant(tenant)?;
        let context = format!("vault: listing the namespaces of tenant '{tenant}'");
        let root = self.paths.namespace(Op::Metadata, tenant, "");
        let mut visited = 0usize;
        let mut pending = vec![String::new()];
        let mut found = Vec::new();
        while let Some(namespace) = pending.pop() {
            let path = self.paths.namespace(Op::Metadata, tenant, &namespace);
            let mut keys = Vec::new();
            for entry in self.folder(&path, &context).await? {
                visited += 1;
                if visited > MAX_NODES {
                    return Err(too_many(&root).doing(context));
                }
                match entry.strip_suffix('/') {
                    Some(child) => pending.extend(child_namespace(&namespace, child)),
                    None if !namespace.is_empty() && validate_key(&entry).is_ok() => {
                        keys.push(entry);
                    }
                    None => {}
                }
            }
            if self.any_readable(tenant, &namespace, keys).await? {
                found.push(namespace);
            }
        }
        found.sort();
        Ok(found)
    }

    async fn any_readable(
        &self,
        tenant: &str,
        namespace: &str,
        keys: Vec<String>,
    ) -> Result<bool, StoreError> {
        for key in keys {
            let id = SecretId::new(tenant, namespace, &key)?;
            if self.metadata(&id).await?.is_some_and(|m| m.readable()) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Proves the token works and the mount is a KV v2 engine it may use.
    pub(crate) async fn check(&self) -> Result<(), StoreError> {
        let mount = self.paths.mount();
        let context = || {
            format!(
                "vault at {}: checking the KV v2 mount '{mount}'",
                self.client.address
            )
        };
        let path = format!("sys/internal/ui/mounts/{mount}");
        let reply = self.call(Method::Get, &path, None, context).await?;
        let data = reply.data();
        let kind = data["type"].as_str().unwrap_or_default();
        let version = data["options"]["version"].as_str().unwrap_or_default();
        if reply.found() && kind == "kv" && version == "2" {
            return Ok(());
        }
        let what = if reply.found() {
            format!("the mount is of type '{kind}' version '{version}', not kv version 2")
        } else {
            "no such mount".to_owned()
        };
        Err(invalid(what).doing(context()))
    }
}

fn too_many(path: &str) -> Failure {
    Failure::InvalidReply(format!(
        "more than {MAX_NODES} folders and keys under '{path}'; kestrel stops walking there"
    ))
}

/// The namespace of folder `child` under `parent` ("" is the tenant's root), if it is one.
fn child_namespace(parent: &str, child: &str) -> Option<String> {
    let namespace = if parent.is_empty() {
        child.to_owned()
    } else {
        format!("{parent}.{child}")
    };
    validate_namespace(&namespace).ok().map(|()| namespace)
}

/// The secret a version's data map stands for: the string under `value` when that is the only
/// field, else the whole map as a JSON object (so that `subkey` reaches every field).
fn secret_of(fields: &Map<String, Value>) -> Result<SecretValue, Failure> {
    if fields.len() == 1
        && let Some(Value::String(value)) = fields.get(VALUE_FIELD)
    {
        return Ok(SecretValue::new(value.clone()));
    }
    serde_json::to_string(fields)
        .map(SecretValue::new)
        .map_err(|e| invalid(format!("data that does not encode as JSON ({e})")))
}

fn custom_metadata_of(meta: &SecretMeta) -> BTreeMap<String, String> {
    let mut custom = BTreeMap::new();
    if let Some(description) = &meta.description {
        custom.insert(DESCRIPTION_FIELD.to_owned(), description.clone());
    }
    for tag in &meta.tags {
        custom.insert(format!("{TAG_PREFIX}{}", tag.key), tag.value.clone());
    }
    custom
}

fn meta_of(custom: &Value) -> SecretMeta {
    let mut meta = SecretMeta::default();
    let Some(fields) = custom.as_object() else {
        return meta;
    };
    for (name, value) in fields {
        let Some(value) = value.as_str() else {
            continue;
        };
        if name == DESCRIPTION_FIELD {
            meta.description = Some(value.to_owned());
        } else if let Some(key) = name.strip_prefix(TAG_PREFIX) {
            meta.tags.push(Tag {
                key: key.to_owned(),
                value: value.to_owned(),
            });
        }
    }
    meta
}

fn time(value: &Value, what: &str) -> Result<DateTime<Utc>, Failure> {
    let text = value.as_str().unwrap_or_default();
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| invalid(format!("{what} {text:?} is not an RFC 3339 time")))
}

/// A time that may be empty (never deleted).
fn optional_time(value: &Value, what: &str) -> Result<Option<DateTime<Utc>>, Failure> {
    match value.as_str() {
        None | Some("") => Ok(None),
        Some(_) => time(value, what).map(Some),
    }
}

/// The `data` of a metadata answer. A deletion time in the future (`delete_version_after`)
/// is not a deletion yet. Vault does not record when a version was destroyed: its deletion
/// time stands for it if it has one, else the secret's last update.
fn metadata_of(data: &Value, now: DateTime<Utc>) -> Result<Metadata, Failure> {
    let updated_at = time(&data["updated_time"], "updated_time")?;
    let entries = data["versions"]
        .as_object()
        .ok_or_else(|| invalid("metadata without versions"))?;
    let mut versions = Vec::with_capacity(entries.len());
    for (number, entry) in entries {
        let version = number
            .parse()
            .map_err(|_| invalid(format!("a version numbered {number:?}")))?;
        let deleted_at =
            optional_time(&entry["deletion_time"], "deletion_time")?.filter(|t| *t <= now);
        let destroyed = entry["destroyed"].as_bool().unwrap_or(false);
        versions.push(VersionInfo {
            version,
            created_at: time(&entry["created_time"], "created_time")?,
            created_by: Actor::System("vault".into()),
            deleted_at,
            destroyed_at: destroyed.then(|| deleted_at.unwrap_or(updated_at)),
            label: None,
            stages: Vec::new(),
        });
    }
    versions.sort_by_key(|v| v.version);
    Ok(Metadata {
        current_version: data["current_version"]
            .as_u64()
            .ok_or_else(|| invalid("metadata without current_version"))?,
        created_at: time(&data["created_time"], "created_time")?,
        updated_at,
        meta: meta_of(&data["custom_metadata"]),
        versions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn secret(fields: Value) -> String {
        let Value::Object(map) = fields else {
            panic!("a map")
        };
        secret_of(&map).unwrap().expose_secret().to_owned()
    }

    #[test]
    fn a_lone_value_field_is_the_secret_and_other_fields_make_a_json_object() {
        assert_eq!(secret(json!({"value": "pw"})), "pw");
        let both: Value =
            serde_json::from_str(&secret(json!({"value": "pw", "user": "ada"}))).unwrap();
        assert_eq!(both, json!({"value": "pw", "user": "ada"}));
        let other: Value = serde_json::from_str(&secret(json!({"user": "ada"}))).unwrap();
        assert_eq!(other, json!({"user": "ada"}));
        assert_eq!(secret(json!({"value": 7})), r#"{"value":7}"#);
    }

    #[test]
    fn description_and_tags_round_trip_through_custom_metadata() {
        let meta = SecretMeta {
            description: Some("partner API".into()),
            tags: vec![Tag {
                key: "team".into(),
                value: "data".into(),
            }],
        };
        let custom = custom_metadata_of(&meta);
        assert_eq!(custom["description"], "partner API");
        assert_eq!(custom["tag.team"], "data");
        let mut read = serde_json::to_value(&custom).unwrap();
        read["someone-else"] = json!("ignored");
        assert_eq!(meta_of(&read), meta);
        assert_eq!(meta_of(&Value::Null), SecretMeta::default());
    }

    #[test]
    fn metadata_versions_are_sorted_and_a_future_deletion_is_not_one_yet() {
        let now = Utc::now();
        let later = (now + chrono::Duration::hours(1)).to_rfc3339();
        let data = json!({
            "created_time": "2026-01-01T00:00:00Z",
            "updated_time": "2026-01-02T00:00:00Z",
            "current_version": 10,
            "custom_metadata": null,
            "versions": {
                "10": {"created_time": "2026-01-02T00:00:00Z", "deletion_time": later, "destroyed": false},
                "9": {"created_time": "2026-01-01T00:00:00Z", "deletion_time": "", "destroyed": true},
            }
        });
        let metadata = metadata_of(&data, now).unwrap();
        let numbers: Vec<u64> = metadata.versions.iter().map(|v| v.version).collect();
        assert_eq!(numbers, [9, 10]);
        assert!(metadata.readable());
        assert!(metadata.versions[0].destroyed_at.is_some());
        assert_eq!(
            metadata.versions[0].created_by,
            Actor::System("vault".into())
        );
    }

    #[test]
    fn only_folders_that_are_namespaces_are_walked() {
        assert_eq!(child_namespace("", "company").as_deref(), Some("company"));
        assert_eq!(
            child_namespace("company", "team").as_deref(),
            Some("company.team")
        );
        assert_eq!(child_namespace("company", "Team"), None);
    }
}
