//! Shared pieces of the end-to-end tests: a recording HTTP server on a real
//! socket whose answers (status, body, delay) a closure decides, a bounded
//! library run, and the real `loadgen` binary run as a process.

#![allow(dead_code)] // not every topic uses every helper

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::Router;
use bytes::Bytes;
use loadgen::{RunReport, TestPlan};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;

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
