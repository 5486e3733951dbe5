//! The HTTP surface: [`app`] builds the router (all API routes under
//! `/api/v1/`, with Django's trailing slashes), plus the behaviour Django
//! gives every route: a GET without its trailing slash is redirected (301),
//! an unknown route is a JSON 404, a wrong method a JSON 405 with `Allow`,
//! and every API view answers `OPTIONS` with DRF's metadata ([`metadata`]).

mod auth;
mod comments;
mod health;
mod metadata;
mod openapi;
mod products;
mod users;

use axum::extract::Request;
use axum::http::header::{CONTENT_TYPE, HOST, LOCATION};
use axum::http::{HeaderValue, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::error::ApiError;
use crate::state::AppState;

/// Every route pattern, for the trailing-slash redirect (`{id}` = any segment).
const ROUTES: &[&str] = &[
    "/api/v1/auth/token/",
    "/api/v1/auth/token/refresh/",
    "/api/v1/auth/token/verify/",
    "/api/v1/users/",
    "/api/v1/users/register/",
    "/api/v1/users/{id}/",
    "/api/v1/products/",
    "/api/v1/products/has-product/",
    "/api/v1/products/comments/",
    "/api/v1/products/comments/{id}/",
    "/api/v1/products/{id}/",
];

/// The whole application. Layers, outermost first: panics become a JSON 500
/// (never a dropped connection); `X-Replica` goes on every response, faults
/// included; injected faults act before any work is done; a bare 405 from
/// the router gets its JSON body last, next to the routes that produced it.
pub fn app(state: AppState) -> Router {
    use metadata::options;
    let api = Router::new()
        .route(
            "/api/v1/auth/token/",
            post(auth::obtain).merge(options(&auth::OBTAIN_VIEW)),
        )
        .route(
            "/api/v1/auth/token/refresh/",
            post(auth::refresh).merge(options(&auth::REFRESH_VIEW)),
        )
        .route(
            "/api/v1/auth/token/verify/",
            post(auth::verify).merge(options(&auth::VERIFY_VIEW)),
        )
        .route(
            "/api/v1/users/",
            get(users::list).merge(options(&users::LIST_VIEW)),
        )
        .route(
            "/api/v1/users/register/",
            post(users::register).merge(options(&users::REGISTER_VIEW)),
        )
        .route(
            "/api/v1/users/{id}/",
            get(users::retrieve).merge(options(&users::DETAIL_VIEW)),
        )
        .route(
            "/api/v1/products/",
            get(products::list)
                .post(products::create)
                .merge(options(&products::LIST_VIEW)),
        )
        .route(
            "/api/v1/products/has-product/",
            get(products::has_product).merge(options(&products::HAS_PRODUCT_VIEW)),
        )
        .route(
            "/api/v1/products/comments/",
            get(comments::list)
                .post(comments::create)
                .merge(options(&comments::LIST_VIEW)),
        )
        .route(
            "/api/v1/products/comments/{id}/",
            get(comments::retrieve)
                .put(comments::update)
                .patch(comments::partial_update)
                .delete(comments::destroy)
                .merge(options(&comments::DETAIL_VIEW)),
        )
        .route(
            "/api/v1/products/{id}/",
            get(products::retrieve)
                .put(products::update)
                .patch(products::partial_update)
                .delete(products::destroy)
                .merge(options(&products::DETAIL_VIEW)),
        )
        .route("/api/v1/openapi.json", get(openapi::document))
        .route("/healthz", get(health::healthz))
        .fallback(fallback)
        .layer(middleware::from_fn(json_method_not_allowed));

    let mut app = api;
    if state.fault.delay.is_some() || state.fault.error_rate > 0.0 {
        app = app.layer(middleware::from_fn_with_state(
            state.clone(),
            crate::fault::inject,
        ));
    }
    if let Some(id) = state
        .replica_id
        .as_deref()
        .and_then(|id| HeaderValue::from_str(id).ok())
    {
        app = app.layer(SetResponseHeaderLayer::overriding(
            axum::http::HeaderName::from_static("x-replica"),
            id,
        ));
    }
    app.layer(CatchPanicLayer::custom(|_| {
        ApiError::Internal("handler panicked".into()).into_response()
    }))
    .with_state(state)
}

/// Whether `path` matches one of [`ROUTES`].
fn known_route(path: &str) -> bool {
    ROUTES.iter().any(|pattern| {
        let mut a = pattern.split('/');
        let mut b = path.split('/');
        loop {
            match (a.next(), b.next()) {
                (None, None) => return true,
                (Some("{id}"), Some(seg)) if !seg.is_empty() => {}
                (Some(p), Some(s)) if p == s => {}
                _ => return false,
            }
        }
    })
}

/// Unknown routes: Django's `APPEND_SLASH` redirect for GET/HEAD when the
/// slash-terminated path exists, else a JSON 404.
async fn fallback(method: Method, uri: Uri, req: Request) -> Response {
    let path = uri.path();
    if (method == Method::GET || method == Method::HEAD)
        && !path.ends_with('/')
        && known_route(&format!("{path}/"))
    {
        let host = req
            .headers()
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost");
        let mut location = format!("http://{host}{path}/");
        if let Some(q) = uri.query() {
            location.push('?');
            location.push_str(q);
        }
        if let Ok(value) = HeaderValue::from_str(&location) {
            return (StatusCode::MOVED_PERMANENTLY, [(LOCATION, value)]).into_response();
        }
    }
    ApiError::NotFound.into_response()
}

/// Gives the router's bare 405 (routes without a DRF view: `openapi.json`,
/// `/healthz`) the DRF body; the router adds its `Allow` header afterwards.
async fn json_method_not_allowed(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let response = next.run(req).await;
    if response.status() != StatusCode::METHOD_NOT_ALLOWED
        || response.headers().contains_key(CONTENT_TYPE)
    {
        return response;
    }
    let allow = response.headers().get(axum::http::header::ALLOW).cloned();
    ApiError::MethodNotAllowed {
        method: method.to_string(),
        allow,
    }
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_matching() {
        assert!(known_route("/api/v1/products/"));
        assert!(known_route("/api/v1/products/12/"));
        assert!(known_route("/api/v1/products/comments/3/"));
        assert!(!known_route("/api/v1/products/1/2/"));
        assert!(!known_route("/api/v1/nothing/"));
        assert!(!known_route("/api/v1/products//"));
    }
}
