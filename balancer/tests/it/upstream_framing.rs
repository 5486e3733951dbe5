//! Upstream responses framed by the workspace's one rule
//! (`plumbing::http1`, RFC 9112 §6.3; issue 11), end to end: what the rule
//! calls an error is nginx's 502 and a failed attempt; what it keeps alive
//! is reused, what it does not is not. Each row of the rule's table is
//! checked against the parser in `proxy/h1.rs`; these check that the
//! balancer acts on the verdict.

use bytes::Bytes;
use http::Request;
use http_body_util::Full;

use crate::support::*;

/// A failed attempt as the admin API counts it.
async fn failures(bal: &Bal) -> u64 {
    bal.status().await["upstreams"][0]["servers"][0]["failures"]
        .as_u64()
        .unwrap()
}

#[tokio::test]
async fn a_response_the_rule_refuses_is_502_and_a_failed_attempt() {
    let s = Scripted::start(vec![
        Reply::Send(b"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello"),
        Reply::Send(b"HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\nx"),
        Reply::Send(
            b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        ),
        Reply::Send(b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n"),
    ])
    .await;
    let bal = Bal::start(config(vec![s.server()])).await;
    for n in 1..=4 {
        let r = get(&bal.url("/")).await;
        assert_eq!(r.status, 502, "reply {n}: {}", r.body);
        assert!(
            r.body.contains("502 Bad Gateway"),
            "nginx's page: {}",
            r.body
        );
        assert_eq!(failures(&bal).await, n, "reply {n} counted as a failure");
    }
    // The server is still used (a lone one is not taken out), on a fresh
    // connection each time: a refused response's connection is closed.
    assert_eq!(get(&bal.url("/")).await.status, 200);
    assert_eq!(s.conns(), 5);
    bal.stop().await;
}

#[tokio::test]
async fn a_refused_response_goes_to_the_next_server() {
    let bad = Scripted::start(vec![
        Reply::Send(
            b"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello"
        );
        4
    ])
    .await;
    let good = Backend::start("good").await;
    let bal = Bal::start(config(vec![bad.server(), good.server()])).await;
    for _ in 0..4 {
        let r = get(&bal.url("/")).await;
        assert_eq!((r.status, r.backend().as_str()), (200, "good"));
    }
    bal.stop().await;
}

#[tokio::test]
async fn responses_the_rule_keeps_alive_reuse_the_connection() {
    let s = Scripted::start(vec![
        // Equal lengths are one length.
        Reply::Send(b"HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\nContent-Length: 5\r\n\r\nhello"),
        // No body after HEAD or 204, whatever the lengths say.
        Reply::Send(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"),
        Reply::Send(b"HTTP/1.1 204 No Content\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
    ])
    .await;
    let bal = Bal::start(config(vec![s.server()])).await;
    let r = get(&bal.url("/")).await;
    assert_eq!((r.status, r.body.as_str()), (200, "hello"));
    let head = Request::head(bal.url("/"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    assert_eq!(send(head).await.status, 200);
    assert_eq!(get(&bal.url("/")).await.status, 204);
    assert_eq!(get(&bal.url("/")).await.body, "ok");
    assert_eq!(
        (s.heads(), s.conns()),
        (4, 1),
        "one connection for all four"
    );
    bal.stop().await;
}

#[tokio::test]
async fn responses_the_rule_does_not_keep_alive_close_the_connection() {
    let s = Scripted::start(vec![
        // Transfer-Encoding decides, even beside an invalid length; the
        // connection is not trusted with another request.
        Reply::Send(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: x\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        ),
        // HTTP/1.0: `close` wins over `keep-alive`.
        Reply::Send(b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive, close\r\n\r\nhello"),
        // HTTP/1.0 `keep-alive` alone persists.
        Reply::Send(b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\nhello"),
    ])
    .await;
    let bal = Bal::start(config(vec![s.server()])).await;
    for n in 1..=3 {
        let r = get(&bal.url("/")).await;
        assert_eq!((r.status, r.body.as_str()), (200, "hello"), "reply {n}");
        assert_eq!(s.conns(), n, "reply {n} on a fresh connection");
    }
    assert_eq!(get(&bal.url("/")).await.body, "ok");
    assert_eq!(
        s.conns(),
        3,
        "the HTTP/1.0 keep-alive connection was reused"
    );
    assert_eq!(failures(&bal).await, 0);
    bal.stop().await;
}
