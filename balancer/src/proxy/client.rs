//! The upstream side: HTTP/1.1 connections driven by the task of the request
//! that uses them, one keepalive pool per server.
//!
//! Why not hyper's client: a hyper connection runs in a task of its own and
//! talks to the request over channels, so each request paid a channel send,
//! a second task wake-up and poll, and a oneshot back; with the whole proxy
//! on one thread that was about 15% of its CPU per request (perf, see
//! docs/balancer.md), and the main reason it trailed nginx. Here the
//! request's own task writes the head (one `write`, usually without waiting)
//! and reads the response into the connection's buffer; a small body that
//! arrives with the head goes to the client at once, and the connection
//! back to the pool, with no further poll. The wire format is in [`super::h1`].
//!
//! The balancer also needs what a generic client hides: whether a failed
//! request was written (an unsent POST may go to the next server), its own
//! connect/send/read timeouts, pools keyed by server, and a pooled
//! connection found closed before the request was written is replaced by a
//! fresh one without counting a failure.

use std::io::{self, Write as _};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Mutex;
use std::task::{ready, Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::{header, request, response, Method, StatusCode, Uri};
use http_body::Body as _;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::forward::{self, ConnInfo};
use super::h1::{self, Chunked, Framing, ResponseHead, SendFraming};
use super::request_body::{self, ReqBody};
use crate::config::ProxyConfig;
use crate::io::{reserve, write_all, ReadTimer, COALESCE};

/// Buffers grown past this are released before a connection is pooled.
const KEEP_BUFFER: usize = 64 * 1024;
/// Largest upstream response head accepted.
const MAX_HEAD: usize = 64 * 1024;

/// One HTTP/1.1 connection to a server.
#[derive(Debug)]
pub struct Conn {
    io: TcpStream,
    /// Bytes read and not yet consumed.
    rbuf: BytesMut,
    /// The request head being written (reused).
    wbuf: Vec<u8>,
    /// The `proxy_read_timeout` timer.
    timer: ReadTimer,
}

impl Conn {
    fn new(io: TcpStream) -> Self {
        Conn {
            io,
            rbuf: BytesMut::new(),
            wbuf: Vec::new(),
            timer: ReadTimer::default(),
        }
    }

    /// Whether an idle connection can take a request. No readiness means
    /// nothing arrived (no system call); otherwise the server closed it,
    /// sent something unasked, or the readiness is stale — a one-byte read
    /// tells which.
    fn is_alive(&self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        match self.io.poll_read_ready(&mut cx) {
            Poll::Pending => true,
            Poll::Ready(Err(_)) => false,
            Poll::Ready(Ok(())) => {
                let mut probe = [0u8; 1];
                matches!(self.io.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
            }
        }
    }

    /// Writes the request: head, then body. `Ok(true)`: all of it;
    /// `Ok(false)`: the server answered before the body was all sent (the
    /// connection is then not reused).
    async fn write_request(
        &mut self,
        req: Outgoing<'_>,
        body: &mut Option<ReqBody>,
        host: &str,
        cfg: &ProxyConfig,
    ) -> Result<bool, Attempt> {
        let parts = req.parts;
        let framing = match body.as_ref() {
            None | Some(ReqBody::Empty) => {
                if parts.headers.contains_key(header::CONTENT_LENGTH)
                    || parts.method == Method::POST
                    || parts.method == Method::PUT
                    || parts.method == Method::PATCH
                {
                    SendFraming::Length(0)
                } else {
                    SendFraming::None
                }
            }
            Some(ReqBody::Full(b)) => SendFraming::Length(b.as_ref().map_or(0, |b| b.len() as u64)),
            Some(stream @ ReqBody::Stream(_)) => match stream.size_hint().exact() {
                Some(n) => SendFraming::Length(n),
                None => SendFraming::Chunked,
            },
        };
        self.wbuf.clear();
        let how = forward::Forwarding {
            upgrade: req.upgrade,
            framing,
            default_host: host,
            forwarded_for: cfg.forwarded_for,
        };
        forward::write_request_head(parts, req.conn, &how, &mut self.wbuf);
        let mut rest: Option<Bytes> = None;
        if let Some(ReqBody::Full(Some(b))) = body.as_ref() {
            if b.len() <= COALESCE {
                self.wbuf.extend_from_slice(b);
            } else {
                rest = Some(b.clone());
            }
        }
        if write_all(&mut self.io, &self.wbuf, cfg.send_timeout)
            .await
            .is_err()
        {
            return Err(Attempt::Unsent(FailKind::Error));
        }
        if let Some(b) = rest {
            write_all(&mut self.io, &b, cfg.send_timeout)
                .await
                .map_err(|e| Attempt::sent(e.kind().into(), true))?;
        }
        if !matches!(body, Some(ReqBody::Stream(_))) {
            return Ok(true);
        }
        let Some(stream) = body.take() else {
            return Ok(true);
        };
        // Boxed: a streamed body is the cold path; its state stays out of
        // every request's future.
        Box::pin(self.stream_body(stream, framing == SendFraming::Chunked, cfg.send_timeout)).await
    }

    /// Streams the client's body, watching for an early response (a server
    /// may answer, say, 413 before reading it all). Interim responses are
    /// dropped meanwhile (the client got its own `100 Continue` from us).
    async fn stream_body(
        &mut self,
        mut body: ReqBody,
        chunked: bool,
        timeout: Duration,
    ) -> Result<bool, Attempt> {
        let Conn { io, rbuf, wbuf, .. } = self;
        let (mut rd, mut wr) = io.split();
        let send = async {
            while let Some(frame) =
                std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await
            {
                let frame = frame.map_err(|e| Attempt::sent(client_body_failure(&e), false))?;
                let Ok(data) = frame.into_data() else {
                    continue; // trailers are not forwarded
                };
                if data.is_empty() {
                    continue;
                }
                let bytes: &[u8] = if chunked {
                    wbuf.clear();
                    h1::write_chunk(&data, wbuf);
                    wbuf
                } else {
                    &data
                };
                write_all(&mut wr, bytes, timeout)
                    .await
                    .map_err(|e| Attempt::sent(e.kind().into(), true))?;
            }
            if chunked {
                write_all(&mut wr, h1::LAST_CHUNK, timeout)
                    .await
                    .map_err(|e| Attempt::sent(e.kind().into(), true))?;
            }
            Ok(true)
        };
        let mut send = std::pin::pin!(send);
        loop {
            tokio::select! {
                biased;
                r = &mut send => return r,
                r = rd.read_buf(rbuf) => match r {
                    // `100 Continue` (an upstream may send it unasked) or
                    // another interim response: keep sending.
                    Ok(n) if n > 0 && h1::skip_interim(rbuf) => {}
                    Ok(n) if n > 0 => return Ok(false),
                    _ => return Err(Attempt::sent(FailKind::Error, true)),
                },
            }
        }
    }

    /// Reads until a whole response head is in, within `deadline`.
    async fn read_head(
        &mut self,
        method: &Method,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<ResponseHead, Attempt> {
        loop {
            match h1::parse_response(&mut self.rbuf, method, MAX_HEAD) {
                Ok(Some(head)) => return Ok(head),
                Ok(None) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "invalid upstream response");
                    return Err(Attempt::sent(FailKind::InvalidHeader, false));
                }
            }
            let nothing_yet = self.rbuf.is_empty();
            match self.read_more(deadline).await {
                Ok(0) => return Err(Attempt::sent(FailKind::Error, nothing_yet)),
                Ok(_) => {}
                Err(kind) => return Err(Attempt::sent(kind, nothing_yet)),
            }
        }
    }

    /// One read into `rbuf` (0 = closed by the server).
    async fn read_more(
        &mut self,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<usize, FailKind> {
        self.timer
            .read(&mut self.io, &mut self.rbuf, deadline)
            .await
            .map_err(|e| e.kind().into())
    }

    /// What follows a response head: the body as far as it is here.
    fn into_exchange(mut self, head: ResponseHead, body_sent: bool) -> Exchange {
        let keep_alive = head.keep_alive && body_sent;
        let payload = if head.parts.status == StatusCode::SWITCHING_PROTOCOLS {
            Payload::Upgrade(self)
        } else {
            match head.framing {
                Framing::None => Payload::Complete(None, keep_alive.then_some(self)),
                Framing::Length(n) if self.rbuf.len() as u64 >= n => {
                    // The common case for small responses: no further poll.
                    let body = (n > 0).then(|| self.rbuf.split_to(n as usize).freeze());
                    Payload::Complete(body, keep_alive.then_some(self))
                }
                Framing::Length(n) => {
                    Payload::Stream(BodyReader::new(self, Decoding::Length(n), keep_alive))
                }
                Framing::Chunked => Payload::Stream(BodyReader::new(
                    self,
                    Decoding::Chunked(Chunked::Size),
                    keep_alive,
                )),
                Framing::UntilClose => {
                    Payload::Stream(BodyReader::new(self, Decoding::UntilClose, false))
                }
            }
        };
        Exchange {
            head: head.parts,
            payload,
        }
    }

    /// Carries a `101 Switching Protocols` tunnel: whatever the server sent
    /// after the head first, then bytes both ways until either side closes.
    pub async fn tunnel<C: AsyncRead + AsyncWrite + Unpin>(mut self, client: &mut C) {
        if !self.rbuf.is_empty() && client.write_all(&self.rbuf).await.is_err() {
            return;
        }
        let _ = tokio::io::copy_bidirectional(client, &mut self.io).await;
    }

    /// A health probe: `GET uri` with `Connection: close`; the status.
    pub async fn probe(mut self, uri: &str, host: &str) -> Option<StatusCode> {
        let uri: Uri = uri.parse().ok()?;
        let target = uri.path_and_query().map_or("/", |pq| pq.as_str());
        let _ = write!(
            self.wbuf,
            "GET {target} HTTP/1.1\r\nhost: {host}\r\nuser-agent: balancer-health-check\r\nconnection: close\r\n\r\n"
        );
        self.io.write_all(&self.wbuf).await.ok()?;
        let head = self.read_head(&Method::GET, None).await.ok()?;
        Some(head.parts.status)
    }

    /// Releases buffers grown by an unusually large exchange.
    fn trim(&mut self) {
        if self.wbuf.capacity() > KEEP_BUFFER {
            self.wbuf = Vec::new();
        }
        if self.rbuf.capacity() > KEEP_BUFFER {
            self.rbuf = BytesMut::new();
        }
    }
}

/// Idle keepalive connections to one server. The `std::sync::Mutex` is held
/// only for a push or pop (no `.await`); each server has its own.
#[derive(Debug)]
pub struct Pool {
    idle: Mutex<Vec<Conn>>,
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

    /// Returns a connection whose response was fully read.
    pub fn put(&self, mut conn: Conn) {
        if !conn.rbuf.is_empty() {
            return; // bytes nobody asked for: not trusted with another request
        }
        conn.trim();
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < self.max_idle.load(Relaxed) {
            idle.push(conn);
        }
    }

    /// A live idle connection, if any (closed ones are dropped on the way).
    fn take(&self) -> Option<Conn> {
        loop {
            let conn = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop()?;
            if conn.is_alive() {
                return Some(conn);
            }
        }
    }

    /// Idle connections now.
    pub fn idle(&self) -> usize {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// How an attempt failed, in `proxy_next_upstream`'s terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailKind {
    /// Connection refused/reset, or broken mid-request.
    Error,
    /// Connect, send or read timeout.
    Timeout,
    /// The upstream's response head was not valid HTTP.
    InvalidHeader,
    /// The client's body broke the request (413, 408 or 400); not the
    /// server's fault.
    ClientBody(StatusCode),
}

impl From<io::ErrorKind> for FailKind {
    fn from(kind: io::ErrorKind) -> Self {
        if kind == io::ErrorKind::TimedOut {
            FailKind::Timeout
        } else {
            FailKind::Error
        }
    }
}

fn client_body_failure(e: &request_body::BoxError) -> FailKind {
    FailKind::ClientBody(request_body::client_status(e))
}

/// A failed attempt on one connection.
enum Attempt {
    /// Nothing reached the server.
    Unsent(FailKind),
    /// The request (or part of it) was written.
    Sent {
        kind: FailKind,
        /// No byte of a response arrived.
        nothing_back: bool,
    },
}

impl Attempt {
    fn sent(kind: FailKind, nothing_back: bool) -> Self {
        Attempt::Sent { kind, nothing_back }
    }
}

/// A failed request.
#[derive(Debug)]
pub struct SendError {
    /// What went wrong.
    pub kind: FailKind,
    /// Whether the request may have reached the server.
    pub sent: bool,
    /// The body, when the request was not sent (so it can go elsewhere).
    pub body: Option<ReqBody>,
    /// A reused keepalive connection closed under the request: the server
    /// is not to blame (not counted towards `max_fails`).
    pub stale: bool,
}

/// A response head and what follows it.
#[derive(Debug)]
pub struct Exchange {
    /// Status, version, headers as the server sent them.
    pub head: response::Parts,
    /// The body, or the tunnel.
    pub payload: Payload,
}

/// What follows a response head.
#[derive(Debug)]
pub enum Payload {
    /// The whole body came with the head; the connection is free again
    /// (`Some` when it may be pooled).
    Complete(Option<Bytes>, Option<Conn>),
    /// The rest of the body is read as the client takes it.
    Stream(BodyReader),
    /// `101 Switching Protocols`: the connection now carries a tunnel.
    Upgrade(Conn),
}

/// Opens a connection to `addr` within `timeout` (zero: no limit).
pub async fn connect(addr: SocketAddr, timeout: Duration) -> Result<Conn, FailKind> {
    let connecting = TcpStream::connect(addr);
    let tcp = if timeout.is_zero() {
        connecting.await
    } else {
        match tokio::time::timeout(timeout, connecting).await {
            Ok(r) => r,
            Err(_) => return Err(FailKind::Timeout),
        }
    };
    let tcp = tcp.map_err(|_| FailKind::Error)?;
    let _ = tcp.set_nodelay(true);
    Ok(Conn::new(tcp))
}

/// A request on its way upstream: the client's head as it arrived (the
/// forwarding rewrite happens as it is written, see
/// [`forward::write_request_head`], so a retry needs no copy of it).
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    /// The client's request head.
    pub parts: &'a request::Parts,
    /// The client connection (for `X-Forwarded-For`, `X-Real-IP`).
    pub conn: &'a ConnInfo,
    /// A WebSocket-style upgrade (keeps `Upgrade`, sends `Connection: upgrade`).
    pub upgrade: bool,
    /// May be sent again on a fresh connection when a pooled one fails
    /// under it with no response byte (`proxy_next_upstream error`, and an
    /// idempotent method or `non_idempotent`): nginx gives such an attempt
    /// its try back. A streamed body is never resent (it is gone).
    pub replay: bool,
}

/// Where a request goes: one server's address, name and idle pool (the
/// parts of an upstream peer this layer needs, so it does not depend on the
/// upstream layer above it).
#[derive(Debug, Clone, Copy)]
pub struct Server<'a> {
    /// Where it listens.
    pub addr: SocketAddr,
    /// `ip:port`, the `Host` sent when the client gave none.
    pub name: &'a str,
    /// Its idle keepalive connections.
    pub pool: &'a Pool,
}

/// Sends `req` with `body` to `server` on a pooled or new connection and
/// reads the response head within `proxy_read_timeout`. As nginx, that
/// timeout runs from when the request has been sent: from `start` when it
/// went out at once (a head and a small body: no clock read), from the end
/// of the upload otherwise, so a slow upload the server received whole is
/// not reported as a timeout.
pub async fn send(
    server: Server<'_>,
    req: Outgoing<'_>,
    body: ReqBody,
    cfg: &ProxyConfig,
    start: Instant,
) -> Result<Exchange, SendError> {
    let slow_upload = match &body {
        ReqBody::Stream(_) => true,
        ReqBody::Full(Some(b)) => b.len() > COALESCE,
        _ => false,
    };
    let mut body = Some(body);
    let mut pooled = server.pool.take();
    loop {
        let reused = pooled.is_some();
        let mut conn = match pooled.take() {
            Some(c) => c,
            // Boxed: connecting is the cold path, and its state would
            // otherwise be part of every request's future.
            None => match Box::pin(connect(server.addr, cfg.connect_timeout)).await {
                Ok(c) => c,
                Err(kind) => return Err(unsent(kind, body)),
            },
        };
        let outcome = match conn.write_request(req, &mut body, server.name, cfg).await {
            Ok(body_sent) => {
                let sent_at = if slow_upload {
                    tokio::time::Instant::now()
                } else {
                    tokio::time::Instant::from_std(start)
                };
                let deadline = (!cfg.read_timeout.is_zero()).then(|| sent_at + cfg.read_timeout);
                match conn.read_head(&req.parts.method, deadline).await {
                    Ok(head) => return Ok(conn.into_exchange(head, body_sent)),
                    Err(e) => e,
                }
            }
            Err(e) => e,
        };
        match outcome {
            // A keepalive connection the server had closed: a fresh one.
            Attempt::Unsent(_) if reused => continue,
            // Closed as the request arrived (EOF or reset, no response
            // byte): nginx's `u->peer.cached` rule gives the try back, for
            // a request that may be resent and whose body is still here.
            Attempt::Sent {
                kind: FailKind::Error,
                nothing_back: true,
            } if reused
                && req.replay
                && matches!(body, Some(ReqBody::Empty | ReqBody::Full(_))) =>
            {
                continue
            }
            Attempt::Unsent(kind) => return Err(unsent(kind, body)),
            Attempt::Sent { kind, nothing_back } => {
                return Err(SendError {
                    kind,
                    sent: true,
                    body: None,
                    stale: reused && nothing_back && kind == FailKind::Error,
                })
            }
        }
    }
}

fn unsent(kind: FailKind, body: Option<ReqBody>) -> SendError {
    SendError {
        kind,
        sent: false,
        body,
        stale: false,
    }
}

/// How the rest of a response body is delimited.
#[derive(Debug)]
enum Decoding {
    /// Bytes left.
    Length(u64),
    Chunked(Chunked),
    UntilClose,
    /// The server closed the connection: the end of an until-close body.
    Closed,
}

/// Reads the rest of a response body from its connection.
#[derive(Debug)]
pub struct BodyReader {
    conn: Conn,
    decoding: Decoding,
    keep_alive: bool,
}

impl BodyReader {
    fn new(conn: Conn, decoding: Decoding, keep_alive: bool) -> Self {
        BodyReader {
            conn,
            decoding,
            keep_alive,
        }
    }

    /// The next piece of the body; `Ok(None)` at its end.
    pub fn poll_data(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Option<Bytes>>> {
        loop {
            let rbuf = &mut self.conn.rbuf;
            match &mut self.decoding {
                Decoding::Length(0) | Decoding::Closed => return Poll::Ready(Ok(None)),
                Decoding::Length(left) => {
                    if !rbuf.is_empty() {
                        let n = (rbuf.len() as u64).min(*left);
                        *left -= n;
                        return Poll::Ready(Ok(Some(rbuf.split_to(n as usize).freeze())));
                    }
                }
                Decoding::Chunked(c) => match c.decode(rbuf) {
                    Ok(Some(data)) => return Poll::Ready(Ok(Some(data))),
                    Ok(None) if *c == Chunked::Done => return Poll::Ready(Ok(None)),
                    Ok(None) => {}
                    Err(e) => {
                        return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, e)))
                    }
                },
                Decoding::UntilClose => {
                    if !rbuf.is_empty() {
                        return Poll::Ready(Ok(Some(rbuf.split().freeze())));
                    }
                }
            }
            reserve(rbuf);
            let n = ready!(tokio_util::io::poll_read_buf(
                Pin::new(&mut self.conn.io),
                cx,
                rbuf
            ))?;
            if n == 0 {
                if matches!(self.decoding, Decoding::UntilClose) {
                    self.decoding = Decoding::Closed;
                    continue;
                }
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "upstream closed the connection mid-body",
                )));
            }
        }
    }

    /// Whether the whole body has been read.
    pub fn is_done(&self) -> bool {
        matches!(
            self.decoding,
            Decoding::Length(0) | Decoding::Closed | Decoding::Chunked(Chunked::Done)
        )
    }

    /// Bytes left, when known.
    pub fn remaining(&self) -> Option<u64> {
        match self.decoding {
            Decoding::Length(n) => Some(n),
            Decoding::Closed | Decoding::Chunked(Chunked::Done) => Some(0),
            _ => None,
        }
    }

    /// The connection, if it may carry another request.
    pub fn into_conn(self) -> Option<Conn> {
        (self.is_done() && self.keep_alive).then_some(self.conn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// A server that answers each request read with the next canned reply,
    /// then closes the connection.
    async fn canned(replies: Vec<&'static [u8]>) -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = vec![0u8; 65536];
            for r in replies {
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = s.read(&mut buf).await.unwrap();
                    if n == 0 {
                        return;
                    }
                    got.extend_from_slice(&buf[..n]);
                }
                s.write_all(r).await.unwrap();
            }
        });
        addr
    }

    async fn exchange(conn: &mut Option<Conn>, addr: SocketAddr, method: Method) -> Exchange {
        let mut c = match conn.take() {
            Some(c) => c,
            None => connect(addr, Duration::from_secs(5)).await.unwrap(),
        };
        let (parts, ()) = http::Request::builder()
            .method(method)
            .uri("/")
            .body(())
            .unwrap()
            .into_parts();
        let client = ConnInfo::new("127.0.0.1:1".parse().unwrap());
        let req = Outgoing {
            parts: &parts,
            conn: &client,
            upgrade: false,
            replay: false,
        };
        let mut body = Some(ReqBody::Empty);
        let cfg = ProxyConfig::default();
        let sent = c
            .write_request(req, &mut body, "up", &cfg)
            .await
            .ok()
            .unwrap();
        let head = c.read_head(&parts.method, None).await.ok().unwrap();
        c.into_exchange(head, sent)
    }

    async fn drain(mut r: BodyReader) -> (Vec<u8>, Option<Conn>) {
        let mut out = Vec::new();
        while let Some(d) = std::future::poll_fn(|cx| r.poll_data(cx)).await.unwrap() {
            out.extend_from_slice(&d);
        }
        (out, r.into_conn())
    }

    #[tokio::test]
    async fn small_body_completes_with_the_head_and_chunked_streams() {
        let addr = canned(vec![
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
            b"HTTP/1.1 204 No Content\r\n\r\n",
        ])
        .await;
        let mut conn = None;
        let x = exchange(&mut conn, addr, Method::GET).await;
        let Payload::Complete(Some(body), Some(c)) = x.payload else {
            panic!("expected a complete body and a reusable connection");
        };
        assert_eq!(&body[..], b"ok\n");
        conn = Some(c);
        let x = exchange(&mut conn, addr, Method::GET).await;
        let Payload::Stream(r) = x.payload else {
            panic!("expected a stream");
        };
        let (body, c) = drain(r).await;
        assert_eq!(body, b"abcde");
        conn = Some(c.expect("chunked body fully read: reusable"));
        let x = exchange(&mut conn, addr, Method::GET).await;
        assert_eq!(x.head.status, 204);
        assert!(matches!(x.payload, Payload::Complete(None, Some(_))));
    }

    #[tokio::test]
    async fn until_close_body_and_connection_close() {
        let addr = canned(vec![b"HTTP/1.0 200 OK\r\n\r\nall of it"]).await;
        let mut conn = None;
        let x = exchange(&mut conn, addr, Method::GET).await;
        let Payload::Stream(r) = x.payload else {
            panic!("expected a stream");
        };
        let (body, c) = drain(r).await;
        assert_eq!(body, b"all of it");
        assert!(c.is_none(), "an until-close body ends the connection");
    }

    #[tokio::test]
    async fn closed_idle_connection_is_not_handed_out() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let pool = Pool::new(4);
        let conn = connect(addr, Duration::from_secs(5)).await.unwrap();
        let (server_side, _) = l.accept().await.unwrap();
        pool.put(conn);
        assert_eq!(pool.idle(), 1);
        drop(server_side);
        // Give the event loop a moment to see the FIN.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(pool.take().is_none());
        assert_eq!(pool.idle(), 0);
        // A live one is handed out.
        let conn = connect(addr, Duration::from_secs(5)).await.unwrap();
        let (_server_side, _) = l.accept().await.unwrap();
        pool.put(conn);
        assert!(pool.take().is_some());
    }
}
