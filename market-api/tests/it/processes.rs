//! The real binary as processes: two replicas on one SQLite file (racing
//! migrations and seeding, sharing the JWT secret, writing concurrently
//! without losing a row), SIGTERM with a request in flight, `migrate`/`seed`,
//! its logs and start-up errors as a log file receives them.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::support::{client, fresh_database, json, Backend, PASSWORD};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_market-api");

/// A `market-api serve` child process (killed if the test fails early).
pub(crate) struct Replica {
    pub(crate) child: Child,
    pub(crate) base: String,
}

pub(crate) async fn start(db: &Path, extra: &[&str]) -> Replica {
    start_url(&format!("sqlite://{}", db.display()), extra).await
}

/// A `market-api serve` child process on the database at `url`.
pub(crate) async fn start_url(url: &str, extra: &[&str]) -> Replica {
    let mut cmd = Command::new(BIN);
    cmd.args([
        "serve",
        "--bind",
        "127.0.0.1:0",
        "--password-cost",
        "fast",
        "--workers",
        "2",
    ])
    .args(["--users", "3", "--products", "20", "--comments", "20"])
    .args(["--database-url", url])
    .args(extra)
    .env_remove("MARKET_API_JWT_SECRET")
    .env("RUST_LOG", "warn")
    .stdout(Stdio::piped())
    .stderr(Stdio::inherit())
    .kill_on_drop(true);
    let mut child = cmd.spawn().expect("spawn market-api");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("listening line in time")
        .expect("read stdout")
        .expect("a line");
    let base = line
        .strip_prefix("market-api listening on ")
        .expect("announce line")
        .to_owned();
    Replica { child, base }
}

impl Replica {
    pub(crate) async fn terminate(mut self) -> std::process::ExitStatus {
        let pid = Pid::from_raw(self.child.id().expect("pid") as i32);
        kill(pid, Signal::SIGTERM).expect("SIGTERM");
        tokio::time::timeout(Duration::from_secs(15), self.child.wait())
            .await
            .expect("exits in time")
            .expect("wait")
    }
}

pub(crate) async fn login(base: &str) -> String {
    let res = client()
        .post(format!("{base}/api/v1/auth/token/"))
        .json(&json!({"email": "demo@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let (st, v) = json(res).await;
    assert_eq!(st, 200, "{v}");
    v["access"].as_str().unwrap().to_owned()
}

async fn count(base: &str, path: &str, token: &str) -> i64 {
    let (st, v) = json(
        client()
            .get(format!("{base}{path}"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    v["count"].as_i64().unwrap()
}

async fn two_replicas_share_one_database(backend: Backend) {
    let db = fresh_database(backend).await;
    // Both start at once on a fresh database: migrations and seeding race.
    let (a, b) = tokio::join!(
        start_url(&db.url, &["--replica-id", "a"]),
        start_url(&db.url, &["--replica-id", "b"])
    );
    let token = login(&a.base).await;
    // The secret lives in the database: B accepts A's token.
    let res = client()
        .get(format!("{}/api/v1/products/comments/", b.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-replica"], "b");
    // Seeded once, not twice.
    assert_eq!(count(&a.base, "/api/v1/products/", &token).await, 20);
    assert_eq!(
        count(&b.base, "/api/v1/products/comments/", &token).await,
        20
    );

    // Concurrent writes from both processes, same title (slugs must still be unique).
    const TASKS: usize = 4;
    const PER_TASK: usize = 20;
    let mut handles = Vec::new();
    for base in [a.base.clone(), b.base.clone()] {
        for t in 0..TASKS {
            let base = base.clone();
            let token = token.clone();
            handles.push(tokio::spawn(async move {
                let client = client();
                let mut statuses = Vec::new();
                for i in 0..PER_TASK {
                    let res = client
                        .post(format!("{base}/api/v1/products/"))
                        .bearer_auth(&token)
                        .json(&json!({"title": "Race", "description": format!("task {t} item {i}"), "votes": [2]}))
                        .send()
                        .await
                        .unwrap();
                    statuses.push(res.status().as_u16());
                    let res = client
                        .post(format!("{base}/api/v1/products/comments/"))
                        .bearer_auth(&token)
                        .json(&json!({"reply": "race", "post": 1}))
                        .send()
                        .await
                        .unwrap();
                    statuses.push(res.status().as_u16());
                }
                statuses
            }));
        }
    }
    for h in handles {
        let statuses = h.await.unwrap();
        assert!(statuses.iter().all(|&s| s == 201), "{statuses:?}");
    }
    let written = (2 * TASKS * PER_TASK) as i64;
    assert_eq!(
        count(&a.base, "/api/v1/products/", &token).await,
        20 + written
    );
    assert_eq!(
        count(&b.base, "/api/v1/products/", &token).await,
        20 + written
    );
    assert_eq!(
        count(&b.base, "/api/v1/products/comments/", &token).await,
        20 + written
    );
    let mut slugs = std::collections::HashSet::new();
    for page in 1..=2 {
        let (_, v) = json(
            client()
                .get(format!(
                    "{}/api/v1/products/?title=Race&page_size=100&page={page}",
                    a.base
                ))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap(),
        )
        .await;
        for p in v["results"].as_array().unwrap() {
            assert!(
                slugs.insert(p["slug"].as_str().unwrap().to_owned()),
                "duplicate slug"
            );
            assert_eq!(p["votes_count"], 1);
        }
    }
    assert_eq!(slugs.len() as i64, written);

    assert!(a.terminate().await.success());
    assert!(b.terminate().await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_in_flight_requests() {
    let dir = tempfile::tempdir().unwrap();
    let replica = start(&dir.path().join("m.db"), &["--fault-delay", "800ms"]).await;
    let url = format!("{}/api/v1/products/1/", replica.base);
    let token = login(&replica.base).await;
    let in_flight = tokio::spawn(async move { client().get(url).bearer_auth(token).send().await });
    tokio::time::sleep(Duration::from_millis(250)).await;
    let status = replica.terminate().await;
    let res = in_flight.await.unwrap().expect("request completed");
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["id"], 1);
    assert!(status.success(), "{status:?}");
}

async fn run_cli(args: &[&str]) -> String {
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        Command::new(BIN)
            .args(args)
            .env("RUST_LOG", "warn")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("in time")
    .expect("run");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

async fn migrate_and_seed_commands(backend: Backend) {
    let db = fresh_database(backend).await;
    let url = db.url.clone();
    let out = run_cli(&["migrate", "--database-url", &url]).await;
    assert!(out.starts_with("market-api migrated"), "{out}");
    let seed = [
        "seed",
        "--database-url",
        &url,
        "--users",
        "3",
        "--products",
        "110",
        "--comments",
        "210",
        "--password-cost",
        "fast",
    ];
    run_cli(&seed).await;
    run_cli(&seed).await; // idempotent

    let counts: (i64, i64, i64, i64, i64) = db
        .fetch_one(
            "SELECT (SELECT COUNT(*) FROM users), (SELECT COUNT(*) FROM products), \
             (SELECT MIN(id) FROM products), (SELECT COUNT(*) FROM comments), \
             (SELECT COUNT(*) FROM categories)",
        )
        .await;
    assert_eq!(counts, (3, 110, 1, 210, 18));
    let names: Vec<(i64, String, String)> = db
        .fetch_all("SELECT id, name, code FROM categories WHERE id IN (1, 9, 18) ORDER BY id")
        .await;
    assert_eq!(
        names,
        vec![
            (1, "Apparels & Accessories".into(), "aa".into()),
            (9, "Home, Furnishing & Appliances".into(), "hfa".into()),
            (18, "Others".into(), "o".into()),
        ]
    );

    // A bad flag is an error exit, not a panic.
    let out = Command::new(BIN)
        .args(["serve", "--fault-error-rate", "2"])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let out = Command::new(BIN)
        .args([
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--database-url",
            "sqlite:///nonexistent-dir/x/y.db",
        ])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("market-api:"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_to_a_pipe_are_plain_and_a_bind_error_says_its_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("m.db").display());
    let serve = |bind: &str| {
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--bind", bind, "--database-url", &url])
            .args(["--password-cost", "fast", "--users", "2", "--products", "2"])
            .args(["--comments", "0", "--workers", "1"])
            .env("RUST_LOG", "info")
            .env_remove("NO_COLOR")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    };
    let mut first = serve("127.0.0.1:0").spawn().expect("spawn market-api");
    let stdout = first.stdout.take().expect("stdout");
    let line = tokio::time::timeout(
        Duration::from_secs(30),
        BufReader::new(stdout).lines().next_line(),
    )
    .await
    .expect("listening line in time")
    .expect("read stdout")
    .expect("a line");
    let addr = line
        .strip_prefix("market-api listening on http://")
        .expect("announce line")
        .to_owned();

    // A second server on the same address fails with one clear line.
    let out = tokio::time::timeout(Duration::from_secs(30), serve(&addr).output())
        .await
        .expect("exits in time")
        .expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("market-api: cannot listen on {addr}: ")),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("Address already in use").count(),
        1,
        "{stderr}"
    );

    // stderr is a pipe, not a terminal: no colour codes in the log lines.
    let pid = Pid::from_raw(first.id().expect("pid") as i32);
    kill(pid, Signal::SIGTERM).expect("SIGTERM");
    let out = tokio::time::timeout(Duration::from_secs(15), first.wait_with_output())
        .await
        .expect("exits in time")
        .expect("wait");
    assert!(out.status.success());
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("INFO") && log.contains("serving"), "{log}");
    assert!(!log.contains('\x1b'), "colour codes in {log:?}");
}

/// Creates a product titled `title` through the replica at `base`; its JSON.
async fn create_product(base: &str, token: &str, title: &str) -> Value {
    let res = client()
        .post(format!("{base}/api/v1/products/"))
        .bearer_auth(token)
        .json(&json!({ "title": title }))
        .send()
        .await
        .unwrap();
    let (st, created) = json(res).await;
    assert_eq!(st, 201, "{created}");
    created
}

/// Renames the product at `path` through the replica at `base`.
async fn rename_product(base: &str, token: &str, path: &str, title: &str) {
    let res = client()
        .patch(format!("{base}{path}"))
        .bearer_auth(token)
        .json(&json!({ "title": title }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

/// The list cache across processes: a write acknowledged by replica A shows
/// in replica B's very next list, though B had that page cached (the change
/// counter moves in the shared database, whichever process writes).
async fn a_write_on_one_replica_shows_in_the_others_next_list(backend: Backend) {
    let db = fresh_database(backend).await;
    let a = start_url(&db.url, &["--replica-id", "a"]).await;
    let b = start_url(&db.url, &["--replica-id", "b"]).await;
    let token = login(&a.base).await;
    let list = |base: &str| {
        let url = format!("{base}/api/v1/products/");
        let token = token.clone();
        async move {
            let res = client().get(url).bearer_auth(token).send().await.unwrap();
            assert_eq!(res.status(), 200);
            res.text().await.unwrap()
        }
    };
    // B caches its first page (asked twice: the second is a cache hit).
    let before = list(&b.base).await;
    assert_eq!(list(&b.base).await, before);
    let created = create_product(&a.base, &token, "Written on A").await;
    let after: Value = serde_json::from_str(&list(&b.base).await).unwrap();
    assert_eq!(
        after["results"][0]["id"], created["id"],
        "B served a stale page"
    );
    assert_eq!(after["results"][0]["title"], "Written on A");
    // An update on A too (the newest product's title, in place).
    let id = created["id"].as_i64().unwrap();
    rename_product(
        &a.base,
        &token,
        &format!("/api/v1/products/{id}/"),
        "Renamed on A",
    )
    .await;
    let after: Value = serde_json::from_str(&list(&b.base).await).unwrap();
    assert_eq!(after["results"][0]["title"], "Renamed on A");
    assert!(a.terminate().await.success());
    assert!(b.terminate().await.success());
}

/// The retrieve cache and the remembered login states across processes:
/// replica B serves a product it has cached until a write anywhere changes
/// it (here on A), and refuses a user deactivated by a statement run
/// straight on the database, though it had just let that user read.
async fn a_cached_retrieve_follows_writes_and_deactivation_elsewhere(backend: Backend) {
    let db = fresh_database(backend).await;
    let a = start_url(&db.url, &["--replica-id", "a"]).await;
    let b = start_url(&db.url, &["--replica-id", "b"]).await;
    let token = login(&a.base).await;
    let created = create_product(&a.base, &token, "Cached on B").await;
    let path = format!("/api/v1/products/{}/", created["id"]);
    let get = |base: &str| {
        let url = format!("{base}{path}");
        let token = token.clone();
        async move { json(client().get(url).bearer_auth(token).send().await.unwrap()).await }
    };
    // Twice: the second comes from B's cache.
    let (st, first) = get(&b.base).await;
    assert_eq!((st, &first["title"]), (200, &json!("Cached on B")));
    assert_eq!(get(&b.base).await, (200, first));
    rename_product(&a.base, &token, &path, "Renamed on A").await;
    let (st, after) = get(&b.base).await;
    assert_eq!(
        (st, &after["title"]),
        (200, &json!("Renamed on A")),
        "B served a stale product"
    );
    db.execute("UPDATE users SET is_active = FALSE WHERE email = 'demo@example.com'")
        .await;
    let inactive = json!({"detail": "User is inactive", "code": "user_inactive"});
    assert_eq!(
        get(&b.base).await,
        (401, inactive.clone()),
        "B let a deactivated user read"
    );
    let res = client()
        .get(format!("{}/api/v1/products/", b.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(json(res).await, (401, inactive));
    assert!(a.terminate().await.success());
    assert!(b.terminate().await.success());
}

/// Concurrent reads on replica B right after writes acknowledged by A. On
/// PostgreSQL the readers waiting at once share one look-up of the change
/// counter and of their users' states (`generation.rs`); each must still get
/// its own user's answer (an active and a deactivated user, interleaved) and
/// see every write acknowledged before it was sent.
async fn concurrent_readers_get_their_own_user_and_every_acknowledged_write(backend: Backend) {
    let db = fresh_database(backend).await;
    let a = start_url(&db.url, &["--replica-id", "a"]).await;
    let b = start_url(&db.url, &["--replica-id", "b"]).await;
    let demo = login(&a.base).await;
    let gone = json!({"email": "gone@example.com", "password": "S3cret!x"});
    let mut with_confirm = gone.clone();
    with_confirm["confirm_password"] = json!("S3cret!x");
    let url = format!("{}/api/v1/users/register/", a.base);
    let res = client().post(url).json(&with_confirm).send().await.unwrap();
    assert_eq!(res.status(), 201);
    let url = format!("{}/api/v1/auth/token/", a.base);
    let (st, v) = json(client().post(url).json(&gone).send().await.unwrap()).await;
    assert_eq!(st, 200, "{v}");
    let gone = v["access"].as_str().unwrap().to_owned();
    db.execute("UPDATE users SET is_active = FALSE WHERE email = 'gone@example.com'")
        .await;
    let inactive = json!({"detail": "User is inactive", "code": "user_inactive"});
    let path = format!(
        "/api/v1/products/{}/",
        create_product(&a.base, &demo, "v0").await["id"]
    );
    // Readers that keep a look-up in flight on B all along, so the checked
    // reads below arrive while one runs (a reader may not take the answer
    // of a query that started before it arrived).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut background = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let (url, token, stop) = (format!("{}{path}", b.base), demo.clone(), stop.clone());
        background.spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let res = client().get(&url).bearer_auth(&token).send().await.unwrap();
                assert_eq!(res.status(), 200);
            }
        });
    }
    for round in 1..=10 {
        let title = format!("v{round}");
        rename_product(&a.base, &demo, &path, &title).await;
        let mut reads = tokio::task::JoinSet::new();
        for i in 0..32 {
            let token = if i % 2 == 0 {
                demo.clone()
            } else {
                gone.clone()
            };
            let url = format!("{}{path}", b.base);
            reads.spawn(async move {
                let res = client().get(url).bearer_auth(token).send().await.unwrap();
                (i, json(res).await)
            });
        }
        while let Some(read) = reads.join_next().await {
            let (i, (st, v)) = read.unwrap();
            if i % 2 == 0 {
                assert_eq!(
                    (st, &v["title"]),
                    (200, &json!(title)),
                    "round {round}, read {i}"
                );
            } else {
                assert_eq!((st, &v), (401, &inactive), "round {round}, read {i}");
            }
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    while let Some(r) = background.join_next().await {
        r.unwrap();
    }
    assert!(a.terminate().await.success());
    assert!(b.terminate().await.success());
}

on_both_backends!(
    concurrent_readers_get_their_own_user_and_every_acknowledged_write,
    two_replicas_share_one_database,
    migrate_and_seed_commands,
    a_write_on_one_replica_shows_in_the_others_next_list,
    a_cached_retrieve_follows_writes_and_deactivation_elsewhere,
);
