//! Hostile requests, answered as nginx answers them (the status it gives is
//! in each case's comment), and never passed on: request smuggling
//! variants (CL.TE, TE.CL, `Transfer-Encoding` twice, codings we do not
//! apply), lenient numbers, `Host` values nginx's `ngx_http_validate_host`
//! refuses, userinfo in the target, `CONNECT`, paths that climb above the
//! root, obs-fold, bare CR, NUL and over-long chunk sizes. Each goes over
//! a raw socket to a balancer in front of a real backend, which must see
//! nothing of it.

use crate::support::*;

/// Sends `request` alone on a connection; the status of the answer and the
/// requests the backend saw.
async fn answer(request: &str) -> (String, u64, String) {
    let b = Backend::start("b").await;
    let bal = Bal::start(config(vec![b.server()])).await;
    let r = raw(bal.addr, request.as_bytes()).await;
    let hits = b.hits();
    bal.stop().await;
    (status_of(&r).to_string(), hits, r)
}

/// Each case: the request and nginx's status.
async fn refused(cases: &[(&str, &str)]) {
    for (request, nginx) in cases {
        let (status, hits, r) = answer(request).await;
        assert_eq!(status, *nginx, "{request:?} was answered:\n{r}");
        assert_eq!(hits, 0, "{request:?} reached the backend");
    }
}

#[tokio::test]
async fn lenient_numbers_and_codings_we_do_not_apply() {
    refused(&[
        // nginx: "client sent invalid "Content-Length" header" (400).
        ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello", "400"),
        ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", "400"),
        ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0x5\r\n\r\nhello", "400"),
        (
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n",
            "400",
        ),
        // nginx: "client sent unknown "Transfer-Encoding"" (501).
        (
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            "501",
        ),
        (
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            "501",
        ),
        // nginx: "client sent duplicate header line" (400).
        (
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            "400",
        ),
        // nginx: "client sent HTTP/1.0 request with "Transfer-Encoding"" (400).
        (
            "POST / HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            "400",
        ),
    ])
    .await;
}

#[tokio::test]
async fn hosts_nginx_refuses() {
    refused(&[
        // nginx: "client sent invalid host header" (400).
        ("GET / HTTP/1.1\r\nHost: evil.test/../admin\r\n\r\n", "400"),
        ("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", "400"),
        ("GET / HTTP/1.1\r\nHost: a..b\r\n\r\n", "400"),
        ("GET / HTTP/1.1\r\nHost: x:99999\r\n\r\n", "400"),
        ("GET / HTTP/1.1\r\nHost: \r\n\r\n", "400"),
        // nginx: "client sent invalid request" (400): no userinfo in a target.
        (
            "GET http://user:pw@evil.test/x HTTP/1.1\r\nHost: x\r\n\r\n",
            "400",
        ),
        (
            "GET http://evil.test/../x HTTP/1.1\r\nHost: x\r\n\r\n",
            "400",
        ),
    ])
    .await;
}

#[tokio::test]
async fn connect_and_paths_above_the_root() {
    refused(&[
        // nginx: "client sent CONNECT method" (405).
        (
            "CONNECT evil.test:443 HTTP/1.1\r\nHost: evil.test:443\r\n\r\n",
            "405",
        ),
        // nginx's ngx_http_parse_complex_uri: above the root is 400.
        ("GET /a/../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n", "400"),
        ("GET /%2e%2e/etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n", "400"),
        ("GET /a%2f..%2f..%2fetc HTTP/1.1\r\nHost: x\r\n\r\n", "400"),
        ("GET /a%00b HTTP/1.1\r\nHost: x\r\n\r\n", "400"),
        ("GET /a%zz HTTP/1.1\r\nHost: x\r\n\r\n", "400"),
    ])
    .await;
    // A path that stays inside is forwarded as it came, as nginx does with
    // `proxy_pass` and no URI.
    let (status, hits, r) =
        answer("GET /a/../b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
    assert_eq!((status.as_str(), hits), ("200", 1), "{r}");
}

#[tokio::test]
async fn malformed_heads() {
    refused(&[
        // obs-fold (RFC 9112 §5.2: a server may refuse it; nginx does).
        (
            "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n  folded\r\n\r\n",
            "400",
        ),
        // A bare CR.
        ("GET / HTTP/1.1\rHost: x\r\n\r\n", "400"),
        ("GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n", "400"),
        // NUL in a header value and in the target.
        ("GET / HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n", "400"),
        ("GET /a\0b HTTP/1.1\r\nHost: x\r\n\r\n", "400"),
        // A space in the target.
        ("GET /a b HTTP/1.1\r\nHost: x\r\n\r\n", "400"),
    ])
    .await;
    // Bare LF line ends are accepted, by nginx too (RFC 9112 §2.2 allows it).
    let (status, hits, r) = answer("GET / HTTP/1.1\nHost: x\nConnection: close\n\n").await;
    assert_eq!((status.as_str(), hits), ("200", 1), "{r}");
}

/// CL.TE and TE.CL: whatever the order, the request is read one way only
/// (the balancer re-frames what it forwards), so nothing smuggled reaches
/// the backend: it sees at most the one request.
#[tokio::test]
async fn content_length_beside_transfer_encoding_smuggles_nothing() {
    for request in [
        // CL.TE: a front end reading Content-Length would forward "0\r\n\r\nG".
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
        // TE.CL: one reading Transfer-Encoding forwards a body with a request in it.
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n2c\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n\r\n0\r\n\r\n",
    ] {
        let b = Backend::start("b").await;
        let bal = Bal::start(config(vec![b.server()])).await;
        let r = raw(bal.addr, request.as_bytes()).await;
        let log = b.seen.log.lock().unwrap().clone();
        assert!(
            !log.iter().any(|p| p.contains("smuggled")),
            "{request:?} smuggled a request: {log:?}\n{r}"
        );
        assert!(b.hits() <= 1, "{request:?}: {log:?}");
        bal.stop().await;
    }
}

/// nginx answers both with 400 ("client sent "Content-Length" and
/// "Transfer-Encoding" headers at the same time"). hyper, which serves
/// every `Transfer-Encoding` request, drops the `Content-Length` before the
/// proxy sees the head, so the HTTP/1.1 loop applies the rule before it
/// hands the connection over; a coding that does not end the list with
/// `chunked` is 501 there too (hyper alone answered 400).
#[tokio::test]
async fn content_length_beside_transfer_encoding_is_refused() {
    refused(&[
        (
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG",
            "400",
        ),
        (
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n",
            "400",
        ),
        (
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
            "501",
        ),
    ])
    .await;
}

/// A chunk size nobody could send: nginx answers 400 ("client sent invalid
/// chunked body"); so do we, and the connection ends.
#[tokio::test]
async fn over_long_chunk_size() {
    let b = Backend::start("b").await;
    let bal = Bal::start(config(vec![b.server()])).await;
    let r = raw(
        bal.addr,
        b"POST /count HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFFFFF\r\nx\r\n0\r\n\r\n",
    )
    .await;
    assert!(status_of(&r) == "400" || r.is_empty(), "{r}");
    // The backend never answered an upload it did not receive whole.
    assert!(!r.contains("x-backend"), "{r}");
    bal.stop().await;
}
