//! Page-number pagination as DRF's `PageNumberPagination` with
//! `page_size_query_param`: `?page=N` (or `last`), `?page_size=` (default 10,
//! capped at 100), answers `{count, next, previous, results}`. A page past
//! the end is `404 Invalid page.`; a bad `page_size` is a 400.

use serde::Serialize;

use crate::error::ApiError;
use crate::request::{Origin, QueryParams};

pub const DEFAULT_PAGE_SIZE: u64 = 10;
pub const MAX_PAGE_SIZE: u64 = 100;

/// The page asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum PageRequest {
    Number(u64),
    Last,
}

/// `?page=` and `?page_size=`, validated.
#[derive(Debug, Clone, Copy)]
pub struct PageParams {
    page: PageRequest,
    pub page_size: u64,
}

impl PageParams {
    pub fn from_query(query: &QueryParams) -> Result<PageParams, ApiError> {
        let page_size = match query.get("page_size") {
            None | Some("") => DEFAULT_PAGE_SIZE,
            Some(s) => match s.trim().parse::<u64>() {
                Ok(n) if n > 0 => n.min(MAX_PAGE_SIZE),
                _ => {
                    return Err(ApiError::field(
                        "page_size",
                        "A valid positive integer is required.",
                    ))
                }
            },
        };
        let page = match query.get("page") {
            None | Some("") => PageRequest::Number(1),
            Some("last") => PageRequest::Last,
            Some(s) => match s.trim().parse::<u64>() {
                Ok(n) if n > 0 => PageRequest::Number(n),
                _ => return Err(ApiError::InvalidPage),
            },
        };
        Ok(PageParams { page, page_size })
    }

    /// The page asked for, as given.
    pub(crate) fn request(&self) -> PageRequest {
        self.page
    }

    /// The page number asked for; `None` for `last` (needs the count first).
    pub fn number(&self) -> Option<u64> {
        match self.page {
            PageRequest::Number(n) => Some(n),
            PageRequest::Last => None,
        }
    }

    /// Rows to skip for page `number`.
    pub fn offset_of(&self, number: u64) -> i64 {
        (number.saturating_sub(1).saturating_mul(self.page_size)).min(i64::MAX as u64) as i64
    }

    /// The page to show given `count` rows: `(page, num_pages)`.
    pub fn resolve(&self, count: i64) -> Result<Page, ApiError> {
        let count = count.max(0) as u64;
        let num_pages = count.div_ceil(self.page_size).max(1);
        let number = match self.page {
            PageRequest::Last => num_pages,
            PageRequest::Number(n) if n <= num_pages => n,
            PageRequest::Number(_) => return Err(ApiError::InvalidPage),
        };
        Ok(Page {
            number,
            num_pages,
            size: self.page_size,
            count,
        })
    }
}

/// A resolved page.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub number: u64,
    pub num_pages: u64,
    pub size: u64,
    pub count: u64,
}

impl Page {
    pub fn limit(&self) -> i64 {
        self.size as i64
    }

    pub fn offset(&self) -> i64 {
        ((self.number - 1) * self.size) as i64
    }

    /// Wraps `results` with the counts and the neighbouring pages' links.
    pub fn wrap<T: Serialize>(&self, origin: &Origin, results: Vec<T>) -> Paginated<T> {
        let next = (self.number < self.num_pages).then(|| link(origin, Some(self.number + 1)));
        let previous =
            (self.number > 1).then(|| link(origin, (self.number > 2).then_some(self.number - 1)));
        Paginated {
            count: self.count,
            next,
            previous,
            results,
        }
    }

    /// `{count, next, previous, results}` around `items`, the inside of a
    /// results array already in JSON (`{…},{…}`), in the same bytes as
    /// `wrap` + serde would give.
    pub(crate) fn wrap_json(&self, origin: &Origin, items: &[u8]) -> Vec<u8> {
        let links = self.wrap(origin, Vec::<()>::new());
        let mut out = String::with_capacity(256);
        out.push_str("{\"count\":");
        out.push_str(&self.count.to_string());
        out.push_str(",\"next\":");
        push_json(&mut out, &links.next);
        out.push_str(",\"previous\":");
        push_json(&mut out, &links.previous);
        out.push_str(",\"results\":[");
        let mut body = Vec::with_capacity(out.len() + items.len() + 2);
        body.extend_from_slice(out.as_bytes());
        body.extend_from_slice(items);
        body.extend_from_slice(b"]}");
        body
    }
}

/// Appends a link (or `null`) as serde_json encodes it.
fn push_json(out: &mut String, value: &Option<String>) {
    match serde_json::to_string(value) {
        Ok(s) => out.push_str(&s),
        Err(_) => out.push_str("null"),
    }
}

/// The request's URL with `page` replaced (or removed for page 1).
fn link(origin: &Origin, page: Option<u64>) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    let mut any = false;
    for (k, v) in QueryParams::parse(origin.uri.query()).0 {
        if k != "page" {
            query.append_pair(&k, &v);
            any = true;
        }
    }
    if let Some(page) = page {
        query.append_pair("page", &page.to_string());
        any = true;
    }
    let mut out = origin.base();
    out.push_str(origin.uri.path());
    if any {
        out.push('?');
        out.push_str(&query.finish());
    }
    out
}

/// `{count, next, previous, results}`.
#[derive(Debug, Serialize)]
pub struct Paginated<T> {
    pub count: u64,
    pub next: Option<String>,
    pub previous: Option<String>,
    pub results: Vec<T>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(q: &str) -> Result<PageParams, ApiError> {
        PageParams::from_query(&QueryParams::parse(Some(q)))
    }

    #[test]
    fn sizes_and_pages() {
        assert_eq!(params("").unwrap().page_size, 10);
        assert_eq!(params("page_size=500").unwrap().page_size, 100);
        assert!(matches!(
            params("page_size=0"),
            Err(ApiError::Validation(_))
        ));
        assert!(matches!(
            params("page_size=abc"),
            Err(ApiError::Validation(_))
        ));
        assert!(matches!(params("page=0"), Err(ApiError::InvalidPage)));
        assert!(matches!(params("page=x"), Err(ApiError::InvalidPage)));
        let p = params("page=3&page_size=10").unwrap();
        assert!(matches!(p.resolve(20), Err(ApiError::InvalidPage)));
        let page = p.resolve(21).unwrap();
        assert_eq!((page.number, page.offset(), page.num_pages), (3, 20, 3));
        let last = params("page=last").unwrap().resolve(0).unwrap();
        assert_eq!(last.number, 1);
    }

    #[test]
    fn links() {
        let origin = Origin {
            host: Some("h:1".parse().unwrap()),
            uri: "/api/v1/products/?search=a%20b&page=2".parse().unwrap(),
        };
        let page = params("page=2").unwrap().resolve(30).unwrap();
        let wrapped = page.wrap(&origin, Vec::<u8>::new());
        assert_eq!(
            wrapped.next.as_deref(),
            Some("http://h:1/api/v1/products/?search=a+b&page=3")
        );
        assert_eq!(
            wrapped.previous.as_deref(),
            Some("http://h:1/api/v1/products/?search=a+b")
        );
    }
}
