//! axum's extractors with their rejections turned into [`AppError`]s, so that every error a
//! client sees is JSON `{"message"}`, and no error quotes what the body held: a rejected JSON
//! body is described by where it broke and what was expected there, never by the value found
//! (which may be a secret).

use crate::error::AppError;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;

/// A JSON body (`application/json` or `application/*+json`).
#[derive(Debug)]
pub(crate) struct Json<T>(pub(crate) T);

/// A body as bytes, within the route's size limit.
#[derive(Debug)]
pub(crate) struct RawBody(pub(crate) Bytes);

/// Path parameters.
#[derive(Debug)]
pub(crate) struct Path<T>(pub(crate) T);

/// Query parameters.
#[derive(Debug)]
pub(crate) struct Query<T>(pub(crate) T);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Bytes::from_request(req, state)
            .await
            .map(Self)
            .map_err(body_error)
    }
}

/// A body that could not be read: 413 past the limit, else 400.
fn body_error(rejection: BytesRejection) -> AppError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return AppError::PayloadTooLarge(
            "The request body is larger than this route takes".into(),
        );
    }
    AppError::BadRequest("The request body could not be read".into())
}

impl<S, T> FromRequest<S> for Json<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(AppError::UnsupportedMediaType(
                "Expected a JSON body (application/json)".into(),
            ));
        }
        let RawBody(body) = RawBody::from_request(req, state).await?;
        json_body(&body).map(Self)
    }
}

fn is_json(headers: &axum::http::HeaderMap) -> bool {
    let Some(content_type) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || essence
            .strip_prefix("application/")
            .is_some_and(|subtype| subtype.ends_with("+json"))
}

/// `body` as JSON of type `T`; 400 when it is not JSON, 422 when it is JSON of another shape,
/// each saying where and what was expected, never what was found.
pub(crate) fn json_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, AppError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut deserializer)
        .map_err(|error| rejected(&error.path().to_string(), error.inner()))?;
    deserializer.end().map_err(|error| rejected(".", &error))?;
    Ok(value)
}

fn rejected(path: &str, error: &serde_json::Error) -> AppError {
    if error.is_data() {
        let full = error.to_string();
        let position = format!(" at line {} column {}", error.line(), error.column());
        let message = full.strip_suffix(&position).unwrap_or(&full);
        return AppError::invalid(format!("Invalid JSON body: {}", shape_error(path, message)));
    }
    // Syntax and end-of-input errors are fixed texts with a position: they quote no input.
    AppError::BadRequest(format!("The body is not valid JSON: {error}"))
}

/// What a type error says, without the value serde quotes in it: `value: wrong type, expected
/// a string` rather than ``invalid type: integer `87654321`, expected a string``.
fn shape_error(path: &str, message: &str) -> String {
    let starts = |prefixes: &[&str]| prefixes.iter().any(|p| message.starts_with(p));
    // serde puts what it expected last, after what it found; "there are no ..." expects nothing.
    let expected = message
        .rsplit_once(", expected ")
        .filter(|_| !message.ends_with(", there are no variants"))
        .filter(|_| !message.ends_with(", there are no fields"))
        .map(|(_, expected)| expected);
    let problem = |what: &str| match expected {
        Some(expected) => format!("{what}, expected {expected}"),
        None => what.to_owned(),
    };
    let (path, problem) = if starts(&["missing field ", "duplicate field "]) {
        (path, message.to_owned())
    } else if starts(&["unknown field "]) {
        // The path of an unknown field ends with its name, which the caller chose: left out.
        let parent = path.rsplit_once('.').map_or(".", |(parent, _)| parent);
        (parent, problem("unknown field"))
    } else if starts(&["invalid type: "]) {
        (path, problem("wrong type"))
    } else if starts(&["invalid value: ", "invalid length ", "unknown variant "]) {
        (path, problem("not accepted"))
    } else {
        (path, "not accepted".to_owned())
    };
    let at = if path == "." { "the body" } else { path };
    format!("{at}: {problem}")
}

impl<S, T> FromRequestParts<S> for Path<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| Self(value))
            .map_err(|rejection: PathRejection| AppError::BadRequest(rejection.body_text()))
    }
}

impl<S, T> FromRequestParts<S> for Query<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| Self(value))
            .map_err(|rejection: QueryRejection| AppError::BadRequest(rejection.body_text()))
    }
}

/// Query parameters by name (the last of a repeated name wins).
pub(crate) type Params = std::collections::HashMap<String, String>;

/// `page` and `size` of a listing: pages from 1, 10 per page unless told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Paging {
    pub(crate) page: u32,
    pub(crate) size: u32,
}

impl Paging {
    /// The largest page a caller may ask for.
    const MAX_SIZE: u32 = 1000;

    /// `page` (default 1) and `size` (default 10, at most 1000) from the query.
    pub(crate) fn from_params(params: &Params) -> Result<Self, AppError> {
        let number = |name: &str, default: u32| match params.get(name) {
            None => Ok(default),
            Some(text) => text
                .parse::<u32>()
                .map_err(|_| AppError::invalid(format!("{name}: '{text}' is not a number"))),
        };
        let paging = Self {
            page: number("page", 1)?,
            size: number("size", 10)?,
        };
        if paging.page == 0 {
            return Err(AppError::invalid(
                "page: must be 1 or more (pages count from 1)",
            ));
        }
        if paging.size == 0 || paging.size > Self::MAX_SIZE {
            return Err(AppError::invalid(format!(
                "size: must be between 1 and {}",
                Self::MAX_SIZE
            )));
        }
        Ok(paging)
    }

    /// This page of `items`.
    pub(crate) fn slice<T>(self, items: Vec<T>) -> Vec<T> {
        let skip = (self.page as usize - 1).saturating_mul(self.size as usize);
        items
            .into_iter()
            .skip(skip)
            .take(self.size as usize)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code, reason = "only deserialized")]
    struct Shape {
        key: String,
        value: String,
        tags: Option<Vec<Level>>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code, reason = "only deserialized")]
    enum Level {
        Low,
    }

    fn rejection(body: &str) -> String {
        json_body::<Shape>(body.as_bytes()).unwrap_err().to_string()
    }

    #[test]
    fn leak_11_a_rejected_json_body_names_the_field_and_type_never_the_value() {
        let cases = [
            (
                r#"{"key":"K","value":87654321}"#,
                "value: wrong type, expected a string",
            ),
            (
                r#"{"key":"K","value":true}"#,
                "value: wrong type, expected a string",
            ),
            (
                r#"{"key":"K","value":"v","tags":["s3cr3t-level"]}"#,
                "tags[0]: not accepted, expected `Low`",
            ),
            (
                r#"{"key":"K","value":"v","tags":["x, expected s3cr3t at line 1 column 2"]}"#,
                "tags[0]: not accepted, expected `Low`",
            ),
            (
                r#"{"key":"K","value":"v","s3cr3t-field":1}"#,
                "the body: unknown field, expected one of `key`",
            ),
            ("87654321", "the body: wrong type, expected struct Shape"),
            (r#"{"key":"K"}"#, "missing field `value`"),
        ];
        for (body, expected) in cases {
            let message = rejection(body);
            assert!(message.contains(expected), "{body}: {message}");
            for value in ["87654321", "true", "s3cr3t"] {
                assert!(!message.contains(value), "{body}: {message}");
            }
        }
    }

    #[test]
    fn a_body_that_is_not_json_says_where_it_broke() {
        for body in [
            r#"{"key": "K", "value": "87654321"#,
            r#"{"key": "K", "value": "v"} 87654321"#,
        ] {
            let message = rejection(body);
            assert!(
                message.starts_with("The body is not valid JSON"),
                "{message}"
            );
            assert!(message.contains("line 1 column"), "{message}");
            assert!(!message.contains("87654321"), "{message}");
        }
    }

    #[test]
    fn pages_count_from_one_with_ten_by_default() {
        let paging = Paging::from_params(&Params::new()).unwrap();
        assert_eq!(paging, Paging { page: 1, size: 10 });
        let items: Vec<u32> = (1..=25).collect();
        let third = Paging::from_params(&params(&[("page", "3")])).unwrap();
        assert_eq!(third.slice(items), [21, 22, 23, 24, 25]);
    }

    #[test]
    fn a_bad_page_is_refused_with_its_name() {
        for bad in [
            ("page", "0"),
            ("size", "0"),
            ("size", "100000"),
            ("page", "x"),
        ] {
            let error = Paging::from_params(&params(&[bad])).unwrap_err();
            assert!(error.to_string().starts_with(bad.0), "{error}");
        }
    }
}
