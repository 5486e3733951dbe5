//! Shared pieces of the integration tests: a recording HTTP server on a real
//! socket whose answers (status, body, delay) a closure decides, a bounded
//! library run, the real `loadgen` binary run as a process; and for the
//! dashboard tests, a real target to load, the dashboard itself on a real
//! socket (`Background`) and a tiny HTTP client (`Http`, answers as `Fetched`).

#![allow(dead_code)] // not every topic uses every helper

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use loadgen::control::Controller;
use loadgen::scenario::{LoadDefaults, RequestSpec, Scenario, Task, UserClass, WaitTime};
use loadgen::{RunReport, TestPlan};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Tests that time latencies, and tests that load the cores flat out (a
/// browser, a rate of 10⁹/s), take this in turn: in one test binary they
/// would otherwise run side by side on a 2-core machine and the timing
/// ones would measure the others.
pub static EXCLUSIVE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Upper bound of one load run or one process in these tests.
pub const LIMIT: Duration = Duration::from_secs(60);

/// One request as the server saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// Receipt order, from 0.
    pub n: u64,
    pub method: String,
    /// Path and query.
    pub path: String,
    /// The `Authorization` header, if any.
    pub auth: Option<String>,
    pub body: Bytes,
    /// When it arrived.
    pub at: std::time::Instant,
}

/// What to answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    /// Wait this long before answering.
    pub delay: Duration,
}

impl Reply {
    pub fn ok(body: &str) -> Reply {
        Reply {
            status: 200,
            body: body.to_string(),
            delay: Duration::ZERO,
        }
    }

    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            body: String::new(),
            delay: Duration::ZERO,
        }
    }

    /// `status` (empty body) to every `every`-th request, the first included;
    /// `ok(body)` to the others.
    pub fn failing_every(seen: &Seen, every: u64, status: u16, body: &str) -> Reply {
        if seen.n % every == 0 {
            Reply::status(status)
        } else {
            Reply::ok(body)
        }
    }

    pub fn after(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }
}

type Behave = Arc<dyn Fn(&Seen) -> Reply + Send + Sync>;

struct Shared {
    count: AtomicU64,
    seen: Mutex<Vec<Seen>>,
    behave: Behave,
}

/// A recording server in this process; stopped on `stop` or drop.
pub struct Server {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Server {
    /// Binds 127.0.0.1:0 and answers every request with `behave(request)`.
    pub async fn start(behave: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            count: AtomicU64::new(0),
            seen: Mutex::new(Vec::new()),
            behave: Arc::new(behave),
        });
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await;
        });
        Server {
            addr,
            shared,
            stop: Some(tx),
            task: Some(task),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests received so far.
    pub fn count(&self) -> u64 {
        self.shared.count.load(Ordering::SeqCst)
    }

    /// Every request received so far, in order of receipt.
    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }

    /// Waits (bounded) until at least `n` requests arrived.
    pub async fn wait_for(&self, n: u64) {
        let deadline = Instant::now() + LIMIT;
        while self.count() < n {
            assert!(
                Instant::now() < deadline,
                "the server got only {} of {n} requests",
                self.count()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Asks for shutdown and waits (bounded) for the server to end.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            // Idle keep-alive connections may hold a graceful shutdown; bounded.
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn handle(State(sh): State<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let n = sh.count.fetch_add(1, Ordering::SeqCst);
    let seen = Seen {
        n,
        method: parts.method.to_string(),
        path: parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_default(),
        auth: parts
            .headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        body,
        at: std::time::Instant::now(),
    };
    let reply = (sh.behave)(&seen);
    sh.seen.lock().unwrap().push(seen);
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    Response::builder()
        .status(reply.status)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Body::from(reply.body))
        .unwrap()
}

/// `run_test`, bounded by `LIMIT`.
pub async fn run(plan: TestPlan) -> RunReport {
    tokio::time::timeout(LIMIT, loadgen::run_test(plan))
        .await
        .expect("the run did not end in time")
        .expect("the run failed to start")
}

/// A closed-model plan of `users` users started at once, bounded by `iterations`.
pub fn plan(url: &str, scenario: loadgen::Scenario, users: u32, iterations: u64) -> TestPlan {
    let mut p = TestPlan::new(url, scenario);
    p.users = users;
    p.spawn_rate = f64::INFINITY;
    p.iterations = Some(iterations);
    p.run_time = Some(Duration::from_secs(30));
    p
}

/// What a finished `loadgen` process left.
#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the `loadgen` binary to its end (killed after `LIMIT`).
pub async fn loadgen(args: &[&str]) -> Output {
    let child = spawn_loadgen(args);
    let out = tokio::time::timeout(LIMIT, child.wait_with_output())
        .await
        .expect("loadgen did not finish in time")
        .expect("cannot wait for loadgen");
    let o = Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(
        !o.stderr.contains("panicked"),
        "loadgen panicked: {}",
        o.stderr
    );
    o
}

/// Reads a JSON report written with `--json`.
pub fn read_report(path: &std::path::Path) -> RunReport {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// A path inside `dir` as a `String` (for command lines).
pub fn path_in(dir: &tempfile::TempDir, name: &str) -> String {
    dir.path().join(name).to_string_lossy().into_owned()
}

/// Starts the `loadgen` binary without waiting for it (killed on drop), its
/// output piped.
pub fn spawn_loadgen(args: &[&str]) -> tokio::process::Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("cannot start loadgen")
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`), bounded
/// by `LIMIT`; a JSON body is sent as `application/json`. Returns the status
/// and the body.
pub async fn http(addr: &str, method: &str, path: &str, json: Option<&str>) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
        if let Some(body) = json {
            req.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ));
        } else {
            req.push_str("\r\n");
        }
        sock.write_all(req.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        sock.read_to_end(&mut raw).await.unwrap();
        String::from_utf8_lossy(&raw).into_owned()
    };
    let text = tokio::time::timeout(LIMIT, exchange)
        .await
        .expect("HTTP exchange timed out");
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

// The dashboard tests' helpers.

/// Upper bound of every single wait in these tests.
pub const WAIT: Duration = Duration::from_secs(20);

/// A server running in this process; stopped (and awaited) on `stop` or drop.
pub struct Background {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

/// Resolves when the test stops a server (`stop` or drop).
type Shutdown = Pin<Box<dyn Future<Output = ()> + Send>>;

impl Background {
    /// Binds 127.0.0.1:0 and runs `serve(listener, shutdown)` on a task.
    async fn spawn<F>(serve: impl FnOnce(TcpListener, Shutdown) -> F) -> Background
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let shutdown = Box::pin(async move {
            let _ = rx.await;
        });
        Background {
            addr,
            stop: Some(tx),
            task: Some(tokio::spawn(serve(listener, shutdown))),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Signals shutdown and waits (bounded) for the server to finish.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .expect("server did not shut down within 10 s")
                .expect("server task panicked");
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Requests the target answered, per route.
#[derive(Default)]
pub struct Counts {
    pub items: AtomicU64,
    pub item: AtomicU64,
    pub flaky: AtomicU64,
    pub flaky_failed: AtomicU64,
}

/// The load target: `/items` (a few ms), `/items/{id}`, and `/flaky`, which
/// answers every fourth request with 503 so that the Failures tab has rows.
/// `/status` reports what it served in the balancer admin `/status` format,
/// one "server" per route, from its real counters, so the Upstreams tab can
/// be tested without a balancer process.
pub async fn start_target() -> Background {
    let counts = Arc::new(Counts::default());
    let (c1, c2, c3, c4) = (counts.clone(), counts.clone(), counts.clone(), counts);
    let app = Router::new()
        .route(
            "/items",
            get(move || {
                c1.items.fetch_add(1, Ordering::Relaxed);
                async {
                    tokio::time::sleep(Duration::from_millis(3)).await;
                    axum::Json(serde_json::json!([{"id": 1, "name": "apple"}, {"id": 2, "name": "pear"}]))
                }
            }),
        )
        .route(
            "/items/{id}",
            get(move |axum::extract::Path(id): axum::extract::Path<u64>| {
                c2.item.fetch_add(1, Ordering::Relaxed);
                async move { axum::Json(serde_json::json!({"id": id, "name": "item"})) }
            }),
        )
        .route(
            "/flaky",
            get(move || {
                let n = c3.flaky.fetch_add(1, Ordering::Relaxed);
                let fail = n % 4 == 3;
                if fail {
                    c3.flaky_failed.fetch_add(1, Ordering::Relaxed);
                }
                async move {
                    if fail {
                        (StatusCode::SERVICE_UNAVAILABLE, "try later")
                    } else {
                        (StatusCode::OK, "fine")
                    }
                }
            }),
        )
        .route(
            "/status",
            get(move || {
                let server = |id: u32, addr: &str, n: &AtomicU64, failures: u64| {
                    serde_json::json!({
                        "id": id, "addr": addr, "state": "up", "weight": 1, "active": 0,
                        "requests": n.load(Ordering::Relaxed), "failures": failures, "latency_avg_ms": 1.0
                    })
                };
                let body = serde_json::json!({
                    "algorithm": "round_robin",
                    "upstreams": [{
                        "name": "backend",
                        "queue_depth": 0,
                        "servers": [
                            server(0, "route /items", &c4.items, 0),
                            server(1, "route /items/{id}", &c4.item, 0),
                            server(2, "route /flaky", &c4.flaky, c4.flaky_failed.load(Ordering::Relaxed)),
                        ]
                    }]
                });
                async move { axum::Json(body) }
            }),
        );
    Background::spawn(|listener, shutdown| async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
            .unwrap();
    })
    .await
}

/// Three endpoints with short think times: a few users make tens of requests per second.
pub fn scenario() -> Scenario {
    let user = UserClass {
        wait: WaitTime::Between(0.02, 0.08),
        ..UserClass::new(
            "WebUser",
            vec![
                Task::new("items", 3, vec![RequestSpec::get("/items").unwrap().into()]),
                Task::new(
                    "item",
                    2,
                    vec![RequestSpec::get("/items/1")
                        .unwrap()
                        .name("/items/[id]")
                        .into()],
                ),
                Task::new("flaky", 1, vec![RequestSpec::get("/flaky").unwrap().into()]),
            ],
        )
    };
    Scenario {
        name: "dashboard-test".into(),
        host: None,
        load: LoadDefaults::default(),
        thresholds: Vec::new(),
        users: vec![user],
    }
}

/// An idle controller whose base plan points at `host`, with 4 users started
/// at 3/s for 90 s (what `-u 4 -r 3 -t 90s` gives): the start form's defaults.
pub fn controller(host: &str) -> Controller {
    let mut plan = TestPlan::new(host, scenario());
    plan.users = 4;
    plan.spawn_rate = 3.0;
    plan.run_time = Some(Duration::from_secs(90));
    plan.balancer_status = Some(format!("{}/status", host.trim_end_matches('/')));
    plan.timeout = Duration::from_secs(5);
    plan.stop_timeout = Duration::from_secs(2);
    Controller::new(plan)
}

/// The dashboard on `127.0.0.1:0`, serving `controller`.
pub async fn start_dashboard(controller: Controller) -> Background {
    Background::spawn(|listener, shutdown| async move {
        loadgen::web::serve(listener, controller, shutdown)
            .await
            .unwrap();
    })
    .await
}

/// A response read whole.
pub struct Fetched {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Fetched {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Minimal HTTP/1 client over hyper (no extra dependency), every call bounded.
#[derive(Clone)]
pub struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Default for Http {
    fn default() -> Self {
        Http {
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }
}

impl Http {
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        content_type: Option<&str>,
        body: impl Into<Bytes>,
    ) -> Fetched {
        let mut req = http::Request::builder().method(method).uri(url);
        if let Some(ct) = content_type {
            req = req.header(http::header::CONTENT_TYPE, ct);
        }
        let req = req.body(Full::new(body.into())).unwrap();
        let fut = async {
            let res = self.client.request(req).await.expect("HTTP request failed");
            let (parts, body) = res.into_parts();
            let body = body
                .collect()
                .await
                .expect("reading the body failed")
                .to_bytes();
            Fetched {
                status: parts.status,
                headers: parts.headers,
                body,
            }
        };
        tokio::time::timeout(Duration::from_secs(60), fut)
            .await
            .unwrap_or_else(|_| panic!("HTTP request to {url} timed out"))
    }

    pub async fn get(&self, url: &str) -> Fetched {
        self.send(Method::GET, url, None, Bytes::new()).await
    }

    pub async fn post_json(&self, url: &str, body: &serde_json::Value) -> Fetched {
        self.send(
            Method::POST,
            url,
            Some("application/json"),
            serde_json::to_vec(body).unwrap(),
        )
        .await
    }

    pub async fn delete(&self, url: &str) -> Fetched {
        self.send(Method::DELETE, url, None, Bytes::new()).await
    }
}

/// Polls `check` every 100 ms until it returns `Some`, for at most [`WAIT`].
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {WAIT:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
