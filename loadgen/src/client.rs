//! The per-user HTTP/1.1 client: one keep-alive connection and a cookie jar.
//!
//! Each simulated user owns a `UserClient`, like a browser session: a single
//! TCP connection, reopened when the server closes it, and the cookies the
//! server set. A request either yields a response (any status) or a
//! `Failure` of kind `connect`, `timeout` or `io`; the caller decides what a
//! status means. A request is never sent twice: an idle connection the
//! server closed is noticed (and replaced) before writing, and a request
//! whose connection breaks after it was written is an `io` failure.
//!
//! Why not hyper's client: a hyper HTTP/1 connection runs in its own task and
//! talks to the caller over channels, so every request costs two task wakeups
//! and several allocations, and the connection task's buffers cost 8 KiB or
//! more per user. This is the load generator's hot path, so the client is a
//! small HTTP/1.1 implementation driven inline by the user's own task: the
//! request is written from one reused buffer (usually one `write`), the
//! response read into another and parsed in place; a response whose body is
//! not wanted is only counted. Nothing is allocated per request on this path
//! (the body, when asked for, is handed out without a copy). Framing follows
//! RFC 9112: `Content-Length`, `chunked`, read-until-close, no body for
//! `HEAD`/1xx/204/304; interim 1xx responses are skipped.
//!
//! The per-request timeout is one timer per user, armed lazily: it is moved
//! forward only when it fires before the current request's deadline, so a
//! fast request registers no timer at all.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use http::header::{CONTENT_LENGTH, COOKIE, HOST, TRANSFER_ENCODING};
use http::{HeaderName, HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use crate::stats::{Failure, FailureKind};

/// Largest response head accepted (status line and headers).
const MAX_HEAD: usize = 64 * 1024;
/// Read buffer reserved before a read (it grows for large responses).
const READ_CHUNK: usize = 2048;
/// Buffers larger than this are released after the request, so one big
/// response does not pin memory in every user for the rest of the run.
const KEEP_BUFFER: usize = 64 * 1024;

/// Where users connect: resolved once per run.
#[derive(Debug)]
pub struct Endpoint {
    /// `host:port` as written (for the `Host` header).
    pub host_header: HeaderValue,
    /// The addresses `host:port` resolved to (empty when resolution failed).
    pub addrs: Vec<SocketAddr>,
    /// Why resolution failed, if it did.
    pub resolve_error: Option<String>,
}

impl Endpoint {
    /// Resolves `authority` (`host:port`).
    pub async fn resolve(authority: &str) -> Endpoint {
        let host_header = HeaderValue::from_str(authority)
            .unwrap_or_else(|_| HeaderValue::from_static("localhost"));
        match tokio::net::lookup_host(authority).await {
            Ok(a) => {
                let addrs: Vec<SocketAddr> = a.collect();
                let resolve_error = addrs
                    .is_empty()
                    .then(|| format!("{authority} resolved to no address"));
                Endpoint {
                    host_header,
                    addrs,
                    resolve_error,
                }
            }
            Err(e) => Endpoint {
                host_header,
                addrs: Vec::new(),
                resolve_error: Some(format!("cannot resolve {authority}: {e}")),
            },
        }
    }
}

/// Tokio worker threads for a run against `url` (`None`: not known from the
/// command line): one per core, but one fewer when the target is on this
/// machine (a loopback host), so that the server under test keeps a core.
/// On a 2-core machine against a loopback server one worker measured as fast
/// as two, with less CPU (docs/loadgen.md, "Figures"); a generator that
/// competes with its target for CPU measures the contention, not the server.
/// `TOKIO_WORKER_THREADS` overrides this (the binary checks it).
pub fn worker_threads_for(url: Option<&str>) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let loopback = url
        .and_then(|u| url::Url::parse(u).ok())
        .is_some_and(|u| match u.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(a)) => a.is_loopback(),
            Some(url::Host::Ipv6(a)) => a.is_loopback(),
            None => false,
        });
    if loopback {
        cores.saturating_sub(1).max(1)
    } else {
        cores
    }
}

/// A response as the user loop needs it.
#[derive(Debug)]
pub struct Response {
    /// Status.
    pub status: StatusCode,
    /// Body, when asked for.
    pub body: Option<Bytes>,
    /// Body size in bytes.
    pub len: u64,
}

/// One user's connection and cookies.
pub struct UserClient {
    conn: Conn,
    timeout: Duration,
    /// The lazily armed per-request timer (created on the first request).
    timer: Option<Pin<Box<Sleep>>>,
}

/// Everything a request/response exchange touches (apart from the timer).
struct Conn {
    endpoint: Arc<Endpoint>,
    stream: Option<TcpStream>,
    /// The request being prepared: head, then body (reused).
    wbuf: Vec<u8>,
    /// Bytes read and not yet consumed (reused).
    rbuf: BytesMut,
    /// The prepared request is a `HEAD` (its response has no body).
    head_request: bool,
    /// The prepared request needs a `Content-Length` even when empty.
    needs_length: bool,
    cookies: Vec<(String, String)>,
    cookie_header: Option<HeaderValue>,
}

fn fail(kind: FailureKind, message: impl Into<String>) -> Failure {
    Failure {
        kind,
        message: message.into(),
    }
}

fn invalid(what: impl std::fmt::Display) -> Failure {
    fail(FailureKind::Io, format!("invalid HTTP response: {what}"))
}

fn incomplete() -> Failure {
    fail(
        FailureKind::Io,
        "connection closed before the response was complete",
    )
}

/// Why one attempt failed: whether the request may be sent again.
enum AttemptError {
    /// Not one byte of the request was written (the connection was already
    /// broken): the server cannot have seen it, so sending it on a fresh
    /// connection is safe, even for a POST.
    Unsent(Failure),
    /// Some of the request was written: the server may have acted on it, so
    /// it is a failure, never resent (Locust and oha count it the same way).
    Sent(Failure),
}

impl UserClient {
    /// A client with no connection yet.
    pub fn new(endpoint: Arc<Endpoint>, timeout: Duration) -> UserClient {
        UserClient {
            conn: Conn {
                endpoint,
                stream: None,
                wbuf: Vec::new(),
                rbuf: BytesMut::new(),
                head_request: false,
                needs_length: false,
                cookies: Vec::new(),
                cookie_header: None,
            },
            timeout,
            timer: None,
        }
    }

    /// The `Host` header value.
    pub fn host_header(&self) -> &HeaderValue {
        &self.conn.endpoint.host_header
    }

    /// The cookies the server set, `(name, value)`.
    pub fn cookies(&self) -> &[(String, String)] {
        &self.conn.cookies
    }

    /// Sends `req` (origin-form URI; `Host` and cookies are added here) and
    /// reads the whole response within the timeout.
    pub async fn send(
        &mut self,
        req: Request<Full<Bytes>>,
        want_body: bool,
    ) -> Result<Response, Failure> {
        let (parts, body) = req.into_parts();
        let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        self.begin(&parts.method, target);
        for (name, value) in &parts.headers {
            self.header(name, value.as_bytes());
        }
        // A `Full` body is one data frame, ready at once.
        let body = match body.collect().await {
            Ok(c) => c.to_bytes(),
            Err(never) => match never {},
        };
        self.finish(&body, want_body).await
    }

    /// Starts preparing a request: `METHOD target HTTP/1.1` and `Host`.
    /// `target` is the origin-form path and query (`/a?b=1`).
    pub fn begin(&mut self, method: &Method, target: &str) {
        let c = &mut self.conn;
        c.wbuf.clear();
        c.wbuf.extend_from_slice(method.as_str().as_bytes());
        c.wbuf.push(b' ');
        c.wbuf.extend_from_slice(target.as_bytes());
        c.wbuf.extend_from_slice(b" HTTP/1.1\r\nhost: ");
        c.wbuf.extend_from_slice(c.endpoint.host_header.as_bytes());
        c.wbuf.extend_from_slice(b"\r\n");
        c.head_request = method == Method::HEAD;
        c.needs_length = method == Method::POST || method == Method::PUT || method == Method::PATCH;
    }

    /// Adds a header to the request being prepared. `value` must be a valid
    /// header value (see `valid_header_value`). `Host`, `Content-Length` and
    /// `Transfer-Encoding` are set by the client and ignored here; a `Cookie`
    /// header is ignored while the jar holds cookies (the jar's win).
    pub fn header(&mut self, name: &HeaderName, value: &[u8]) {
        let c = &mut self.conn;
        if name == HOST || name == CONTENT_LENGTH || name == TRANSFER_ENCODING {
            return;
        }
        if name == COOKIE && c.cookie_header.is_some() {
            return;
        }
        c.wbuf.extend_from_slice(name.as_str().as_bytes());
        c.wbuf.extend_from_slice(b": ");
        c.wbuf.extend_from_slice(value);
        c.wbuf.extend_from_slice(b"\r\n");
    }

    /// Sends the prepared request with `body` and reads the whole response
    /// within the timeout.
    pub async fn finish(&mut self, body: &[u8], want_body: bool) -> Result<Response, Failure> {
        self.finish_at(body, want_body, Instant::now()).await
    }

    /// `finish`, with the timeout counted from `started` (a time the caller
    /// already read, saving a clock read per request).
    pub async fn finish_at(
        &mut self,
        body: &[u8],
        want_body: bool,
        started: Instant,
    ) -> Result<Response, Failure> {
        let c = &mut self.conn;
        if !body.is_empty() || c.needs_length {
            c.wbuf.extend_from_slice(b"content-length: ");
            push_decimal(&mut c.wbuf, body.len() as u64);
            c.wbuf.extend_from_slice(b"\r\n");
        }
        if let Some(ck) = &c.cookie_header {
            c.wbuf.extend_from_slice(b"cookie: ");
            c.wbuf.extend_from_slice(ck.as_bytes());
            c.wbuf.extend_from_slice(b"\r\n");
        }
        c.wbuf.extend_from_slice(b"\r\n");
        c.wbuf.extend_from_slice(body);

        let deadline = started + self.timeout;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if timer.deadline() > deadline {
            // Only when the timeout shrank; normally deadlines only move forward.
            timer.as_mut().reset(deadline);
        }
        let result = {
            let exchange = self.conn.exchange(want_body);
            tokio::pin!(exchange);
            loop {
                tokio::select! {
                    biased;
                    r = &mut exchange => break r,
                    () = timer.as_mut() => {
                        if Instant::now() >= deadline {
                            break Err(fail(
                                FailureKind::Timeout,
                                format!(
                                    "no complete response within {}",
                                    humantime::format_duration(self.timeout)
                                ),
                            ));
                        }
                        // Armed for an earlier request: move it to this one's deadline.
                        timer.as_mut().reset(deadline);
                    }
                }
            }
        };
        if result.is_err() {
            // The connection may hold a half-read response: start afresh.
            self.conn.stream = None;
            self.conn.rbuf.clear();
        }
        self.conn.trim();
        result
    }
}

/// Whether an idle kept-alive connection can take a request. No read
/// readiness means nothing arrived since the last response (no system call:
/// on Linux Tokio clears readiness after the short read that ended it).
/// Otherwise the server closed the connection, sent something unasked, or
/// the readiness is stale; a one-byte read tells which. The balancer checks
/// its pooled connections the same way.
fn idle_alive(stream: &TcpStream) -> bool {
    let mut cx = Context::from_waker(Waker::noop());
    match stream.poll_read_ready(&mut cx) {
        Poll::Pending => true,
        Poll::Ready(Err(_)) => false,
        Poll::Ready(Ok(())) => {
            let mut probe = [0u8; 1];
            matches!(stream.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
        }
    }
}

/// Appends `n` in decimal (no allocation).
fn push_decimal(buf: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.extend_from_slice(&digits[i..]);
}

/// Whether `v` may be sent as a header value (visible ASCII, spaces, tabs,
/// obs-text; no control characters, so no header injection).
pub fn valid_header_value(v: &[u8]) -> bool {
    v.iter().all(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

impl Conn {
    /// Writes the prepared request and reads the response, on the current
    /// connection or a new one.
    ///
    /// A kept-alive connection is first checked: if the server closed it (or
    /// sent something unasked) while it was idle, it is dropped and a fresh
    /// one opened, before anything is written. A request is sent again only
    /// when none of it could be written; once the server may have read it, a
    /// broken connection is the request's failure (kind `io`), not a reason
    /// to resend it silently.
    async fn exchange(&mut self, want_body: bool) -> Result<Response, Failure> {
        if self.stream.as_ref().is_some_and(|s| !idle_alive(s)) {
            self.stream = None;
            self.rbuf.clear();
        }
        let mut reused = self.stream.is_some();
        loop {
            if self.stream.is_none() {
                self.connect().await?;
            }
            match self.attempt(want_body).await {
                Ok(r) => return Ok(r),
                Err(AttemptError::Unsent(_)) if reused => {
                    self.stream = None;
                    self.rbuf.clear();
                    reused = false;
                }
                Err(AttemptError::Unsent(f) | AttemptError::Sent(f)) => {
                    self.stream = None;
                    self.rbuf.clear();
                    return Err(f);
                }
            }
        }
    }

    async fn connect(&mut self) -> Result<(), Failure> {
        if let Some(e) = &self.endpoint.resolve_error {
            return Err(fail(FailureKind::Connect, e.clone()));
        }
        let mut last = None;
        for addr in &self.endpoint.addrs {
            match TcpStream::connect(addr).await {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    self.stream = Some(stream);
                    self.rbuf.clear();
                    return Ok(());
                }
                Err(e) => last = Some(e),
            }
        }
        let msg = match last {
            Some(e) => io_message(&e),
            None => "no address to connect to".to_string(),
        };
        Err(fail(FailureKind::Connect, msg))
    }

    /// Reads more bytes into `rbuf`; 0 means the server closed the connection.
    async fn fill(&mut self, at_least: usize) -> std::io::Result<usize> {
        let Some(stream) = self.stream.as_mut() else {
            return Ok(0);
        };
        let spare = self.rbuf.capacity() - self.rbuf.len();
        if spare < at_least.clamp(READ_CHUNK / 2, KEEP_BUFFER) {
            self.rbuf.reserve(at_least.clamp(READ_CHUNK, KEEP_BUFFER));
        }
        stream.read_buf(&mut self.rbuf).await
    }

    /// One request/response exchange on the current connection.
    async fn attempt(&mut self, want_body: bool) -> Result<Response, AttemptError> {
        let Some(stream) = self.stream.as_mut() else {
            return Err(AttemptError::Sent(incomplete()));
        };
        // `write` rather than `write_all`: whether any byte went out decides
        // whether the request may be sent again.
        let mut written = 0;
        while written < self.wbuf.len() {
            match stream.write(&self.wbuf[written..]).await {
                Ok(0) => return Err(AttemptError::Sent(incomplete())),
                Ok(n) => written += n,
                Err(e) if written == 0 => {
                    return Err(AttemptError::Unsent(fail(FailureKind::Io, e.to_string())))
                }
                Err(e) => return Err(AttemptError::Sent(fail(FailureKind::Io, e.to_string()))),
            }
        }
        // The head, skipping interim (1xx) responses.
        let mut interim = false;
        let head = loop {
            match parse_head(&self.rbuf, self.head_request) {
                Ok(Some(h)) if h.interim => {
                    self.rbuf.advance(h.len);
                    interim = true;
                    continue;
                }
                Ok(Some(h)) => break h,
                Ok(None) => {}
                Err(msg) => return Err(AttemptError::Sent(invalid(msg))),
            }
            if self.rbuf.len() >= MAX_HEAD {
                return Err(AttemptError::Sent(invalid(format!(
                    "head larger than {} KiB",
                    MAX_HEAD / 1024
                ))));
            }
            let nothing_yet = self.rbuf.is_empty() && !interim;
            match self.fill(READ_CHUNK).await {
                Ok(0) if nothing_yet => {
                    return Err(AttemptError::Sent(fail(
                        FailureKind::Io,
                        "the server closed the connection without answering",
                    )))
                }
                Ok(0) => return Err(AttemptError::Sent(incomplete())),
                Ok(_) => {}
                Err(e) => return Err(AttemptError::Sent(fail(FailureKind::Io, e.to_string()))),
            }
        };
        if head.has_cookies {
            self.store_cookies(head.len);
        }
        self.rbuf.advance(head.len);
        let mut body = want_body.then(BytesMut::new);
        let len = match head.body {
            BodyKind::None => 0,
            BodyKind::Length(n) => self.take(n, &mut body).await?,
            BodyKind::Chunked => self.chunked(&mut body).await?,
            BodyKind::UntilClose => self.until_close(&mut body).await?,
        };
        if !head.keep_alive || !self.rbuf.is_empty() {
            // Closing, or bytes nobody asked for: this connection is done.
            self.stream = None;
            self.rbuf.clear();
        }
        Ok(Response {
            status: StatusCode::from_u16(head.status)
                .map_err(|_| AttemptError::Sent(invalid("status out of range")))?,
            body: body.map(BytesMut::freeze),
            len,
        })
    }

    /// Consumes exactly `n` body bytes, keeping them in `out` when wanted.
    async fn take(&mut self, n: u64, out: &mut Option<BytesMut>) -> Result<u64, AttemptError> {
        let mut left = n;
        loop {
            let have = (self.rbuf.len() as u64).min(left) as usize;
            if have > 0 {
                match out {
                    // The common case, the whole body already read: no copy.
                    Some(b) if b.is_empty() && have as u64 == left => {
                        *b = self.rbuf.split_to(have);
                    }
                    Some(b) => {
                        b.extend_from_slice(&self.rbuf[..have]);
                        self.rbuf.advance(have);
                    }
                    None => self.rbuf.advance(have),
                }
                left -= have as u64;
            }
            if left == 0 {
                return Ok(n);
            }
            let want = usize::try_from(left).unwrap_or(usize::MAX);
            match self.fill(want).await {
                Ok(0) => return Err(AttemptError::Sent(incomplete())),
                Ok(_) => {}
                Err(e) => return Err(AttemptError::Sent(fail(FailureKind::Io, e.to_string()))),
            }
        }
    }

    /// One line (without its CRLF) of a chunked body.
    async fn line(&mut self) -> Result<BytesMut, AttemptError> {
        loop {
            if let Some(i) = self.rbuf.iter().position(|&b| b == b'\n') {
                let mut line = self.rbuf.split_to(i + 1);
                line.truncate(i);
                if line.last() == Some(&b'\r') {
                    line.truncate(i - 1);
                }
                return Ok(line);
            }
            if self.rbuf.len() > MAX_HEAD {
                return Err(AttemptError::Sent(invalid("chunk line too long")));
            }
            match self.fill(READ_CHUNK).await {
                Ok(0) => return Err(AttemptError::Sent(incomplete())),
                Ok(_) => {}
                Err(e) => return Err(AttemptError::Sent(fail(FailureKind::Io, e.to_string()))),
            }
        }
    }

    /// A `Transfer-Encoding: chunked` body; returns its decoded size.
    async fn chunked(&mut self, out: &mut Option<BytesMut>) -> Result<u64, AttemptError> {
        let mut total = 0u64;
        loop {
            let line = self.line().await?;
            let size = parse_chunk_size(&line)
                .ok_or_else(|| AttemptError::Sent(invalid("bad chunk size")))?;
            if size == 0 {
                // Trailers, up to the empty line.
                while !self.line().await?.is_empty() {}
                return Ok(total);
            }
            // `take` moves a lone chunk into an empty `out` without copying;
            // later chunks are appended.
            let mut part = out.as_ref().map(|_| BytesMut::new());
            total += self.take(size, &mut part).await?;
            if let (Some(o), Some(p)) = (out.as_mut(), part) {
                if o.is_empty() {
                    *o = p;
                } else {
                    o.extend_from_slice(&p);
                }
            }
            if !self.line().await?.is_empty() {
                return Err(AttemptError::Sent(invalid("chunk not followed by CRLF")));
            }
        }
    }

    /// A body delimited by the end of the connection.
    async fn until_close(&mut self, out: &mut Option<BytesMut>) -> Result<u64, AttemptError> {
        let mut total = 0u64;
        loop {
            let n = self.rbuf.len();
            total += n as u64;
            if let Some(b) = out {
                b.extend_from_slice(&self.rbuf);
            }
            self.rbuf.clear();
            match self.fill(READ_CHUNK * 8).await {
                Ok(0) => return Ok(total),
                Ok(_) => {}
                Err(e) => return Err(AttemptError::Sent(fail(FailureKind::Io, e.to_string()))),
            }
        }
    }

    /// Releases buffers grown by an unusually large request or response.
    fn trim(&mut self) {
        if self.wbuf.capacity() > KEEP_BUFFER {
            self.wbuf = Vec::new();
        }
        if self.rbuf.is_empty() && self.rbuf.capacity() > KEEP_BUFFER {
            self.rbuf = BytesMut::new();
        }
    }

    /// Applies the `Set-Cookie` headers of the head in `rbuf[..head_len]`.
    fn store_cookies(&mut self, head_len: usize) {
        let head = &self.rbuf[..head_len];
        let mut changed = false;
        for line in head.split(|&b| b == b'\n').skip(1) {
            let Some((name, value)) = split_header(line) else {
                continue;
            };
            if !name.eq_ignore_ascii_case(b"set-cookie") {
                continue;
            }
            let Ok(s) = std::str::from_utf8(value) else {
                continue;
            };
            let pair = s.split(';').next().unwrap_or("");
            let Some((name, value)) = pair.split_once('=') else {
                continue;
            };
            let (name, value) = (name.trim(), value.trim());
            if name.is_empty() {
                continue;
            }
            let expired = s.to_ascii_lowercase().contains("max-age=0");
            self.cookies.retain(|(n, _)| n != name);
            if !expired {
                self.cookies.push((name.to_string(), value.to_string()));
            }
            changed = true;
        }
        if !changed {
            return;
        }
        let joined = self
            .cookies
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        self.cookie_header = if joined.is_empty() {
            None
        } else {
            HeaderValue::from_str(&joined).ok()
        };
    }
}

/// How the body of a response is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyKind {
    None,
    Length(u64),
    Chunked,
    UntilClose,
}

/// A parsed response head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Head {
    status: u16,
    /// Bytes of the head, blank line included.
    len: usize,
    body: BodyKind,
    /// The connection may carry the next request.
    keep_alive: bool,
    /// A 1xx response other than 101: another head follows.
    interim: bool,
    has_cookies: bool,
}

/// `name: value` of one header line (CR stripped, value trimmed).
fn split_header(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let colon = line.iter().position(|&b| b == b':')?;
    let (name, value) = (&line[..colon], &line[colon + 1..]);
    Some((name, value.trim_ascii()))
}

/// Whether the comma-separated header value contains `token`.
fn has_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

/// Parses the response head at the start of `buf`: `Ok(None)` until it is
/// complete. `head_request`: the request was a `HEAD` (no body follows).
fn parse_head(buf: &[u8], head_request: bool) -> Result<Option<Head>, String> {
    let Some(end) = head_end(buf) else {
        if buf.len() >= 5 && !buf.starts_with(b"HTTP/") {
            return Err(format!("does not start with HTTP/: {:?}", preview(buf)));
        }
        return Ok(None);
    };
    let head = &buf[..end];
    let mut lines = head.split(|&b| b == b'\n');
    let status_line = lines.next().unwrap_or_default();
    let status_line = status_line.strip_suffix(b"\r").unwrap_or(status_line);
    // HTTP/1.x SSS[ reason]
    let (version_minor, status) = match status_line {
        [b'H', b'T', b'T', b'P', b'/', b'1', b'.', minor, b' ', a, b, c, rest @ ..]
            if minor.is_ascii_digit()
                && [a, b, c].iter().all(|d| d.is_ascii_digit())
                && (rest.is_empty() || rest[0] == b' ') =>
        {
            (
                minor - b'0',
                u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0'),
            )
        }
        _ => return Err(format!("bad status line {:?}", preview(status_line))),
    };
    if status < 100 {
        return Err(format!("status {status}"));
    }
    let mut keep_alive = version_minor >= 1;
    let mut length: Option<u64> = None;
    let mut chunked = false;
    let mut transfer_encoding = false;
    let mut has_cookies = false;
    for line in lines {
        let trimmed = line.strip_suffix(b"\r").unwrap_or(line);
        if trimmed.is_empty() {
            break;
        }
        if trimmed[0] == b' ' || trimmed[0] == b'\t' {
            // Obsolete line folding: the value continues; nothing we read.
            continue;
        }
        let Some((name, value)) = split_header(trimmed) else {
            return Err(format!("bad header line {:?}", preview(trimmed)));
        };
        if name.is_empty() || name.iter().any(|b| b.is_ascii_whitespace()) {
            return Err(format!("bad header name {:?}", preview(name)));
        }
        // Dispatch on the name's length first: most headers are none of these.
        match name.len() {
            14 if name.eq_ignore_ascii_case(b"content-length") => {
                let n = parse_decimal(value)
                    .ok_or_else(|| format!("bad content-length {:?}", preview(value)))?;
                if length.is_some_and(|l| l != n) {
                    return Err("conflicting content-length headers".into());
                }
                length = Some(n);
            }
            17 if name.eq_ignore_ascii_case(b"transfer-encoding") => {
                transfer_encoding = true;
                // Only the last coding decides: chunked must be last.
                chunked = value
                    .rsplit(|&b| b == b',')
                    .next()
                    .is_some_and(|t| t.trim_ascii().eq_ignore_ascii_case(b"chunked"));
            }
            10 if name.eq_ignore_ascii_case(b"connection") => {
                if value.eq_ignore_ascii_case(b"keep-alive") {
                    keep_alive = true;
                } else if has_token(value, b"close") {
                    keep_alive = false;
                } else if has_token(value, b"keep-alive") {
                    keep_alive = true;
                }
            }
            10 if name.eq_ignore_ascii_case(b"set-cookie") => has_cookies = true,
            _ => {}
        }
    }
    let interim = (100..200).contains(&status) && status != 101;
    let body = if head_request || (100..200).contains(&status) || status == 204 || status == 304 {
        BodyKind::None
    } else if transfer_encoding {
        if chunked {
            BodyKind::Chunked
        } else {
            BodyKind::UntilClose
        }
    } else if let Some(n) = length {
        BodyKind::Length(n)
    } else {
        BodyKind::UntilClose
    };
    if body == BodyKind::UntilClose || status == 101 {
        keep_alive = false;
    }
    Ok(Some(Head {
        status,
        len: end,
        body,
        keep_alive,
        interim,
        has_cookies,
    }))
}

/// The length of the head (through the blank line), if `buf` holds all of it.
fn head_end(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(p) = buf[i..].iter().position(|&b| b == b'\n') {
        let nl = i + p;
        // "\n\n" or "\n\r\n" ends the head.
        match buf.get(nl + 1) {
            Some(b'\n') => return Some(nl + 2),
            Some(b'\r') if buf.get(nl + 2) == Some(&b'\n') => return Some(nl + 3),
            _ => {}
        }
        i = nl + 1;
    }
    None
}

fn parse_decimal(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 19 {
        return None;
    }
    v.iter().try_fold(0u64, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + u64::from(b - b'0'))
    })
}

fn parse_chunk_size(line: &[u8]) -> Option<u64> {
    let hex = line
        .split(|&b| b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    if hex.is_empty() || hex.len() > 15 {
        return None;
    }
    hex.iter().try_fold(0u64, |acc, &b| {
        (b as char).to_digit(16).map(|d| acc * 16 + u64::from(d))
    })
}

fn preview(b: &[u8]) -> String {
    String::from_utf8_lossy(&b[..b.len().min(40)]).into_owned()
}

fn io_message(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
        std::io::ErrorKind::TimedOut => "connect timed out".into(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    fn head(s: &str) -> Head {
        parse_head(s.as_bytes(), false).unwrap().unwrap()
    }

    #[test]
    fn parses_framing() {
        let h = head("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        assert_eq!(
            (h.status, h.body, h.keep_alive, h.len),
            (200, BodyKind::Length(2), true, 38)
        );
        let h = head(
            "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\ncontent-length: 9\r\n\r\n",
        );
        assert_eq!(h.body, BodyKind::Chunked);
        let h = head("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
        assert_eq!((h.body, h.keep_alive), (BodyKind::UntilClose, false));
        let h = head("HTTP/1.0 200 OK\r\ncontent-length: 0\r\n\r\n");
        assert!(!h.keep_alive);
        let h = head("HTTP/1.0 200 OK\r\nconnection: Keep-Alive\r\ncontent-length: 0\r\n\r\n");
        assert!(h.keep_alive);
        let h = head("HTTP/1.1 204 No Content\r\ncontent-length: 5\r\n\r\n");
        assert_eq!(h.body, BodyKind::None);
        let h = head("HTTP/1.1 100 Continue\r\n\r\n");
        assert!(h.interim);
        let h = head("HTTP/1.1 200\nset-cookie: a=1\n\n");
        assert_eq!((h.status, h.len, h.has_cookies), (200, 30, true));
        let h = parse_head(b"HTTP/1.1 200 OK\r\ncontent-length: 7\r\n\r\n", true)
            .unwrap()
            .unwrap();
        assert_eq!(h.body, BodyKind::None);
    }

    #[test]
    fn leaves_a_core_to_a_loopback_target() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let local = cores.saturating_sub(1).max(1);
        assert_eq!(worker_threads_for(Some("http://127.0.0.1:8080/")), local);
        assert_eq!(worker_threads_for(Some("http://localhost")), local);
        assert_eq!(worker_threads_for(Some("http://[::1]:80/x")), local);
        assert_eq!(worker_threads_for(Some("http://10.1.2.3/")), cores);
        assert_eq!(worker_threads_for(Some("not a url")), cores);
        assert_eq!(worker_threads_for(None), cores);
    }

    #[test]
    fn waits_for_a_whole_head_and_rejects_garbage() {
        assert_eq!(
            parse_head(b"HTTP/1.1 200 OK\r\nContent-Le", false),
            Ok(None)
        );
        assert_eq!(parse_head(b"HTT", false), Ok(None));
        assert!(parse_head(b"SSH-2.0-OpenSSH\r\n", false).is_err());
        assert!(parse_head(b"HTTP/1.1 2x0 OK\r\n\r\n", false).is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n", false).is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n", false).is_err());
        assert!(parse_head(
            b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n",
            false
        )
        .is_err());
        assert_eq!(parse_chunk_size(b"1a;ext=1"), Some(26));
        assert_eq!(parse_chunk_size(b"zz"), None);
        assert!(valid_header_value(b"Bearer abc\tdef"));
        assert!(!valid_header_value(b"a\r\nx: y"));
    }

    /// A server that answers each request with the next scripted bytes
    /// (written in parts split at `|`; `None`: close the connection without
    /// answering; `connection: close` in the answer: close after it;
    /// `x-then: close`: close after it without telling the client). It
    /// reports the requests it received.
    async fn server(
        script: Vec<Option<&'static [u8]>>,
    ) -> (Arc<Endpoint>, tokio::sync::mpsc::UnboundedReceiver<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut script = script.into_iter();
            'accept: while let Ok((mut s, _)) = listener.accept().await {
                loop {
                    let mut req = Vec::new();
                    let mut buf = [0u8; 4096];
                    while head_end(&req).is_none() {
                        match s.read(&mut buf).await {
                            Ok(0) | Err(_) => continue 'accept,
                            Ok(n) => req.extend_from_slice(&buf[..n]),
                        }
                    }
                    let _ = tx.send(String::from_utf8_lossy(&req).into_owned());
                    match script.next() {
                        Some(Some(resp)) => {
                            for part in resp.split_inclusive(|&b| b == b'|') {
                                let part = part.strip_suffix(b"|").unwrap_or(part);
                                s.write_all(part).await.unwrap();
                                tokio::time::sleep(Duration::from_millis(5)).await;
                            }
                            if resp.windows(17).any(|w| w == b"connection: close")
                                || resp.windows(13).any(|w| w == b"x-then: close")
                            {
                                continue 'accept;
                            }
                        }
                        Some(None) => continue 'accept,
                        None => return,
                    }
                }
            }
        });
        let ep = Endpoint::resolve(&addr.to_string()).await;
        (Arc::new(ep), rx)
    }

    fn get(path: &str) -> Request<Full<Bytes>> {
        Request::get(path).body(Full::new(Bytes::new())).unwrap()
    }

    #[tokio::test]
    async fn reads_split_chunked_and_close_delimited_bodies() {
        let (ep, mut rx) = server(vec![
            Some(b"HTTP/1.1 200 OK\r\nContent-|Length: 5\r\n\r\nhel|lo"),
            Some(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\ntransfer-encoding: chunked\r\n\r\n3\r\nab|c\r\n2;x=y\r\nde\r\n0\r\nT: 1\r\n\r\n"),
            Some(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nuntil| close"),
        ])
        .await;
        let mut c = UserClient::new(ep, Duration::from_secs(5));
        let r = c.send(get("/a?x=1"), true).await.unwrap();
        assert_eq!((r.status.as_u16(), r.len), (200, 5));
        assert_eq!(r.body.as_deref(), Some(&b"hello"[..]));
        let req = rx.recv().await.unwrap();
        assert!(
            req.starts_with("GET /a?x=1 HTTP/1.1\r\nhost: 127.0.0.1:"),
            "{req}"
        );
        let r = c.send(get("/b"), true).await.unwrap();
        assert_eq!((r.status.as_u16(), r.len), (201, 5));
        assert_eq!(r.body.as_deref(), Some(&b"abcde"[..]));
        let r = c.send(get("/c"), false).await.unwrap();
        assert_eq!((r.status.as_u16(), r.len, r.body), (200, 11, None));
    }

    /// A request the server read and then dropped is a failure, never sent
    /// again (it may have been acted on); the next request opens a new
    /// connection, with the cookies.
    #[tokio::test]
    async fn a_request_the_server_drops_fails_and_is_not_resent() {
        let ok: &[u8] =
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nset-cookie: sid=42; Path=/\r\n\r\nok";
        let (ep, mut rx) = server(vec![Some(ok), None, Some(ok)]).await;
        let mut c = UserClient::new(ep, Duration::from_secs(5));
        c.send(get("/"), false).await.unwrap();
        assert_eq!(c.cookies(), [("sid".to_string(), "42".to_string())]);
        let req = Request::post("/order")
            .body(Full::new(Bytes::from_static(b"{}")))
            .unwrap();
        let f = c.send(req, false).await.unwrap_err();
        assert_eq!(f.kind, FailureKind::Io, "{}", f.message);
        let r = c.send(get("/"), false).await.unwrap();
        assert_eq!(r.status.as_u16(), 200);
        let seen: Vec<String> = [rx.recv().await, rx.recv().await, rx.recv().await]
            .into_iter()
            .map(Option::unwrap)
            .collect();
        assert!(seen[1].starts_with("POST /order "), "{seen:?}");
        assert!(seen[2].starts_with("GET / ") && seen[2].contains("\r\ncookie: sid=42\r\n"));
        // Exactly three requests reached the server: the POST went once.
        assert!(rx.try_recv().is_err());
    }

    /// A kept-alive connection the server closed while it was idle is noticed
    /// before the next request is written: that request goes on a new
    /// connection and succeeds, and the server sees it once.
    #[tokio::test]
    async fn a_connection_closed_while_idle_is_replaced_before_sending() {
        let ok_then_close: &[u8] =
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-then: close\r\n\r\nok";
        let (ep, mut rx) = server(vec![Some(ok_then_close); 3]).await;
        let mut c = UserClient::new(ep, Duration::from_secs(5));
        for _ in 0..3 {
            c.send(get("/"), false).await.unwrap();
            // Time for the server's FIN to arrive while the connection is idle.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for _ in 0..3 {
            assert!(rx.recv().await.is_some());
        }
        assert!(rx.try_recv().is_err());
    }

    #[tokio::test]
    async fn posts_carry_a_length_and_headers_cannot_override_framing() {
        let ok: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
        let (ep, mut rx) = server(vec![Some(ok), Some(ok)]).await;
        let mut c = UserClient::new(ep, Duration::from_secs(5));
        let req = Request::post("/login")
            .header("content-type", "application/json")
            .header("content-length", "999")
            .header("host", "evil")
            .body(Full::new(Bytes::from_static(b"{\"a\":1}")))
            .unwrap();
        c.send(req, false).await.unwrap();
        let got = rx.recv().await.unwrap();
        assert!(
            got.contains("\r\ncontent-type: application/json\r\n"),
            "{got}"
        );
        assert!(got.contains("\r\ncontent-length: 7\r\n"), "{got}");
        assert!(!got.contains("999") && !got.contains("evil"), "{got}");
        let req = Request::post("/x").body(Full::new(Bytes::new())).unwrap();
        c.send(req, false).await.unwrap();
        assert!(rx
            .recv()
            .await
            .unwrap()
            .contains("\r\ncontent-length: 0\r\n"));
    }

    #[tokio::test]
    async fn failures_have_kinds() {
        // Nothing listens on a port we just released.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let ep = Arc::new(Endpoint::resolve(&format!("127.0.0.1:{port}")).await);
        let mut c = UserClient::new(ep, Duration::from_secs(5));
        let f = c.send(get("/"), false).await.unwrap_err();
        assert_eq!(
            (f.kind, f.message.as_str()),
            (FailureKind::Connect, "connection refused")
        );

        let (ep, _rx) = server(vec![Some(b"SSH-2.0-nope\r\n\r\n")]).await;
        let mut c = UserClient::new(ep, Duration::from_secs(5));
        let f = c.send(get("/"), false).await.unwrap_err();
        assert_eq!(f.kind, FailureKind::Io);
        assert!(
            f.message.starts_with("invalid HTTP response"),
            "{}",
            f.message
        );

        let (ep, _rx) = server(vec![
            Some(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort"),
            None,
        ])
        .await;
        let mut c = UserClient::new(ep, Duration::from_millis(300));
        let f = c.send(get("/"), false).await.unwrap_err();
        // The server keeps the connection open without finishing the body.
        assert_eq!(f.kind, FailureKind::Timeout, "{}", f.message);

        // A server that accepts and never answers: the timer fires, and a
        // second request on a fresh timer period times out too.
        let (ep, _rx) = server(vec![Some(b"HTTP/1.1 200 OK\r\n"), Some(b"")]).await;
        let mut c = UserClient::new(ep, Duration::from_millis(200));
        for _ in 0..2 {
            let f = c.send(get("/"), false).await.unwrap_err();
            assert_eq!(f.kind, FailureKind::Timeout, "{}", f.message);
        }
    }

    #[tokio::test]
    async fn fast_requests_do_not_time_out_on_a_stale_timer() {
        let ok: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
        let (ep, _rx) = server(vec![Some(ok); 4]).await;
        let mut c = UserClient::new(ep, Duration::from_millis(150));
        for _ in 0..4 {
            // Each request is well within its own timeout, though together
            // they outlast one: the timer armed by the first is moved on.
            tokio::time::sleep(Duration::from_millis(60)).await;
            c.send(get("/"), false).await.unwrap();
        }
    }
}
