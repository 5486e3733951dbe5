//! Errors everywhere: malformed JSON, wrong types, content types, body
//! limits, unknown routes, wrong methods, trailing slashes; health, OpenAPI,
//! replica header, fault injection, in-process graceful shutdown.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::support::{json, Backend, Server};

async fn malformed_bodies(backend: Backend) {
    let s = Server::start(backend).await;
    let token = s.demo().await;
    let post = |body: &'static str, ct: Option<&'static str>| {
        let mut req = s
            .client
            .post(s.url("/api/v1/products/"))
            .bearer_auth(&token)
            .body(body);
        if let Some(ct) = ct {
            req = req.header("content-type", ct);
        }
        req.send()
    };
    for body in ["{", "{\"title\": }", "nul", "{\"a\":1,}"] {
        let (st, v) = json(post(body, Some("application/json")).await.unwrap()).await;
        assert_eq!(st, 400, "{body}");
        assert!(
            v["detail"]
                .as_str()
                .unwrap()
                .starts_with("JSON parse error - "),
            "{body}: {v}"
        );
    }
    let (st, v) = json(post("[1, 2]", Some("application/json")).await.unwrap()).await;
    assert_eq!(
        (st, v),
        (
            400,
            json!({"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]})
        )
    );
    // No content type, empty body: every required field is reported.
    let (st, v) = json(post("", None).await.unwrap()).await;
    assert_eq!(
        (st, v),
        (400, json!({"title": ["This field is required."]}))
    );
    let (st, v) = json(post("title=x", Some("text/plain")).await.unwrap()).await;
    assert_eq!(st, 415);
    assert_eq!(
        v["detail"],
        "Unsupported media type \"text/plain\" in request."
    );
    // A body without a content type is refused as DRF does, and nothing is stored.
    let count = || async {
        s.get_json("/api/v1/products/", Some(s.token().await))
            .await
            .1["count"]
            .as_i64()
            .unwrap()
    };
    let before = count().await;
    let (st, v) = json(post("{\"title\":\"x\"}", None).await.unwrap()).await;
    assert_eq!(
        (st, v),
        (
            415,
            json!({"detail": "Unsupported media type \"\" in request."})
        )
    );
    assert_eq!(count().await, before);
    // An empty body is no data, whatever its content type (DRF parses nothing).
    let (st, v) = json(post("", Some("text/plain")).await.unwrap()).await;
    assert_eq!(
        (st, v),
        (400, json!({"title": ["This field is required."]}))
    );
    // The media type is checked when the body is parsed, after the permission
    // checks: someone else's product is a 403 before it is a 415.
    let other = s.other().await;
    let res = s
        .client
        .put(s.url("/api/v1/products/1/"))
        .bearer_auth(&other)
        .header("content-type", "text/plain")
        .body("title=x")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let (st, _) = json(
        post(
            "{\"title\":\"ok\"}",
            Some("application/json; charset=utf-8"),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(st, 201);
}

async fn body_limit(backend: Backend) {
    let s = Server::start_with(backend, |c| c.body_limit = 4096).await;
    let token = s.demo().await;
    let big = json!({"title": "x", "description": "d".repeat(5000)});
    let (st, v) = s.post_json("/api/v1/products/", Some(&token), big).await;
    assert_eq!((st, v), (413, json!({"detail": "Request body too large."})));
    // Without a Content-Length (chunked), the limit still holds.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(s.base.trim_start_matches("http://"))
        .await
        .unwrap();
    let head = format!(
        "POST /api/v1/products/ HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    for _ in 0..3 {
        let chunk = " ".repeat(2000);
        let _ = stream
            .write_all(format!("{:x}\r\n{chunk}\r\n", chunk.len()).as_bytes())
            .await;
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
}

async fn routes_methods_slashes(backend: Backend) {
    let s = Server::start(backend).await;
    let (st, v) = s.get_json("/api/v1/nothing/", None).await;
    assert_eq!((st, v), (404, json!({"detail": "Not found."})));
    let (st, _) = s.get_json("/", None).await;
    assert_eq!(st, 404);

    // Permission before method, as in DRF: anonymous callers get the 401.
    let res = s
        .send(reqwest::Method::DELETE, "/api/v1/products/", None, None)
        .await;
    assert_eq!(res.status(), 401);
    let res = s
        .send(
            reqwest::Method::DELETE,
            "/api/v1/products/",
            Some(s.token().await),
            None,
        )
        .await;
    assert_eq!(res.headers()["allow"], "GET, POST, HEAD, OPTIONS");
    let (st, v) = json(res).await;
    assert_eq!(
        (st, v),
        (405, json!({"detail": "Method \"DELETE\" not allowed."}))
    );
    let res = s
        .send(reqwest::Method::GET, "/api/v1/auth/token/", None, None)
        .await;
    assert_eq!(res.status(), 405);
    assert_eq!(res.headers()["allow"], "POST, OPTIONS");

    for (from, to) in [
        ("/api/v1/products", "/api/v1/products/"),
        ("/api/v1/products/1", "/api/v1/products/1/"),
        (
            "/api/v1/products/comments?page=2",
            "/api/v1/products/comments/?page=2",
        ),
    ] {
        let res = s.get(from, None).await;
        assert_eq!(res.status(), 301, "{from}");
        assert_eq!(res.headers()["location"], s.url(to).as_str(), "{from}");
    }
    assert_eq!(s.get("/api/v1/unknown", None).await.status(), 404);
    assert_eq!(
        s.send(
            reqwest::Method::POST,
            "/api/v1/products",
            None,
            Some(json!({}))
        )
        .await
        .status(),
        404
    );
}

async fn health_openapi_replica(backend: Backend) {
    let s = Server::start_with(backend, |c| c.replica_id = Some("replica-7".into())).await;
    let res = s.get("/healthz", None).await;
    assert_eq!(res.headers()["x-replica"], "replica-7");
    assert_eq!(json(res).await, (200, json!({"status": "ok"})));
    let res = s.get("/api/v1/nothing/", None).await;
    assert_eq!(res.headers()["x-replica"], "replica-7");
    let (st, doc) = s.get_json("/api/v1/openapi.json", None).await;
    assert_eq!(st, 200);
    assert_eq!(doc["openapi"], "3.0.3");
    assert!(doc["paths"]["/api/v1/products/{id}/"]["delete"].is_object());
    let no_replica = Server::start(backend).await;
    assert!(no_replica
        .get("/healthz", None)
        .await
        .headers()
        .get("x-replica")
        .is_none());
}

async fn fault_injection(backend: Backend) {
    let s = Server::start_with(backend, |c| c.fault.error_rate = 1.0).await;
    assert_eq!(s.get("/healthz", None).await.status(), 503);
    assert_eq!(s.get("/api/v1/products/", None).await.status(), 503);
    let s = Server::start_with(backend, |c| c.fault.error_rate = 0.5).await;
    let mut failures = 0;
    for _ in 0..200 {
        if s.get("/healthz", None).await.status() == 503 {
            failures += 1;
        }
    }
    assert!(
        (50..150).contains(&failures),
        "{failures} of 200 at rate 0.5"
    );

    let s = Server::start_with(backend, |c| {
        c.fault.delay = Some(Duration::from_millis(300))
    })
    .await;
    let t = Instant::now();
    assert_eq!(s.get("/healthz", None).await.status(), 200);
    assert!(
        t.elapsed() < Duration::from_millis(250),
        "healthz is not delayed"
    );
    let token = s.token().await;
    let t = Instant::now();
    assert_eq!(
        s.get("/api/v1/products/1/", Some(token)).await.status(),
        200
    );
    assert!(t.elapsed() >= Duration::from_millis(300));
}

async fn graceful_shutdown_in_process(backend: Backend) {
    let mut s = Server::start_with(backend, |c| {
        c.fault.delay = Some(Duration::from_millis(700))
    })
    .await;
    let client = s.client.clone();
    let url = s.url("/api/v1/products/1/");
    let token = s.token().await.to_owned();
    let in_flight = tokio::spawn(async move { client.get(url).bearer_auth(token).send().await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    s.trigger_shutdown();
    let res = in_flight
        .await
        .unwrap()
        .expect("in-flight request completes");
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["id"], 1);
    let base = s.base.clone();
    s.stop().await.expect("clean stop");
    // And the port no longer answers.
    assert!(super::support::client()
        .get(format!("{base}/healthz"))
        .send()
        .await
        .is_err());
}

on_both_backends!(
    malformed_bodies,
    body_limit,
    routes_methods_slashes,
    health_openapi_replica,
    fault_injection,
    graceful_shutdown_in_process,
);
