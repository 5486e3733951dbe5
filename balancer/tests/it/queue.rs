//! `max_conns` + `queue N timeout=T`: FIFO order, overflow and timeout.

use std::time::{Duration, Instant};

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
