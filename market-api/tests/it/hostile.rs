//! Hostile input: requests built to hurt the server (issue 10's reports and
//! our own). Each must get a precise 4xx (or a 503 with a retry hint when
//! the database is busy): never a 500, a panic, a hang or unbounded memory.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{encode, EncodingKey, Header};
use reqwest::Method;
use serde_json::{json, Value};
use sqlx::Connection;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::processes::{login, start, BIN};
use super::support::{client, json, Backend, Server, SECRET};

fn ids(v: &Value) -> Vec<i64> {
    v["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|p| p["id"].as_i64().unwrap())
        .collect()
}

async fn search_ordering_and_filters_are_bounded(backend: Backend) {
    let s = Server::start(backend).await;
    let token = s.demo().await;
    let get = |q: String| {
        let s = &s;
        let token = token.clone();
        async move {
            s.get_json(&format!("/api/v1/products/?{q}"), Some(&token))
                .await
        }
    };

    // ~500 terms in a 1 KB URL made SQLite's expression tree too large (500).
    let (st, v) = get(format!("search={}", vec!["a"; 500].join("+"))).await;
    assert_eq!(st, 400, "{v}");
    assert_eq!(
        v,
        json!({"search": ["Ensure this field has no more than 20 search terms."]})
    );
    let (st, v) = get(format!("search={}", vec!["a"; 20].join("+"))).await;
    assert_eq!(st, 200, "{v}");
    // One 50 KB term made the LIKE pattern too complex (500).
    let (st, v) = get(format!("search={}", "a".repeat(50_000))).await;
    assert_eq!(st, 400, "{v}");
    assert_eq!(
        v,
        json!({"search": ["Ensure each search term has no more than 100 characters."]})
    );
    let (st, _) = get(format!("search={}", "a".repeat(100))).await;
    assert_eq!(st, 200);
    // DRF's SearchFilter strips NUL characters.
    let (_, stripped) = get("search=Lamp%00".into()).await;
    let (_, plain) = get("search=Lamp".into()).await;
    assert_eq!(stripped, plain);
    assert!(plain["count"].as_u64().unwrap() > 0);

    // 2,000 ordering fields overflowed ORDER BY (500). As in DRF, a repeated
    // field changes nothing, so the order is the one of its first mention.
    let many = vec!["title,-id"; 1000].join(",");
    let (st, v) = get(format!("ordering={many}&page_size=100")).await;
    assert_eq!(st, 200, "{v}");
    let (_, once) = get("ordering=title,-id&page_size=100".into()).await;
    assert_eq!(ids(&v), ids(&once));
    assert_eq!(v["count"], 25);

    // Text filters are exact matches on a bounded field, so a longer value
    // cannot match: refused with the field's limit (django-filter's message).
    let (st, v) = get(format!("title={}", "t".repeat(131))).await;
    assert_eq!(
        (st, v),
        (
            400,
            json!({"title": ["Ensure this value has at most 130 characters (it has 131)."]})
        )
    );
    let (st, v) = get(format!("tags={}", "t".repeat(5000))).await;
    assert_eq!(
        (st, v),
        (
            400,
            json!({"tags": ["Ensure this value has at most 70 characters (it has 5000)."]})
        )
    );
    let (st, v) = get("title=a%00".into()).await;
    assert_eq!(
        (st, v),
        (400, json!({"title": ["Null characters are not allowed."]}))
    );
    let (st, v) = get(format!("user={}", "9".repeat(400))).await;
    assert_eq!((st, v), (400, json!({"user": ["Enter a number."]})));
}

async fn huge_vote_lists_are_refused_before_any_write(backend: Backend) {
    let s = Server::start(backend).await;
    let token = s.demo().await;
    // 1 MiB of ids (165k), as in the report: refused at once by its length.
    let votes: Vec<i64> = (1..=165_000).collect();
    let (st, v) = s
        .post_json(
            "/api/v1/products/",
            Some(&token),
            json!({"title": "Vote flood", "votes": votes}),
        )
        .await;
    assert_eq!(st, 400, "{v}");
    assert_eq!(
        v,
        json!({"votes": ["Ensure this field has no more than 1000 elements."]})
    );
    // At the cap, duplicates collapse (order kept) and one query finds the
    // first missing id.
    let mut votes: Vec<i64> = [2, 3, 2, 4].repeat(250);
    let (st, v) = s
        .post_json(
            "/api/v1/products/",
            Some(&token),
            json!({"title": "Many votes", "votes": votes}),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    let voters: Vec<i64> = v["votes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_i64().unwrap())
        .collect();
    assert_eq!(voters, [2, 3, 4]);
    votes[700] = 999_999;
    votes[900] = 888_888;
    let (st, v) = s
        .post_json(
            "/api/v1/products/",
            Some(&token),
            json!({"title": "Missing voter", "votes": votes}),
        )
        .await;
    assert_eq!(
        (st, v),
        (
            400,
            json!({"votes": ["Invalid pk \"999999\" - object does not exist."]})
        )
    );
}

/// Another process holds SQLite's write lock longer than the busy timeout:
/// a write must answer 503 with `Retry-After`, never a 500, and work again
/// once the lock is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_database_is_a_503_with_a_retry_hint() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("busy.db");
    let replica = start(&db, &[]).await;
    let token = login(&replica.base).await;
    let url = format!("sqlite://{}", db.display());
    let mut holder = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut holder)
        .await
        .unwrap();
    let post = || {
        client()
            .post(format!("{}/api/v1/products/", replica.base))
            .bearer_auth(&token)
            .json(&json!({"title": "Blocked"}))
            .send()
    };
    let res = post().await.unwrap();
    assert_eq!(res.status(), 503);
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    let (_, v) = json(res).await;
    assert_eq!(v, json!({"detail": "Database busy, try again later."}));
    // Reads go on meanwhile (WAL).
    let res = client()
        .get(format!("{}/api/v1/products/1/", replica.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
    holder.close().await.unwrap();
    assert_eq!(post().await.unwrap().status(), 201);
    assert!(replica.terminate().await.success());
}

async fn deactivate(s: &Server, email: &str) {
    s.db.execute(&format!(
        "UPDATE users SET is_active = FALSE WHERE email = '{email}'"
    ))
    .await;
}

async fn a_deactivated_user_is_refused_everywhere(backend: Backend) {
    let s = Server::start(backend).await;
    let token = s.demo().await;
    let (st, product) = s
        .post_json("/api/v1/products/", Some(&token), json!({"title": "Mine"}))
        .await;
    assert_eq!(st, 201);
    let (st, comment) = s
        .post_json(
            "/api/v1/products/comments/",
            Some(&token),
            json!({"reply": "Mine too", "post": product["id"]}),
        )
        .await;
    assert_eq!(st, 201);
    let (st, pair) = s
        .post_json(
            "/api/v1/auth/token/",
            None,
            json!({"email": "demo@example.com", "password": "Passw0rd!"}),
        )
        .await;
    assert_eq!(st, 200, "{pair}");
    deactivate(&s, "demo@example.com").await;
    // No new access token for a refresh token issued before (simplejwt ≥ 5.3).
    let (st, v) = s
        .post_json(
            "/api/v1/auth/token/refresh/",
            None,
            json!({"refresh": pair["refresh"]}),
        )
        .await;
    assert_eq!(
        (st, v),
        (
            401,
            json!({"detail": "No active account found with the given credentials"})
        )
    );
    let inactive = json!({"detail": "User is inactive", "code": "user_inactive"});
    let product = format!("/api/v1/products/{}/", product["id"]);
    let comment = format!("/api/v1/products/comments/{}/", comment["id"]);
    let patch = json!({"title": "Still mine", "reply": "Still mine"});
    for (method, path, body) in [
        (Method::PATCH, &product, Some(patch.clone())),
        (Method::PUT, &product, Some(patch.clone())),
        (Method::PATCH, &comment, Some(patch.clone())),
        (Method::DELETE, &comment, None),
        (Method::DELETE, &product, None),
        (Method::GET, &product, None),
        (Method::GET, &comment, None),
        (Method::OPTIONS, &product, None),
    ] {
        let (st, v) = s.send_json(method.clone(), path, Some(&token), body).await;
        assert_eq!((st, &v), (401, &inactive), "{method} {path}");
    }
    for path in [
        "/api/v1/products/",
        "/api/v1/products/?page=2",
        "/api/v1/products/comments/",
        "/api/v1/products/has-product/?client=1",
        "/api/v1/users/",
    ] {
        let (st, v) = s.get_json(path, Some(&token)).await;
        assert_eq!((st, &v), (401, &inactive), "GET {path}");
    }
    // A token whose user is gone: simplejwt's "User not found".
    let now = chrono::Utc::now().timestamp();
    let claims = json!({"token_type": "access", "exp": now + 60, "iat": now,
                        "jti": "0123456789abcdef0123456789abcdef", "user_id": 4242});
    let ghost = encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    let (st, v) = s.get_json("/api/v1/products/", Some(&ghost)).await;
    assert_eq!(
        (st, v),
        (
            401,
            json!({"detail": "User not found", "code": "user_not_found"})
        )
    );
    // Nothing changed while refused.
    let other = s.other().await;
    let (st, v) = s.get_json(&product, Some(&other)).await;
    assert_eq!((st, v["title"].as_str()), (200, Some("Mine")));
}

async fn reads_need_a_login_as_in_the_original(backend: Backend) {
    let s = Server::start(backend).await;
    let anonymous = json!({"detail": "Authentication credentials were not provided."});
    for path in ["/api/v1/products/", "/api/v1/products/1/"] {
        let (st, v) = s.get_json(path, None).await;
        assert_eq!((st, &v), (401, &anonymous), "{path}");
        let (st, v) = s.send_json(Method::OPTIONS, path, None, None).await;
        assert_eq!((st, &v), (401, &anonymous), "OPTIONS {path}");
    }
    // Permission before method, as DRF's `initial()` runs before dispatch.
    let (st, v) = s.post_json("/api/v1/users/1/", None, json!({})).await;
    assert_eq!((st, v), (401, anonymous));
    let demo = s.demo().await;
    let (st, v) = s
        .post_json("/api/v1/users/1/", Some(&demo), json!({}))
        .await;
    assert_eq!(
        (st, v),
        (
            403,
            json!({"detail": "You do not have permission to perform this action."})
        )
    );
    s.make_demo_staff().await;
    let (st, _) = s
        .post_json("/api/v1/users/1/", Some(&demo), json!({}))
        .await;
    assert_eq!(st, 405);
}

async fn registration_messages_are_djangos(backend: Backend) {
    let s = Server::start(backend).await;
    let (st, v) = s
        .post_json(
            "/api/v1/users/register/",
            None,
            json!({"email": "demo@example.com", "password": "Passw0rd!", "confirm_password": "Passw0rd!"}),
        )
        .await;
    assert_eq!(
        (st, v),
        (
            400,
            json!({"email": ["user with this email address already exists."]})
        )
    );
    let (st, v) = s
        .post_json(
            "/api/v1/users/register/",
            None,
            json!({"email": "new@example.com", "password": "Passw0rd!", "confirm_password": "Passw0rd?"}),
        )
        .await;
    assert_eq!(
        (st, v),
        (
            400,
            json!({"non_field_errors": ["Passwords didn't match."]})
        )
    );
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// The report: 511 GETs of `?page_size=100&x=N` over 100 maximal products
/// took a replica from 46 MB to 380 MB. Unknown parameters no longer make
/// new cache entries, and the cache is bounded in bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_cache_does_not_grow_with_unknown_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let replica = start(&dir.path().join("cache.db"), &[]).await;
    let token = login(&replica.base).await;
    let c = client();
    let body = json!({
        "title": "T".repeat(130), "description": "D".repeat(1500),
        "tags": "g".repeat(70), "image": "i".repeat(255), "votes": [1, 2, 3],
    });
    for _ in 0..100 {
        let res = c
            .post(format!("{}/api/v1/products/", replica.base))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
    }
    let pid = replica.child.id().expect("pid");
    let get = |n: usize| {
        c.get(format!(
            "{}/api/v1/products/?page_size=100&x={n}",
            replica.base
        ))
        .bearer_auth(&token)
        .send()
    };
    let first = get(0).await.unwrap().text().await.unwrap();
    assert!(first.len() > 200_000, "{}", first.len());
    let before = rss_kib(pid);
    for n in 1..=511 {
        let res = get(n).await.unwrap();
        assert_eq!(res.status(), 200);
        let page: Value = res.json().await.unwrap();
        // The links still carry the request's own parameters, as DRF's do.
        let next = page["next"].as_str().unwrap();
        assert!(next.ends_with(&format!("x={n}&page=2")), "{next}");
    }
    let grown = rss_kib(pid).saturating_sub(before);
    // Old code: about 100 MB here (511 pages of 200 KB). Allow allocator noise.
    assert!(grown < 48 * 1024, "RSS grew by {grown} KiB");
    assert!(replica.terminate().await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_sizes_below_two_users_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("u.db").display());
    for args in [
        vec![
            "serve",
            "--users",
            "1",
            "--bind",
            "127.0.0.1:0",
            "--database-url",
            &url,
        ],
        vec!["seed", "--users", "0", "--database-url", &url],
    ] {
        let out = tokio::time::timeout(
            Duration::from_secs(60),
            tokio::process::Command::new(BIN)
                .args(&args)
                .kill_on_drop(true)
                .output(),
        )
        .await
        .expect("exits in time")
        .expect("run");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.starts_with("market-api: error: "), "{stderr}");
        assert!(stderr.contains("--users"), "{stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(out.stdout.is_empty());
    }
}

async fn malformed_json_bodies_query_strings_and_tokens(backend: Backend) {
    let s = Server::start(backend).await;
    let token = s.demo().await;
    let raw = |bytes: Vec<u8>| {
        s.client
            .post(s.url("/api/v1/products/"))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(bytes)
            .send()
    };
    // Deeply nested JSON: serde_json's recursion limit, a 400.
    let deep = format!(
        "{{\"votes\":{}{}}}",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let (st, v) = json(raw(deep.into_bytes()).await.unwrap()).await;
    assert_eq!(st, 400, "{v}");
    assert!(v["detail"]
        .as_str()
        .unwrap()
        .starts_with("JSON parse error - "));
    // Invalid UTF-8 and NUL bytes in the body.
    let (st, v) = json(raw(b"{\"title\": \"\xff\xfe\"}".to_vec()).await.unwrap()).await;
    assert_eq!(st, 400, "{v}");
    let (st, v) = json(raw(b"{\"title\": \"a\\u0000b\"}".to_vec()).await.unwrap()).await;
    assert_eq!(
        (st, v),
        (400, json!({"title": ["Null characters are not allowed."]}))
    );
    // Huge JSON under the body limit (bodies over it: `errors::body_limit`):
    // a 1 MB string is just too long.
    let long = format!("{{\"title\": \"{}\"}}", "x".repeat(1_000_000));
    let (st, v) = json(raw(long.into_bytes()).await.unwrap()).await;
    assert_eq!(
        (st, v),
        (
            400,
            json!({"title": ["Ensure this field has no more than 130 characters."]})
        )
    );

    // Invalid UTF-8 percent-encoded in the query decodes lossily.
    let (st, _) = s
        .get_json("/api/v1/products/?search=%FF%FE&title=%C3", Some(&token))
        .await;
    assert_eq!(st, 200);
    // Absurd page numbers and sizes.
    for q in [
        "page=99999999999999999999999",
        "page=18446744073709551615",
        "page=9223372036854775807&page_size=100",
        "page=-1",
        "page=%00",
    ] {
        let (st, v) = s
            .get_json(&format!("/api/v1/products/?{q}"), Some(&token))
            .await;
        assert_eq!((st, v), (404, json!({"detail": "Invalid page."})), "{q}");
    }
    let (st, _) = s
        .get_json("/api/v1/products/?page_size=1e9", Some(&token))
        .await;
    assert_eq!(st, 400);
    let (st, _) = s
        .get_json("/api/v1/products/99999999999999999999999/", Some(&token))
        .await;
    assert_eq!(st, 404);

    // Forged tokens stay refused: alg none, a wrong key, bytes that are not
    // text in the header, a huge token.
    let now = chrono::Utc::now().timestamp();
    let claims = json!({"token_type": "access", "exp": now + 600, "iat": now,
                        "jti": "0123456789abcdef0123456789abcdef", "user_id": 1});
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let wrong = encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(b"guessed"),
    )
    .unwrap();
    let huge = format!("{}.{}.{}", "a".repeat(20_000), "b".repeat(20_000), "c");
    for forged in [none, wrong, huge] {
        let (st, v) = s.get_json("/api/v1/products/", Some(&forged)).await;
        assert_eq!((st, v["code"].as_str()), (401, Some("token_not_valid")));
    }
    let res = s
        .client
        .get(s.url("/api/v1/products/"))
        .header(
            "authorization",
            reqwest::header::HeaderValue::from_bytes(b"Bearer \xff\xfe").unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}

/// Bytes no HTTP client would send: a 400 from the HTTP layer, not a hang.
#[tokio::test]
async fn raw_garbage_on_the_socket_gets_an_answer() {
    let s = Server::start(Backend::Sqlite).await;
    let addr = s.base.trim_start_matches("http://").to_owned();
    for request in [
        &b"GET /api/v1/products/?q=\xff HTTP/1.1\r\nHost: x\r\n\r\n"[..],
        b"GET /api/v1/\x00/ HTTP/1.1\r\nHost: x\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    ] {
        let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
        stream.write_all(request).await.unwrap();
        stream.shutdown().await.unwrap();
        let mut answer = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(15), stream.read_to_end(&mut answer))
            .await
            .expect("the server answers or closes in time");
        assert!(read.is_ok());
        let text = String::from_utf8_lossy(&answer);
        assert!(text.is_empty() || text.starts_with("HTTP/1.1 4"), "{text}");
    }
}

on_both_backends!(
    search_ordering_and_filters_are_bounded,
    huge_vote_lists_are_refused_before_any_write,
    a_deactivated_user_is_refused_everywhere,
    reads_need_a_login_as_in_the_original,
    registration_messages_are_djangos,
    malformed_json_bodies_query_strings_and_tokens,
);
