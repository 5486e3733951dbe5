//! The admin API: `/status`, `/metrics`, drain/down/up, weights.

use serde_json::Value;

use crate::support::*;

#[tokio::test]
async fn status_counts_and_metrics() {
    let a = Backend::start("a").await;
    let b = Backend::start("b").await;
    let bal = Bal::start(config(vec![a.server(), b.server()])).await;
    for _ in 0..10 {
        assert_eq!(get(&bal.url("/")).await.status, 200);
    }
    let s = bal.status().await;
    assert_eq!(s["algorithm"], "round_robin");
    let up = &s["upstreams"][0];
    assert_eq!(up["name"], "backend");
    assert_eq!(up["queue_depth"], 0);
    let servers = up["servers"].as_array().unwrap();
    assert_eq!(servers.len(), 2);
    for (i, srv) in servers.iter().enumerate() {
        assert_eq!(srv["id"], i);
        assert_eq!(srv["state"], "up");
        assert_eq!(srv["weight"], 1);
        assert_eq!(srv["active"], 0);
        assert_eq!(srv["requests"], 5);
        assert_eq!(srv["failures"], 0);
        assert!(srv["latency_avg_ms"].as_f64().unwrap() > 0.0);
    }
    assert_eq!(servers[0]["addr"], a.addr.to_string());
    let m = get(&bal.admin_url("/metrics")).await;
    assert_eq!(m.status, 200);
    assert!(m.body.contains(&format!(
        "balancer_upstream_requests_total{{upstream=\"backend\",server=\"{}\"}} 5",
        a.addr
    )));
    assert!(m.body.contains("balancer_requests_total 10"));
    assert!(m.body.contains("balancer_responses_total{code=\"2xx\"} 10"));
    assert!(m
        .body
        .contains("# TYPE balancer_upstream_active_requests gauge"));
    bal.stop().await;
}

#[tokio::test]
async fn drain_down_up_and_weight() {
    let a = Backend::start("a").await;
    let b = Backend::start("b").await;
    let bal = Bal::start(config(vec![a.server(), b.server()])).await;
    let r = post(&bal.admin_url("/servers/0/drain"), "").await;
    assert_eq!(r.status, 200);
    let v: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["state"], "draining");
    for _ in 0..4 {
        assert_eq!(get(&bal.url("/")).await.backend(), "b");
    }
    assert_eq!(
        post(&bal.admin_url("/servers/1/down"), "").await.status,
        200
    );
    // Nothing left: nginx's "no live upstreams" is a 502.
    assert_eq!(get(&bal.url("/")).await.status, 502);
    assert_eq!(post(&bal.admin_url("/servers/0/up"), "").await.status, 200);
    assert_eq!(post(&bal.admin_url("/servers/1/up"), "").await.status, 200);
    // Weight 3 via query, then via JSON.
    let r = post(&bal.admin_url("/servers/0/weight?value=3"), "").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let mut n = std::collections::HashMap::<String, usize>::new();
    for _ in 0..8 {
        *n.entry(get(&bal.url("/")).await.backend()).or_default() += 1;
    }
    assert_eq!((n["a"], n["b"]), (6, 2));
    let r = post(&bal.admin_url("/servers/1/weight"), "{\"weight\": 5}").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        bal.status().await["upstreams"][0]["servers"][1]["weight"],
        5
    );
    // Bad input: precise statuses.
    assert_eq!(
        post(&bal.admin_url("/servers/7/down"), "").await.status,
        404
    );
    assert_eq!(
        post(&bal.admin_url("/servers/x/down"), "").await.status,
        404
    );
    assert_eq!(
        post(&bal.admin_url("/servers/0/explode"), "").await.status,
        404
    );
    assert_eq!(
        post(&bal.admin_url("/servers/0/weight?value=0"), "")
            .await
            .status,
        400
    );
    assert_eq!(
        post(&bal.admin_url("/servers/0/weight"), "{nope")
            .await
            .status,
        400
    );
    // Reload without a config file: a clear 400.
    assert_eq!(post(&bal.admin_url("/reload"), "").await.status, 400);
    bal.stop().await;
}
