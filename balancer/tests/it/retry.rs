//! Failures: retries with `proxy_next_upstream` semantics, passive
//! `max_fails`, active health checks, backups.

use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use balancer::config::HealthConfig;

use crate::support::*;

#[tokio::test]
async fn killed_backend_idempotent_requests_go_elsewhere() {
    let a = Backend::start("a").await;
    let b = Backend::start("b").await;
    let bal = Bal::start(config(vec![a.server(), b.server()])).await;
    for _ in 0..4 {
        assert_eq!(get(&bal.url("/")).await.status, 200);
    }
    a.kill().await;
    // Every request still succeeds: the dead server is tried, fails, and the
    // request goes to the other one; then max_fails=1 keeps it out.
    for _ in 0..10 {
        let r = get(&bal.url("/")).await;
        assert_eq!((r.status, r.backend().as_str()), (200, "b"));
    }
    // A POST to a refused connection was never sent: it may go elsewhere.
    let s = bal.status().await;
    assert_eq!(s["upstreams"][0]["servers"][0]["state"], "unhealthy");
    assert!(
        s["upstreams"][0]["servers"][0]["failures"]
            .as_u64()
            .unwrap()
            >= 1
    );
    bal.stop().await;
}

#[tokio::test]
async fn backend_killed_mid_request_get_is_retried() {
    let a = Backend::start("a").await;
    let b = Backend::start("b").await;
    let bal = Bal::start(config(vec![a.server(), b.server()])).await;
    a.seen.delay_ms.store(2000, SeqCst);
    // Round robin sends the first request to a, which dies while working.
    let url = bal.url("/");
    let inflight = tokio::spawn(async move { get(&url).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    a.kill().await;
    let r = inflight.await.unwrap();
    assert_eq!((r.status, r.backend().as_str()), (200, "b"));
    let s = bal.status().await;
    assert_eq!(s["upstreams"][0]["servers"][0]["requests"], 1);
    assert_eq!(s["upstreams"][0]["servers"][1]["requests"], 1);
    bal.stop().await;
}

#[tokio::test]
async fn post_is_not_replayed_once_sent_but_get_is() {
    let a = Backend::start("a").await;
    let b = Backend::start("b").await;
    let mut c = config(vec![a.server(), b.server()]);
    // Keep both servers in rotation despite failures.
    for s in &mut c.upstream.servers {
        s.max_fails = 0;
    }
    let bal = Bal::start(c).await;
    // Round robin: a, b, a, b... /hangup makes the server drop the
    // connection after reading the request.
    let r = post(&bal.url("/hangup"), "payment").await;
    assert_eq!(r.status, 502);
    assert_eq!(
        a.seen.posts.load(SeqCst) + b.seen.posts.load(SeqCst),
        1,
        "POST sent exactly once"
    );
    let r = get(&bal.url("/hangup")).await;
    assert_eq!(r.status, 502, "every server hangs up on /hangup");
    assert_eq!(a.hits() + b.hits(), 3, "the GET was tried on both servers");
    bal.stop().await;
}

#[tokio::test]
async fn unsent_post_goes_to_the_next_server() {
    let a = Backend::start("a").await;
    let b = Backend::start("b").await;
    let bal = Bal::start(config(vec![a.server(), b.server()])).await;
    a.kill().await;
    for _ in 0..3 {
        let r = post(&bal.url("/echo"), "order-1").await;
        assert_eq!((r.status, r.body.as_str()), (200, "order-1"));
    }
    assert_eq!(b.seen.posts.load(SeqCst), 3);
    bal.stop().await;
}

#[tokio::test]
async fn retry_on_status_when_configured() {
    let a = Backend::start("a").await;
    let b = Backend::start("b").await;
    let mut c = config(vec![a.server(), b.server()]);
    c.proxy.next_upstream =
        balancer::config::NextUpstream::parse(["error", "timeout", "http_503"]).unwrap();
    for s in &mut c.upstream.servers {
        s.max_fails = 0;
    }
    let bal = Bal::start(c).await;
    // Both answer 503 on /status/503: tried on both, then 503.
    assert_eq!(get(&bal.url("/status/503")).await.status, 503);
    assert_eq!(a.hits() + b.hits(), 2);
    // 500 is not in the list: passed through, one try.
    assert_eq!(get(&bal.url("/status/500")).await.status, 500);
    assert_eq!(a.hits() + b.hits(), 3);
    bal.stop().await;
}

#[tokio::test]
async fn upstream_timeout_is_504_and_backup_takes_over() {
    let a = Backend::start("a").await;
    let backup = Backend::start("backup").await;
    let mut bs = backup.server();
    bs.backup = true;
    bs.max_fails = 0;
    let mut c = config(vec![a.server(), bs]);
    c.proxy.read_timeout = Duration::from_millis(300);
    let bal = Bal::start(c).await;
    assert_eq!(get(&bal.url("/")).await.backend(), "a");
    // a times out, the backup answers (after its own 300 ms).
    a.seen.delay_ms.store(1000, SeqCst);
    backup.seen.delay_ms.store(1000, SeqCst);
    assert_eq!(get(&bal.url("/")).await.status, 504);
    backup.seen.delay_ms.store(0, SeqCst);
    // a is now failed (max_fails=1): the backup serves.
    assert_eq!(get(&bal.url("/")).await.backend(), "backup");
    bal.stop().await;
}

#[tokio::test]
async fn active_health_checks_take_a_server_out_and_back() {
    let a = Backend::start("a").await;
    let b = Backend::start("b").await;
    let mut c = config(vec![a.server(), b.server()]);
    c.health = Some(HealthConfig {
        uri: "/healthz".into(),
        interval: Duration::from_millis(100),
        timeout: Duration::from_millis(500),
        fails: 2,
        passes: 2,
        ..HealthConfig::default()
    });
    let bal = Bal::start(c).await;
    a.seen.unhealthy.store(true, SeqCst);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while bal.status().await["upstreams"][0]["servers"][0]["state"] != "unhealthy" {
        assert!(tokio::time::Instant::now() < deadline, "not taken out");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before = a.hits();
    for _ in 0..6 {
        assert_eq!(get(&bal.url("/")).await.backend(), "b");
    }
    assert_eq!(a.hits(), before, "no traffic to an unhealthy server");
    a.seen.unhealthy.store(false, SeqCst);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while bal.status().await["upstreams"][0]["servers"][0]["state"] != "up" {
        assert!(tokio::time::Instant::now() < deadline, "not brought back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut names = Vec::new();
    for _ in 0..4 {
        names.push(get(&bal.url("/")).await.backend());
    }
    assert!(names.iter().any(|n| n == "a"), "{names:?}");
    bal.stop().await;
}

#[tokio::test]
async fn failed_server_comes_back_after_fail_timeout() {
    let a = Backend::start("a").await;
    let b = Backend::start("b").await;
    let mut sa = a.server();
    sa.fail_timeout = Duration::from_millis(300);
    let bal = Bal::start(config(vec![sa, b.server()])).await;
    let addr = a.addr;
    a.kill().await;
    for _ in 0..4 {
        assert_eq!(get(&bal.url("/")).await.backend(), "b");
    }
    let a2 = Backend::start_on("a", addr).await;
    // Still inside fail_timeout: no traffic to a yet.
    assert_eq!(get(&bal.url("/")).await.backend(), "b");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let mut names = Vec::new();
    for _ in 0..4 {
        names.push(get(&bal.url("/")).await.backend());
    }
    assert!(names.iter().filter(|n| *n == "a").count() >= 1, "{names:?}");
    assert_eq!(
        bal.status().await["upstreams"][0]["servers"][0]["state"],
        "up"
    );
    assert!(a2.hits() >= 1);
    bal.stop().await;
}

#[tokio::test]
async fn garbage_from_upstream_is_502_and_next_server() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // A "server" that answers every connection with garbage.
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let bad_addr = l.local_addr().unwrap();
    let bad = tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(b"HELLO THERE\r\n\r\n").await;
            });
        }
    });
    let good = Backend::start("good").await;
    let bal = Bal::start(config(vec![
        balancer::config::ServerConfig::new(bad_addr),
        good.server(),
    ]))
    .await;
    for _ in 0..3 {
        let r = get(&bal.url("/")).await;
        assert_eq!((r.status, r.backend().as_str()), (200, "good"));
    }
    // Alone, the bad server gives a 502, never a hang or a crash.
    let solo = Bal::start(config(vec![balancer::config::ServerConfig::new(bad_addr)])).await;
    assert_eq!(get(&solo.url("/")).await.status, 502);
    assert_eq!(get(&solo.url("/")).await.status, 502);
    solo.stop().await;
    bal.stop().await;
    bad.abort();
}

/// nginx's `peers->single`: a group of one server is never taken out by
/// `max_fails` (issue 10, item 11). One garbage response fails its own
/// request (502), not the next client's: that one is sent and served.
#[tokio::test]
async fn one_failure_does_not_take_the_only_server_out() {
    let s = Scripted::start(vec![Reply::Send(b"garbage\r\n\r\n")]).await;
    let bal = Bal::start(config(vec![s.server()])).await;
    assert_eq!(get(&bal.url("/")).await.status, 502);
    for _ in 0..3 {
        assert_eq!(get(&bal.url("/")).await.status, 200);
    }
    assert_eq!(s.heads(), 4, "every request was sent");
    let st = bal.status().await;
    assert_eq!(st["upstreams"][0]["servers"][0]["state"], "up");
    bal.stop().await;
}

/// A pooled keep-alive connection the backend closed as the request
/// arrived (EOF, no response byte): an idempotent request is sent again on
/// a fresh connection, as nginx does for a cached connection (issue 10,
/// item 12); a POST is not replayed (the server may have executed it).
#[tokio::test]
async fn a_keepalive_connection_closed_under_the_request() {
    const OK: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
    let s = Scripted::start(vec![Reply::Send(OK), Reply::Close]).await;
    let bal = Bal::start(config(vec![s.server()])).await;
    assert_eq!(get(&bal.url("/")).await.status, 200);
    // On the pooled connection, which the server closes on reading it.
    let r = get(&bal.url("/again")).await;
    assert_eq!((r.status, r.body.as_str()), (200, "ok"));
    assert_eq!(s.heads(), 3, "the GET was sent twice: pooled, then fresh");

    let s = Scripted::start(vec![Reply::Send(OK), Reply::Close]).await;
    let bal2 = Bal::start(config(vec![s.server()])).await;
    assert_eq!(get(&bal2.url("/")).await.status, 200);
    assert_eq!(post(&bal2.url("/order"), "x").await.status, 502);
    assert_eq!(s.heads(), 2, "the POST was not replayed");
    bal.stop().await;
    bal2.stop().await;
}
