//! The one error type of every handler: a status and a message a client can act on, as
//! `{"message": "..."}`. A server fault answers a generic 500 and its cause goes to the log.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kestrel_store::StoreError;
use serde_json::{Value, json};
use std::fmt;

/// Why a request failed. Messages name things (a flow, a key, a namespace), never a secret
/// value.
#[derive(Debug)]
#[non_exhaustive]
pub enum AppError {
    /// 400: the request cannot be read.
    BadRequest(String),
    /// 401: no credentials, or wrong ones.
    Unauthorized(String),
    /// 403: the caller may not do this.
    Forbidden(String),
    /// 404.
    NotFound(String),
    /// 405: the route does not take this method.
    MethodNotAllowed(String),
    /// 409: the name is taken, or the state does not allow it.
    Conflict(String),
    /// 413: a body, or a secret value, over its limit.
    PayloadTooLarge(String),
    /// 415: a body of a type this route does not read.
    UnsupportedMediaType(String),
    /// 422: a flow, an input or a name that breaks the rules, with each violation.
    Invalid {
        /// The summary.
        message: String,
        /// One JSON object per violation (`message`, `line`, `column`).
        violations: Vec<Value>,
    },
    /// 429: too many failed attempts; try again after this many seconds.
    TooManyRequests(u64),
    /// 503: the server is stopping or cannot reach its database.
    Unavailable(String),
    /// 500: a fault of the server. The cause is logged, not answered.
    Internal(String),
}

impl AppError {
    /// 422 with a message and no violation list.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::Invalid {
            message: message.into(),
            violations: Vec::new(),
        }
    }

    /// 500, logging `cause` (which never holds a value: every error type here is built
    /// without one).
    pub fn internal(context: &str, cause: impl fmt::Display) -> Self {
        Self::Internal(format!("{context}: {cause}"))
    }

    /// The status this error answers.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadRequest(m)
            | Self::Unauthorized(m)
            | Self::Forbidden(m)
            | Self::NotFound(m)
            | Self::MethodNotAllowed(m)
            | Self::Conflict(m)
            | Self::PayloadTooLarge(m)
            | Self::UnsupportedMediaType(m)
            | Self::Unavailable(m)
            | Self::Invalid { message: m, .. } => f.write_str(m),
            Self::TooManyRequests(after) => {
                write!(f, "Too many failed attempts; try again in {after} s")
            }
            Self::Internal(_) => f.write_str("Internal server error"),
        }
    }
}

impl std::error::Error for AppError {}

impl From<StoreError> for AppError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::InvalidKey(_)
            | StoreError::InvalidNamespace(_)
            | StoreError::InvalidTenant(_) => Self::invalid(error.to_string()),
            StoreError::NotFound { .. } => Self::NotFound(error.to_string()),
            StoreError::Conflict(message) => Self::Conflict(message),
            StoreError::ReadOnly { .. } | StoreError::Unsupported { .. } => {
                Self::Conflict(error.to_string())
            }
            other => match kestrel_store::value_too_large(&other) {
                Some(too_large) => Self::PayloadTooLarge(format!("Secret refused: {too_large}")),
                None => Self::internal("store", other),
            },
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        if let Self::Internal(cause) = &self {
            crate::log::error(cause);
        }
        let mut body = json!({"message": self.to_string()});
        if let Self::Invalid { violations, .. } = &self
            && !violations.is_empty()
        {
            body["violations"] = Value::Array(violations.clone());
        }
        let mut response = (self.status(), axum::Json(body)).into_response();
        let headers = response.headers_mut();
        match &self {
            Self::TooManyRequests(after) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*after));
            }
            Self::Unauthorized(_) => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"kestrel\", Bearer"),
                );
            }
            _ => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_errors_map_to_the_status_a_client_expects() {
        let absent = kestrel_store::SecretId::main("a", "K")
            .unwrap()
            .not_found(None);
        assert_eq!(AppError::from(absent).status(), StatusCode::NOT_FOUND);
        let taken = StoreError::Conflict("taken".into());
        assert_eq!(AppError::from(taken).status(), StatusCode::CONFLICT);
        let bad = StoreError::InvalidKey("a b".into());
        assert_eq!(
            AppError::from(bad).status(),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        let big = StoreError::backend("store a secret", kestrel_store::ValueTooLarge { max: 8 });
        let big = AppError::from(big);
        assert_eq!(big.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(
            big.to_string(),
            "Secret refused: the value is larger than secret.max-size (8 bytes)"
        );
    }

    #[test]
    fn a_server_fault_answers_without_its_cause() {
        let error = AppError::internal("store", "disk I/O error at /var/lib/kestrel");
        assert_eq!(error.to_string(), "Internal server error");
        assert_eq!(error.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
