//! axum's extractors with their rejections turned into [`AppError`]s, so that every error a
//! client sees is JSON `{"message"}`.

use crate::error::AppError;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

/// A JSON body.
#[derive(Debug)]
pub(crate) struct Json<T>(pub(crate) T);

/// Path parameters.
#[derive(Debug)]
pub(crate) struct Path<T>(pub(crate) T);

/// Query parameters.
#[derive(Debug)]
pub(crate) struct Query<T>(pub(crate) T);

impl<S, T> FromRequest<S> for Json<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        axum::Json::<T>::from_request(req, state)
            .await
            .map(|axum::Json(value)| Self(value))
            .map_err(|rejection: JsonRejection| match rejection {
                JsonRejection::MissingJsonContentType(_) => {
                    AppError::UnsupportedMediaType("Expected a JSON body (application/json)".into())
                }
                JsonRejection::JsonDataError(e) => AppError::invalid(e.body_text()),
                other => AppError::BadRequest(other.body_text()),
            })
    }
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
