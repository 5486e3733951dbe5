//! Proxy hygiene: forwarded headers, hop-by-hop stripping, client limits
//! (slowloris, malformed, oversized head and body), WebSocket passthrough,
//! h2c.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

#[tokio::test]
async fn forwarded_headers_and_hop_by_hop() {
    let b = Backend::start("b").await;
    let bal = Bal::start(config(vec![b.server()])).await;
    let req = http::Request::get(bal.url("/headers"))
        .header("host", "shop.example")
        .header("x-forwarded-for", "203.0.113.9")
        .header("connection", "x-private")
        .header("x-private", "secret")
        .header("te", "gzip")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let r = send(req).await;
    assert_eq!(r.status, 200);
    let h = r.body;
    assert!(h.contains("host: shop.example"), "{h}");
    assert!(h.contains("x-forwarded-for: 203.0.113.9, 127.0.0.1"), "{h}");
    assert!(h.contains("x-real-ip: 127.0.0.1"), "{h}");
    assert!(h.contains("x-forwarded-proto: http"), "{h}");
    assert!(h.contains("via: 1.1 balancer"), "{h}");
    assert!(!h.contains("x-private") && !h.contains("te: gzip"), "{h}");
    assert_eq!(r.headers["via"], "1.1 balancer");
    assert_eq!(r.headers["x-upstream"], b.addr.to_string().as_str());
    bal.stop().await;
}

/// RFC 9112 §3.2 (and nginx): an HTTP/1.1 request without `Host`, or with
/// two, is a 400; an absolute-form target names the host;
/// `proxy_set_header X-Forwarded-For $remote_addr` drops a client's list.
#[tokio::test]
async fn host_rules_and_a_replaced_forwarded_for() {
    let b = Backend::start("b").await;
    let mut c = config(vec![b.server()]);
    c.proxy.forwarded_for = balancer::config::ForwardedFor::Replace;
    let bal = Bal::start(c).await;
    for bad in [
        &b"GET /headers HTTP/1.1\r\nConnection: close\r\n\r\n"[..],
        b"GET /headers HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n",
    ] {
        let r = raw(bal.addr, bad).await;
        assert!(r.starts_with("HTTP/1.1 400 "), "{r}");
    }
    let r = raw(
        bal.addr,
        b"GET /headers HTTP/1.0\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n",
    )
    .await;
    assert!(
        r.starts_with("HTTP/1.1 200 "),
        "HTTP/1.0 may omit Host: {r}"
    );
    assert!(r.contains("x-forwarded-for: 127.0.0.1\n"), "{r}");
    let r = raw(
        bal.addr,
        b"GET http://named.example/headers HTTP/1.1\r\nHost: other.example\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(r.starts_with("HTTP/1.1 200 "), "{r}");
    assert!(r.contains("host: named.example"), "{r}");
    assert!(!r.contains("other.example"), "{r}");
    assert_eq!(b.hits(), 2, "the 400s never reached the server");
    bal.stop().await;
}

#[tokio::test]
async fn slowloris_is_cut_off() {
    let b = Backend::start("b").await;
    let mut c = config(vec![b.server()]);
    c.proxy.client_header_timeout = Duration::from_millis(500);
    let bal = Bal::start(c).await;
    let mut s = TcpStream::connect(bal.addr).await.unwrap();
    let t = Instant::now();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    // Drip a header byte now and then, never finishing the head.
    let mut closed = false;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if s.write_all(b"X").await.is_err() {
            closed = true;
            break;
        }
        let mut buf = [0u8; 256];
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(1), s.read(&mut buf)).await {
            if n == 0 || String::from_utf8_lossy(&buf[..n]).contains("408") {
                closed = true;
                break;
            }
        }
    }
    assert!(closed, "connection still open after {:?}", t.elapsed());
    assert!(t.elapsed() < Duration::from_secs(3));
    assert_eq!(b.hits(), 0);
    // The balancer still serves others.
    assert_eq!(get(&bal.url("/")).await.status, 200);
    bal.stop().await;
}

#[tokio::test]
async fn malformed_oversized_and_too_large() {
    let b = Backend::start("b").await;
    let mut c = config(vec![b.server()]);
    c.proxy.client_max_body_size = 1024;
    let bal = Bal::start(c).await;
    let r = raw(bal.addr, b"GET / HTTP/1.1\r\nHost x\r\n\r\n").await;
    assert!(r.starts_with("HTTP/1.1 400"), "{r}");
    let r = raw(bal.addr, b"NOT A REQUEST\r\n\r\n").await;
    assert!(r.starts_with("HTTP/1.1 400"), "{r}");
    let big = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    let r = raw(bal.addr, big.as_bytes()).await;
    assert!(r.starts_with("HTTP/1.1 431"), "{r}");
    let r = post(&bal.url("/echo"), &"x".repeat(2000)).await;
    assert_eq!(r.status, 413);
    // Chunked (length unknown up front) over the limit: also 413.
    let chunked = format!(
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n800\r\n{}\r\n0\r\n\r\n",
        "y".repeat(0x800)
    );
    let r = raw(bal.addr, chunked.as_bytes()).await;
    assert!(r.starts_with("HTTP/1.1 413"), "{r}");
    // Within the limit, chunked streams through.
    let ok = "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    let r = raw(bal.addr, ok.as_bytes()).await;
    assert!(r.starts_with("HTTP/1.1 200") && r.ends_with("hello"), "{r}");
    assert_eq!(get(&bal.url("/")).await.status, 200);
    bal.stop().await;
}

#[tokio::test]
async fn websocket_upgrade_passes_through() {
    let b = Backend::start("b").await;
    let bal = Bal::start(config(vec![b.server()])).await;
    let mut s = TcpStream::connect(bal.addr).await.unwrap();
    s.write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
        .await
        .unwrap();
    let head = read_some(&mut s).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("upgrade: echo"),
        "{head}"
    );
    s.write_all(b"ping over the tunnel").await.unwrap();
    assert_eq!(read_some(&mut s).await, "ping over the tunnel");
    drop(s);
    bal.stop().await;
}

#[tokio::test]
async fn h2c_clients_are_served() {
    let b = Backend::start("b").await;
    let bal = Bal::start(config(vec![b.server()])).await;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<Full<Bytes>>();
    for _ in 0..3 {
        let r = tokio::time::timeout(
            Duration::from_secs(5),
            client.request(
                http::Request::get(bal.url("/headers"))
                    .body(Full::new(Bytes::new()))
                    .unwrap(),
            ),
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.version(), http::Version::HTTP_2);
        let body = r.into_body().collect().await.unwrap().to_bytes();
        let body = String::from_utf8_lossy(&body);
        assert!(body.contains(&format!("host: {}", bal.addr)), "{body}");
        assert!(body.contains("via: 2.0 balancer"), "{body}");
    }
    bal.stop().await;
}
