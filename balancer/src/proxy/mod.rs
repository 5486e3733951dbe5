//! The proxy: carries one request through its whole life. Both front ends
//! call [`handle`] (the balancer's HTTP/1.1 loop directly, hyper through the
//! per-connection tower `Service` [`Proxy`]); reading `proxy` top to bottom
//! tells that life, one named phase per step, in this order (and the order
//! matters), as pingora's per-phase proxy hooks:
//!
//! 1. load the current configuration generation (a reload mid-request does
//!    not affect it);
//! 2. `admit`: refuse what nginx refuses ([`screen`]: `CONNECT`, a bad
//!    `Host`, lenient framing, a path above the root) and a body over
//!    `client_max_body_size` (413) — the front ends answer 400 to malformed
//!    heads, 431 to oversized ones, and cut off slow headers;
//! 3. `take_body`: buffer a small body (so a retry can resend it) or stream
//!    it;
//! 4. [`Attempts::choose`]: get a server from the upstream (method,
//!    `max_conns`, backup, queue);
//! 5. [`Attempts::attempt`]: send (`client`), the forwarding headers applied
//!    as the head is written (`forward`); on failure go to the next server
//!    while `proxy_next_upstream` and the budget allow (`retry`);
//! 6. `relay` the response, streaming, with `X-Upstream`; the server's slot
//!    and connection are released when its last byte has passed (`body`).
//!
//! It is one path with the steps as functions rather than a stack of
//! layers, so the hot path costs no boxed future per request (one on the
//! hyper front end); each step lives in its own module or function, and
//! what the attempts share is one context struct ([`Attempts`]).

pub mod body;
pub mod client;
pub mod forward;
pub mod h1;
pub mod request_body;
pub mod retry;
pub mod screen;

use std::convert::Infallible;
use std::future::Future;
use std::io::Write as _;
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body::Body as _;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use crate::algorithms::SelectCtx;
use crate::config::{Algorithm, KeyPart, LeastTimeMode, ProxyConfig};
use crate::state::{Generation, State};
use crate::upstream::{rejection_status, PeerGuard, Unavailable};
use body::{Finish, RespBody, UpstreamBody};
use client::{Exchange, FailKind, Payload};
use forward::ConnInfo;
use request_body::ReqBody;

/// The per-connection proxy service.
#[derive(Debug, Clone)]
pub struct Proxy {
    state: Arc<State>,
    conn: Arc<ConnInfo>,
}

impl Proxy {
    /// A service for one client connection.
    pub fn new(state: Arc<State>, conn: ConnInfo) -> Self {
        Proxy {
            state,
            conn: Arc::new(conn),
        }
    }
}

/// A request body as the client sends it.
#[derive(Debug)]
pub enum ClientBody {
    /// Already read whole (the HTTP/1.1 fast path reads small bodies with
    /// the head); `None` when empty.
    Buffered(Option<Bytes>),
    /// Streamed by hyper.
    Streaming(Incoming),
}

/// Carries one request through the proxy (both front ends call this).
pub async fn handle(
    state: &State,
    conn: &ConnInfo,
    req: Request<ClientBody>,
) -> Response<RespBody> {
    state.stats.requests.fetch_add(1, Relaxed);
    let generation = state.current();
    let resp = proxy(&generation, conn, req).await;
    let class = (resp.status().as_u16() / 100).clamp(1, 5) as usize - 1;
    state.stats.responses[class].fetch_add(1, Relaxed);
    resp
}

impl tower::Service<Request<Incoming>> for Proxy {
    type Response = Response<RespBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Incoming>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let req = req.map(ClientBody::Streaming);
            Ok(handle(&this.state, &this.conn, req).await)
        })
    }
}

/// A response the balancer produces itself.
pub fn local_response(status: StatusCode, retry_after: Option<u32>) -> Response<RespBody> {
    let text = format!(
        "{} {}\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    let mut r = Response::new(RespBody::Full(Some(Bytes::from(text))));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if let Some(s) = retry_after {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(s));
    }
    r
}

/// The request body while attempts are made.
enum Pending {
    /// Empty or buffered: can be sent any number of times.
    Replayable(Option<Bytes>),
    /// The client's stream, until sent (it comes back if it was not).
    Stream(Option<ReqBody>),
}

impl Pending {
    fn take(&mut self) -> Option<ReqBody> {
        match self {
            Pending::Replayable(None) => Some(ReqBody::Empty),
            Pending::Replayable(Some(b)) => Some(ReqBody::Full(Some(b.clone()))),
            Pending::Stream(s) => s.take(),
        }
    }

    fn replayable(&self) -> bool {
        matches!(self, Pending::Replayable(_))
    }

    fn restore(&mut self, b: ReqBody) {
        if let Pending::Stream(s) = self {
            *s = Some(b);
        }
    }

    fn available(&self) -> bool {
        match self {
            Pending::Replayable(_) => true,
            Pending::Stream(s) => s.is_some(),
        }
    }
}

/// Evaluates the `hash` key template for this request.
fn eval_key(alg: &Algorithm, parts: &http::request::Parts, conn: &ConnInfo, out: &mut Vec<u8>) {
    let Algorithm::Hash { key, .. } = alg else {
        return;
    };
    for p in &key.parts {
        match p {
            KeyPart::Literal(s) => out.extend_from_slice(s.as_bytes()),
            KeyPart::RemoteAddr => {
                let _ = write!(out, "{}", conn.ip);
            }
            KeyPart::RequestUri => out.extend_from_slice(
                parts
                    .uri
                    .path_and_query()
                    .map_or("/", |pq| pq.as_str())
                    .as_bytes(),
            ),
            KeyPart::Uri => out.extend_from_slice(parts.uri.path().as_bytes()),
            KeyPart::Args => out.extend_from_slice(parts.uri.query().unwrap_or("").as_bytes()),
            KeyPart::Host => {
                if let Some(h) = parts.headers.get(header::HOST) {
                    out.extend_from_slice(h.as_bytes());
                } else if let Some(a) = parts.uri.authority() {
                    // HTTP/2 carries the host in :authority.
                    out.extend_from_slice(a.as_str().as_bytes());
                }
            }
            KeyPart::Header(name) => {
                if let Some(h) = parts.headers.get(name) {
                    out.extend_from_slice(h.as_bytes());
                }
            }
        }
    }
}

/// Checks the head (`screen`) and `client_max_body_size`; the request's
/// `Content-Length`, or the answer that refuses it.
fn admit<B>(req: &Request<B>, cfg: &ProxyConfig) -> Result<Option<u64>, StatusCode> {
    let content_length = screen::screen(req)?;
    if content_length.is_some_and(|n| cfg.client_max_body_size != 0 && n > cfg.client_max_body_size)
    {
        return Err(StatusCode::PAYLOAD_TOO_LARGE);
    }
    Ok(content_length)
}

/// Buffers a small body so a retry can resend it, or wraps the client's
/// stream. `client_body_timeout` applies between two reads, as nginx (and
/// the HTTP/1.1 loop) do, not to the whole body.
async fn take_body(
    body: ClientBody,
    content_length: Option<u64>,
    upgrade: bool,
    cfg: &ProxyConfig,
) -> Result<Pending, StatusCode> {
    let body = match body {
        ClientBody::Buffered(b) => return Ok(Pending::Replayable(b)),
        ClientBody::Streaming(body) if body.is_end_stream() => {
            return Ok(Pending::Replayable(None))
        }
        ClientBody::Streaming(body) => {
            ReqBody::stream(body, cfg.client_max_body_size, cfg.client_body_timeout)
        }
    };
    if upgrade || content_length.is_none_or(|n| n > cfg.retry_buffer_size) {
        return Ok(Pending::Stream(Some(body)));
    }
    // Boxed: a body is the less common case for a proxied request; its
    // state stays out of every request's future.
    match Box::pin(body.collect()).await {
        Ok(c) => Ok(Pending::Replayable(Some(c.to_bytes()))),
        Err(e) => Err(request_body::client_status(&e)),
    }
}

/// Carries one request: admit it, take its body, make attempts until one
/// gets a response worth relaying (or none can be made), relay it.
async fn proxy(
    g: &Generation,
    conn: &ConnInfo,
    mut req: Request<ClientBody>,
) -> Response<RespBody> {
    let cfg = &g.config.proxy;
    let content_length = match admit(&req, cfg) {
        Ok(n) => n,
        Err(status) => return local_response(status, None),
    };
    let upgrade = forward::is_upgrade(req.version(), req.headers());
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
    let (parts, body) = req.into_parts();
    let mut key = Vec::new();
    eval_key(&g.upstream.algorithm, &parts, conn, &mut key);
    let pending = match take_body(body, content_length, upgrade, cfg).await {
        Ok(p) => p,
        Err(status) => return local_response(status, None),
    };
    let idempotent = retry::idempotent(&parts.method);
    let nu = &cfg.next_upstream;
    let mut attempts = Attempts {
        g,
        outgoing: client::Outgoing {
            parts: &parts,
            conn,
            upgrade,
            replay: nu.error && (idempotent || nu.non_idempotent) && pending.replayable(),
        },
        select: SelectCtx {
            ip: conn.ip,
            key: &key,
        },
        idempotent,
        pending,
        budget: retry::Budget::new(cfg, g.upstream.peers.len()),
        tried: 0,
        last_failure: None,
        last_byte: g.upstream.algorithm == Algorithm::LeastTime(LeastTimeMode::LastByte),
    };
    loop {
        let guard = match attempts.choose().await {
            Ok(guard) => guard,
            Err(response) => return response,
        };
        match attempts.attempt(guard).await {
            Next::Retry => continue,
            Next::Answer(response) => return response,
            Next::Relay(exchange, finish) => return relay(g, exchange, finish, client_upgrade),
        }
    }
}

/// What one attempt leads to.
enum Next {
    /// Try the next server.
    Retry,
    /// Answer the client with this (a local error).
    Answer(Response<RespBody>),
    /// Relay this response; `Finish` holds the server until its end.
    Relay(Exchange, Finish),
}

/// One request's attempts: what stays the same across them, and what they
/// have used and learnt so far.
struct Attempts<'a> {
    g: &'a Generation,
    outgoing: client::Outgoing<'a>,
    select: SelectCtx<'a>,
    idempotent: bool,
    pending: Pending,
    budget: retry::Budget,
    /// Servers tried (bit i = peer i).
    tried: u128,
    /// The answer if no further server can be had.
    last_failure: Option<StatusCode>,
    /// `least_time last_byte` times the whole response.
    last_byte: bool,
}

impl Attempts<'_> {
    /// Gets a server not tried yet (waiting in the queue if configured).
    async fn choose(&mut self) -> Result<PeerGuard, Response<RespBody>> {
        let upstream = &self.g.upstream;
        // Without a queue, selection never waits: call it directly rather
        // than through the queue's (boxed, cold) async path.
        let acquired = if upstream.queue.is_none() {
            upstream
                .select(&self.select, self.tried)
                .ok_or(Unavailable::NoLive)
        } else {
            Box::pin(upstream.acquire(&self.select, self.tried)).await
        };
        acquired.map_err(|why| match self.last_failure {
            Some(s) => local_response(s, None),
            None => {
                let (s, retry_after) = rejection_status(upstream, why);
                local_response(s, retry_after)
            }
        })
    }

    /// Sends the request to the server `guard` holds and judges the outcome
    /// by `proxy_next_upstream`.
    async fn attempt(&mut self, guard: PeerGuard) -> Next {
        let cfg = &self.g.config.proxy;
        let nu = &cfg.next_upstream;
        self.tried |= 1u128 << guard.idx();
        self.budget.spend();
        let Some(body) = self.pending.take() else {
            return Next::Answer(local_response(StatusCode::BAD_GATEWAY, None));
        };
        let again = self.budget.more() && self.pending.replayable();
        let peer = guard.peer().clone();
        peer.requests.fetch_add(1, Relaxed);
        let start = Instant::now();
        match client::send(peer.server(), self.outgoing, body, cfg, start).await {
            Ok(exchange) => {
                // One clock read for both the failure clock and the latency.
                let end = Instant::now();
                let now = guard.now_at(end);
                let status = exchange.head.status;
                peer.count_status(status.as_u16());
                if again && nu.retries_status(status) && (self.idempotent || nu.non_idempotent) {
                    guard.on_failure(now);
                    self.last_failure = Some(status);
                    return Next::Retry;
                }
                peer.on_success(now);
                let took = end.saturating_duration_since(start);
                peer.observe_header(took, now);
                if !self.last_byte {
                    peer.observe_time(took);
                }
                let finish = Finish {
                    guard,
                    start,
                    last_byte: self.last_byte,
                };
                Next::Relay(exchange, finish)
            }
            Err(e) => self.failed(e, &guard),
        }
    }

    /// Accounts a failed attempt; whether another may follow.
    fn failed(&mut self, mut e: client::SendError, guard: &PeerGuard) -> Next {
        let nu = &self.g.config.proxy.next_upstream;
        if let FailKind::ClientBody(s) = e.kind {
            return Next::Answer(local_response(s, None));
        }
        let peer = guard.peer();
        if !e.stale {
            guard.on_failure(guard.now());
        } else {
            peer.failures.fetch_add(1, Relaxed);
        }
        if let Some(b) = e.body.take() {
            self.pending.restore(b);
        }
        let status = if e.kind == FailKind::Timeout {
            StatusCode::GATEWAY_TIMEOUT
        } else {
            StatusCode::BAD_GATEWAY
        };
        self.last_failure = Some(status);
        tracing::debug!(server = %peer.name, kind = ?e.kind, sent = e.sent, "upstream attempt failed");
        let may_resend = !e.sent || self.idempotent || nu.non_idempotent;
        if retry::covers(nu, e.kind) && may_resend && self.pending.available() && self.budget.more()
        {
            return Next::Retry;
        }
        Next::Answer(local_response(status, None))
    }
}

/// Turns the upstream response into the client's, streaming the body.
fn relay(
    g: &Generation,
    exchange: Exchange,
    finish: Finish,
    client_upgrade: Option<hyper::upgrade::OnUpgrade>,
) -> Response<RespBody> {
    let x_upstream = g
        .config
        .upstream_header
        .then(|| finish.guard.peer().header.clone());
    let Exchange { mut head, payload } = exchange;
    match payload {
        Payload::Complete(body, conn) => {
            forward::prepare_response(&mut head, false, x_upstream.as_ref());
            finish.complete(conn);
            Response::from_parts(head, RespBody::Full(body))
        }
        Payload::Stream(reader) => {
            forward::prepare_response(&mut head, false, x_upstream.as_ref());
            let body = UpstreamBody::new(reader, finish, g.config.proxy.read_timeout);
            Response::from_parts(head, RespBody::Upstream(body))
        }
        Payload::Upgrade(conn) => {
            let Some(client_side) = client_upgrade else {
                // The server switched protocols the client never asked for.
                return local_response(StatusCode::BAD_GATEWAY, None);
            };
            forward::prepare_response(&mut head, true, x_upstream.as_ref());
            tokio::spawn(async move {
                // The slot stays taken while the tunnel lives.
                let _hold = finish;
                if let Ok(c) = client_side.await {
                    conn.tunnel(&mut TokioIo::new(c)).await;
                }
            });
            Response::from_parts(head, RespBody::empty())
        }
    }
}
