//! Test helpers: an in-process server on a temporary database, a client, and
//! log-in shortcuts.

use std::time::Duration;

use market_api::{PasswordCost, SeedConfig, ServeConfig};
use reqwest::{Client, Response};
use serde_json::Value;
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const SECRET: &str = "integration-test-secret";
pub const PASSWORD: &str = "Passw0rd!";

/// A running server; stops when dropped (or explicitly with [`Server::stop`]).
pub struct Server {
    pub base: String,
    pub client: Client,
    pub dir: TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<Result<(), market_api::Error>>>,
    /// The demo user's access token, once logged in ([`Server::token`]).
    token: tokio::sync::OnceCell<String>,
}

/// The `sqlite://` URL of the test database in `dir`.
pub fn database_url(dir: &TempDir) -> String {
    format!("sqlite://{}", dir.path().join("market.db").display())
}

pub fn config(dir: &TempDir) -> ServeConfig {
    let mut config = ServeConfig::new(database_url(dir));
    config.seed = Some(SeedConfig {
        users: 4,
        products: 25,
        comments: 30,
        password_cost: PasswordCost::Fast,
    });
    config.password_cost = PasswordCost::Fast;
    config.jwt_secret = Some(SECRET.to_owned());
    config.read_connections = Some(2);
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
    /// A seeded server with the test defaults.
    pub async fn start() -> Server {
        Server::start_with(|_| {}).await
    }

    /// A server whose configuration `tweak` may change first.
    pub async fn start_with(tweak: impl FnOnce(&mut ServeConfig)) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cfg = config(&dir);
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
            dir,
            shutdown: Some(tx),
            handle: Some(handle),
            token: tokio::sync::OnceCell::new(),
        }
    }

    /// A pool of its own on the server's database file, as another process
    /// (another replica) would open it.
    pub async fn db(&self) -> sqlx::SqlitePool {
        sqlx::SqlitePool::connect(&database_url(&self.dir))
            .await
            .expect("open the database")
    }

    /// Makes the demo user staff, straight in the database file.
    pub async fn make_demo_staff(&self) {
        let db = self.db().await;
        sqlx::query("UPDATE users SET is_staff = 1 WHERE email = 'demo@example.com'")
            .execute(&db)
            .await
            .unwrap();
        db.close().await;
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
