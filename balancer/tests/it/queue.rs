//! `max_conns` + `queue N timeout=T`: FIFO order, overflow and timeout.

use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use balancer::config::QueueConfig;
use http::StatusCode;

use crate::support::*;

fn queued(b: &Backend, size: usize, timeout: Duration) -> balancer::Config {
    let mut s = b.server();
    s.max_conns = 1;
    let mut c = config(vec![s]);
    c.upstream.queue = Some(QueueConfig {
        size,
        timeout,
        reject_status: StatusCode::BAD_GATEWAY,
        retry_after: None,
    });
    c
}

#[tokio::test]
async fn queue_is_fifo_and_overflow_is_502() {
    let b = Backend::start("b0").await;
    let bal = Bal::start(queued(&b, 3, Duration::from_secs(5))).await;
    let first = {
        let u = bal.url("/slow/800?n=0");
        tokio::spawn(async move { get(&u).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut waiting = Vec::new();
    for i in 1..=3 {
        let u = bal.url(&format!("/slow/50?n={i}"));
        waiting.push(tokio::spawn(async move { get(&u).await }));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(bal.status().await["upstreams"][0]["queue_depth"], 3);
    // The queue is full: the next request is refused at once, as nginx does.
    let t = Instant::now();
    assert_eq!(get(&bal.url("/?n=overflow")).await.status, 502);
    assert!(t.elapsed() < Duration::from_secs(1));
    assert_eq!(first.await.unwrap().status, 200);
    for w in waiting {
        assert_eq!(w.await.unwrap().status, 200);
    }
    let log = b.seen.log.lock().unwrap().clone();
    assert_eq!(
        log,
        [
            "/slow/800?n=0",
            "/slow/50?n=1",
            "/slow/50?n=2",
            "/slow/50?n=3"
        ],
        "served in arrival order, never more than max_conns at once"
    );
    let s = bal.status().await;
    assert_eq!(s["upstreams"][0]["queue_depth"], 0);
    assert_eq!(s["upstreams"][0]["servers"][0]["active"], 0);
    bal.stop().await;
}

#[tokio::test]
async fn queue_timeout_is_502_or_503_with_retry_after() {
    let b = Backend::start("b0").await;
    for (status, retry_after) in [
        (StatusCode::BAD_GATEWAY, None),
        (StatusCode::SERVICE_UNAVAILABLE, Some(7)),
    ] {
        let mut c = queued(&b, 10, Duration::from_millis(200));
        let q = c.upstream.queue.as_mut().unwrap();
        q.reject_status = status;
        q.retry_after = retry_after;
        let bal = Bal::start(c).await;
        let u = bal.url("/slow/1200");
        let busy = tokio::spawn(async move { get(&u).await });
        tokio::time::sleep(Duration::from_millis(100)).await;
        let t = Instant::now();
        let r = get(&bal.url("/")).await;
        let waited = t.elapsed();
        assert_eq!(r.status, status.as_u16());
        assert!(
            waited >= Duration::from_millis(180) && waited < Duration::from_millis(1500),
            "{waited:?}"
        );
        assert_eq!(
            r.headers
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string()),
            retry_after.map(|s| s.to_string())
        );
        assert_eq!(busy.await.unwrap().status, 200);
        bal.stop().await;
    }
}

#[tokio::test]
async fn max_conns_without_queue_spills_to_the_next_server() {
    let a = Backend::start("a").await;
    let b = Backend::start("b").await;
    let mut s = a.server();
    s.max_conns = 1;
    let bal = Bal::start(config(vec![s, b.server()])).await;
    let u = bal.url("/slow/500");
    let busy = tokio::spawn(async move { get(&u).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    for _ in 0..4 {
        assert_eq!(get(&bal.url("/")).await.backend(), "b");
    }
    assert_eq!(busy.await.unwrap().backend(), "a");
    bal.stop().await;
}

#[tokio::test]
async fn queued_request_is_served_when_a_server_comes_up() {
    let b = Backend::start("b0").await;
    let bal = Bal::start(queued(&b, 5, Duration::from_secs(5))).await;
    assert_eq!(
        post(&bal.admin_url("/servers/0/down"), "").await.status,
        200
    );
    let u = bal.url("/?queued");
    let waiting = tokio::spawn(async move { get(&u).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(bal.status().await["upstreams"][0]["queue_depth"], 1);
    let t = Instant::now();
    assert_eq!(post(&bal.admin_url("/servers/0/up"), "").await.status, 200);
    let r = waiting.await.unwrap();
    assert_eq!(r.status, 200);
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    bal.stop().await;
}

/// Polls `/status` until `check` holds (within 2 s); the last document.
async fn status_until(bal: &Bal, check: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let t = Instant::now();
    loop {
        let s = bal.status().await;
        if check(&s) || t.elapsed() > Duration::from_secs(2) {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// nginx's `proxy_ignore_client_abort off`: a client that goes away gives
/// up its queue place and its `max_conns` slot at once, not when the
/// upstream answers.
#[tokio::test]
async fn a_client_that_leaves_frees_its_queue_place_and_its_slot() {
    let b = Backend::start("b0").await;
    let bal = Bal::start(queued(&b, 5, Duration::from_secs(5))).await;
    let mut busy = TcpStream::connect(bal.addr).await.unwrap();
    busy.write_all(b"GET /slow/3000?n=busy HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let mut queued_client = TcpStream::connect(bal.addr).await.unwrap();
    queued_client
        .write_all(b"GET /?n=left HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let s = status_until(&bal, |s| s["upstreams"][0]["queue_depth"] == 1).await;
    assert_eq!(s["upstreams"][0]["queue_depth"], 1, "{s}");

    drop(queued_client);
    let s = status_until(&bal, |s| s["upstreams"][0]["queue_depth"] == 0).await;
    assert_eq!(s["upstreams"][0]["queue_depth"], 0, "the place is given up");

    let t = Instant::now();
    drop(busy);
    let s = status_until(&bal, |s| s["upstreams"][0]["servers"][0]["active"] == 0).await;
    assert_eq!(s["upstreams"][0]["servers"][0]["active"], 0, "{s}");
    // The only slot is free again: a new request is served at once, long
    // before the abandoned 3 s request would have ended.
    assert_eq!(get(&bal.url("/?n=after")).await.status, 200);
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    let log = b.seen.log.lock().unwrap().clone();
    assert_eq!(
        log,
        ["/slow/3000?n=busy", "/?n=after"],
        "the request whose client left the queue never reached the server"
    );
    let metrics = get(&bal.admin_url("/metrics")).await.body;
    assert!(
        metrics.contains("balancer_client_aborts_total 2\n"),
        "{metrics}"
    );
    bal.stop().await;
}
