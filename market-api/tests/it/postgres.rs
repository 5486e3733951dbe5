//! PostgreSQL only: what SQLite has no counterpart for. The server not
//! reachable at start (retried with backoff, then one line saying what to
//! check), wrong credentials (user and host named, never the password), a
//! restart mid-run (503 with a DRF body and `Retry-After` while it is away,
//! recovery by itself, no acknowledged write lost), and replicas starting
//! together on an empty database (migrated and seeded exactly once); and
//! the two backends side by side, answering the same bytes. The rest of the
//! suite runs on both backends.

use std::time::{Duration, Instant};

use serde_json::json;
use sqlx::Connection;
use tokio::process::Command;

use super::processes::{login, start_url, BIN};
use super::support::{
    client, fresh_database, json, pg_cluster, scratch, Backend, Server, TestDatabase,
};

/// A free loopback port nobody listens on (bound, then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs `market-api ARGS` to its exit, bounded; returns (success, stderr).
async fn run_to_exit(args: &[&str], bound: Duration) -> (bool, String) {
    let out = tokio::time::timeout(
        bound,
        Command::new(BIN)
            .args(args)
            .env("RUST_LOG", "warn")
            .env_remove("MARKET_API_DATABASE_URL")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("market-api exits within its bound")
    .expect("run market-api");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The last line of `stderr`: the error `main` prints.
fn last_line(stderr: &str) -> &str {
    stderr.lines().last().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_at_start_is_retried_then_explained_in_one_line() {
    let port = free_port();
    let url = format!("postgres://lab:s3cret-pw@127.0.0.1:{port}/market");
    let started = Instant::now();
    let (ok, stderr) = run_to_exit(
        &["migrate", "--database-url", &url, "--startup-timeout", "2s"],
        Duration::from_secs(60),
    )
    .await;
    assert!(!ok, "{stderr}");
    // It kept trying for the timeout (a lower bound only: never flaky).
    assert!(started.elapsed() >= Duration::from_millis(1500), "{stderr}");
    assert!(stderr.contains("retrying in"), "no retry logged: {stderr}");
    let line = last_line(&stderr);
    assert!(
        line.starts_with(&format!(
            "market-api: cannot reach PostgreSQL at 127.0.0.1:{port}"
        )),
        "{line}"
    );
    assert!(line.contains("check that the server is running"), "{line}");
    assert!(line.contains("--startup-timeout"), "{line}");
    assert!(!stderr.contains("s3cret-pw"), "password leaked: {stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_coming_up_within_the_startup_timeout_is_waited_for() {
    let dir = scratch();
    let port = free_port();
    let password = "late-server-pw";
    let url = format!("postgres://lab:{password}@127.0.0.1:{port}/postgres");
    // The API first, with nothing listening yet: it must wait, not fail.
    let api = tokio::spawn(async move {
        start_url(&url, &["--startup-timeout", "120s", "--pool-size", "2"]).await
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!api.is_finished(), "the API gave up before the server came");
    let pg = pgcluster::Cluster::start(pgcluster::Options {
        port: Some(port),
        password: Some(password.into()),
        ..pgcluster::Options::new(dir.path().join("postgres"))
    })
    .await
    .expect("cluster starts");
    let replica = tokio::time::timeout(Duration::from_secs(90), api)
        .await
        .expect("the API comes up once the server does")
        .unwrap();
    let token = login(&replica.base).await;
    let (st, v) = json(
        client()
            .get(format!("{}/api/v1/products/1/", replica.base))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((st, v["id"].clone()), (200, json!(1)), "{v}");
    assert!(replica.terminate().await.success());
    pg.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_name_user_and_host_never_the_password() {
    let pg = pg_cluster();
    let good = pg.password().to_owned();
    for (user, password) in [("lab", "wrong-pw-123"), ("nobody_here", good.as_str())] {
        let url = format!(
            "postgres://{user}:{password}@127.0.0.1:{}/postgres",
            pg.port()
        );
        let started = Instant::now();
        let (ok, stderr) = run_to_exit(
            &[
                "migrate",
                "--database-url",
                &url,
                "--startup-timeout",
                "300s",
            ],
            Duration::from_secs(120),
        )
        .await;
        assert!(!ok, "{stderr}");
        // Not retried until the timeout: a wrong password will not heal.
        assert!(started.elapsed() < Duration::from_secs(120), "{stderr}");
        let line = last_line(&stderr);
        assert!(
            line.starts_with(&format!(
                "market-api: PostgreSQL at 127.0.0.1:{} refused user \"{user}\"",
                pg.port()
            )),
            "{line}"
        );
        assert!(line.contains("check the user name and password"), "{line}");
        assert!(!stderr.contains(password), "password leaked: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
}

/// Four replicas at once on an empty database: every one starts, and the
/// migrations and the demo data are there exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_starting_together_migrate_and_seed_once() {
    let db = fresh_database(Backend::Postgres).await;
    let replicas = futures::future::join_all((0..4).map(|i| {
        let url = db.url.clone();
        async move { start_url(&url, &["--replica-id", &format!("r{i}")]).await }
    }))
    .await;
    let counts: (i64, i64, i64, i64, i64, i64) = db
        .fetch_one(
            "SELECT (SELECT COUNT(*) FROM users), (SELECT COUNT(*) FROM products), \
             (SELECT COUNT(*) FROM comments), (SELECT COUNT(*) FROM categories), \
             (SELECT COUNT(*) FROM _sqlx_migrations), (SELECT COUNT(*) FROM settings)",
        )
        .await;
    assert_eq!(counts, (3, 20, 20, 18, 3, 1));
    let token = login(&replicas[0].base).await;
    for r in &replicas {
        let res = client()
            .get(format!("{}/api/v1/products/?page_size=100", r.base))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            200,
            "a replica refused the shared secret's token"
        );
    }
    for r in replicas {
        assert!(r.terminate().await.success());
    }
}

/// Asserts that `res` is the database-unavailable answer: 503, a DRF
/// `detail`, `Retry-After`.
async fn assert_unavailable(res: reqwest::Response) {
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()["retry-after"], "1");
    let (_, v) = json(res).await;
    assert_eq!(
        v,
        json!({"detail": "Database unavailable, try again later."})
    );
}

/// PostgreSQL stops and starts again under a running API: while it is away
/// requests get 503 (never a 500, never a hang); the API recovers by itself;
/// every product acknowledged with 201 before, during or after is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_mid_run_is_503_then_recovers_and_loses_no_write() {
    let dir = scratch();
    let mut pg = pgcluster::Cluster::start(pgcluster::Options::new(dir.path().join("postgres")))
        .await
        .expect("cluster starts");
    pg.create_database("market").await.unwrap();
    let s = Server::start_on(
        TestDatabase::at(Backend::Postgres, pg.url_for("market")),
        |_| {},
    )
    .await;
    let token = s.token().await.to_owned();

    // A writer for the whole run: every answer is 201 or the 503 above.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (base, token, stop) = (s.base.clone(), token.clone(), stop.clone());
        tokio::spawn(async move {
            let client = client();
            let (mut created, mut refused) = (Vec::new(), 0);
            for i in 0..2000 {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let res = client
                    .post(format!("{base}/api/v1/products/"))
                    .bearer_auth(&token)
                    .json(&json!({"title": format!("Restart {i}"), "votes": [2]}))
                    .send()
                    .await
                    .expect("an answer, not a dropped connection");
                match res.status().as_u16() {
                    201 => created.push(json(res).await.1["id"].as_i64().unwrap()),
                    503 => {
                        refused += 1;
                        assert_unavailable(res).await;
                    }
                    other => panic!("status {other}: {:?}", res.text().await),
                }
            }
            (created, refused)
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;

    // A write whose connection is lost inside its transaction: another
    // connection holds the change counter's row, so the product insert
    // waits in its trigger; then the server terminates that backend (what
    // a shutdown does to every connection). Terminating the waiting
    // backend itself, not the holder, keeps this deterministic: had the
    // holder gone first, the write could take the lock and commit (201).
    let mut holder = sqlx::PgConnection::connect(&pg.url_for("market"))
        .await
        .unwrap();
    sqlx::query("BEGIN").execute(&mut holder).await.unwrap();
    sqlx::query("UPDATE change_counter SET generation = generation WHERE id = 1")
        .execute(&mut holder)
        .await
        .unwrap();
    let caught = s
        .client
        .post(s.url("/api/v1/products/"))
        .bearer_auth(&token)
        .json(&json!({"title": "Caught mid-transaction"}))
        .send();
    let caught = tokio::spawn(caught);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!caught.is_finished(), "the write did not wait for the lock");
    let terminated: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()) AS t",
    )
    .fetch_one(&mut holder)
    .await
    .unwrap();
    assert!(terminated >= 1, "no backend was waiting for the lock");
    // The connection lost mid-transaction: a 503, not a 500.
    assert_unavailable(caught.await.unwrap().unwrap()).await;
    sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
    drop(holder);

    let list = format!("{}/api/v1/products/", s.base);
    let seen_down = pg
        .restart_with(async {
            // Down: keep asking until a read says so (bounded).
            let deadline = Instant::now() + Duration::from_secs(60);
            while Instant::now() < deadline {
                let res = s
                    .client
                    .get(&list)
                    .bearer_auth(&token)
                    .send()
                    .await
                    .unwrap();
                if res.status() == 503 {
                    assert_unavailable(res).await;
                    let health = s.client.get(s.url("/healthz")).send().await.unwrap();
                    assert_eq!(health.status(), 503);
                    return true;
                }
                assert_eq!(res.status(), 200);
            }
            false
        })
        .await
        .expect("the cluster restarts");
    assert!(seen_down, "no request noticed the database was down");

    // Back: the API recovers by itself (bounded wait, generous).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let res = s
            .client
            .get(&list)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        if res.status() == 200 {
            break;
        }
        assert_unavailable(res).await;
        assert!(Instant::now() < deadline, "the API did not recover");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (created, _refused) = writer.await.unwrap();
    assert!(!created.is_empty());
    for id in &created {
        let (st, v) = s
            .get_json(&format!("/api/v1/products/{id}/"), Some(&token))
            .await;
        assert_eq!(st, 200, "acknowledged product {id} lost: {v}");
        assert_eq!(v["votes_count"], 1, "{v}");
    }
    s.stop().await.unwrap();
    pg.stop().await.unwrap();
}

/// `text` with every `"product_id":"<uuid>"` value blanked: the one field
/// that differs between two databases seeded the same way.
fn without_uuids(text: &str) -> String {
    const KEY: &str = "\"product_id\":\"";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(KEY) {
        out.push_str(&rest[..at + KEY.len()]);
        rest = &rest[at + KEY.len() + 36..];
    }
    out.push_str(rest);
    out
}

/// The same requests on the two backends answer the same bytes: list pages
/// (ordered every way), a retrieve, and products holding text that needs
/// escaping, owned by a user whose image needs joining.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_backends_answer_the_same_bytes() {
    let (lite, pg) = tokio::join!(
        Server::start(Backend::Sqlite),
        Server::start(Backend::Postgres)
    );
    let tricky = "q\"uote \\back é 😀 \n\t\r\u{1}\u{8}\u{c}\u{1f}\u{7f} \u{2028} </b> &";
    for s in [&lite, &pg] {
        s.db.execute("UPDATE users SET image = 'avatars/d.png' WHERE email = 'demo@example.com'")
            .await;
        let token = s.token().await;
        for body in [
            json!({"title": tricky, "description": tricky, "tags": "t\"ag", "votes": [3, 1, 2]}),
            json!({"title": "Zebra", "image": "https://cdn.example/z.png", "category": 18}),
            json!({"title": "apple", "image": "img/a b.png"}),
        ] {
            let (st, v) = s.post_json("/api/v1/products/", Some(token), body).await;
            assert_eq!(st, 201, "{v}");
        }
    }
    for path in [
        "/api/v1/products/?page_size=100",
        "/api/v1/products/?ordering=title&page_size=7&page=2",
        "/api/v1/products/?ordering=-id,title&search=E",
        "/api/v1/products/?search=%22ag",
        "/api/v1/products/26/",
        "/api/v1/products/1/",
    ] {
        let mut bodies = Vec::new();
        for s in [&lite, &pg] {
            let res = s.get(path, Some(s.token().await)).await;
            assert_eq!(res.status(), 200, "{path}");
            // The links name each server's own address.
            bodies.push(without_uuids(&res.text().await.unwrap()).replace(&s.base, "BASE"));
        }
        assert_eq!(bodies[0], bodies[1], "{path}");
    }
}
