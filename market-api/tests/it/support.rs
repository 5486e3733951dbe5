//! Test helpers: the two backends ([`Backend`], a fresh database per test,
//! one PostgreSQL cluster per test binary), an in-process server on a test
//! database, a client, and log-in shortcuts.

use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use market_api::{PasswordCost, SeedConfig, ServeConfig};
use pgcluster::Cluster;
use reqwest::{Client, Response};
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{Connection, FromRow};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const SECRET: &str = "integration-test-secret";
pub const PASSWORD: &str = "Passw0rd!";

/// A running server; stops when dropped (or explicitly with [`Server::stop`]).
pub struct Server {
    pub base: String,
    pub client: Client,
    /// The server's database (another replica would open the same URL).
    pub db: TestDatabase,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<Result<(), market_api::Error>>>,
    /// The demo user's access token, once logged in ([`Server::token`]).
    token: tokio::sync::OnceCell<String>,
}

/// The test configuration on the database at `database_url`.
pub fn config(database_url: &str) -> ServeConfig {
    let mut config = ServeConfig::new(database_url);
    config.seed = Some(SeedConfig {
        users: 4,
        products: 25,
        comments: 30,
        password_cost: PasswordCost::Fast,
    });
    config.password_cost = PasswordCost::Fast;
    config.jwt_secret = Some(SECRET.to_owned());
    config.pool_size = Some(2);
    config
}

pub fn client() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

impl Server {
    /// A seeded server with the test defaults on a fresh database.
    pub async fn start(backend: Backend) -> Server {
        Server::start_with(backend, |_| {}).await
    }

    /// A server on a fresh database whose configuration `tweak` may change
    /// first.
    pub async fn start_with(backend: Backend, tweak: impl FnOnce(&mut ServeConfig)) -> Server {
        Server::start_on(fresh_database(backend).await, tweak).await
    }

    /// A server on `db` (seeded unless `tweak` says otherwise).
    pub async fn start_on(db: TestDatabase, tweak: impl FnOnce(&mut ServeConfig)) -> Server {
        let mut cfg = config(&db.url);
        tweak(&mut cfg);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let state = market_api::AppState::open(&cfg).await.expect("open state");
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(market_api::serve_state(listener, state, async {
            let _ = rx.await;
        }));
        Server {
            base: format!("http://{addr}"),
            client: client(),
            db,
            shutdown: Some(tx),
            handle: Some(handle),
            token: tokio::sync::OnceCell::new(),
        }
    }

    /// Makes the demo user staff, straight in the database.
    pub async fn make_demo_staff(&self) {
        self.db
            .execute("UPDATE users SET is_staff = TRUE WHERE email = 'demo@example.com'")
            .await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Asks for shutdown and waits (bounded) for the server to finish.
    pub async fn stop(mut self) -> Result<(), market_api::Error> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let handle = self.handle.take().expect("running");
        tokio::time::timeout(Duration::from_secs(15), handle)
            .await
            .expect("server stops in time")
            .expect("server task")
    }

    pub fn trigger_shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        let mut req = self.client.get(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.expect("request")
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Response {
        let mut req = self.client.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.expect("request")
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Response {
        self.send(reqwest::Method::POST, path, token, Some(body))
            .await
    }

    /// [`get`](Server::get), answered with status and JSON body.
    pub async fn get_json(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        json(self.get(path, token).await).await
    }

    /// [`send`](Server::send), answered with status and JSON body.
    pub async fn send_json(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        json(self.send(method, path, token, body).await).await
    }

    /// [`post`](Server::post), answered with status and JSON body.
    pub async fn post_json(&self, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
        json(self.post(path, token, body).await).await
    }

    /// `(access, refresh)` for a seeded user.
    pub async fn login(&self, email: &str) -> (String, String) {
        let res = self
            .post(
                "/api/v1/auth/token/",
                None,
                serde_json::json!({"email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(res.status(), 200, "login of {email}");
        let v: Value = res.json().await.expect("json");
        (
            v["access"].as_str().unwrap().to_owned(),
            v["refresh"].as_str().unwrap().to_owned(),
        )
    }

    /// Posts each body to `path` and asserts it is refused with 400 and
    /// exactly `message` as the error of `field`.
    pub async fn assert_rejected(&self, path: &str, token: &str, cases: &[(Value, &str, &str)]) {
        for (body, field, message) in cases {
            let (st, v) = self.post_json(path, Some(token), body.clone()).await;
            assert_eq!(st, 400, "{body}");
            assert_eq!(v[*field], serde_json::json!([message]), "{body}: {v}");
        }
    }

    /// The demo user's access token, logged in once per server: reads need
    /// a login, as in the original.
    pub async fn token(&self) -> &str {
        self.token.get_or_init(|| self.demo()).await
    }

    pub async fn demo(&self) -> String {
        self.login("demo@example.com").await.0
    }

    pub async fn other(&self) -> String {
        self.login("other@example.com").await.0
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Status and JSON body.
pub async fn json(res: Response) -> (u16, Value) {
    let status = res.status().as_u16();
    let text = res.text().await.expect("body");
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text:?}"))
    };
    (status, value)
}

/// Which database a test runs on: the suite is written once, as functions
/// of the backend, and `on_both_backends!` (in `main.rs`) runs each on both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database of one test's own: a SQLite file in a temporary folder, or a
/// fresh database on this test binary's PostgreSQL cluster.
pub struct TestDatabase {
    pub url: String,
    pub backend: Backend,
    /// The SQLite file's folder, removed with the database.
    _dir: Option<TempDir>,
}

/// A new, empty database for one test.
pub async fn fresh_database(backend: Backend) -> TestDatabase {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("tempdir");
            TestDatabase {
                url: format!("sqlite://{}", dir.path().join("market.db").display()),
                backend,
                _dir: Some(dir),
            }
        }
        Backend::Postgres => {
            static NEXT: AtomicU32 = AtomicU32::new(0);
            let pg = pg_cluster();
            let name = format!("t{}", NEXT.fetch_add(1, Ordering::Relaxed));
            let mut admin = sqlx::PgConnection::connect(&pg.url())
                .await
                .expect("connect to the test cluster");
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut admin)
                .await
                .expect("create a test database");
            admin.close().await.ok();
            TestDatabase {
                url: pg.url_for(&name),
                backend,
                _dir: None,
            }
        }
    }
}

impl TestDatabase {
    /// A database someone else made (e.g. on a cluster of the test's own).
    pub fn at(backend: Backend, url: String) -> TestDatabase {
        TestDatabase {
            url,
            backend,
            _dir: None,
        }
    }

    /// Runs `sql` (no parameters: write it to be valid on both backends,
    /// e.g. `TRUE`/`FALSE`, which SQLite reads as 1/0).
    pub async fn execute(&self, sql: &str) {
        match self.backend {
            Backend::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
                sqlx::query(sql).execute(&mut c).await.unwrap();
                c.close().await.ok();
            }
            Backend::Postgres => {
                let mut c = sqlx::PgConnection::connect(&self.url).await.unwrap();
                sqlx::query(sql).execute(&mut c).await.unwrap();
                c.close().await.ok();
            }
        }
    }

    /// The one row of `sql`, decoded as `T` (a tuple).
    pub async fn fetch_one<T>(&self, sql: &str) -> T
    where
        T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin,
    {
        let mut rows = self.fetch_all::<T>(sql).await;
        assert_eq!(rows.len(), 1, "{sql}");
        rows.pop().unwrap()
    }

    /// Every row of `sql`, decoded as `T` (a tuple).
    pub async fn fetch_all<T>(&self, sql: &str) -> Vec<T>
    where
        T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin,
    {
        match self.backend {
            Backend::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
                let rows = sqlx::query_as(sql).fetch_all(&mut c).await.unwrap();
                c.close().await.ok();
                rows
            }
            Backend::Postgres => {
                let mut c = sqlx::PgConnection::connect(&self.url).await.unwrap();
                let rows = sqlx::query_as(sql).fetch_all(&mut c).await.unwrap();
                c.close().await.ok();
                rows
            }
        }
    }
}

/// A temporary folder (removed when dropped) that the account running
/// PostgreSQL can enter: tempfile makes it 0700, which as root would keep
/// `nobody` out.
pub fn scratch() -> TempDir {
    let dir = tempfile::Builder::new()
        .prefix("market-api-it-")
        .tempdir()
        .expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// The test binary's PostgreSQL cluster, started on first use and shared
/// by every test (each gets a database of its own: [`fresh_database`]).
///
/// It is started from a thread with a runtime of its own, because each
/// `#[tokio::test]` has its own runtime and this one outlives them all. It
/// is never dropped: when the test binary exits, the server gets SIGKILL by
/// its death signal (see `pgcluster`), and the next run removes the data
/// folders of binaries that are gone.
pub fn pg_cluster() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        std::thread::spawn(|| {
            remove_stale_clusters();
            let dir = std::env::temp_dir().join(format!("{PG_DIR_PREFIX}{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime
                .block_on(Cluster::start(pgcluster::Options {
                    max_connections: 200,
                    ..pgcluster::Options::new(dir.join("postgres"))
                }))
                .expect("the test PostgreSQL cluster starts (needs Debian's postgresql package)")
        })
        .join()
        .expect("cluster thread")
    })
}

const PG_DIR_PREFIX: &str = "market-api-it-pg-";

/// Removes the cluster folders of earlier test binaries that have exited.
fn remove_stale_clusters() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(PG_DIR_PREFIX))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
