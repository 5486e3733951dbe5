//! The balancer's own HTTP/1.1 loop on the wire: pipelining, HTTP/1.0
//! keep-alive, HEAD, chunked responses relayed (and re-framed for 1.0
//! clients), `Date` on local answers, and keep-alive across many requests.

use std::net::SocketAddr;
use std::time::Duration;

use balancer::config::ServerConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::*;

/// Reads one response whose body has a `content-length` (or none) off `s`.
async fn read_response(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&out).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let len = text[..end]
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .map_or(0, |n| n.trim().parse::<usize>().unwrap());
            if out.len() >= end + 4 + len {
                return text;
            }
        }
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .expect("a response within 5s")
            .unwrap();
        assert!(
            n > 0,
            "closed mid-response: {}",
            String::from_utf8_lossy(&out)
        );
        out.extend_from_slice(&buf[..n]);
    }
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let b = Backend::start("b").await;
    let bal = Bal::start(config(vec![b.server()])).await;
    let r = raw(
        bal.addr,
        b"GET /status/201 HTTP/1.1\r\nHost: x\r\n\r\nGET /status/202 HTTP/1.1\r\nHost: x\r\n\r\nGET /status/203 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    let statuses: Vec<&str> = r
        .match_indices("HTTP/1.1 ")
        .map(|(i, _)| &r[i + 9..i + 12])
        .collect();
    assert_eq!(statuses, ["201", "202", "203"], "{r}");
    assert!(r.contains("connection: close"), "{r}");
    assert_eq!(b.hits(), 3);
    bal.stop().await;
}

/// The next request arrives while the first is still upstream: the loop,
/// watching the client for an early close, keeps those bytes for later.
#[tokio::test]
async fn a_request_sent_while_the_first_is_in_flight_is_kept() {
    let b = Backend::start("b").await;
    let bal = Bal::start(config(vec![b.server()])).await;
    let mut s = TcpStream::connect(bal.addr).await.unwrap();
    s.write_all(b"GET /slow/300 HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    s.write_all(b"GET /status/202 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out))
        .await
        .expect("both answers within 5 s")
        .unwrap();
    let r = String::from_utf8_lossy(&out);
    let statuses: Vec<&str> = r
        .match_indices("HTTP/1.1 ")
        .map(|(i, _)| &r[i + 9..i + 12])
        .collect();
    assert_eq!(statuses, ["200", "202"], "{r}");
    assert_eq!(b.hits(), 2);
    bal.stop().await;
}

#[tokio::test]
async fn http10_keep_alive_only_when_asked() {
    let b = Backend::start("b").await;
    let bal = Bal::start(config(vec![b.server()])).await;
    // Plain HTTP/1.0: answered, then closed.
    let r = raw(bal.addr, b"GET / HTTP/1.0\r\n\r\n").await;
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    assert!(r.contains("connection: close") && r.ends_with('b'), "{r}");
    // With keep-alive: the connection carries a second request.
    let mut s = TcpStream::connect(bal.addr).await.unwrap();
    for _ in 0..2 {
        s.write_all(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            .await
            .unwrap();
        let r = read_response(&mut s).await;
        assert!(r.starts_with("HTTP/1.1 200"), "{r}");
        assert!(r.contains("connection: keep-alive"), "{r}");
    }
    assert_eq!(b.hits(), 3);
    bal.stop().await;
}

#[tokio::test]
async fn head_keeps_content_length_and_sends_no_body() {
    let b = Backend::start("backend-name").await;
    let bal = Bal::start(config(vec![b.server()])).await;
    let mut s = TcpStream::connect(bal.addr).await.unwrap();
    s.write_all(b"HEAD / HTTP/1.1\r\nHost: x\r\nX-Head-Request: 1\r\n\r\n")
        .await
        .unwrap();
    let head = read_some(&mut s).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("content-length: 12"), "{head}");
    assert!(
        head.ends_with("\r\n\r\n"),
        "no body after a HEAD response: {head:?}"
    );
    // The next request on the same connection finds no stray bytes.
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let r = read_response(&mut s).await;
    assert!(
        r.starts_with("HTTP/1.1 200") && r.ends_with("backend-name"),
        "{r}"
    );
    bal.stop().await;
}

/// A backend that answers every request with the same canned bytes.
async fn canned_backend(reply: &'static [u8]) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut got = Vec::new();
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                    while let Some(i) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                        got.drain(..i + 4);
                        if s.write_all(reply).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn chunked_responses_stream_and_are_reframed_for_http10() {
    let up = canned_backend(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    )
    .await;
    let bal = Bal::start(config(vec![ServerConfig::new(up)])).await;
    let r = get(&bal.url("/")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, "hello world");
    assert_eq!(r.headers["transfer-encoding"], "chunked");
    // An HTTP/1.0 client gets the body delimited by the close, unchunked.
    let r = raw(bal.addr, b"GET / HTTP/1.0\r\n\r\n").await;
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    assert!(!r.contains("transfer-encoding"), "{r}");
    assert!(r.ends_with("\r\n\r\nhello world"), "{r}");
    bal.stop().await;
}

#[tokio::test]
async fn local_answers_carry_a_date() {
    // Nothing listens there: the balancer answers 502 itself.
    let dead = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let bal = Bal::start(config(vec![ServerConfig::new(dead)])).await;
    let r = raw(
        bal.addr,
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(r.starts_with("HTTP/1.1 502"), "{r}");
    assert!(r.contains("\r\ndate: ") && r.contains(" GMT\r\n"), "{r}");
    bal.stop().await;
}

#[tokio::test]
async fn one_connection_carries_many_requests_with_bodies() {
    let b = Backend::start("b").await;
    let bal = Bal::start(config(vec![b.server()])).await;
    let mut s = TcpStream::connect(bal.addr).await.unwrap();
    for i in 0..50 {
        let body = format!("body number {i}");
        let req = format!(
            "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let r = read_response(&mut s).await;
        assert!(r.starts_with("HTTP/1.1 200") && r.ends_with(&body), "{r}");
    }
    assert_eq!(b.hits(), 50);
    bal.stop().await;
}

/// A backend that answers `100 Continue` at once, asked or not (as Python's
/// http.server and others do), then reads the whole body and reports what
/// it got.
async fn continuing_backend() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut got = Vec::new();
                let mut buf = vec![0u8; 65536];
                let end = loop {
                    if let Some(i) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                };
                let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .map_or(0, |n| n.trim().parse().unwrap());
                let expect = head.contains("\r\nexpect:");
                if s.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await.is_err() {
                    return;
                }
                while got.len() < end + len {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let body = format!("got {} expect={expect}", got.len() - end);
                let reply = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(reply.as_bytes()).await;
            });
        }
    });
    addr
}

/// curl sends `Expect: 100-continue` with bodies over 1 MiB. The balancer
/// answers the client's `Expect` itself, does not send it upstream, and an
/// upstream's own `100 Continue` does not stop the upload (it used to: the
/// upload stalled until `proxy_read_timeout`, then 504).
#[tokio::test]
async fn an_upload_with_expect_goes_through_even_if_the_upstream_says_continue() {
    let backend = continuing_backend().await;
    let mut c = config(vec![ServerConfig::new(backend)]);
    c.proxy.client_max_body_size = 4 * 1024 * 1024;
    let bal = Bal::start(c).await;
    let len = 1_500_000;
    let mut s = TcpStream::connect(bal.addr).await.unwrap();
    let head = format!(
        "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: {len}\r\nExpect: 100-continue\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let interim = read_some(&mut s).await;
    assert!(
        interim.starts_with("HTTP/1.1 100 Continue\r\n"),
        "{interim}"
    );
    s.write_all(&vec![b'x'; len]).await.unwrap();
    let r = read_response(&mut s).await;
    assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
    assert!(
        r.ends_with(&format!("got {len} expect=false")),
        "the whole body, no Expect upstream: {r}"
    );
    bal.stop().await;
}
