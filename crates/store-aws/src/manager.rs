//! [`AwsManager`]: kestrel's [`SecretManager`] protocol over Secrets Manager's operations.

use crate::api::{self, AwsVersion, CURRENT_STAGE, Described, is_invalid_request, is_not_found};
use crate::client::Client;
use crate::names::{KESTREL_TAGS, Names, tags_of, user_tags};
use crate::{AwsError, AwsSettings};
use async_trait::async_trait;
use futures_util::{StreamExt as _, TryStreamExt as _};
use kestrel_secrets::SecretValue;
use kestrel_store::{
    Actor, Offload, Revealed, SecretId, SecretInfo, SecretManager, SecretMeta, StoreError,
    VersionInfo,
};
use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;

/// How many secrets' versions a listing asks for at once.
const LIST_CONCURRENCY: usize = 8;

/// The backend's name in messages and configuration.
pub const BACKEND: &str = "aws-secret-manager";

/// AWS Secrets Manager as a [`SecretManager`]. Every request runs on the manager's own
/// [`Offload`] thread, so a caller may wait on it with a plain `block_on`.
///
/// The mapping, for what kestrel's protocol and AWS's differ on:
/// - Versions are AWS's, deprecated ones included, oldest first by `CreatedDate` and numbered
///   from 1; each carries its `VersionId` as label and its stages. A number is a position in
///   AWS's current list: when AWS drops an old deprecated version the numbers shift, the
///   `VersionId` does not.
/// - `delete` schedules the whole secret's deletion with a 7-day recovery window (AWS deletes
///   secrets, not versions): no version reads until `undelete` (`RestoreSecret`). `set` on a
///   deleted secret restores it first.
/// - `destroy(None)` deletes at once, without recovery. `destroy(Some(n))` answers
///   [`StoreError::Unsupported`]: AWS cannot delete one version, and taking its stages away
///   only deprecates it, still readable by `VersionId`, which a user asking to destroy a
///   leaked value must not be led to believe is gone.
/// - Tags `tenant`, `namespace` and `key` are kestrel's own, set on create and not shown
///   among the user's; a user tag with one of those names is refused.
pub struct AwsManager {
    inner: Arc<Inner>,
    offload: Offload,
}

struct Inner {
    client: Client,
    names: Names,
}

impl AwsManager {
    /// A manager for `settings`; nothing is sent until the first call ([`SecretManager::check`]
    /// tells whether AWS answers).
    pub fn new(settings: &AwsSettings) -> Result<Self, StoreError> {
        let client = Client::new(settings)
            .map_err(|e| StoreError::backend(format!("{BACKEND}: building the client"), e))?;
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                names: Names::new(&settings.prefix),
            }),
            offload: Offload::new(BACKEND)?,
        })
    }

    /// Runs `call` on the manager's thread.
    async fn run<T, F, Fut>(&self, call: F) -> T
    where
        F: FnOnce(Arc<Inner>) -> Fut,
        Fut: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        self.offload.run(call(self.inner.clone())).await
    }
}

impl std::fmt::Debug for AwsManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsManager")
            .field("endpoint", &self.inner.client.endpoint())
            .field("names", &self.inner.names)
            .finish_non_exhaustive()
    }
}

/// What was being done to which secret, for messages: never a value.
fn doing(action: &str, id: &SecretId) -> impl Fn(AwsError) -> StoreError {
    let context = format!(
        "{BACKEND}: {action} secret '{}' of namespace '{}'",
        id.key(),
        id.namespace()
    );
    move |e| StoreError::backend(context.clone(), e)
}

/// The same for a whole namespace or tenant.
fn doing_in(
    action: &str,
    tenant: &str,
    namespace: Option<&str>,
) -> impl Fn(AwsError) -> StoreError {
    let context = match namespace {
        Some(ns) => format!("{BACKEND}: {action} namespace '{ns}' of tenant '{tenant}'"),
        None => format!("{BACKEND}: {action} tenant '{tenant}'"),
    };
    move |e| StoreError::backend(context.clone(), e)
}

/// A user tag named like one of kestrel's is refused before anything is written.
fn check_user_tags(meta: Option<&SecretMeta>) -> Result<(), StoreError> {
    let reserved = meta
        .into_iter()
        .flat_map(|m| &m.tags)
        .find(|t| KESTREL_TAGS.contains(&t.key.as_str()));
    match reserved {
        Some(tag) => Err(StoreError::Unsupported {
            backend: BACKEND.into(),
            what: format!(
                "a tag named '{}' (tenant, namespace and key are kestrel's own tags there)",
                tag.key
            ),
        }),
        None => Ok(()),
    }
}

/// Kestrel's view of AWS's versions; every one unreadable while the secret is deleted.
fn version_infos(versions: &[AwsVersion], deleted: Option<f64>) -> Vec<VersionInfo> {
    versions
        .iter()
        .zip(1..)
        .map(|(v, number)| VersionInfo {
            version: number,
            created_at: api::time(v.created_date),
            created_by: Actor::System(BACKEND.into()),
            deleted_at: deleted.map(|d| api::time(Some(d))),
            destroyed_at: None,
            label: Some(v.version_id.clone()),
            stages: v.version_stages.clone(),
        })
        .collect()
}

/// The number of the version with `version_id`.
fn number_of(versions: &[AwsVersion], version_id: &str) -> Option<u64> {
    versions
        .iter()
        .position(|v| v.version_id == version_id)
        .map(|i| i as u64 + 1)
}

/// The number of the current version (the newest when none is staged current).
fn current_number(versions: &[AwsVersion]) -> u64 {
    versions
        .iter()
        .position(|v| v.version_stages.iter().any(|s| s == CURRENT_STAGE))
        .unwrap_or(versions.len().saturating_sub(1)) as u64
        + 1
}

impl Inner {
    fn name(&self, id: &SecretId) -> String {
        self.names.of(id)
    }

    /// The versions, oldest first; empty when the secret does not exist.
    async fn aws_versions(&self, name: &str) -> Result<Vec<AwsVersion>, AwsError> {
        match api::list_versions(&self.client, name).await {
            Err(e) if is_not_found(&e) => Ok(Vec::new()),
            other => other,
        }
    }

    /// The value of `version_id` (or the current), `None` when absent or deleted.
    async fn read(
        &self,
        name: &str,
        version_id: Option<&str>,
    ) -> Result<Option<api::SecretValueAnswer>, AwsError> {
        match api::get_value(&self.client, name, version_id).await {
            Ok(answer) => Ok(Some(answer)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) if is_invalid_request(&e) && self.is_deleted(name).await? => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn is_deleted(&self, name: &str) -> Result<bool, AwsError> {
        let described = api::describe(&self.client, name).await?;
        Ok(described.is_some_and(|d| d.deleted_date.is_some()))
    }

    async fn get(
        &self,
        id: &SecretId,
        version: Option<u64>,
    ) -> Result<Option<Revealed>, StoreError> {
        let err = doing("reading", id);
        let name = self.name(id);
        let (answer, versions) = match version {
            None => {
                let Some(answer) = self.read(&name, None).await.map_err(&err)? else {
                    return Ok(None);
                };
                (answer, self.aws_versions(&name).await.map_err(&err)?)
            }
            Some(number) => {
                let versions = self.aws_versions(&name).await.map_err(&err)?;
                let Some(wanted) = number.checked_sub(1).and_then(|i| versions.get(i as usize))
                else {
                    return Ok(None);
                };
                let read = self
                    .read(&name, Some(&wanted.version_id))
                    .await
                    .map_err(&err)?;
                let Some(answer) = read else { return Ok(None) };
                (answer, versions)
            }
        };
        let Some(value) = answer.secret_string.map(SecretValue::new) else {
            return Err(err(AwsError::Response(
                "the secret holds a binary value (SecretBinary); kestrel reads SecretString".into(),
            )));
        };
        let number = number_of(&versions, &answer.version_id).ok_or_else(|| {
            err(AwsError::Response(
                "the version read is not among those listed".into(),
            ))
        })?;
        Ok(Some(Revealed {
            version: number,
            value,
        }))
    }

    async fn set(
        &self,
        id: &SecretId,
        value: &SecretValue,
        meta: Option<&SecretMeta>,
    ) -> Result<u64, StoreError> {
        check_user_tags(meta)?;
        let err = doing("writing", id);
        let name = self.name(id);
        let value = value.expose_secret();
        let described = api::describe(&self.client, &name).await.map_err(&err)?;
        let version_id = match described {
            None => {
                let description = meta.and_then(|m| m.description.as_deref());
                let tags = tags_of(id, meta.map(|m| m.tags.as_slice()).unwrap_or_default());
                api::create(&self.client, &name, value, description, &tags)
                    .await
                    .map_err(&err)?
            }
            Some(described) => {
                // AWS refuses writes to a secret scheduled for deletion: a new value restores it.
                if described.deleted_date.is_some() {
                    api::restore(&self.client, &name).await.map_err(&err)?;
                }
                let version_id = api::put_value(&self.client, &name, value)
                    .await
                    .map_err(&err)?;
                if let Some(meta) = meta {
                    self.update_meta(id, meta).await?;
                }
                version_id
            }
        };
        let versions = self.aws_versions(&name).await.map_err(&err)?;
        number_of(&versions, &version_id).ok_or_else(|| {
            err(AwsError::Response(
                "the version written is not among those listed".into(),
            ))
        })
    }

    /// The secret's description, tags and dates, with its versions; `None` if never set.
    async fn described(
        &self,
        id: &SecretId,
        action: &str,
    ) -> Result<Option<(Described, Vec<AwsVersion>)>, StoreError> {
        let err = doing(action, id);
        let name = self.name(id);
        let Some(described) = api::describe(&self.client, &name).await.map_err(&err)? else {
            return Ok(None);
        };
        let versions = self.aws_versions(&name).await.map_err(&err)?;
        Ok(Some((described, versions)))
    }

    fn info(id: &SecretId, described: Described, versions: &[AwsVersion]) -> SecretInfo {
        let created_at = api::time(described.created_date);
        SecretInfo {
            namespace: id.namespace().to_owned(),
            key: id.key().to_owned(),
            meta: SecretMeta {
                description: described.description.filter(|d| !d.is_empty()),
                tags: user_tags(&described.tags),
            },
            version: current_number(versions),
            readable: described.deleted_date.is_none(),
            created_at,
            updated_at: described
                .last_changed_date
                .map_or(created_at, |t| api::time(Some(t))),
        }
    }

    async fn get_meta(&self, id: &SecretId) -> Result<Option<SecretInfo>, StoreError> {
        let found = self.described(id, "describing").await?;
        Ok(found.map(|(described, versions)| Self::info(id, described, &versions)))
    }

    async fn list(&self, tenant: &str, namespace: &str) -> Result<Vec<SecretInfo>, StoreError> {
        let err = doing_in("listing", tenant, Some(namespace));
        let prefix = self.names.namespace_prefix(tenant, namespace);
        let secrets = api::list_secrets(&self.client, &prefix)
            .await
            .map_err(&err)?;
        let found = secrets.into_iter().filter_map(|described| {
            let id = self.names.parse(tenant, &described.name)?;
            let listed = id.namespace() == namespace && described.deleted_date.is_none();
            listed.then_some((id, described))
        });
        // Each secret's version number takes one more call: a few at a time.
        let mut infos: Vec<SecretInfo> = futures_util::stream::iter(found)
            .map(|(id, described)| async move {
                let versions = self.aws_versions(&described.name).await?;
                Ok::<_, AwsError>(Self::info(&id, described, &versions))
            })
            .buffered(LIST_CONCURRENCY)
            .try_collect()
            .await
            .map_err(&err)?;
        infos.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(infos)
    }

    async fn list_namespaces(&self, tenant: &str) -> Result<Vec<String>, StoreError> {
        let err = doing_in("listing the namespaces of", tenant, None);
        let prefix = self.names.tenant_prefix(tenant);
        let secrets = api::list_secrets(&self.client, &prefix)
            .await
            .map_err(&err)?;
        let namespaces: BTreeSet<String> = secrets
            .iter()
            .filter(|d| d.deleted_date.is_none())
            .filter_map(|d| self.names.parse(tenant, &d.name))
            .map(|id| id.namespace().to_owned())
            .collect();
        Ok(namespaces.into_iter().collect())
    }

    async fn versions(&self, id: &SecretId) -> Result<Vec<VersionInfo>, StoreError> {
        let found = self.described(id, "listing the versions of").await?;
        Ok(found.map_or_else(Vec::new, |(described, versions)| {
            version_infos(&versions, described.deleted_date)
        }))
    }

    async fn delete(&self, id: &SecretId) -> Result<u64, StoreError> {
        let found = self.described(id, "deleting").await?;
        let Some((described, versions)) = found.filter(|(d, _)| d.deleted_date.is_none()) else {
            return Err(id.not_found(None));
        };
        api::delete(&self.client, &described.name, false)
            .await
            .map_err(doing("deleting", id))?;
        Ok(current_number(&versions))
    }

    async fn undelete(&self, id: &SecretId, version: Option<u64>) -> Result<u64, StoreError> {
        let found = self.described(id, "restoring").await?;
        let Some((described, versions)) = found.filter(|(d, _)| d.deleted_date.is_some()) else {
            return Err(id.not_found(version));
        };
        let current = current_number(&versions);
        if version.is_some_and(|v| v != current) {
            return Err(StoreError::Unsupported {
                backend: BACKEND.into(),
                what: format!(
                    "restoring version {} of a deleted secret: AWS restores the whole secret \
                     with its current version ({current})",
                    version.unwrap_or_default()
                ),
            });
        }
        api::restore(&self.client, &described.name)
            .await
            .map_err(doing("restoring", id))?;
        Ok(current)
    }

    async fn destroy(&self, id: &SecretId, version: Option<u64>) -> Result<Vec<u64>, StoreError> {
        if let Some(version) = version {
            return Err(StoreError::Unsupported {
                backend: BACKEND.into(),
                what: format!(
                    "destroying one version ({version}): AWS Secrets Manager deletes whole \
                     secrets only; destroy every version, or set a new value (AWS removes \
                     versions without a stage on its own)"
                ),
            });
        }
        let err = doing("destroying", id);
        let Some((described, versions)) = self.described(id, "destroying").await? else {
            return Err(id.not_found(None));
        };
        // AWS refuses to delete a secret already scheduled for deletion: restore it first.
        if described.deleted_date.is_some() {
            api::restore(&self.client, &described.name)
                .await
                .map_err(&err)?;
        }
        api::delete(&self.client, &described.name, true)
            .await
            .map_err(&err)?;
        Ok((1..=versions.len() as u64).collect())
    }

    async fn update_meta(&self, id: &SecretId, meta: &SecretMeta) -> Result<(), StoreError> {
        check_user_tags(Some(meta))?;
        let err = doing("updating the description and tags of", id);
        let name = self.name(id);
        let Some(described) = api::describe(&self.client, &name).await.map_err(&err)? else {
            return Err(id.not_found(None));
        };
        let description = meta.description.as_deref().unwrap_or_default();
        api::set_description(&self.client, &name, description)
            .await
            .map_err(&err)?;
        let removed: Vec<String> = user_tags(&described.tags)
            .into_iter()
            .filter(|old| !meta.tags.iter().any(|new| new.key == old.key))
            .map(|old| old.key)
            .collect();
        if !removed.is_empty() {
            api::untag(&self.client, &name, &removed)
                .await
                .map_err(&err)?;
        }
        let wanted = tags_of(id, &meta.tags);
        api::tag(&self.client, &name, &wanted).await.map_err(&err)
    }

    async fn check(&self) -> Result<(), StoreError> {
        api::list_one(&self.client).await.map_err(|e| {
            StoreError::backend(
                format!("{BACKEND} at {}: checking access", self.client.endpoint()),
                e,
            )
        })
    }
}

#[async_trait]
impl SecretManager for AwsManager {
    fn name(&self) -> &str {
        BACKEND
    }

    async fn get(
        &self,
        id: &SecretId,
        version: Option<u64>,
    ) -> Result<Option<Revealed>, StoreError> {
        let id = id.clone();
        self.run(move |m| async move { m.get(&id, version).await })
            .await
    }

    async fn set(
        &self,
        id: &SecretId,
        value: &SecretValue,
        meta: Option<&SecretMeta>,
    ) -> Result<u64, StoreError> {
        let (id, value, meta) = (id.clone(), value.clone(), meta.cloned());
        self.run(move |m| async move { m.set(&id, &value, meta.as_ref()).await })
            .await
    }

    async fn get_meta(&self, id: &SecretId) -> Result<Option<SecretInfo>, StoreError> {
        let id = id.clone();
        self.run(move |m| async move { m.get_meta(&id).await })
            .await
    }

    async fn list(&self, tenant: &str, namespace: &str) -> Result<Vec<SecretInfo>, StoreError> {
        let (tenant, namespace) = (tenant.to_owned(), namespace.to_owned());
        self.run(move |m| async move { m.list(&tenant, &namespace).await })
            .await
    }

    async fn list_namespaces(&self, tenant: &str) -> Result<Vec<String>, StoreError> {
        let tenant = tenant.to_owned();
        self.run(move |m| async move { m.list_namespaces(&tenant).await })
            .await
    }

    async fn versions(&self, id: &SecretId) -> Result<Vec<VersionInfo>, StoreError> {
        let id = id.clone();
        self.run(move |m| async move { m.versions(&id).await })
            .await
    }

    async fn delete(&self, id: &SecretId) -> Result<u64, StoreError> {
        let id = id.clone();
        self.run(move |m| async move { m.delete(&id).await }).await
    }

    async fn undelete(&self, id: &SecretId, version: Option<u64>) -> Result<u64, StoreError> {
        let id = id.clone();
        self.run(move |m| async move { m.undelete(&id, version).await })
            .await
    }

    async fn destroy(&self, id: &SecretId, version: Option<u64>) -> Result<Vec<u64>, StoreError> {
        let id = id.clone();
        self.run(move |m| async move { m.destroy(&id, version).await })
            .await
    }

    async fn update_meta(&self, id: &SecretId, meta: &SecretMeta) -> Result<(), StoreError> {
        let (id, meta) = (id.clone(), meta.clone());
        self.run(move |m| async move { m.update_meta(&id, &meta).await })
            .await
    }

    async fn check(&self) -> Result<(), StoreError> {
        self.run(move |m| async move { m.check().await }).await
    }
}
