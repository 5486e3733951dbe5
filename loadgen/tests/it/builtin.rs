//! The built-in `market-api` scenario sends exactly the seed's requests
//! (the tutorial's Locust file, `class MarketAPI`), and the shipped
//! `scenarios/market-api.yaml` sends the same ones.

use std::path::Path;

use loadgen::scenario::builtin::{market_api, DEFAULT_EMAIL, DEFAULT_PASSWORD};
use loadgen::scenario::WaitTime;
use loadgen::Scenario;
use serde_json::{json, Value};

use crate::support::{plan, run, Reply, Seen, Server};

/// A Market API stand-in: every login hands out fresh numbered tokens.
async fn recording_api() -> Server {
    Server::start(|s| {
        if s.method == "POST" && s.path == "/api/v1/auth/token/" {
            Reply::ok(&json!({"access": format!("access-{}", s.n), "refresh": format!("refresh-{}", s.n)}).to_string())
        } else {
            Reply::ok("[]")
        }
    })
    .await
}

fn no_wait(mut s: Scenario) -> Scenario {
    // The think time is the seed's between(0, 1.9) (a unit test checks it);
    // these tests only look at the requests, so they skip it.
    s.users[0].wait = WaitTime::None;
    s
}

fn body(s: &Seen) -> Value {
    serde_json::from_slice(&s.body).unwrap_or(Value::Null)
}

/// Walks the recorded requests as the seed's user would send them and
/// returns how many times each task ran: [login, list_items, view_products, refresh_token].
fn check_seed_sequence(seen: &[Seen], email: &str, password: &str) -> [u32; 4] {
    let login_body = json!({"email": email, "password": password});
    let mut counts = [0u32; 4];
    let is_login = |s: &Seen| s.method == "POST" && s.path == "/api/v1/auth/token/";
    // on_start: the login, without a token.
    assert!(is_login(&seen[0]), "{:?}", seen[0]);
    assert_eq!(
        (seen[0].auth.as_deref(), body(&seen[0])),
        (None, login_body.clone())
    );
    let mut access = format!("access-{}", seen[0].n);
    let mut refresh = format!("refresh-{}", seen[0].n);
    let mut i = 1;
    while i < seen.len() {
        let s = &seen[i];
        let bearer = Some(format!("Bearer {access}"));
        if is_login(s) {
            // @task(1) login: as in the seed, no Authorization header.
            assert_eq!(
                (s.auth.as_deref(), body(s)),
                (None, login_body.clone()),
                "request {i}"
            );
            access = format!("access-{}", s.n);
            refresh = format!("refresh-{}", s.n);
            counts[0] += 1;
            i += 1;
        } else if s.method == "GET" && s.path == "/api/v1/products/" {
            // @task(2) list_items: products, then comments.
            let next = &seen[i + 1];
            assert_eq!(
                (next.method.as_str(), next.path.as_str()),
                ("GET", "/api/v1/products/comments/")
            );
            assert_eq!(s.auth, bearer, "request {i}");
            assert_eq!(next.auth, bearer, "request {}", i + 1);
            assert!(s.body.is_empty() && next.body.is_empty());
            counts[1] += 1;
            i += 2;
        } else if s.method == "GET" && s.path == "/api/v1/products/1/" {
            // @task(3) view_products: for product in range(1, 50).
            for id in 1..50 {
                let r = &seen[i + id - 1];
                assert_eq!(
                    (r.method.as_str(), r.path.clone()),
                    ("GET", format!("/api/v1/products/{id}/"))
                );
                assert_eq!(r.auth, bearer, "request {}", i + id - 1);
            }
            counts[2] += 1;
            i += 49;
        } else if s.method == "POST" && s.path == "/api/v1/auth/token/refresh/" {
            // @task(4) refresh_token: the refresh token, with the bearer; the answer is not kept.
            assert_eq!(s.auth, bearer, "request {i}");
            assert_eq!(body(s), json!({"refresh": refresh}));
            counts[3] += 1;
            i += 1;
        } else {
            panic!("request {i} is not one of the seed's: {s:?}");
        }
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builtin_market_api_sends_the_seeds_requests() {
    let srv = recording_api().await;
    let scenario = no_wait(market_api("someone@example.com", "s3cret!").unwrap());
    let r = run(plan(&srv.url(), scenario, 1, 60)).await;
    let seen = srv.seen();
    let counts = check_seed_sequence(&seen, "someone@example.com", "s3cret!");
    assert_eq!(counts.iter().sum::<u32>(), 60, "60 iterations: {counts:?}");
    assert!(counts.iter().all(|c| *c > 0), "every task ran: {counts:?}");
    assert_eq!(r.counts(), (seen.len() as u64, 0));
    let names: Vec<(&str, &str)> = r
        .stats
        .iter()
        .map(|s| (s.method.as_str(), s.name.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("POST", "/api/v1/auth/token/"),
            ("POST", "/api/v1/auth/token/refresh/"),
            ("GET", "/api/v1/products/"),
            ("GET", "/api/v1/products/[id]/"),
            ("GET", "/api/v1/products/comments/"),
            ("", "Aggregated"),
        ]
    );
    let per_product = r
        .stats
        .iter()
        .find(|s| s.name == "/api/v1/products/[id]/")
        .unwrap();
    assert_eq!(per_product.num_requests, u64::from(counts[2]) * 49);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_yaml_equals_the_builtin() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/market-api.yaml");
    let file = loadgen::scenario::file::load(&path).unwrap();
    let builtin = market_api(DEFAULT_EMAIL, DEFAULT_PASSWORD).unwrap();
    let (f, b) = (&file.users[0], &builtin.users[0]);
    assert_eq!(f.wait, WaitTime::Between(0.0, 1.9));
    assert_eq!(f.wait, b.wait);
    let tasks = |u: &loadgen::scenario::UserClass| {
        u.tasks
            .iter()
            .map(|t| (t.name.clone(), t.weight))
            .collect::<Vec<_>>()
    };
    assert_eq!(tasks(f), tasks(b));
    assert_eq!(file.host, builtin.host);

    // Same seed, same requests, in the same order.
    let mut sequences = Vec::new();
    for scenario in [file, builtin] {
        let srv = recording_api().await;
        let r = run(plan(&srv.url(), no_wait(scenario), 1, 40)).await;
        let seen = srv.seen();
        check_seed_sequence(&seen, DEFAULT_EMAIL, DEFAULT_PASSWORD);
        assert_eq!(r.counts().1, 0);
        sequences.push(
            seen.into_iter()
                .map(|s| (s.method, s.path, s.auth, s.body))
                .collect::<Vec<_>>(),
        );
        srv.stop().await;
    }
    assert_eq!(sequences[0], sequences[1]);
}
