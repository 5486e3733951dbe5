//! The per-user HTTP/1.1 client: one keep-alive connection driven inline by
//! the user's own task.
//!
//! Each simulated user owns a `UserClient`, like a browser session: a single
//! TCP connection, reopened when the server closes it, and a
//! [`CookieJar`]. A request either yields a response (any status) or a
//! `Failure` of kind `connect`, `timeout` or `io`; the caller decides what a
//! status means. A request is never sent twice: an idle connection the
//! server closed is noticed (and replaced) before writing, and a request
//! whose connection breaks after it was written is an `io` failure.
//!
//! This module only drives the socket; what goes on the wire is
//! [`crate::wire`]'s (pure functions over the buffers held here), and the
//! body framing rule is `plumbing::http1`'s.
//!
//! Why not hyper's client: a hyper HTTP/1 connection runs in its own task and
//! talks to the caller over channels, so every request costs two task wakeups
//! and several allocations, and the connection task's buffers cost 8 KiB or
//! more per user. This is the load generator's hot path, so the client is a
//! small HTTP/1.1 implementation driven inline by the user's own task: the
//! request is written from one reused buffer (usually one `write`), the
//! response read into another and parsed in place; a response whose body is
//! not wanted is only counted. Nothing is allocated per request on this path
//! (the body, when asked for, is handed out without a copy). Interim 1xx
//! responses are skipped.
//!
//! The per-request timeout is one timer per user, armed lazily: it is moved
//! forward only when it fires before the current request's deadline, so a
//! fast request registers no timer at all.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderName, HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use plumbing::http1::Framing;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use crate::cookies::CookieJar;
use crate::endpoint::Endpoint;
use crate::stats::{Failure, FailureKind};
use crate::wire::{parse_head, Chunk, ChunkDecoder, Head, RequestBuf, WireError};

/// Read buffer reserved before a read (it grows for large responses).
const READ_CHUNK: usize = 2048;
/// A read buffer larger than this is released after the request, so one
/// big response does not pin memory in every user for the rest of the run.
const KEEP_BUFFER: usize = 64 * 1024;

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
    /// The request being prepared (reused).
    req: RequestBuf,
    /// Bytes read and not yet consumed (reused).
    rbuf: BytesMut,
    jar: CookieJar,
}

fn fail(kind: FailureKind, message: impl Into<String>) -> Failure {
    Failure {
        kind,
        message: message.into(),
    }
}

fn invalid(e: WireError) -> AttemptError {
    AttemptError::Sent(fail(FailureKind::Io, format!("invalid HTTP response: {e}")))
}

fn incomplete() -> AttemptError {
    AttemptError::Sent(fail(
        FailureKind::Io,
        "connection closed before the response was complete",
    ))
}

fn io_error(e: &std::io::Error) -> AttemptError {
    AttemptError::Sent(fail(FailureKind::Io, e.to_string()))
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
                req: RequestBuf::default(),
                rbuf: BytesMut::new(),
                jar: CookieJar::default(),
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
        self.conn.jar.cookies()
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
        c.req
            .begin(method, target, c.endpoint.host_header.as_bytes());
    }

    /// Adds a header to the request being prepared. `value` must be a valid
    /// header value (see `valid_header_value`). `Host`, `Content-Length` and
    /// `Transfer-Encoding` are set by the client and ignored here; a `Cookie`
    /// header is ignored while the jar holds cookies (the jar's win).
    pub fn header(&mut self, name: &HeaderName, value: &[u8]) {
        let c = &mut self.conn;
        c.req.header(name, value, c.jar.header().is_some());
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
        c.req.end(body, c.jar.header().map(HeaderValue::as_bytes));

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
            self.conn.close();
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
            self.close();
        }
        let mut reused = self.stream.is_some();
        loop {
            if self.stream.is_none() {
                self.connect().await?;
            }
            match self.attempt(want_body).await {
                Ok(r) => return Ok(r),
                Err(AttemptError::Unsent(_)) if reused => {
                    self.close();
                    reused = false;
                }
                Err(AttemptError::Unsent(f) | AttemptError::Sent(f)) => {
                    self.close();
                    return Err(f);
                }
            }
        }
    }

    /// Drops the connection and whatever was read from it.
    fn close(&mut self) {
        self.stream = None;
        self.rbuf.clear();
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

    /// `fill`, where the end of the connection means the response is cut short.
    async fn fill_more(&mut self, at_least: usize) -> Result<(), AttemptError> {
        match self.fill(at_least).await {
            Ok(0) => Err(incomplete()),
            Ok(_) => Ok(()),
            Err(e) => Err(io_error(&e)),
        }
    }

    /// One request/response exchange on the current connection.
    async fn attempt(&mut self, want_body: bool) -> Result<Response, AttemptError> {
        self.write_request().await?;
        let head = self.read_head().await?;
        if head.has_cookies {
            self.jar.store(&self.rbuf[..head.len]);
        }
        self.rbuf.advance(head.len);
        let mut body = want_body.then(BytesMut::new);
        let len = match head.framing {
            Framing::None => 0,
            Framing::Length(n) => self.take(n, &mut body).await?,
            Framing::Chunked => self.chunked(&mut body).await?,
            Framing::UntilClose => self.until_close(&mut body).await?,
        };
        if !head.keep_alive || !self.rbuf.is_empty() {
            // Closing, or bytes nobody asked for: this connection is done.
            self.close();
        }
        Ok(Response {
            status: StatusCode::from_u16(head.status)
                .map_err(|_| invalid(WireError::Status(head.status)))?,
            body: body.map(BytesMut::freeze),
            len,
        })
    }

    /// Writes the prepared request. `write` rather than `write_all`: whether
    /// any byte went out decides whether the request may be sent again.
    async fn write_request(&mut self) -> Result<(), AttemptError> {
        let Some(stream) = self.stream.as_mut() else {
            return Err(incomplete());
        };
        let bytes = self.req.bytes();
        let mut written = 0;
        while written < bytes.len() {
            match stream.write(&bytes[written..]).await {
                Ok(0) => return Err(incomplete()),
                Ok(n) => written += n,
                Err(e) if written == 0 => {
                    return Err(AttemptError::Unsent(fail(FailureKind::Io, e.to_string())))
                }
                Err(e) => return Err(io_error(&e)),
            }
        }
        Ok(())
    }

    /// Reads up to the final response's head (interim 1xx responses are
    /// skipped), leaving it at the front of `rbuf`.
    async fn read_head(&mut self) -> Result<Head, AttemptError> {
        let mut interim = false;
        loop {
            match parse_head(&self.rbuf, self.req.is_head()) {
                Ok(Some(h)) if h.interim => {
                    self.rbuf.advance(h.len);
                    interim = true;
                    continue;
                }
                Ok(Some(h)) => return Ok(h),
                Ok(None) => {}
                Err(e) => return Err(invalid(e)),
            }
            let nothing_yet = self.rbuf.is_empty() && !interim;
            match self.fill(READ_CHUNK).await {
                Ok(0) if nothing_yet => {
                    return Err(AttemptError::Sent(fail(
                        FailureKind::Io,
                        "the server closed the connection without answering",
                    )))
                }
                Ok(0) => return Err(incomplete()),
                Ok(_) => {}
                Err(e) => return Err(io_error(&e)),
            }
        }
    }

    /// Moves `n` bytes from the front of `rbuf` to `out` when wanted, else
    /// drops them. `n` ≤ `rbuf.len()`. The first piece of a wanted body is
    /// split off rather than copied: for the usual body that arrived whole
    /// (a whole chunk, a whole `Content-Length`) that is the only piece.
    fn consume(&mut self, n: usize, out: &mut Option<BytesMut>) {
        match out {
            Some(b) if b.is_empty() => *b = self.rbuf.split_to(n),
            Some(b) => {
                b.extend_from_slice(&self.rbuf[..n]);
                self.rbuf.advance(n);
            }
            None => self.rbuf.advance(n),
        }
    }

    /// Consumes exactly `n` body bytes, keeping them in `out` when wanted.
    async fn take(&mut self, n: u64, out: &mut Option<BytesMut>) -> Result<u64, AttemptError> {
        let mut left = n;
        loop {
            let have = (self.rbuf.len() as u64).min(left) as usize;
            if have > 0 {
                self.consume(have, out);
                left -= have as u64;
            }
            if left == 0 {
                return Ok(n);
            }
            self.fill_more(usize::try_from(left).unwrap_or(usize::MAX))
                .await?;
        }
    }

    /// A `Transfer-Encoding: chunked` body; returns its decoded size.
    async fn chunked(&mut self, out: &mut Option<BytesMut>) -> Result<u64, AttemptError> {
        let mut decoder = ChunkDecoder::new();
        let mut total = 0u64;
        loop {
            match decoder.next(&mut self.rbuf).map_err(invalid)? {
                Chunk::Data(n) => {
                    total += n as u64;
                    self.consume(n, out);
                }
                Chunk::More => self.fill_more(READ_CHUNK).await?,
                Chunk::Done => return Ok(total),
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
                Err(e) => return Err(io_error(&e)),
            }
        }
    }

    /// Releases buffers grown by an unusually large request or response.
    fn trim(&mut self) {
        self.req.trim();
        if self.rbuf.is_empty() && self.rbuf.capacity() > KEEP_BUFFER {
            self.rbuf = BytesMut::new();
        }
    }
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
    use crate::wire::head_end;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::net::TcpListener;

    /// A server that answers each request with the next scripted bytes
    /// (written in parts split at `|`; `None`: close the connection without
    /// answering; `connection: close` in the answer: close after it;
    /// `x-then: close`: close after it without telling the client). It
    /// reports the requests it received.
    async fn server(
        script: Vec<Option<&'static [u8]>>,
    ) -> (Arc<Endpoint>, tokio::sync::mpsc::UnboundedReceiver<String>) {
        let (ep, rx, _) = counting_server(script).await;
        (ep, rx)
    }

    /// `server`, also counting the connections it accepted.
    async fn counting_server(
        script: Vec<Option<&'static [u8]>>,
    ) -> (
        Arc<Endpoint>,
        tokio::sync::mpsc::UnboundedReceiver<String>,
        Arc<AtomicUsize>,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        tokio::spawn(async move {
            let mut script = script.into_iter();
            'accept: while let Ok((mut s, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::Relaxed);
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
        (Arc::new(ep), rx, accepted)
    }

    /// Issue 11: a response with both `Transfer-Encoding` and
    /// `Content-Length` is read as chunked, and its connection is not
    /// reused (RFC 9112 §6.3; the balancer already did so): the next
    /// request opens a new connection.
    #[tokio::test]
    async fn a_response_with_both_framings_is_chunked_and_its_connection_closed() {
        let both: &[u8] = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 5\r\n\r\n2\r\nok\r\n0\r\n\r\n";
        let ok: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
        let (ep, _rx, accepted) = counting_server(vec![Some(both), Some(ok), Some(ok)]).await;
        let mut c = UserClient::new(ep, Duration::from_secs(5));
        let r = c.send(get("/"), true).await.unwrap();
        assert_eq!((r.len, r.body.as_deref()), (2, Some(&b"ok"[..])));
        c.send(get("/"), false).await.unwrap();
        assert_eq!(
            accepted.load(Ordering::Relaxed),
            2,
            "a new connection after TE+CL"
        );
        c.send(get("/"), false).await.unwrap();
        assert_eq!(
            accepted.load(Ordering::Relaxed),
            2,
            "an ordinary response keeps it"
        );
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
