//! The operations of the Secrets Manager JSON protocol kestrel uses, as typed calls.

use crate::AwsError;
use crate::client::Client;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::json;

/// The most pages a listing reads (100 entries each) before it answers an error.
const MAX_PAGES: usize = 100;

/// Days a deleted secret can be restored before AWS removes it.
pub(crate) const RECOVERY_WINDOW_DAYS: u32 = 7;

/// The stage AWS gives the current version.
pub(crate) const CURRENT_STAGE: &str = "AWSCURRENT";

/// A tag as AWS spells it.
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct AwsTag {
    pub(crate) key: String,
    pub(crate) value: String,
}

/// One value read.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct SecretValueAnswer {
    pub(crate) version_id: String,
    /// The value; a secret holding `SecretBinary` has none.
    pub(crate) secret_string: Option<String>,
}

/// One version as `ListSecretVersionIds` lists it.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct AwsVersion {
    pub(crate) version_id: String,
    #[serde(default)]
    pub(crate) version_stages: Vec<String>,
    #[serde(default)]
    pub(crate) created_date: Option<f64>,
}

/// A secret as `DescribeSecret` and `ListSecrets` show it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Described {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) description: Option<String>,
    #[serde(default)]
    pub(crate) tags: Vec<AwsTag>,
    #[serde(default)]
    pub(crate) created_date: Option<f64>,
    #[serde(default)]
    pub(crate) last_changed_date: Option<f64>,
    #[serde(default)]
    pub(crate) deleted_date: Option<f64>,
}

/// A time as AWS sends it (seconds since the epoch, with a fraction).
pub(crate) fn time(seconds: Option<f64>) -> DateTime<Utc> {
    seconds
        .and_then(|s| DateTime::from_timestamp_millis((s * 1000.0).round() as i64))
        .unwrap_or_default()
}

/// Whether AWS answered that the secret does not exist.
pub(crate) fn is_not_found(error: &AwsError) -> bool {
    error.code() == Some("ResourceNotFoundException")
}

/// Whether AWS refused the operation in the secret's state (scheduled for deletion).
pub(crate) fn is_invalid_request(error: &AwsError) -> bool {
    error.code() == Some("InvalidRequestException")
}

pub(crate) async fn get_value(
    client: &Client,
    name: &str,
    version_id: Option<&str>,
) -> Result<SecretValueAnswer, AwsError> {
    let mut input = json!({ "SecretId": name });
    if let Some(version_id) = version_id {
        input["VersionId"] = json!(version_id);
    }
    client.call("GetSecretValue", &input).await
}

#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct PutInput<'a> {
    secret_id: &'a str,
    secret_string: &'a str,
    client_request_token: String,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct CreateInput<'a> {
    name: &'a str,
    secret_string: &'a str,
    client_request_token: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    tags: &'a [AwsTag],
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Written {
    version_id: String,
}

/// Writes a new current version; answers its `VersionId`.
pub(crate) async fn put_value(
    client: &Client,
    name: &str,
    value: &str,
) -> Result<String, AwsError> {
    let input = PutInput {
        secret_id: name,
        secret_string: value,
        client_request_token: uuid::Uuid::new_v4().to_string(),
    };
    let written: Written = client.call("PutSecretValue", &input).await?;
    Ok(written.version_id)
}

/// Creates the secret with its first version; answers its `VersionId`.
pub(crate) async fn create(
    client: &Client,
    name: &str,
    value: &str,
    description: Option<&str>,
    tags: &[AwsTag],
) -> Result<String, AwsError> {
    let input = CreateInput {
        name,
        secret_string: value,
        client_request_token: uuid::Uuid::new_v4().to_string(),
        description,
        tags,
    };
    let written: Written = client.call("CreateSecret", &input).await?;
    Ok(written.version_id)
}

/// The secret's description, tags and dates; `None` when it does not exist.
pub(crate) async fn describe(client: &Client, name: &str) -> Result<Option<Described>, AwsError> {
    match client
        .call("DescribeSecret", &json!({ "SecretId": name }))
        .await
    {
        Ok(described) => Ok(Some(described)),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// One page of a listing: its entries (`Versions` or `SecretList`) and the next token.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Page<T> {
    #[serde(alias = "Versions", alias = "SecretList", default = "Vec::new")]
    entries: Vec<T>,
    next_token: Option<String>,
}

/// Every entry of a paginated listing, at most [`MAX_PAGES`] pages of 100.
async fn all_pages<T: serde::de::DeserializeOwned>(
    client: &Client,
    operation: &str,
    mut input: serde_json::Value,
    what: &str,
) -> Result<Vec<T>, AwsError> {
    let mut entries = Vec::new();
    input["MaxResults"] = json!(100);
    for _ in 0..MAX_PAGES {
        let page: Page<T> = client.call(operation, &input).await?;
        entries.extend(page.entries);
        // moto answers an empty token on the last page.
        match page.next_token.filter(|t| !t.is_empty()) {
            Some(token) => input["NextToken"] = json!(token),
            None => return Ok(entries),
        }
    }
    Err(too_many_pages(what))
}

/// Every version AWS keeps, deprecated ones too, oldest first.
pub(crate) async fn list_versions(
    client: &Client,
    name: &str,
) -> Result<Vec<AwsVersion>, AwsError> {
    let input = json!({ "SecretId": name, "IncludeDeprecated": true });
    let mut versions: Vec<AwsVersion> =
        all_pages(client, "ListSecretVersionIds", input, "versions").await?;
    // Equal dates keep AWS's order (a stable sort).
    versions.sort_by(|a, b| by_date(a.created_date, b.created_date));
    Ok(versions)
}

/// The secrets whose name starts with `name_prefix`, deleted ones left out.
pub(crate) async fn list_secrets(
    client: &Client,
    name_prefix: &str,
) -> Result<Vec<Described>, AwsError> {
    let input = json!({ "Filters": [{ "Key": "name", "Values": [name_prefix] }] });
    all_pages(client, "ListSecrets", input, "secrets").await
}

fn too_many_pages(what: &str) -> AwsError {
    AwsError::Response(format!(
        "more than {} {what} (listing stopped after {MAX_PAGES} pages)",
        MAX_PAGES * 100
    ))
}

/// One cheap authenticated call.
pub(crate) async fn list_one(client: &Client) -> Result<(), AwsError> {
    let _: IgnoredAny = client
        .call("ListSecrets", &json!({ "MaxResults": 1 }))
        .await?;
    Ok(())
}

/// Schedules deletion after the recovery window, or (`force`) deletes every version now.
pub(crate) async fn delete(client: &Client, name: &str, force: bool) -> Result<(), AwsError> {
    let input = if force {
        json!({ "SecretId": name, "ForceDeleteWithoutRecovery": true })
    } else {
        json!({ "SecretId": name, "RecoveryWindowInDays": RECOVERY_WINDOW_DAYS })
    };
    let _: IgnoredAny = client.call("DeleteSecret", &input).await?;
    Ok(())
}

/// Cancels a scheduled deletion.
pub(crate) async fn restore(client: &Client, name: &str) -> Result<(), AwsError> {
    let _: IgnoredAny = client
        .call("RestoreSecret", &json!({ "SecretId": name }))
        .await?;
    Ok(())
}

/// Replaces the description (empty clears it).
pub(crate) async fn set_description(
    client: &Client,
    name: &str,
    description: &str,
) -> Result<(), AwsError> {
    // moto, like the SDKs, wants the idempotency token even when no value changes.
    let input = json!({
        "SecretId": name,
        "Description": description,
        "ClientRequestToken": uuid::Uuid::new_v4().to_string(),
    });
    let _: IgnoredAny = client.call("UpdateSecret", &input).await?;
    Ok(())
}

/// Adds or replaces tags.
pub(crate) async fn tag(client: &Client, name: &str, tags: &[AwsTag]) -> Result<(), AwsError> {
    let input = json!({ "SecretId": name, "Tags": tags });
    let _: IgnoredAny = client.call("TagResource", &input).await?;
    Ok(())
}

/// Removes tags by key.
pub(crate) async fn untag(client: &Client, name: &str, keys: &[String]) -> Result<(), AwsError> {
    let input = json!({ "SecretId": name, "TagKeys": keys });
    let _: IgnoredAny = client.call("UntagResource", &input).await?;
    Ok(())
}

/// Undated versions first, then by date.
fn by_date(a: Option<f64>, b: Option<f64>) -> std::cmp::Ordering {
    match (a, b) {
        (Some(a), Some(b)) => a.total_cmp(&b),
        (a, b) => a.is_some().cmp(&b.is_some()),
    }
}
