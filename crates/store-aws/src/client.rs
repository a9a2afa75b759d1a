//! One signed JSON request to Secrets Manager and its answer, bounded in time and size.

use crate::AwsSettings;
use crate::credentials::{CredentialSource, error_chain};
use crate::signing::{Unsigned, signed_headers};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt;
use std::time::{Duration, SystemTime};
use zeroize::Zeroizing;

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a whole request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest answer read: a page of 100 secrets with their tags, or a 64 KiB value, fit
/// many times over.
const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// The longest part of AWS's error message kept (it names the secret, never its value).
const MAX_MESSAGE_CHARS: usize = 300;

/// Why a request to Secrets Manager failed. Never holds a value or a credential.
#[derive(Debug)]
#[non_exhaustive]
pub enum AwsError {
    /// AWS answered with an error.
    Service {
        /// The HTTP status.
        status: u16,
        /// AWS's error code (`ResourceNotFoundException`).
        code: String,
        /// AWS's message, shortened.
        message: String,
    },
    /// No answer: refused, timed out, TLS failed.
    Transport(String),
    /// No credentials: the chain found none, or a provider failed.
    Credentials(String),
    /// An answer that is too large or not the JSON expected.
    Response(String),
    /// The request could not be signed.
    Signing(String),
}

impl AwsError {
    /// AWS's error code, for a service error.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Service { code, .. } => Some(code),
            _ => None,
        }
    }
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Service {
                status,
                code,
                message,
            } => write!(f, "AWS answered {code} (HTTP {status}): {message}"),
            Self::Transport(cause) => write!(f, "no answer: {cause}"),
            Self::Credentials(cause) => write!(f, "no usable AWS credentials: {cause}"),
            Self::Response(cause) => write!(f, "unexpected answer: {cause}"),
            Self::Signing(cause) => write!(f, "signing the request: {cause}"),
        }
    }
}

impl std::error::Error for AwsError {}

/// The HTTP client, the endpoint and the credentials of one manager.
pub(crate) struct Client {
    http: reqwest::Client,
    endpoint: String,
    region: String,
    credentials: CredentialSource,
}

impl Client {
    pub(crate) fn new(settings: &AwsSettings) -> Result<Self, AwsError> {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| AwsError::Transport(error_chain(&e)))?;
        Ok(Self {
            http,
            endpoint: settings.endpoint(),
            region: settings.region.clone(),
            credentials: CredentialSource::new(settings),
        })
    }

    /// The URL requests go to (for messages).
    pub(crate) fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Calls `operation` with `input`; credentials AWS calls expired are read again once.
    pub(crate) async fn call<T: DeserializeOwned>(
        &self,
        operation: &str,
        input: &impl Serialize,
    ) -> Result<T, AwsError> {
        let body = Zeroizing::new(
            serde_json::to_vec(input).map_err(|e| AwsError::Signing(e.to_string()))?,
        );
        match self.send(operation, &body).await {
            Err(e) if e.code() == Some("ExpiredTokenException") => {
                self.credentials.forget().await;
                self.send(operation, &body).await
            }
            other => other,
        }
    }

    async fn send<T: DeserializeOwned>(&self, operation: &str, body: &[u8]) -> Result<T, AwsError> {
        let credentials = self.credentials.current().await?;
        let unsigned = Unsigned {
            endpoint: &self.endpoint,
            region: &self.region,
            operation,
            body,
        };
        let mut request = self.http.post(format!("{}/", self.endpoint));
        for (name, value) in signed_headers(unsigned, &credentials, SystemTime::now())? {
            request = request.header(name, value);
        }
        let response = request
            .body(body.to_vec())
            .send()
            .await
            .map_err(|e| AwsError::Transport(error_chain(&e)))?;
        let status = response.status();
        let answer = read_bounded(response).await?;
        if !status.is_success() {
            return Err(service_error(status.as_u16(), &answer));
        }
        serde_json::from_slice(&answer)
            .map_err(|e| AwsError::Response(format!("{operation}'s answer: {e}")))
    }
}

/// The body, refused beyond [`MAX_RESPONSE_BYTES`]; zeroized on drop (it may hold a value).
async fn read_bounded(mut response: reqwest::Response) -> Result<Zeroizing<Vec<u8>>, AwsError> {
    if response
        .content_length()
        .is_some_and(|length| length > MAX_RESPONSE_BYTES as u64)
    {
        return Err(too_large());
    }
    let mut body = Zeroizing::new(Vec::new());
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| AwsError::Transport(error_chain(&e)))?
    {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn too_large() -> AwsError {
    AwsError::Response(format!(
        "larger than {} MiB",
        MAX_RESPONSE_BYTES / (1024 * 1024)
    ))
}

/// AWS's error body: `{"__type": "...#Code", "message": "..."}` (`Message` for some codes),
/// or the XML `<Code>`/`<Message>` of errors raised before the service (signature checks).
fn service_error(status: u16, body: &[u8]) -> AwsError {
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        #[serde(rename = "__type", default)]
        kind: String,
        #[serde(alias = "Message", default)]
        message: String,
    }
    let (kind, message) = match serde_json::from_slice::<ErrorBody>(body) {
        Ok(parsed) => (parsed.kind, parsed.message),
        Err(_) => {
            let text = String::from_utf8_lossy(body);
            (xml_element(&text, "Code"), xml_element(&text, "Message"))
        }
    };
    let code = kind.rsplit('#').next().unwrap_or_default();
    AwsError::Service {
        status,
        code: if code.is_empty() {
            "UnknownError".into()
        } else {
            code.into()
        },
        message: message.chars().take(MAX_MESSAGE_CHARS).collect(),
    }
}

/// The text of the first `<name>` element, or nothing.
fn xml_element(text: &str, name: &str) -> String {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    text.split_once(&open)
        .and_then(|(_, rest)| rest.split_once(&close))
        .map(|(inner, _)| inner.to_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_body_gives_its_code_and_a_short_message() {
        let body = br#"{"__type":"com.amazonaws.secretsmanager#ResourceNotFoundException","Message":"Secrets Manager can't find the specified secret."}"#;
        let error = service_error(400, body);
        assert_eq!(error.code(), Some("ResourceNotFoundException"));
        assert_eq!(
            error.to_string(),
            "AWS answered ResourceNotFoundException (HTTP 400): Secrets Manager can't find the \
             specified secret."
        );
        let long = format!(r#"{{"__type":"X","message":"{}"}}"#, "m".repeat(5000));
        assert!(service_error(400, long.as_bytes()).to_string().len() < 400);
        assert_eq!(service_error(500, b"not json").code(), Some("UnknownError"));
        let xml = b"<ErrorResponse><Errors><Error><Code>SignatureDoesNotMatch</Code>\
                    <Message>The request signature we calculated does not match</Message>";
        let error = service_error(403, xml);
        assert_eq!(error.code(), Some("SignatureDoesNotMatch"));
        assert!(error.to_string().ends_with("does not match"), "{error}");
    }
}
