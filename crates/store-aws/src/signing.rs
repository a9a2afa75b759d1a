//! SigV4 signing of one Secrets Manager request, by AWS's own `aws-sigv4`.

use crate::AwsError;
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use std::time::SystemTime;

/// The service name requests are signed for.
const SERVICE: &str = "secretsmanager";

/// The content type of the JSON protocol.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// What a Secrets Manager request is, before signing: `POST <endpoint>/` with a JSON body.
#[derive(Clone, Copy)]
pub struct Unsigned<'a> {
    /// The URL, `https://secretsmanager.us-east-1.amazonaws.com` or an override.
    pub endpoint: &'a str,
    /// The region signed for.
    pub region: &'a str,
    /// The operation (`GetSecretValue`), sent as `X-Amz-Target: secretsmanager.<operation>`.
    pub operation: &'a str,
    /// The JSON body (may hold a value: never logged).
    pub body: &'a [u8],
}

/// Every header the request needs besides `Host` (which the HTTP client sets from the URL, as
/// signed): `Content-Type`, `X-Amz-Target`, and the signature's `X-Amz-Date`,
/// `Authorization` and, with a session token, `X-Amz-Security-Token`. `time` is the signing
/// time (fixed in tests).
pub fn signed_headers(
    request: Unsigned<'_>,
    credentials: &Credentials,
    time: SystemTime,
) -> Result<Vec<(String, String)>, AwsError> {
    let target = format!("secretsmanager.{}", request.operation);
    let mut headers = vec![
        ("content-type".to_owned(), CONTENT_TYPE.to_owned()),
        ("x-amz-target".to_owned(), target),
    ];
    let identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(request.region)
        .name(SERVICE)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| AwsError::Signing(e.to_string()))?
        .into();
    let url = format!("{}/", request.endpoint);
    let signable = SignableRequest::new(
        "POST",
        &url,
        headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str())),
        SignableBody::Bytes(request.body),
    )
    .map_err(|e| AwsError::Signing(e.to_string()))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| AwsError::Signing(e.to_string()))?
        .into_parts();
    headers.extend(
        instructions
            .headers()
            .map(|(name, value)| (name.to_owned(), value.to_owned())),
    );
    Ok(headers)
}
