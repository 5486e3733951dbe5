//! Shared pieces of the dashboard tests: a real HTTP target to load, the
//! dashboard itself on a real socket, and a tiny HTTP client.

#![allow(dead_code)] // each test binary uses a different subset

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use loadgen::control::Controller;
use loadgen::plan::TestPlan;
use loadgen::scenario::{LoadDefaults, RequestSpec, Scenario, Task, UserClass, WaitTime};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Upper bound of every single wait in these tests.
pub const WAIT: Duration = Duration::from_secs(20);

/// A server running in this process; stopped (and awaited) on `stop` or drop.
pub struct Server {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

/// Resolves when the test stops a server (`stop` or drop).
type Shutdown = Pin<Box<dyn Future<Output = ()> + Send>>;

impl Server {
    /// Binds 127.0.0.1:0 and runs `serve(listener, shutdown)` on a task.
    async fn spawn<F>(serve: impl FnOnce(TcpListener, Shutdown) -> F) -> Server
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let shutdown = Box::pin(async move {
            let _ = rx.await;
        });
        Server {
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
pub async fn start_target() -> Server {
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
    Server::spawn(|listener, shutdown| async move {
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
pub async fn start_dashboard(controller: Controller) -> Server {
    Server::spawn(|listener, shutdown| async move {
        loadgen::web::serve(listener, controller, shutdown)
            .await
            .unwrap();
    })
    .await
}

/// A response read whole.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
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
    ) -> Reply {
        let mut req = Request::builder().method(method).uri(url);
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
            Reply {
                status: parts.status,
                headers: parts.headers,
                body,
            }
        };
        tokio::time::timeout(Duration::from_secs(60), fut)
            .await
            .unwrap_or_else(|_| panic!("HTTP request to {url} timed out"))
    }

    pub async fn get(&self, url: &str) -> Reply {
        self.send(Method::GET, url, None, Bytes::new()).await
    }

    pub async fn post_json(&self, url: &str, body: &serde_json::Value) -> Reply {
        self.send(
            Method::POST,
            url,
            Some("application/json"),
            serde_json::to_vec(body).unwrap(),
        )
        .await
    }

    pub async fn delete(&self, url: &str) -> Reply {
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
