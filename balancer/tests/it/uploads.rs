//! Slow uploads (issue 10, item 10, and the `Expect` path): the upstream's
//! `proxy_read_timeout` starts once the request is sent, as nginx arms it,
//! and `client_body_timeout` bounds the pause between two reads, not the
//! whole body. An upload the backend received and answered is never
//! reported as failed.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

const PIECES: usize = 8;
const GAP: Duration = Duration::from_millis(600);

/// Sends `head`, then `pieces` with a pause before each; the whole answer.
async fn upload(bal: &Bal, head: &str, pieces: Vec<Vec<u8>>) -> String {
    let mut s = TcpStream::connect(bal.addr).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    for p in pieces {
        tokio::time::sleep(GAP).await;
        if s.write_all(&p).await.is_err() {
            break; // answered and closed early: the answer says why
        }
    }
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// Short timeouts on both sides, as in the report: a 1 s read timeout, a
/// body arriving over about 5 s in pieces 0.6 s apart.
fn short(server: balancer::config::ServerConfig) -> balancer::config::Config {
    let mut c = config(vec![server]);
    c.proxy.read_timeout = Duration::from_secs(1);
    c.proxy.client_body_timeout = Duration::from_secs(1);
    c
}

#[tokio::test]
async fn a_slow_upload_with_a_length_is_not_a_timeout() {
    let b = Backend::start("b").await;
    let bal = Bal::start(short(b.server())).await;
    let size = 100_000;
    let pieces = (0..PIECES).map(|_| vec![b'x'; size / PIECES]).collect();
    let head = format!(
        "POST /count HTTP/1.1\r\nHost: x\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n"
    );
    let r = upload(&bal, &head, pieces).await;
    assert_eq!(status_of(&r), "200", "{r}");
    assert!(r.ends_with("100000"), "{r}");
    bal.stop().await;
}

#[tokio::test]
async fn a_slow_chunked_upload_is_not_a_timeout() {
    let b = Backend::start("b").await;
    let bal = Bal::start(short(b.server())).await;
    let mut pieces: Vec<Vec<u8>> = (0..PIECES)
        .map(|_| format!("{:x}\r\n{}\r\n", 1000, "y".repeat(1000)).into_bytes())
        .collect();
    pieces.push(b"0\r\n\r\n".to_vec());
    let head = "POST /count HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    let r = upload(&bal, head, pieces).await;
    assert_eq!(status_of(&r), "200", "{r}");
    assert!(r.ends_with("8000"), "{r}");
    bal.stop().await;
}

/// A small body behind `Expect: 100-continue` (buffered for retries): the
/// client pauses 0.6 s between pieces, under the 1 s `client_body_timeout`,
/// though the whole body takes longer than that.
#[tokio::test]
async fn expect_body_timeout_is_between_reads() {
    let b = Backend::start("b").await;
    let bal = Bal::start(short(b.server())).await;
    let size = 4 * 100;
    let pieces = (0..4).map(|_| vec![b'z'; 100]).collect();
    let head = format!(
        "POST /count HTTP/1.1\r\nHost: x\r\nContent-Length: {size}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n"
    );
    let r = upload(&bal, &head, pieces).await;
    assert!(r.starts_with("HTTP/1.1 100 Continue"), "{r}");
    assert!(r.contains("HTTP/1.1 200 OK"), "{r}");
    assert!(r.ends_with("400"), "{r}");
    // A pause longer than the timeout is still cut off with 408.
    let mut s = TcpStream::connect(bal.addr).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(&[b'z'; 100]).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await;
    let r = String::from_utf8_lossy(&out);
    assert!(r.contains("HTTP/1.1 408"), "{r}");
    bal.stop().await;
}
