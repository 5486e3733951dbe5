//! Hostile connections (issue 10): slowloris variants on both front ends,
//! floods of silent connections, and connection bursts past tokio's default
//! listen queue. The balancer must shed them all and keep serving.

use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use crate::support::*;
use crate::timeouts::{closed_within, short, H2_PREFACE, H2_SETTINGS};

/// The h2c preface dripped a byte at a time, never finished: our loop
/// holds it as an unfinished head, so `client_header_timeout` applies.
#[tokio::test]
async fn dripped_h2c_preface_is_cut_off() {
    let b = Backend::start("b").await;
    let bal = Bal::start(short(vec![b.server()])).await;
    let mut s = TcpStream::connect(bal.addr).await.unwrap();
    let mut closed = false;
    for byte in &H2_PREFACE[..10] {
        if s.write_all(&[*byte]).await.is_err() {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert!(closed || closed_within(&mut s, Duration::from_secs(8)).await);
    bal.stop().await;
}

/// After the preface, PING frames dripped slower than the header timeout
/// but with no request: the handshake limit still closes it.
#[tokio::test]
async fn h2c_pings_without_a_request_are_cut_off() {
    let b = Backend::start("b").await;
    let bal = Bal::start(short(vec![b.server()])).await;
    let mut s = TcpStream::connect(bal.addr).await.unwrap();
    s.write_all(H2_PREFACE).await.unwrap();
    s.write_all(H2_SETTINGS).await.unwrap();
    let ping: &[u8] = &[0, 0, 8, 6, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8];
    let drip = async {
        for _ in 0..40 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if s.write_all(ping).await.is_err() {
                return;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(3), drip).await;
    assert!(closed_within(&mut s, Duration::from_secs(8)).await);
    bal.stop().await;
}

/// A flood of silent connections, half of them h2c prefaces: every one is
/// closed by the balancer, and it serves a request meanwhile.
#[tokio::test]
async fn flood_of_silent_connections_is_shed() {
    let b = Backend::start("b").await;
    let bal = Bal::start(short(vec![b.server()])).await;
    let mut conns = Vec::new();
    for i in 0..200 {
        let mut s = TcpStream::connect(bal.addr).await.unwrap();
        if i % 2 == 0 {
            s.write_all(H2_PREFACE).await.unwrap();
        }
        conns.push(s);
    }
    assert_eq!(get(&bal.url("/")).await.status, 200);
    let mut all = JoinSet::new();
    for mut s in conns {
        all.spawn(async move { closed_within(&mut s, Duration::from_secs(10)).await });
    }
    while let Some(closed) = all.join_next().await {
        assert!(closed.unwrap(), "a silent connection was kept");
    }
    assert_eq!(get(&bal.url("/")).await.status, 200);
    bal.stop().await;
}

/// 500 connects before anything is accepted all complete at once with the
/// balancer's listen queue (511 as nginx); tokio's 128 drops the SYNs of
/// the rest, which wait for retransmits (1 s, 3 s, ...).
#[tokio::test]
async fn burst_of_connects_fits_the_backlog() {
    let backlog = config(vec![]).backlog;
    let l = balancer::bind("127.0.0.1:0".parse().unwrap(), backlog).unwrap();
    let addr = l.local_addr().unwrap();
    let mut all = JoinSet::new();
    for _ in 0..500 {
        all.spawn(async move {
            tokio::time::timeout(Duration::from_millis(900), TcpStream::connect(addr))
                .await
                .ok()
                .and_then(Result::ok)
        });
    }
    let mut held = Vec::new();
    let mut late = 0;
    while let Some(r) = all.join_next().await {
        match r.unwrap() {
            Some(s) => held.push(s),
            None => late += 1,
        }
    }
    assert_eq!(
        late, 0,
        "{late} of 500 connects waited for a SYN retransmit"
    );
    drop(l);
}
