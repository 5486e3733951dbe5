//! Test support: small real hyper backends that report their identity, an
//! in-process balancer on an ephemeral port, and a plain HTTP client.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use balancer::config::{Config, ServerConfig};
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};

/// A backend's shared observations.
#[derive(Default)]
pub struct Seen {
    pub hits: AtomicU64,
    pub posts: AtomicU64,
    pub unhealthy: AtomicBool,
    pub delay_ms: AtomicU64,
    pub log: Mutex<Vec<String>>,
}

/// A small real HTTP/1.1 backend.
pub struct Backend {
    pub addr: SocketAddr,
    pub seen: Arc<Seen>,
    task: JoinHandle<()>,
}

async fn handle(
    name: Arc<str>,
    seen: Arc<Seen>,
    mut req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, std::io::Error> {
    let path = req.uri().path().to_string();
    if path != "/healthz" {
        seen.hits.fetch_add(1, SeqCst);
        if req.method() == http::Method::POST {
            seen.posts.fetch_add(1, SeqCst);
        }
        seen.log
            .lock()
            .unwrap()
            .push(req.uri().path_and_query().unwrap().to_string());
    }
    let delay = seen.delay_ms.load(SeqCst);
    if delay > 0 && path != "/healthz" {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let mut status = StatusCode::OK;
    let mut body = name.to_string();
    if path == "/healthz" {
        if seen.unhealthy.load(SeqCst) {
            status = StatusCode::SERVICE_UNAVAILABLE;
        }
    } else if let Some(ms) = path.strip_prefix("/slow/") {
        tokio::time::sleep(Duration::from_millis(ms.parse().unwrap_or(0))).await;
    } else if let Some(code) = path.strip_prefix("/status/") {
        status = StatusCode::from_u16(code.parse().unwrap_or(500)).unwrap();
    } else if path == "/hangup" {
        // Read the request, then drop the connection without answering.
        let _ = req.body_mut().collect().await;
        return Err(std::io::Error::other("hang up"));
    } else if path == "/headers" {
        let mut lines: Vec<String> = req
            .headers()
            .iter()
            .map(|(k, v)| format!("{k}: {}", v.to_str().unwrap_or("?")))
            .collect();
        lines.sort();
        body = lines.join("\n");
    } else if path == "/echo" {
        let b = req
            .into_body()
            .collect()
            .await
            .map_err(std::io::Error::other)?;
        body = String::from_utf8_lossy(&b.to_bytes()).into_owned();
    } else if path == "/count" {
        // Reads the whole body, answers its length: an upload the backend
        // received and executed.
        let b = req
            .into_body()
            .collect()
            .await
            .map_err(std::io::Error::other)?;
        body = b.to_bytes().len().to_string();
    } else if path == "/ws" {
        let on = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            if let Ok(up) = on.await {
                let mut io = TokioIo::new(up);
                let mut buf = [0u8; 1024];
                while let Ok(n) = io.read(&mut buf).await {
                    if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        });
        return Ok(Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header("connection", "upgrade")
            .header("upgrade", "echo")
            .body(Full::new(Bytes::new()))
            .unwrap());
    }
    Ok(Response::builder()
        .status(status)
        .header("x-backend", &*name)
        .body(Full::new(Bytes::from(body)))
        .unwrap())
}

impl Backend {
    /// Starts a backend on an ephemeral port.
    pub async fn start(name: &str) -> Backend {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(name, l)
    }

    /// Starts a backend on a given address (to bring a killed one back).
    pub async fn start_on(name: &str, addr: SocketAddr) -> Backend {
        let l = TcpListener::bind(addr).await.unwrap();
        Self::serve(name, l)
    }

    fn serve(name: &str, l: TcpListener) -> Backend {
        let addr = l.local_addr().unwrap();
        let seen = Arc::new(Seen::default());
        let name_arc: Arc<str> = Arc::from(name);
        let s = seen.clone();
        let task = tokio::spawn(async move {
            // Connections live in this set: aborting the task kills them all.
            let mut conns = JoinSet::new();
            loop {
                let Ok((stream, _)) = l.accept().await else {
                    continue;
                };
                let (name, seen) = (name_arc.clone(), s.clone());
                conns.spawn(async move {
                    let svc = service_fn(move |req| handle(name.clone(), seen.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .with_upgrades()
                        .await;
                });
                while conns.try_join_next().is_some() {}
            }
        });
        Backend { addr, seen, task }
    }

    /// Kills the backend: listener and every open connection.
    pub async fn kill(&self) {
        self.task.abort();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    pub fn hits(&self) -> u64 {
        self.seen.hits.load(SeqCst)
    }

    pub fn server(&self) -> ServerConfig {
        ServerConfig::new(self.addr)
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An in-process balancer on ephemeral ports.
pub struct Bal {
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), balancer::Error>>>,
}

/// A config for `servers` with the admin listener, `X-Upstream` and short
/// timeouts suited to tests.
pub fn config(servers: Vec<ServerConfig>) -> Config {
    let mut c = Config::new("127.0.0.1:0".parse().unwrap(), servers);
    c.upstream_header = true;
    c.proxy.connect_timeout = Duration::from_secs(2);
    c.proxy.read_timeout = Duration::from_secs(5);
    c.shutdown_timeout = Duration::from_secs(3);
    c
}

impl Bal {
    pub async fn start(config: Config) -> Bal {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let a = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (addr, admin) = (l.local_addr().unwrap(), a.local_addr().unwrap());
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(balancer::serve(l, Some(a), config, async move {
            let _ = rx.await;
        }));
        Bal {
            addr,
            admin,
            stop: Some(tx),
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{}", self.admin, path)
    }

    pub async fn status(&self) -> serde_json::Value {
        let r = get(&self.admin_url("/status")).await;
        serde_json::from_str(&r.body).unwrap()
    }

    /// Stops gracefully and waits (bounded).
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(10), t)
                .await
                .expect("balancer stops")
                .unwrap()
                .unwrap();
        }
    }
}

impl Drop for Bal {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: String,
}

impl Resp {
    pub fn backend(&self) -> String {
        self.headers
            .get("x-backend")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    }
}

type Client = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    Full<Bytes>,
>;

fn client() -> &'static Client {
    static C: std::sync::OnceLock<Client> = std::sync::OnceLock::new();
    C.get_or_init(|| {
        hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(0)
            .build_http()
    })
}

pub async fn send(req: Request<Full<Bytes>>) -> Resp {
    let fut = async {
        let r = client().request(req).await.expect("request");
        let (parts, body) = r.into_parts();
        let body = body.collect().await.expect("body").to_bytes();
        Resp {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    };
    tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .expect("request within 10s")
}

pub async fn get(url: &str) -> Resp {
    send(Request::get(url).body(Full::new(Bytes::new())).unwrap()).await
}

pub async fn post(url: &str, body: &str) -> Resp {
    send(
        Request::post(url)
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap(),
    )
    .await
}

/// One read from `s` (within 5 s), as text.
pub async fn read_some(s: &mut TcpStream) -> String {
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .expect("bytes within 5s")
        .unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// Sends raw bytes and reads until the server closes (bounded).
pub async fn raw(addr: SocketAddr, data: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(data).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// What a [`Scripted`] backend does with the next request it reads.
#[derive(Clone, Copy, Debug)]
pub enum Reply {
    /// Writes these bytes (and keeps the connection).
    Send(&'static [u8]),
    /// Closes the connection without a byte: a keep-alive connection the
    /// server gave up on just as the request arrived.
    Close,
}

/// A raw HTTP/1.1 backend that answers requests, on whichever connection
/// they come, with the next step of a script (then `200 ok`), and counts
/// the request heads it read and the connections it accepted.
pub struct Scripted {
    pub addr: SocketAddr,
    pub heads: Arc<AtomicU64>,
    pub conns: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl Scripted {
    pub async fn start(script: Vec<Reply>) -> Scripted {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let heads = Arc::new(AtomicU64::new(0));
        let script = Arc::new(Mutex::new(std::collections::VecDeque::from(script)));
        let conns = Arc::new(AtomicU64::new(0));
        let (h, c) = (heads.clone(), conns.clone());
        let task = tokio::spawn(async move {
            let mut tasks = JoinSet::new();
            loop {
                let Ok((s, _)) = l.accept().await else {
                    continue;
                };
                c.fetch_add(1, SeqCst);
                tasks.spawn(Self::serve(s, script.clone(), h.clone()));
                while tasks.try_join_next().is_some() {}
            }
        });
        Scripted {
            addr,
            heads,
            conns,
            task,
        }
    }

    async fn serve(
        mut s: TcpStream,
        script: Arc<Mutex<std::collections::VecDeque<Reply>>>,
        heads: Arc<AtomicU64>,
    ) {
        let mut buf: Vec<u8> = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let end = loop {
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break i + 4;
                }
                match s.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            };
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let body: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap_or(0));
            while buf.len() < end + body {
                match s.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            buf.drain(..end + body);
            heads.fetch_add(1, SeqCst);
            let step = script.lock().unwrap().pop_front();
            match step {
                Some(Reply::Close) => return,
                Some(Reply::Send(bytes)) => {
                    if s.write_all(bytes).await.is_err() {
                        return;
                    }
                }
                None => {
                    let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                    if s.write_all(ok).await.is_err() {
                        return;
                    }
                }
            }
        }
    }

    pub fn heads(&self) -> u64 {
        self.heads.load(SeqCst)
    }

    /// Connections accepted so far.
    pub fn conns(&self) -> u64 {
        self.conns.load(SeqCst)
    }

    pub fn server(&self) -> ServerConfig {
        ServerConfig::new(self.addr)
    }
}

impl Drop for Scripted {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The status code of the first response in `raw` ("" if none).
pub fn status_of(raw: &str) -> &str {
    raw.strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .unwrap_or("")
}
