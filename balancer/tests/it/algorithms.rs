//! Each method's sequence or distribution, observed through `X-Upstream`.

use std::collections::HashMap;
use std::time::Duration;

use balancer::config::{Algorithm, HashKey};

use crate::support::*;

async fn backends(n: usize) -> Vec<Backend> {
    let mut v = Vec::new();
    for i in 0..n {
        v.push(Backend::start(&format!("b{i}")).await);
    }
    v
}

#[tokio::test]
async fn smooth_weighted_round_robin_is_nginx_order() {
    let b = backends(3).await;
    let mut servers: Vec<_> = b.iter().map(Backend::server).collect();
    servers[0].weight = 5;
    let bal = Bal::start(config(servers)).await;
    let mut seq = String::new();
    for _ in 0..14 {
        let r = get(&bal.url("/")).await;
        assert_eq!(r.status, 200);
        seq.push(match r.backend().as_str() {
            "b0" => 'a',
            "b1" => 'b',
            _ => 'c',
        });
    }
    assert_eq!(seq, "aabacaaaabacaa");
    bal.stop().await;
}

#[tokio::test]
async fn ip_hash_is_stable_per_client() {
    let b = backends(3).await;
    let mut c = config(b.iter().map(Backend::server).collect());
    c.upstream.algorithm = Algorithm::IpHash;
    let bal = Bal::start(c).await;
    let first = get(&bal.url("/")).await.backend();
    for i in 0..20 {
        // X-Forwarded-For from the client must not influence ip_hash.
        let req = http::Request::get(bal.url("/"))
            .header("x-forwarded-for", format!("10.0.{i}.1"))
            .body(Default::default())
            .unwrap();
        assert_eq!(send(req).await.backend(), first);
    }
    bal.stop().await;
}

#[tokio::test]
async fn consistent_hash_moves_about_one_nth_of_keys() {
    let b = backends(4).await;
    let mut c = config(b.iter().map(Backend::server).collect());
    c.upstream.algorithm = Algorithm::Hash {
        key: HashKey::parse("$request_uri").unwrap(),
        consistent: true,
    };
    let bal = Bal::start(c).await;
    let keys: Vec<String> = (0..200).map(|i| format!("/item/{i}")).collect();
    let mut before = Vec::new();
    for k in &keys {
        before.push(get(&bal.url(k)).await.backend());
    }
    // Same key, same server.
    assert_eq!(get(&bal.url("/item/7")).await.backend(), before[7]);
    let r = post(&bal.admin_url("/servers/2/down"), "").await;
    assert_eq!(r.status, 200);
    let mut moved = 0;
    for (k, was) in keys.iter().zip(&before) {
        let now = get(&bal.url(k)).await.backend();
        assert_ne!(now, "b2");
        if &now != was {
            assert_eq!(was, "b2", "only the removed server's keys move");
            moved += 1;
        }
    }
    let share = moved as f64 / keys.len() as f64;
    assert!((0.1..=0.4).contains(&share), "moved {share}");
    bal.stop().await;
}

#[tokio::test]
async fn least_conn_avoids_the_busy_server() {
    let b = backends(2).await;
    let mut c = config(b.iter().map(Backend::server).collect());
    c.upstream.algorithm = Algorithm::LeastConn;
    let bal = Bal::start(c).await;
    // Round robin tie-break: the first request goes to b0 and stays there.
    let slow_url = bal.url("/slow/800");
    let slow = tokio::spawn(async move { get(&slow_url).await });
    tokio::time::sleep(Duration::from_millis(150)).await;
    for _ in 0..6 {
        assert_eq!(get(&bal.url("/")).await.backend(), "b1");
    }
    assert_eq!(slow.await.unwrap().backend(), "b0");
    // Idle again: ties alternate.
    let a = get(&bal.url("/")).await.backend();
    let b2 = get(&bal.url("/")).await.backend();
    assert_ne!(a, b2);
    bal.stop().await;
}

#[tokio::test]
async fn random_follows_weights() {
    let b = backends(2).await;
    let mut servers: Vec<_> = b.iter().map(Backend::server).collect();
    servers[0].weight = 3;
    let mut c = config(servers);
    c.upstream.algorithm = Algorithm::Random { two: false };
    let bal = Bal::start(c).await;
    let mut n: HashMap<String, usize> = HashMap::new();
    for _ in 0..300 {
        *n.entry(get(&bal.url("/")).await.backend()).or_default() += 1;
    }
    let ratio = n["b0"] as f64 / n["b1"] as f64;
    assert!((1.8..5.0).contains(&ratio), "{n:?}");
    bal.stop().await;
}

#[tokio::test]
async fn p2c_ewma_and_least_time_prefer_the_fast_server() {
    for alg in [
        Algorithm::P2cEwma,
        Algorithm::LeastTime(balancer::config::LeastTimeMode::Header),
        Algorithm::Random { two: true },
    ] {
        let b = backends(2).await;
        b[0].seen
            .delay_ms
            .store(25, std::sync::atomic::Ordering::SeqCst);
        let mut c = config(b.iter().map(Backend::server).collect());
        c.upstream.algorithm = alg.clone();
        let bal = Bal::start(c).await;
        // Concurrent clients so that latency and active counts matter.
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let url = bal.url("/");
            tasks.push(tokio::spawn(async move {
                let mut v = Vec::new();
                for _ in 0..25 {
                    v.push(get(&url).await.backend());
                }
                v
            }));
        }
        let mut fast = 0;
        let mut total = 0;
        for t in tasks {
            for name in t.await.unwrap() {
                total += 1;
                fast += usize::from(name == "b1");
            }
        }
        assert!(
            fast as f64 / total as f64 > 0.6,
            "{alg:?}: fast server got {fast}/{total}"
        );
        bal.stop().await;
    }
}
