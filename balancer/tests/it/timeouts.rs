//! Every client connection is timed, whatever serves it (issue 10, item 9):
//! an h2c preface then silence, a full preface and SETTINGS then idle, a
//! WebSocket tunnel with both sides silent, a client that never reads an
//! 8 MB response (on our HTTP/1.1 loop and on hyper's), an idle keep-alive
//! connection. Short limits keep the tests fast; the bounds are generous.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::*;

/// The client preface of HTTP/2 with prior knowledge.
pub const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// An empty SETTINGS frame.
pub const H2_SETTINGS: &[u8] = &[0, 0, 0, 4, 0, 0, 0, 0, 0];

/// Short client limits for these tests.
pub fn short(servers: Vec<balancer::config::ServerConfig>) -> balancer::Config {
    let mut c = config(servers);
    c.proxy.client_header_timeout = Duration::from_millis(500);
    c.proxy.keepalive_timeout = Duration::from_millis(500);
    c.proxy.client_send_timeout = Duration::from_millis(500);
    c.proxy.read_timeout = Duration::from_secs(1);
    c
}

/// Reads (and discards) until the server closes; false if it is still open
/// after `limit`.
pub async fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = vec![0u8; 64 * 1024];
    let drain = async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(limit, drain).await.is_ok()
}

#[tokio::test]
async fn h2c_preface_then_silence_is_closed() {
    let b = Backend::start("b").await;
    let bal = Bal::start(short(vec![b.server()])).await;
    let mut s = TcpStream::connect(bal.addr).await.unwrap();
    s.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    assert!(closed_within(&mut s, Duration::from_secs(8)).await);
    bal.stop().await;
}

#[tokio::test]
async fn h2c_settings_then_idle_is_closed() {
    let b = Backend::start("b").await;
    let bal = Bal::start(short(vec![b.server()])).await;
    let mut s = TcpStream::connect(bal.addr).await.unwrap();
    s.write_all(H2_PREFACE).await.unwrap();
    s.write_all(H2_SETTINGS).await.unwrap();
    assert!(closed_within(&mut s, Duration::from_secs(8)).await);
    bal.stop().await;
}

/// After a request an h2c connection is idle: `keepalive_timeout` closes
/// it, as nginx's HTTP/2 does.
#[tokio::test]
async fn h2c_idle_after_a_request_is_closed() {
    let b = Backend::start("b").await;
    let bal = Bal::start(short(vec![b.server()])).await;
    let s = TcpStream::connect(bal.addr).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(s),
    )
    .await
    .unwrap();
    let conn = tokio::spawn(conn);
    let r = send
        .send_request(
            http::Request::get(bal.url("/"))
                .body(http_body_util::Empty::<bytes::Bytes>::new())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    drop(r);
    // hyper's client connection ends when the server closes it.
    let ended = tokio::time::timeout(Duration::from_secs(8), conn).await;
    assert!(ended.is_ok(), "the idle h2c connection is still open");
    bal.stop().await;
}

#[tokio::test]
async fn silent_tunnel_is_closed() {
    let b = Backend::start("b").await;
    let bal = Bal::start(short(vec![b.server()])).await;
    let mut s = TcpStream::connect(bal.addr).await.unwrap();
    s.write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
        .await
        .unwrap();
    let head = read_some(&mut s).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    s.write_all(b"ping").await.unwrap();
    assert_eq!(read_some(&mut s).await, "ping");
    // Both sides silent from now on: closed at proxy_read_timeout (1 s).
    assert!(closed_within(&mut s, Duration::from_secs(8)).await);
    bal.stop().await;
}

/// A tunnel that keeps talking stays open past the limit.
#[tokio::test]
async fn busy_tunnel_stays_open() {
    let b = Backend::start("b").await;
    let bal = Bal::start(short(vec![b.server()])).await;
    let mut s = TcpStream::connect(bal.addr).await.unwrap();
    s.write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
        .await
        .unwrap();
    assert!(read_some(&mut s).await.starts_with("HTTP/1.1 101"));
    for i in 0..8 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let msg = format!("ping {i}");
        s.write_all(msg.as_bytes()).await.unwrap();
        assert_eq!(read_some(&mut s).await, msg);
    }
    bal.stop().await;
}

/// A raw backend answering every request with `size` bytes (after reading
/// its head, and a chunked body up to its last chunk).
async fn big_backend(size: usize) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut req = Vec::new();
                let mut buf = [0u8; 4096];
                loop {
                    let Ok(n) = s.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    req.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&req).to_ascii_lowercase();
                    if let Some(end) = text.find("\r\n\r\n") {
                        if !text[..end].contains("chunked") || text.ends_with("0\r\n\r\n") {
                            break;
                        }
                    }
                }
                let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {size}\r\n\r\n");
                if s.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = vec![b'x'; 64 * 1024];
                let mut left = size;
                while left > 0 {
                    let n = left.min(chunk.len());
                    if s.write_all(&chunk[..n]).await.is_err() {
                        return;
                    }
                    left -= n;
                }
            });
        }
    });
    addr
}

/// Sends `request`, reads nothing for a while, then drains: the balancer
/// must have given up (fewer than all the bytes arrive).
async fn never_reads(request: &[u8]) {
    const SIZE: usize = 8 * 1024 * 1024;
    let up = big_backend(SIZE).await;
    let bal = Bal::start(short(vec![balancer::config::ServerConfig::new(up)])).await;
    let mut s = TcpStream::connect(bal.addr).await.unwrap();
    s.write_all(request).await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut got = 0usize;
    let mut buf = vec![0u8; 256 * 1024];
    let drain = async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n,
            }
        }
    };
    let closed = tokio::time::timeout(Duration::from_secs(8), drain)
        .await
        .is_ok();
    assert!(closed, "connection still open");
    assert!(
        got < SIZE,
        "the whole response arrived: send_timeout not applied"
    );
    bal.stop().await;
}

#[tokio::test]
async fn client_never_reading_is_dropped_by_our_loop() {
    never_reads(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n").await;
}

#[tokio::test]
async fn client_never_reading_is_dropped_by_hyper() {
    // A chunked body: hyper serves this connection.
    never_reads(
        b"POST /big HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    )
    .await;
}

#[tokio::test]
async fn client_never_reading_is_dropped_on_h2c() {
    // HEADERS frame, stream 1, END_STREAM|END_HEADERS, HPACK: :method GET
    // (0x82), :scheme http (0x86), :path / (0x84), :authority "x".
    let block: &[u8] = &[0x82, 0x86, 0x84, 0x41, 0x01, b'x'];
    let mut req = H2_PREFACE.to_vec();
    req.extend_from_slice(H2_SETTINGS);
    req.extend_from_slice(&[0, 0, block.len() as u8, 1, 0x05, 0, 0, 0, 1]);
    req.extend_from_slice(block);
    never_reads(&req).await;
}

/// Between requests our loop waits `keepalive_timeout`, not
/// `client_header_timeout`.
#[tokio::test]
async fn idle_keep_alive_uses_keepalive_timeout() {
    let b = Backend::start("b").await;
    let mut c = short(vec![b.server()]);
    c.proxy.client_header_timeout = Duration::from_secs(30);
    let bal = Bal::start(c).await;
    let mut s = TcpStream::connect(bal.addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert!(read_some(&mut s).await.starts_with("HTTP/1.1 200"));
    assert!(closed_within(&mut s, Duration::from_secs(8)).await);
    bal.stop().await;
}

/// `keepalive_timeout 0`: one request per connection, as nginx.
#[tokio::test]
async fn keepalive_timeout_zero_closes_after_the_response() {
    let b = Backend::start("b").await;
    let mut c = short(vec![b.server()]);
    c.proxy.keepalive_timeout = Duration::ZERO;
    let bal = Bal::start(c).await;
    let out = raw(bal.addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(
        out.to_ascii_lowercase().contains("connection: close"),
        "{out}"
    );
    bal.stop().await;
}

/// A slow but steady reader of a large response is not cut off.
#[tokio::test]
async fn slow_reader_is_served_whole() {
    const SIZE: usize = 2 * 1024 * 1024;
    let up = big_backend(SIZE).await;
    let bal = Bal::start(short(vec![balancer::config::ServerConfig::new(up)])).await;
    let mut s = TcpStream::connect(bal.addr).await.unwrap();
    s.write_all(b"GET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut got = 0usize;
    let mut buf = vec![0u8; 128 * 1024];
    let read = async {
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n,
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), read)
        .await
        .expect("response within 20 s");
    assert!(got > SIZE, "{got} bytes");
    bal.stop().await;
}

/// An idle keep-alive connection releases its buffers after 250 ms; its next
/// request (and a large head) is served as before.
#[tokio::test]
async fn request_after_idle_release_is_served() {
    let b = Backend::start("b").await;
    let mut c = config(vec![b.server()]);
    c.proxy.keepalive_timeout = Duration::from_secs(30);
    let bal = Bal::start(c).await;
    let mut s = TcpStream::connect(bal.addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert!(read_some(&mut s).await.starts_with("HTTP/1.1 200"));
    tokio::time::sleep(Duration::from_millis(600)).await;
    let big = format!(
        "GET /headers HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "y".repeat(6000)
    );
    s.write_all(big.as_bytes()).await.unwrap();
    let r = read_some(&mut s).await;
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    bal.stop().await;
}
