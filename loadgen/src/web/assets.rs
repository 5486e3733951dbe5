//! The page's files, embedded in the binary at compile time: no CDN, no
//! network, no files to install next to the binary.
//!
//! The files live in `loadgen/assets/`; `vendor/` holds uPlot 1.6.32 (MIT,
//! licence text served at `/assets/vendor/uPlot.LICENSE`).

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// One embedded file: its path below `/assets/`, media type and content.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const INDEX_HTML: &str = include_str!("../../assets/index.html");

static ASSETS: &[Asset] = &[
    Asset {
        path: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../assets/app.js"),
    },
    Asset {
        path: "errors.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../assets/errors.js"),
    },
    Asset {
        path: "app.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../../assets/app.css"),
    },
    Asset {
        path: "vendor/uPlot.iife.min.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../assets/vendor/uPlot.iife.min.js"),
    },
    Asset {
        path: "vendor/uPlot.min.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../../assets/vendor/uPlot.min.css"),
    },
    Asset {
        path: "vendor/uPlot.LICENSE",
        content_type: "text/plain; charset=utf-8",
        body: include_str!("../../assets/vendor/uPlot.LICENSE"),
    },
];

/// Same-origin only. Styles allow inline attributes because uPlot positions
/// its legend and cursor with `style`; scripts are files only.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
                   form-action 'self'";

fn file(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            // Revalidate every time: a rebuilt binary must not show a stale page.
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        body,
    )
        .into_response()
}

/// `GET /`: the dashboard page.
pub async fn index() -> Response {
    let mut res = file("text/html; charset=utf-8", INDEX_HTML);
    let headers = res.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    res
}

/// `GET /assets/{path}`: one embedded file, 404 for anything else.
pub async fn asset(Path(path): Path<String>) -> Response {
    match ASSETS.iter().find(|a| a.path == path) {
        Some(a) => file(a.content_type, a.body),
        None => (StatusCode::NOT_FOUND, "no such asset\n").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_references_only_embedded_assets() {
        for part in INDEX_HTML.split("/assets/").skip(1) {
            let path: String = part.chars().take_while(|c| *c != '"').collect();
            assert!(
                ASSETS.iter().any(|a| a.path == path),
                "index.html references /assets/{path}, which is not embedded"
            );
        }
    }

    #[test]
    fn page_loads_nothing_from_the_network() {
        for file in std::iter::once(INDEX_HTML).chain(
            ASSETS
                .iter()
                .filter(|a| !a.path.starts_with("vendor/"))
                .map(|a| a.body),
        ) {
            assert!(!file.contains("http://cdn"), "CDN reference");
            assert!(!file.contains("src=\"http"), "remote script");
            assert!(!file.contains("href=\"http"), "remote stylesheet");
        }
    }
}
