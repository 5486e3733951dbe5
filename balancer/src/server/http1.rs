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
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::ProxyConfig;
use crate::io::{reserve, write_all, ReadTimer, COALESCE};
use crate::proxy::body::RespBody;
use crate::proxy::forward::ConnInfo;
use crate::proxy::h1::{self, HeaderIndex, SendFraming};
use crate::proxy::{self, ClientBody};
use crate::state::State;

/// nginx's `send_timeout` default: a client that takes no bytes for this
/// long is dropped.
const SEND_TIMEOUT: Duration = Duration::from_secs(60);
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
}

/// Serves `io` until it closes, the balancer stops, or a request needs
/// hyper.
pub async fn serve(
    mut io: TcpStream,
    state: &State,
    info: &ConnInfo,
    stop: &CancellationToken,
) -> Outcome {
    let mut rbuf = BytesMut::new();
    let mut wbuf: Vec<u8> = Vec::new();
    let mut timer = ReadTimer::default();
    let stopped = stop.clone().cancelled_owned();
    tokio::pin!(stopped);
    loop {
        let cfg = Limits::from(&state.current().config.proxy);
        let deadline = Instant::now() + cfg.client_header_timeout;
        let head = loop {
            match parse(&mut rbuf, &cfg) {
                Ok(Parsed::Request(head)) => break head,
                Ok(Parsed::HandOff) => {
                    return Outcome::HandOff(Prefixed {
                        prefix: rbuf.freeze(),
                        io,
                    })
                }
                Ok(Parsed::Incomplete) => {}
                Err(why) => {
                    let status = match why {
                        Refused::Malformed => StatusCode::BAD_REQUEST,
                        Refused::TooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                    };
                    refuse(&mut io, &mut wbuf, status).await;
                    return Outcome::Done;
                }
            }
            let idle = rbuf.is_empty();
            if idle && rbuf.capacity() == 0 {
                // A new connection: no read buffer until a byte arrives, so
                // idle connections cost no buffer memory.
                let ready = tokio::select! {
                    biased;
                    r = timer.run(io.readable(), Some(deadline)) => r,
                    () = &mut stopped => return Outcome::Done,
                };
                if ready.is_err() {
                    return Outcome::Done;
                }
            }
            let read = tokio::select! {
                biased;
                r = timer.read(&mut io, &mut rbuf, Some(deadline)) => r,
                () = &mut stopped, if idle => return Outcome::Done,
            };
            match read {
                Ok(0) => return Outcome::Done,
                Ok(_) => {}
                Err(e) => {
                    if e.kind() == io::ErrorKind::TimedOut && !idle {
                        // Slowloris: part of a head, then too slow.
                        refuse(&mut io, &mut wbuf, StatusCode::REQUEST_TIMEOUT).await;
                    }
                    return Outcome::Done;
                }
            }
        };
        let Head {
            mut request,
            body_len,
            keep_alive,
        } = head;
        if body_len > 0 {
            while rbuf.len() < body_len {
                let deadline = Instant::now() + cfg.client_body_timeout;
                match timer.read(&mut io, &mut rbuf, Some(deadline)).await {
                    Ok(0) => return Outcome::Done,
                    Ok(_) => {}
                    Err(e) => {
                        if e.kind() == io::ErrorKind::TimedOut {
                            refuse(&mut io, &mut wbuf, StatusCode::REQUEST_TIMEOUT).await;
                        }
                        return Outcome::Done;
                    }
                }
            }
            *request.body_mut() = ClientBody::Buffered(Some(rbuf.split_to(body_len).freeze()));
        }
        let head_request = request.method() == Method::HEAD;
        let http10 = request.version() == Version::HTTP_10;
        let response = {
            // Pinned here and dropped before the response is written, so the
            // request's state is stored once in this connection's task, and
            // shares its room with the writing (idle connections cost the
            // task's size).
            let work = std::pin::pin!(proxy::handle(state, info, request));
            let watched = unless_client_leaves(&io, &mut rbuf, cfg.max_header_size, work);
            match watched.await {
                Some(response) => response,
                None => {
                    state.stats.client_aborts.fetch_add(1, Relaxed);
                    return Outcome::Done;
                }
            }
        };
        let keep_alive = keep_alive && !stop.is_cancelled();
        match respond(
            &mut io,
            &mut wbuf,
            response,
            head_request,
            http10,
            keep_alive,
        )
        .await
        {
            Ok(true) => {}
            _ => return Outcome::Done,
        }
    }
}

/// The client limits the loop applies, copied from the generation in force
/// when it starts waiting for a request (an idle connection does not keep
/// an old generation alive).
#[derive(Debug, Clone, Copy)]
struct Limits {
    client_header_timeout: Duration,
    client_body_timeout: Duration,
    max_header_size: usize,
    /// The largest body this loop reads itself.
    max_buffered_body: u64,
}

impl From<&ProxyConfig> for Limits {
    fn from(cfg: &ProxyConfig) -> Self {
        Limits {
            client_header_timeout: cfg.client_header_timeout,
            client_body_timeout: cfg.client_body_timeout,
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

    // What this loop leaves to hyper, decided before anything is consumed.
    let mut body_len: Option<u64> = None;
    let mut keep_alive = minor >= 1;
    for (name, value) in index.iter(buf) {
        if name.eq_ignore_ascii_case(b"content-length") {
            let n = h1::parse_length(value).ok_or(Refused::Malformed)?;
            if body_len.is_some_and(|m| m != n) {
                return Err(Refused::Malformed);
            }
            body_len = Some(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding")
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

/// Writes `response`; `Ok(true)` when the connection may carry another
/// request.
async fn respond(
    io: &mut TcpStream,
    wbuf: &mut Vec<u8>,
    response: Response<RespBody>,
    head_request: bool,
    http10: bool,
    mut keep_alive: bool,
) -> io::Result<bool> {
    let (parts, body) = response.into_parts();
    let status = parts.status;
    let no_body = head_request
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let framing = if no_body {
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
    h1::write_response_head(&parts, framing, no_body, keep_alive, http10, wbuf);
    let chunked = framing == SendFraming::Chunked;
    match body {
        RespBody::Full(b) => {
            let b = if no_body { None } else { b };
            match b {
                Some(b) if b.len() <= COALESCE => {
                    wbuf.extend_from_slice(&b);
                    write_all(io, wbuf, SEND_TIMEOUT).await?;
                }
                Some(b) => {
                    write_all(io, wbuf, SEND_TIMEOUT).await?;
                    write_all(io, &b, SEND_TIMEOUT).await?;
                }
                None => write_all(io, wbuf, SEND_TIMEOUT).await?,
            }
        }
        RespBody::Upstream(mut u) => {
            write_all(io, wbuf, SEND_TIMEOUT).await?;
            if !no_body {
                // Boxed: a streamed response body is the less common case.
                Box::pin(stream_body(io, wbuf, &mut u, chunked)).await?;
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
            write_all(io, wbuf, SEND_TIMEOUT).await?;
        } else {
            write_all(io, &data, SEND_TIMEOUT).await?;
        }
    }
    if chunked {
        write_all(io, h1::LAST_CHUNK, SEND_TIMEOUT).await?;
    }
    Ok(())
}

/// Answers a refused request and closes.
async fn refuse(io: &mut TcpStream, wbuf: &mut Vec<u8>, status: StatusCode) {
    let _ = respond(
        io,
        wbuf,
        proxy::local_response(status, None),
        false,
        false,
        false,
    )
    .await;
}
