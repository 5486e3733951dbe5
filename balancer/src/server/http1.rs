//! The client-facing HTTP/1.1 hot path: a connection loop of the balancer's
//! own, for the requests a load balancer mostly sees (a head, perhaps a
//! small body).
//!
//! Why not hyper's server here: its dispatcher, the tower glue (a cloned
//! service and a boxed future per request), a boxed header-read timer and
//! two clock reads per request cost about as much CPU as everything the
//! balancer itself does (perf, docs/balancer.md). This loop parses the head
//! in place with `httparse` (header values are slices of the read buffer),
//! runs [`proxy::handle`] inline (its state lives in the connection's task,
//! allocated once), and writes the response head and a small body in one
//! `write`. One read timer serves the whole connection.
//!
//! What it does not handle it hands to hyper, with the bytes already read,
//! and hyper serves the connection from then on: an HTTP/2 (h2c) preface, a
//! body that streams (chunked, or larger than the retry buffer or
//! `client_max_body_size`), `Expect`, and upgrades (WebSocket).

use std::future::Future;
use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use http_body::Body as _;
use http_body_util::BodyExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use crate::config::ProxyConfig;
use crate::io::{reserve, write_all, ReadTimer, COALESCE};
use crate::proxy::body::RespBody;
use crate::proxy::forward::ConnInfo;
use crate::proxy::h1::{self, HeaderIndex, SendFraming};
use crate::proxy::{self, ClientBody};
use crate::state::State;

/// The read buffer a request head gets (nginx: `client_header_buffer_size`
/// 1k). Heads are mostly far smaller; a larger one grows the buffer.
const HEAD_CHUNK: usize = 2048;
/// An idle keep-alive connection releases its buffers after this long.
/// Freed buffers stay in the allocator's free lists, so the process's RSS
/// holds the buffers of every connection active within this span: at 2 s
/// that was 7.2 kB per idle connection over 5,000 (nginx: 1.2 kB), at
/// 250 ms 5.3 kB. Releasing at once, as nginx does, would cost a busy
/// connection an allocation per request.
const PARK_AFTER: Duration = Duration::from_millis(250);
/// How an HTTP/2 prior-knowledge connection starts.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n";

/// How the loop ended.
#[derive(Debug)]
pub enum Outcome {
    /// The connection is finished (closed by either side, or shut down).
    Done,
    /// hyper takes over this connection, starting with these bytes.
    HandOff(Prefixed),
}

/// A client connection's IO with bytes already read put back in front.
#[derive(Debug)]
pub struct Prefixed {
    prefix: Bytes,
    io: TcpStream,
}

impl AsyncRead for Prefixed {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.prefix.is_empty() {
            let n = this.prefix.len().min(buf.remaining());
            buf.put_slice(&this.prefix[..n]);
            this.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// A request head parsed from the front of the read buffer.
struct Head {
    request: Request<ClientBody>,
    /// Body bytes that follow the head (`Content-Length`).
    body_len: usize,
    keep_alive: bool,
}

// Not boxed: a `Parsed` is moved out at once, and a box would be an
// allocation per request on the hot path.
#[allow(clippy::large_enum_variant)]
enum Parsed {
    Incomplete,
    /// Not for this loop: hyper serves the connection.
    HandOff,
    Request(Head),
}

/// Why a head was refused (the answer, then the connection closes).
#[derive(Debug, Clone, Copy)]
enum Refused {
    Malformed,
    TooLarge,
    /// nginx's request framing rules (`h1::screen_framing`): 400 or 501.
    Framing(StatusCode),
}

/// Serves `io` until it closes, the balancer stops, or a request needs
/// hyper.
pub async fn serve(
    io: TcpStream,
    state: &State,
    info: &ConnInfo,
    stop: &CancellationToken,
) -> Outcome {
    let mut conn = Conn {
        io,
        rbuf: BytesMut::new(),
        wbuf: Vec::new(),
        timer: ReadTimer::default(),
        kept_alive: false,
    };
    let stopped = stop.clone().cancelled_owned();
    tokio::pin!(stopped);
    loop {
        let cfg = Limits::from(&state.current().config.proxy);
        let Head {
            mut request,
            body_len,
            keep_alive,
        } = match conn.read_head(&cfg, stopped.as_mut()).await {
            Ok(head) => head,
            Err(Stop::HandOff) => {
                return Outcome::HandOff(Prefixed {
                    prefix: conn.rbuf.freeze(),
                    io: conn.io,
                })
            }
            Err(Stop::Close) => return Outcome::Done,
        };
        if body_len > 0 {
            let Some(body) = conn.read_body(body_len, &cfg).await else {
                return Outcome::Done;
            };
            *request.body_mut() = ClientBody::Buffered(Some(body));
        }
        let head_request = request.method() == Method::HEAD;
        let http10 = request.version() == Version::HTTP_10;
        let Some(response) = conn.proxy(state, info, request, &cfg).await else {
            return Outcome::Done;
        };
        let keep_alive = keep_alive && !cfg.keepalive_timeout.is_zero() && !stop.is_cancelled();
        let framing = Framing {
            head_request,
            http10,
            keep_alive,
        };
        match respond(
            &mut conn.io,
            &mut conn.wbuf,
            response,
            framing,
            cfg.send_timeout,
        )
        .await
        {
            Ok(true) => conn.kept_alive = true,
            _ => return Outcome::Done,
        }
    }
}

/// A connection this loop serves, with its buffers and its one read timer.
struct Conn {
    io: TcpStream,
    rbuf: BytesMut,
    wbuf: Vec<u8>,
    timer: ReadTimer,
    /// A response went out and the connection stayed open: the next
    /// request's first byte may take `keepalive_timeout`.
    kept_alive: bool,
}

/// Why the loop stops reading requests.
enum Stop {
    /// Closed, refused, timed out or shut down.
    Close,
    /// hyper takes the connection.
    HandOff,
}

impl Conn {
    /// Reads until a whole request head is at the front of `rbuf`. As
    /// nginx: a new connection (or pipelined bytes) gets
    /// `client_header_timeout` for its head; an idle keep-alive connection
    /// `keepalive_timeout` for its first byte, then `client_header_timeout`
    /// (the clock is read again only when that head is not complete at
    /// once).
    async fn read_head(
        &mut self,
        cfg: &Limits,
        mut stopped: Pin<&mut WaitForCancellationFutureOwned>,
    ) -> Result<Head, Stop> {
        let mut in_head = !self.kept_alive || !self.rbuf.is_empty();
        let start = Instant::now();
        let mut deadline = start
            + if in_head {
                cfg.client_header_timeout
            } else {
                cfg.keepalive_timeout
            };
        loop {
            match parse(&mut self.rbuf, cfg) {
                Ok(Parsed::Request(head)) => return Ok(head),
                Ok(Parsed::HandOff) => return Err(Stop::HandOff),
                Ok(Parsed::Incomplete) => {}
                Err(why) => {
                    let status = match why {
                        Refused::Malformed => StatusCode::BAD_REQUEST,
                        Refused::TooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                        Refused::Framing(status) => status,
                    };
                    self.refuse(status, cfg).await;
                    return Err(Stop::Close);
                }
            }
            let idle = self.rbuf.is_empty();
            if !in_head && !idle {
                in_head = true;
                deadline = Instant::now() + cfg.client_header_timeout;
            }
            if idle && (!in_head || self.rbuf.capacity() == 0) {
                // Waiting for a first byte: no read (and no buffer) until
                // one arrives.
                self.wait_readable(start + PARK_AFTER, deadline, stopped.as_mut())
                    .await?;
            }
            if self.rbuf.capacity() - self.rbuf.len() < HEAD_CHUNK / 4 {
                // Room for a head: most fit, and a larger one grows it.
                self.rbuf.reserve(HEAD_CHUNK);
            }
            let read = tokio::select! {
                biased;
                r = self.timer.run(self.io.read_buf(&mut self.rbuf), Some(deadline)) => r,
                () = &mut stopped, if idle => return Err(Stop::Close),
            };
            match read {
                Ok(0) => return Err(Stop::Close),
                Ok(_) => {}
                Err(e) => {
                    if e.kind() == io::ErrorKind::TimedOut && !idle {
                        // Slowloris: part of a head, then too slow.
                        self.refuse(StatusCode::REQUEST_TIMEOUT, cfg).await;
                    }
                    return Err(Stop::Close);
                }
            }
        }
    }

    /// Waits until the socket is readable, up to `deadline`. A connection
    /// still holding buffers releases them if nothing comes by `park_at`
    /// (an idle keep-alive connection then costs its task and socket only).
    ///
    /// `park_at` moves forward with every request, like every deadline of
    /// the connection's one timer, so it costs no timer registration per
    /// request: the timer fires at most once per `PARK_AFTER` while the
    /// connection is busy, and is moved on. The buffers come back (one
    /// allocation) with the next request after a park.
    async fn wait_readable(
        &mut self,
        park_at: Instant,
        deadline: Instant,
        mut stopped: Pin<&mut WaitForCancellationFutureOwned>,
    ) -> Result<(), Stop> {
        let mut holding = self.rbuf.capacity() > 0 || self.wbuf.capacity() > 0;
        loop {
            let until = if holding {
                park_at.min(deadline)
            } else {
                deadline
            };
            let ready = tokio::select! {
                biased;
                r = self.timer.run(self.io.readable(), Some(until)) => r,
                () = &mut stopped => return Err(Stop::Close),
            };
            match ready {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::TimedOut && until < deadline => {
                    self.rbuf = BytesMut::new();
                    self.wbuf = Vec::new();
                    holding = false;
                }
                Err(_) => return Err(Stop::Close),
            }
        }
    }

    /// Reads a `Content-Length` body this loop buffers itself, each read
    /// within `client_body_timeout`; `None` when the connection ends.
    async fn read_body(&mut self, len: usize, cfg: &Limits) -> Option<Bytes> {
        while self.rbuf.len() < len {
            let deadline = Instant::now() + cfg.client_body_timeout;
            match self
                .timer
                .read(&mut self.io, &mut self.rbuf, Some(deadline))
                .await
            {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) => {
                    if e.kind() == io::ErrorKind::TimedOut {
                        self.refuse(StatusCode::REQUEST_TIMEOUT, cfg).await;
                    }
                    return None;
                }
            }
        }
        Some(self.rbuf.split_to(len).freeze())
    }

    /// Runs the request path; `None` when the client left first (counted
    /// as nginx's 499).
    async fn proxy(
        &mut self,
        state: &State,
        info: &ConnInfo,
        request: Request<ClientBody>,
        cfg: &Limits,
    ) -> Option<Response<RespBody>> {
        // Pinned here and dropped before the response is written, so the
        // request's state is stored once in this connection's task, and
        // shares its room with the writing (idle connections cost the
        // task's size).
        let work = std::pin::pin!(proxy::handle(state, info, request));
        let watched = unless_client_leaves(&self.io, &mut self.rbuf, cfg.max_header_size, work);
        let response = watched.await;
        if response.is_none() {
            state.stats.client_aborts.fetch_add(1, Relaxed);
        }
        response
    }

    /// Answers a refused request (the connection closes after it).
    async fn refuse(&mut self, status: StatusCode, cfg: &Limits) {
        let framing = Framing {
            head_request: false,
            http10: false,
            keep_alive: false,
        };
        let response = proxy::local_response(status, None);
        let _ = respond(
            &mut self.io,
            &mut self.wbuf,
            response,
            framing,
            cfg.send_timeout,
        )
        .await;
    }
}

/// The client limits the loop applies, copied from the generation in force
/// when it starts waiting for a request (an idle connection does not keep
/// an old generation alive).
#[derive(Debug, Clone, Copy)]
struct Limits {
    client_header_timeout: Duration,
    client_body_timeout: Duration,
    keepalive_timeout: Duration,
    /// nginx's `send_timeout`: a client that takes no bytes for this long
    /// is dropped.
    send_timeout: Duration,
    max_header_size: usize,
    /// The largest body this loop reads itself.
    max_buffered_body: u64,
}

impl From<&ProxyConfig> for Limits {
    fn from(cfg: &ProxyConfig) -> Self {
        Limits {
            client_header_timeout: cfg.client_header_timeout,
            client_body_timeout: cfg.client_body_timeout,
            keepalive_timeout: cfg.keepalive_timeout,
            send_timeout: cfg.client_send_timeout,
            max_header_size: cfg.max_header_size,
            max_buffered_body: if cfg.client_max_body_size == 0 {
                cfg.retry_buffer_size
            } else {
                cfg.retry_buffer_size.min(cfg.client_max_body_size)
            },
        }
    }
}

/// Parses the head at the front of `buf`; removes it only when this loop
/// serves the request.
fn parse(buf: &mut BytesMut, cfg: &Limits) -> Result<Parsed, Refused> {
    if buf.len() < H2_PREFACE.len() && H2_PREFACE.starts_with(buf) && !buf.is_empty() {
        return Ok(Parsed::Incomplete);
    }
    if buf.starts_with(H2_PREFACE) {
        return Ok(Parsed::HandOff);
    }
    let mut index = HeaderIndex::new();
    let (len, method, path, minor) = {
        let mut headers =
            [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; h1::MAX_HEADERS];
        let mut req = httparse::Request::new(&mut []);
        let len = match req.parse_with_uninit_headers(buf, &mut headers) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => {
                return if buf.len() > cfg.max_header_size {
                    Err(Refused::TooLarge)
                } else {
                    Ok(Parsed::Incomplete)
                };
            }
            Err(httparse::Error::TooManyHeaders) => return Err(Refused::TooLarge),
            Err(_) => return Err(Refused::Malformed),
        };
        if len > cfg.max_header_size {
            return Err(Refused::TooLarge);
        }
        index.record(buf, req.headers);
        let method = Method::from_bytes(req.method.unwrap_or("").as_bytes())
            .map_err(|_| Refused::Malformed)?;
        let path = req.path.unwrap_or("").as_bytes();
        let start = h1::offset(buf, path) as usize;
        (
            len,
            method,
            start..start + path.len(),
            req.version.unwrap_or(1),
        )
    };

    // The framing rules come first, over the raw head: hyper, which serves
    // every `Transfer-Encoding` request, drops a `Content-Length` beside it
    // before anyone else could see it (nginx refuses the pair with 400).
    let body_len = h1::screen_framing(index.iter(buf), minor).map_err(Refused::Framing)?;
    // What this loop leaves to hyper, decided before anything is consumed.
    let mut keep_alive = minor >= 1;
    for (name, value) in index.iter(buf) {
        if name.eq_ignore_ascii_case(b"transfer-encoding")
            || name.eq_ignore_ascii_case(b"expect")
            || name.eq_ignore_ascii_case(b"upgrade")
        {
            return Ok(Parsed::HandOff);
        } else if name.eq_ignore_ascii_case(b"connection") {
            keep_alive = h1::keep_alive_after(value, minor, keep_alive);
        }
    }
    let body_len = body_len.unwrap_or(0);
    if body_len > cfg.max_buffered_body {
        // Streamed, or refused with 413, by the hyper path.
        return Ok(Parsed::HandOff);
    }

    let head = buf.split_to(len).freeze();
    let headers = index
        .to_map(&head, 0, |_| false)
        .ok_or(Refused::Malformed)?;
    let uri = Uri::from_maybe_shared(head.slice(path)).map_err(|_| Refused::Malformed)?;
    let mut request = Request::new(ClientBody::Buffered(None));
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.version_mut() = if minor == 0 {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };
    *request.headers_mut() = headers;
    Ok(Parsed::Request(Head {
        request,
        body_len: body_len as usize,
        keep_alive,
    }))
}

/// Runs `work` (a request in flight) while watching the client, and gives
/// `None` if the client closes its connection first: nginx's default
/// (`proxy_ignore_client_abort off`). Dropping `work` closes the upstream
/// connection and frees the request's `max_conns` slot or queue place at
/// once, instead of when the upstream answers or `proxy_read_timeout`
/// passes. Bytes a pipelining client sends meanwhile are kept in `rbuf`, up
/// to `limit` (beyond it the client is not watched: it waits its turn).
///
/// Costs no syscall while the client is quiet: the read that completed the
/// request was short, which cleared the socket's readiness, so the check is
/// a look at the runtime's readiness flags.
async fn unless_client_leaves<F: Future>(
    io: &TcpStream,
    rbuf: &mut BytesMut,
    limit: usize,
    mut work: Pin<&mut F>,
) -> Option<F::Output> {
    std::future::poll_fn(|cx| {
        if let Poll::Ready(out) = work.as_mut().poll(cx) {
            return Poll::Ready(Some(out));
        }
        while rbuf.len() < limit {
            match io.poll_read_ready(cx) {
                Poll::Pending => break,
                Poll::Ready(Err(_)) => return Poll::Ready(None),
                Poll::Ready(Ok(())) => {
                    reserve(rbuf);
                    match io.try_read_buf(rbuf) {
                        Ok(0) => return Poll::Ready(None),
                        Ok(_) => {}
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(_) => return Poll::Ready(None),
                    }
                }
            }
        }
        Poll::Pending
    })
    .await
}

/// What the request said about how its response is framed.
#[derive(Debug, Clone, Copy)]
struct Framing {
    /// A `HEAD`: no body.
    head_request: bool,
    /// An HTTP/1.0 client: no chunked encoding.
    http10: bool,
    /// The connection may carry another request.
    keep_alive: bool,
}

/// Writes `response`, each write within `send_timeout`; `Ok(true)` when the
/// connection may carry another request.
async fn respond(
    io: &mut TcpStream,
    wbuf: &mut Vec<u8>,
    response: Response<RespBody>,
    framing: Framing,
    send_timeout: Duration,
) -> io::Result<bool> {
    let Framing {
        head_request,
        http10,
        mut keep_alive,
    } = framing;
    let (parts, body) = response.into_parts();
    let status = parts.status;
    let no_body = head_request
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let send_framing = if no_body {
        SendFraming::None
    } else {
        match body.size_hint().exact() {
            Some(n) => SendFraming::Length(n),
            None if http10 => {
                // An HTTP/1.0 client: the end of the connection ends the body.
                keep_alive = false;
                SendFraming::None
            }
            None => SendFraming::Chunked,
        }
    };
    wbuf.clear();
    h1::write_response_head(&parts, send_framing, no_body, keep_alive, http10, wbuf);
    let chunked = send_framing == SendFraming::Chunked;
    match body {
        RespBody::Full(b) => {
            let b = if no_body { None } else { b };
            match b {
                Some(b) if b.len() <= COALESCE => {
                    wbuf.extend_from_slice(&b);
                    write_all(io, wbuf, send_timeout).await?;
                }
                Some(b) => {
                    write_all(io, wbuf, send_timeout).await?;
                    write_all(io, &b, send_timeout).await?;
                }
                None => write_all(io, wbuf, send_timeout).await?,
            }
        }
        RespBody::Upstream(mut u) => {
            write_all(io, wbuf, send_timeout).await?;
            if !no_body {
                // Boxed: a streamed response body is the less common case.
                Box::pin(stream_body(io, wbuf, &mut u, chunked, send_timeout)).await?;
            }
        }
    }
    Ok(keep_alive)
}

/// Relays a streamed response body, chunk-encoded when its length is unknown.
async fn stream_body(
    io: &mut TcpStream,
    wbuf: &mut Vec<u8>,
    body: &mut crate::proxy::body::UpstreamBody,
    chunked: bool,
    send_timeout: Duration,
) -> io::Result<()> {
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(io::Error::other)?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if data.is_empty() {
            continue;
        }
        if chunked {
            wbuf.clear();
            h1::write_chunk(&data, wbuf);
            write_all(io, wbuf, send_timeout).await?;
        } else {
            write_all(io, &data, send_timeout).await?;
        }
    }
    if chunked {
        write_all(io, h1::LAST_CHUNK, send_timeout).await?;
    }
    Ok(())
}
