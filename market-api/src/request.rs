//! Small extractors for what handlers read off the request line: query
//! parameters ([`QueryParams`], last value wins as in Django's `QueryDict.get`),
//! the origin used to build absolute URLs ([`Origin`]), and numeric path ids
//! ([`IdParam`], where anything that is not a number is a 404, never a 400).

use std::convert::Infallible;

use axum::extract::{FromRequestParts, Path};
use axum::http::header::HOST;
use axum::http::request::Parts;
use axum::http::{HeaderValue, Uri};

use crate::error::ApiError;

/// Decoded query parameters in order.
#[derive(Debug, Default)]
pub struct QueryParams(pub Vec<(String, String)>);

impl QueryParams {
    pub fn parse(query: Option<&str>) -> Self {
        QueryParams(
            query
                .map(|q| {
                    url::form_urlencoded::parse(q.as_bytes())
                        .into_owned()
                        .collect()
                })
                .unwrap_or_default(),
        )
    }

    /// The last value given for `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(QueryParams::parse(parts.uri.query()))
    }
}

/// Host and URI of the request, for absolute links (`next`, `image`).
#[derive(Debug, Clone)]
pub struct Origin {
    pub host: Option<HeaderValue>,
    pub uri: Uri,
}

impl Origin {
    /// `http://host` (or `http://localhost` without a Host header).
    pub fn base(&self) -> String {
        let host = self
            .host
            .as_ref()
            .and_then(|h| h.to_str().ok())
            .or_else(|| self.uri.authority().map(|a| a.as_str()))
            .unwrap_or("localhost");
        format!("http://{host}")
    }

    /// `http://host/media/`: what a relative media path is appended to.
    pub fn media_base(&self) -> String {
        let mut base = self.base();
        base.push_str("/media/");
        base
    }

    /// An absolute URL for a stored media path (already absolute URLs pass).
    pub fn media_url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_owned()
        } else {
            format!("{}/media/{}", self.base(), path.trim_start_matches('/'))
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Origin {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(Origin {
            host: parts.headers.get(HOST).cloned(),
            uri: parts.uri.clone(),
        })
    }
}

/// A numeric `{id}` path segment; anything else is `404 Not found.`
#[derive(Debug, Clone, Copy)]
pub(crate) struct IdParam(pub(crate) i64);

impl<S: Send + Sync> FromRequestParts<S> for IdParam {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::NotFound)?;
        raw.parse::<i64>()
            .ok()
            .filter(|&id| id > 0)
            .map(IdParam)
            .ok_or(ApiError::NotFound)
    }
}
