//! Vault's HTTP API: one request at a time, bounded in time and size, with the token of the
//! current login ([`crate::auth`]) and one retry after a fresh login when a login-based token
//! is refused.

use crate::settings::{VaultAuth, VaultSettings};
use kestrel_store::StoreError;
use reqwest::header::{CONTENT_TYPE, HeaderValue};
use serde_json::Value;
use std::fmt;
use std::time::Duration;
use tokio::sync::Mutex;
use zeroize::{Zeroize, Zeroizing};

/// How long one request may take, connection included.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest answer read; a larger one is an error, never a large allocation.
pub(crate) const MAX_RESPONSE_BYTES: usize = 8 << 20;
/// The most of Vault's own error text a message carries.
const MAX_ERROR_TEXT: usize = 300;

/// The HTTP methods kestrel uses (`LIST` is sent as `GET ...?list=true`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Method {
    Get,
    List,
    Post,
    Delete,
}

/// A JSON answer that may hold secret values: every string in it is zeroized on drop.
pub(crate) struct Sensitive(pub(crate) Value);

impl Drop for Sensitive {
    fn drop(&mut self) {
        wipe(&mut self.0);
    }
}

fn wipe(value: &mut Value) {
    match value {
        Value::String(text) => text.zeroize(),
        Value::Array(items) => items.iter_mut().for_each(wipe),
        Value::Object(fields) => fields.values_mut().for_each(wipe),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// An answer kestrel acts on: a success or a 404 (whose body may still say why).
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) json: Sensitive,
}

impl Reply {
    /// Whether the path exists (Vault answers 404 for absent and for deleted versions).
    pub(crate) fn found(&self) -> bool {
        self.status != 404
    }

    /// The `data` object of the answer.
    pub(crate) fn data(&self) -> &Value {
        &self.json.0["data"]
    }
}

/// Why a request failed. Never holds a token or a value: Vault's error texts name paths and
/// reasons, and request bodies are never echoed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// No connection (refused, DNS, TLS).
    Unreachable { address: String, reason: String },
    /// No answer within [`REQUEST_TIMEOUT`].
    Timeout { address: String },
    /// 401 or 403: the token is wrong, expired, or lacks a policy.
    Denied {
        address: String,
        status: u16,
        errors: String,
    },
    /// Any other error status (500, 503 when sealed, 400 on a bad request).
    Status {
        address: String,
        status: u16,
        errors: String,
    },
    /// A redirect (a standby node): not followed, since it would carry the token elsewhere.
    Redirected { address: String, status: u16 },
    /// An answer over [`MAX_RESPONSE_BYTES`].
    TooLarge,
    /// An answer kestrel cannot read.
    InvalidReply(String),
    /// A login failed.
    Login {
        method: &'static str,
        path: String,
        cause: Box<Failure>,
    },
    /// The JWT for a Kubernetes or JWT login could not be read.
    JwtFile { path: String, reason: String },
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unreachable { address, reason } => {
                write!(f, "{address} is unreachable: {reason}")
            }
            Self::Timeout { address } => write!(
                f,
                "{address} did not answer within {} s",
                REQUEST_TIMEOUT.as_secs()
            ),
            Self::Denied {
                address,
                status,
                errors,
            } => write!(f, "permission denied by {address} (HTTP {status}{errors})"),
            Self::Status {
                address,
                status,
                errors,
            } => write!(f, "{address} answered HTTP {status}{errors}"),
            Self::Redirected { address, status } => write!(
                f,
                "{address} redirected the request (HTTP {status}); set the address of the \
                 active node"
            ),
            Self::TooLarge => write!(
                f,
                "the answer is larger than {} MiB",
                MAX_RESPONSE_BYTES >> 20
            ),
            Self::InvalidReply(what) => write!(f, "unexpected answer: {what}"),
            Self::Login {
                method,
                path,
                cause,
            } => write!(f, "logging in with {method} at auth/{path}: {cause}"),
            Self::JwtFile { path, reason } => write!(f, "reading the JWT file {path}: {reason}"),
        }
    }
}

impl std::error::Error for Failure {}

impl Failure {
    /// The store error for a failure while doing `context` (which names backend and secret).
    pub(crate) fn doing(self, context: String) -> StoreError {
        StoreError::backend(context, self)
    }
}

/// One Vault server, as kestrel talks to it.
pub(crate) struct Client {
    http: reqwest::Client,
    /// `<address>/v1/`.
    base: reqwest::Url,
    pub(crate) address: String,
    namespace: Option<HeaderValue>,
    pub(crate) auth: VaultAuth,
    /// The current token and when to renew it; one login or renewal at a time.
    pub(crate) lease: Mutex<Option<crate::auth::Lease>>,
}

impl Client {
    /// A client for `settings`, which are valid; no request is made.
    pub(crate) fn new(settings: &VaultSettings) -> Result<Self, StoreError> {
        let setting = |why: String| StoreError::backend("vault: the setting address", why);
        let address = settings.address.trim_end_matches('/').to_owned();
        let base = reqwest::Url::parse(&format!("{address}/v1/"))
            .map_err(|e| setting(format!("{address:?} is not a URL: {e}")))?;
        if !base.username().is_empty() || base.password().is_some() {
            // Not echoed: the URL holds a password.
            return Err(setting(
                "holds credentials; give them as auth instead".into(),
            ));
        }
        if !matches!(base.scheme(), "http" | "https") || base.query().is_some() {
            return Err(setting(format!(
                "{address:?} must be an http:// or https:// URL without a query"
            )));
        }
        let namespace =
            match &settings.namespace {
                Some(ns) => Some(HeaderValue::from_str(ns).map_err(|e| {
                    StoreError::backend("vault: the setting namespace", e.to_string())
                })?),
                None => None,
            };
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| StoreError::backend("vault: building the HTTP client", e))?;
        Ok(Self {
            http,
            base,
            address,
            namespace,
            auth: settings.auth.clone(),
            lease: Mutex::new(None),
        })
    }

    /// Sends a request with the current token; when a login-based token is refused, logs in
    /// again and retries once.
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<Reply, Failure> {
        let token = self.token().await?;
        match self.send(method, path, Some(&token), body).await {
            Err(Failure::Denied { .. }) if self.logs_in() => {
                self.forget(&token).await;
                let token = self.token().await?;
                self.send(method, path, Some(&token), body).await
            }
            other => other,
        }
    }

    /// One request, with `token` if given.
    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&[u8]>,
    ) -> Result<Reply, Failure> {
        let mut url = self
            .base
            .join(path)
            .map_err(|e| Failure::InvalidReply(format!("the path {path:?}: {e}")))?;
        let http_method = match method {
            Method::Get => reqwest::Method::GET,
            Method::List => {
                url.set_query(Some("list=true"));
                reqwest::Method::GET
            }
            Method::Post => reqwest::Method::POST,
            Method::Delete => reqwest::Method::DELETE,
        };
        let mut request = self.http.request(http_method, url);
        if let Some(token) = token {
            let mut value = HeaderValue::from_str(token).map_err(|_| {
                Failure::InvalidReply("a token that is not a valid header value".into())
            })?;
            value.set_sensitive(true);
            request = request.header("X-Vault-Token", value);
        }
        if let Some(namespace) = &self.namespace {
            request = request.header("X-Vault-Namespace", namespace.clone());
        }
        if let Some(body) = body {
            request = request
                .header(CONTENT_TYPE, "application/json")
                .body(body.to_vec());
        }
        let response = request.send().await.map_err(|e| self.transport(&e))?;
        self.reply(response).await
    }

    async fn reply(&self, mut response: reqwest::Response) -> Result<Reply, Failure> {
        let status = response.status().as_u16();
        let declared = response.content_length().unwrap_or(0);
        if declared > MAX_RESPONSE_BYTES as u64 {
            return Err(Failure::TooLarge);
        }
        // Sized up front, so that no reallocation leaves an unwiped copy behind.
        let mut body = Zeroizing::new(Vec::with_capacity(declared as usize));
        while let Some(chunk) = response.chunk().await.map_err(|e| self.transport(&e))? {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(Failure::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        let json = if body.iter().all(u8::is_ascii_whitespace) {
            Sensitive(Value::Null)
        } else {
            Sensitive(serde_json::from_slice(&body).map_err(|e| {
                Failure::InvalidReply(format!("HTTP {status} with a body that is not JSON ({e})"))
            })?)
        };
        let address = self.address.clone();
        match status {
            200..=299 | 404 => Ok(Reply { status, json }),
            300..=399 => Err(Failure::Redirected { address, status }),
            401 | 403 => Err(Failure::Denied {
                address,
                status,
                errors: error_text(&json.0),
            }),
            _ => Err(Failure::Status {
                address,
                status,
                errors: error_text(&json.0),
            }),
        }
    }

    fn transport(&self, error: &reqwest::Error) -> Failure {
        let address = self.address.clone();
        if error.is_timeout() {
            return Failure::Timeout { address };
        }
        // The innermost cause says why ("Connection refused"); the outer ones repeat the URL.
        let mut cause: &dyn std::error::Error = error;
        while let Some(inner) = cause.source() {
            cause = inner;
        }
        Failure::Unreachable {
            address,
            reason: cause.to_string(),
        }
    }

    /// Whether the token comes from a login kestrel can repeat.
    pub(crate) fn logs_in(&self) -> bool {
        !matches!(self.auth, VaultAuth::Token(_))
    }
}

/// Vault's `errors` list as `: first; second`, bounded; empty when there is none.
fn error_text(json: &Value) -> String {
    let errors: Vec<&str> = json["errors"]
        .as_array()
        .map(|list| list.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if errors.is_empty() {
        return String::new();
    }
    let mut text = format!(": {}", errors.join("; "));
    if text.len() > MAX_ERROR_TEXT {
        let mut end = MAX_ERROR_TEXT;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vault_error_texts_are_joined_and_bounded() {
        let json = serde_json::json!({"errors": ["permission denied", "x"]});
        assert_eq!(error_text(&json), ": permission denied; x");
        assert_eq!(error_text(&serde_json::json!({"errors": []})), "");
        let long = serde_json::json!({"errors": ["é".repeat(400)]});
        assert!(error_text(&long).len() <= MAX_ERROR_TEXT + '…'.len_utf8());
    }

    #[test]
    fn every_string_of_a_sensitive_answer_is_wiped() {
        let mut value = serde_json::json!({"data": {"data": {"value": "s3cr3t"}, "n": [1, "x"]}});
        wipe(&mut value);
        assert_eq!(value["data"]["data"]["value"], "");
        assert_eq!(value["data"]["n"][1], "");
    }

    #[test]
    fn addresses_with_credentials_or_another_scheme_are_refused() {
        for address in [
            "ftp://h",
            "http://user:pw@h:8200",
            "http://h/?x=1",
            "not a url",
        ] {
            let settings = VaultSettings::new(address, VaultAuth::token("t"));
            let message = Client::new(&settings).err().unwrap().to_string();
            assert!(message.contains("address"), "{message}");
            assert!(!message.contains("pw@"), "{message}");
        }
    }
}
