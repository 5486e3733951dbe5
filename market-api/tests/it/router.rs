//! The router in-process through `tower::ServiceExt::oneshot`, no socket (as
//! axum's `examples/testing`): the cheap cases of routing, redirects, method
//! and media-type errors, login requirements. What crosses the wire (real
//! clients, shutdown, processes) stays in the socket tests.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

use super::support::{config, fresh_database, Backend, TestDatabase};

/// The app on a fresh seeded database, which lives as long as it.
async fn app(backend: Backend) -> (Router, TestDatabase) {
    let db = fresh_database(backend).await;
    let state = market_api::AppState::open(&config(&db.url)).await.unwrap();
    (market_api::app(state), db)
}

async fn call(app: &Router, req: Request<Body>) -> (StatusCode, header::HeaderMap, Value) {
    let res = app.clone().oneshot(req).await.unwrap();
    let (parts, body) = res.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    (parts.status, parts.headers, value)
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

async fn routing_without_a_socket(backend: Backend) {
    let (app, _db) = app(backend).await;
    let (st, _, v) = call(&app, get("/healthz")).await;
    assert_eq!((st, v), (StatusCode::OK, json!({"status": "ok"})));

    let (st, _, v) = call(&app, get("/api/v1/nothing/")).await;
    assert_eq!(
        (st, v),
        (StatusCode::NOT_FOUND, json!({"detail": "Not found."}))
    );

    let req = Request::get("/api/v1/products?page=2")
        .header(header::HOST, "example.test")
        .body(Body::empty())
        .unwrap();
    let (st, headers, _) = call(&app, req).await;
    assert_eq!(st, StatusCode::MOVED_PERMANENTLY);
    assert_eq!(
        headers[header::LOCATION],
        "http://example.test/api/v1/products/?page=2"
    );

    let req = Request::post("/api/v1/openapi.json")
        .body(Body::empty())
        .unwrap();
    let (st, headers, v) = call(&app, req).await;
    assert_eq!(st, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(headers[header::ALLOW], "GET,HEAD");
    assert_eq!(v, json!({"detail": "Method \"POST\" not allowed."}));

    let (st, _, doc) = call(&app, get("/api/v1/openapi.json")).await;
    assert_eq!(st, StatusCode::OK);
    let list = &doc["paths"]["/api/v1/products/"]["get"];
    assert_eq!(list["security"], json!([{"bearerAuth": []}]));
    let votes = &doc["components"]["schemas"]["ProductWrite"]["properties"]["votes"];
    assert_eq!(votes["maxItems"], 1000);
}

async fn logins_and_media_types_without_a_socket(backend: Backend) {
    let (app, _db) = app(backend).await;
    for uri in [
        "/api/v1/products/",
        "/api/v1/products/1/",
        "/api/v1/products/comments/",
    ] {
        let (st, headers, v) = call(&app, get(uri)).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED, "{uri}");
        assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer realm=\"api\"");
        assert_eq!(
            v,
            json!({"detail": "Authentication credentials were not provided."})
        );
    }
    let req = Request::get("/api/v1/products/")
        .header(header::AUTHORIZATION, "Bearer not.a.token")
        .body(Body::empty())
        .unwrap();
    let (st, _, v) = call(&app, req).await;
    assert_eq!(
        (st, &v["code"]),
        (StatusCode::UNAUTHORIZED, &json!("token_not_valid"))
    );

    let req = Request::post("/api/v1/users/register/")
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from("email=x"))
        .unwrap();
    let (st, _, v) = call(&app, req).await;
    assert_eq!(st, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(
        v,
        json!({"detail": "Unsupported media type \"text/plain\" in request."})
    );

    let req = Request::post("/api/v1/auth/token/")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_LENGTH, "999999999")
        .body(Body::from("{}"))
        .unwrap();
    let (st, _, _) = call(&app, req).await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE);

    let req = Request::post("/api/v1/auth/token/")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(
            r#"{"email": "demo@example.com", "password": "Passw0rd!"}"#,
        ))
        .unwrap();
    let (st, _, tokens) = call(&app, req).await;
    assert_eq!(st, StatusCode::OK);
    let access = tokens["access"].as_str().unwrap();
    let req = Request::get("/api/v1/products/?page_size=2&x=1")
        .header(header::AUTHORIZATION, format!("Bearer {access}"))
        .body(Body::empty())
        .unwrap();
    let (st, _, v) = call(&app, req).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["results"].as_array().unwrap().len(), 2);
    assert_eq!(
        v["next"],
        "http://localhost/api/v1/products/?page_size=2&x=1&page=2"
    );
}

on_both_backends!(
    routing_without_a_socket,
    logins_and_media_types_without_a_socket,
);
