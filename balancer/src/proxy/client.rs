//! The upstream side: HTTP/1.1 connections on hyper's low-level client, one
//! keepalive pool per server.
//!
//! We do not use hyper-util's pooled `Client`: the balancer must know whether
//! a failed request was already written (`try_send_request` hands back an
//! unsent request, which may then go to the next server even if it is a
//! POST), apply its own connect timeout, and key pools by server, not by
//! URI authority. A pooled connection that turns out to be closed before the
//! request was written is replaced by a fresh one without counting a failure.
//!
//! Each upstream connection runs on its own task. Driving it inline from the
//! request's task (no channel hop) was tried twice and measured slower (about
//! 8%, then about 5% more CPU per request on the `current_thread` runtime,
//! with `wrk -c32`; see docs/balancer.md): hyper's dispatcher then runs on
//! every poll of the request and of the streaming body.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::body::{BodyError, ReqBody};
use crate::config::ProxyConfig;
use crate::upstream::Peer;

/// A connection's request handle.
pub type Sender = http1::SendRequest<ReqBody>;

/// Idle keepalive connections to one server. The `std::sync::Mutex` is held
/// only for a push or pop (no `.await`); each server has its own.
#[derive(Debug)]
pub struct Pool {
    idle: Mutex<Vec<Sender>>,
    max_idle: AtomicUsize,
}

impl Pool {
    /// An empty pool keeping at most `max_idle` connections.
    pub fn new(max_idle: usize) -> Self {
        Pool {
            idle: Mutex::new(Vec::new()),
            max_idle: AtomicUsize::new(max_idle),
        }
    }

    /// Changes the limit (reload).
    pub fn set_max_idle(&self, n: usize) {
        self.max_idle.store(n, Relaxed);
    }

    /// Returns a connection after its response was fully read.
    pub fn put(&self, s: Sender) {
        if s.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < self.max_idle.load(Relaxed) {
            idle.push(s);
        }
    }

    fn take(&self) -> Option<Sender> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop()
    }

    /// Idle connections now.
    pub fn idle(&self) -> usize {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// A live pooled connection ready for a request, if any. The common
    /// case (an idle connection that is ready) takes no `.await`, so the
    /// request's future carries no timer state for it; only a connection
    /// returned a moment ago, whose task has not yet noticed, is waited for
    /// (at most `wait`, on a boxed future: the cold path).
    async fn checkout(&self, wait: Duration) -> Option<Sender> {
        while let Some(s) = self.take() {
            if s.is_ready() {
                return Some(s);
            }
            if s.is_closed() {
                continue;
            }
            if let Some(s) = Box::pin(Self::settle(s, wait)).await {
                return Some(s);
            }
        }
        None
    }

    async fn settle(mut s: Sender, wait: Duration) -> Option<Sender> {
        match tokio::time::timeout(wait, s.ready()).await {
            Ok(Ok(())) => Some(s),
            _ => None,
        }
    }
}

/// How an attempt failed, in `proxy_next_upstream`'s terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailKind {
    /// Connection refused/reset, or broken mid-request.
    Error,
    /// Connect or read timeout.
    Timeout,
    /// The upstream's response head was not valid HTTP.
    InvalidHeader,
    /// The client's body broke the request (413 or 408); not the server's fault.
    ClientBody(http::StatusCode),
}

/// A failed attempt.
#[derive(Debug)]
pub struct SendError {
    /// What went wrong.
    pub kind: FailKind,
    /// Whether the request may have reached the server.
    pub sent: bool,
    /// The request, when it was not sent (so it can go elsewhere).
    pub request: Option<Request<ReqBody>>,
    /// A reused keepalive connection closed under the request: the server
    /// is not to blame (not counted towards `max_fails`).
    pub stale: bool,
}

/// Opens a connection to `addr`.
pub async fn connect(addr: SocketAddr, timeout: Duration) -> Result<Sender, FailKind> {
    let tcp = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Err(_) => return Err(FailKind::Timeout),
        Ok(Err(_)) => return Err(FailKind::Error),
        Ok(Ok(s)) => s,
    };
    let _ = tcp.set_nodelay(true);
    let (sender, conn) = http1::Builder::new()
        .handshake(TokioIo::new(tcp))
        .await
        .map_err(|_| FailKind::Error)?;
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!(%addr, error = %e, "upstream connection closed");
        }
    });
    Ok(sender)
}

fn classify(e: &hyper::Error) -> FailKind {
    let mut src: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = src {
        if let Some(b) = s.downcast_ref::<BodyError>() {
            return match b {
                BodyError::TooLarge => FailKind::ClientBody(http::StatusCode::PAYLOAD_TOO_LARGE),
                BodyError::ClientTimeout => FailKind::ClientBody(http::StatusCode::REQUEST_TIMEOUT),
                BodyError::UpstreamTimeout => FailKind::Timeout,
            };
        }
        src = s.source();
    }
    if e.is_parse() {
        FailKind::InvalidHeader
    } else if e.is_timeout() {
        FailKind::Timeout
    } else {
        FailKind::Error
    }
}

/// Sends `req` to `peer` on a pooled or new connection and waits for the
/// response head (at most `proxy_read_timeout`).
pub async fn send(
    peer: &Peer,
    mut req: Request<ReqBody>,
    cfg: &ProxyConfig,
) -> Result<(Response<Incoming>, Sender), SendError> {
    // A pooled connection becomes ready as soon as its task has seen the end
    // of the previous response; one that takes longer is dropped.
    let mut pooled = peer
        .pool
        .checkout(cfg.connect_timeout.min(Duration::from_secs(1)))
        .await;
    loop {
        let reused = pooled.is_some();
        let mut sender = match pooled.take() {
            Some(s) => s,
            // Boxed: connecting is the cold path, and its (large) state
            // would otherwise be part of every request's future.
            None => match Box::pin(connect(peer.addr, cfg.connect_timeout)).await {
                Ok(s) => s,
                Err(kind) => {
                    return Err(SendError {
                        kind,
                        sent: false,
                        request: Some(req),
                        stale: false,
                    })
                }
            },
        };
        let fut = sender.try_send_request(req);
        match tokio::time::timeout(cfg.read_timeout, fut).await {
            Err(_) => {
                return Err(SendError {
                    kind: FailKind::Timeout,
                    sent: true,
                    request: None,
                    stale: false,
                })
            }
            Ok(Ok(resp)) => return Ok((resp, sender)),
            Ok(Err(mut e)) => match e.take_message() {
                Some(r) if reused => {
                    // A stale keepalive connection: try a fresh one.
                    req = r;
                    continue;
                }
                Some(r) => {
                    return Err(SendError {
                        kind: classify(e.error()),
                        sent: false,
                        request: Some(r),
                        stale: false,
                    })
                }
                None => {
                    return Err(SendError {
                        kind: classify(e.error()),
                        sent: true,
                        request: None,
                        stale: reused && e.error().is_incomplete_message(),
                    })
                }
            },
        }
    }
}
