//! Bodies on both legs of the proxy, streamed frame by frame.
//!
//! [`ReqBody`] goes upstream: empty, a small buffered body (cheap to clone,
//! so a retry can resend it), or the client's stream with the
//! `client_max_body_size` limit and `client_body_timeout` applied.
//! [`RespBody`] goes to the client: a canned error, or [`UpstreamBody`],
//! which applies `proxy_read_timeout` between frames and, when the last
//! frame has passed, returns the upstream connection to its keepalive pool
//! and frees the server's slot.
//!
//! Timers are armed only when a read would block, so a response that is
//! already buffered costs no timer and no allocation.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::Sleep;

use super::client::{BodyReader, Conn};
use crate::upstream::PeerGuard;

/// The error type of both bodies (boxed only when an error happens).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a body stopped; found again by downcasting at the edge.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// More than `client_max_body_size` arrived.
    #[error("request body larger than client_max_body_size")]
    TooLarge,
    /// The client paused longer than `client_body_timeout`.
    #[error("client body timeout")]
    ClientTimeout,
    /// The upstream paused longer than `proxy_read_timeout`.
    #[error("upstream read timeout")]
    UpstreamTimeout,
}

/// A lazily armed inactivity timer.
#[derive(Debug, Default)]
struct Idle {
    sleep: Option<Pin<Box<Sleep>>>,
    armed: bool,
}

impl Idle {
    /// Called when the inner body is pending: arms the timer if needed and
    /// reports whether it has fired.
    fn poll_expired(&mut self, cx: &mut Context<'_>, after: Duration) -> bool {
        if after.is_zero() {
            return false;
        }
        if !self.armed {
            let deadline = tokio::time::Instant::now() + after;
            match &mut self.sleep {
                Some(s) => s.as_mut().reset(deadline),
                None => self.sleep = Some(Box::pin(tokio::time::sleep_until(deadline))),
            }
            self.armed = true;
        }
        self.sleep
            .as_mut()
            .is_some_and(|s| s.as_mut().poll(cx).is_ready())
    }

    fn progress(&mut self) {
        self.armed = false;
    }
}

/// The client's request body, streamed with limits.
#[derive(Debug)]
pub struct ClientStream {
    inner: Incoming,
    limit: u64,
    seen: u64,
    timeout: Duration,
    idle: Idle,
}

/// A request body sent upstream.
#[derive(Debug)]
pub enum ReqBody {
    /// No body.
    Empty,
    /// A buffered body (replayable).
    Full(Option<Bytes>),
    /// The client's stream (sent once).
    Stream(Box<ClientStream>),
}

impl ReqBody {
    /// Wraps the client's body with the size limit (0 = none) and timeout.
    pub fn stream(inner: Incoming, limit: u64, timeout: Duration) -> Self {
        ReqBody::Stream(Box::new(ClientStream {
            inner,
            limit,
            seen: 0,
            timeout,
            idle: Idle::default(),
        }))
    }
}

impl Body for ReqBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            ReqBody::Empty => Poll::Ready(None),
            ReqBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            ReqBody::Stream(s) => match Pin::new(&mut s.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    s.idle.progress();
                    if let Some(d) = frame.data_ref() {
                        s.seen += d.len() as u64;
                        if s.limit != 0 && s.seen > s.limit {
                            return Poll::Ready(Some(Err(BodyError::TooLarge.into())));
                        }
                    }
                    Poll::Ready(Some(Ok(frame)))
                }
                Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => {
                    if s.idle.poll_expired(cx, s.timeout) {
                        Poll::Ready(Some(Err(BodyError::ClientTimeout.into())))
                    } else {
                        Poll::Pending
                    }
                }
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ReqBody::Empty => true,
            ReqBody::Full(b) => b.is_none(),
            ReqBody::Stream(s) => s.inner.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ReqBody::Empty => SizeHint::with_exact(0),
            ReqBody::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            ReqBody::Stream(s) => s.inner.size_hint(),
        }
    }
}

/// What to do when an upstream response has been fully relayed.
#[derive(Debug)]
pub struct Finish {
    /// The server's slot, freed on completion (or drop).
    pub guard: PeerGuard,
    /// When the request was sent (for `least_time last_byte`).
    pub start: Instant,
    /// Feed the last-byte time into `least_time`.
    pub last_byte: bool,
}

impl Finish {
    /// The response is complete: `conn` (if reusable) goes back to the pool.
    pub fn complete(self, conn: Option<Conn>) {
        let peer = self.guard.peer();
        if let Some(c) = conn {
            peer.pool.put(c);
        }
        if self.last_byte {
            peer.observe_time(self.start.elapsed());
        }
        // The guard drops last: the connection is back in the pool before a
        // queued request is handed this server's slot.
    }
}

/// An upstream response body relayed to the client.
#[derive(Debug)]
pub struct UpstreamBody {
    /// `None` once the body is complete.
    reader: Option<BodyReader>,
    finish: Option<Finish>,
    timeout: Duration,
    idle: Idle,
}

impl UpstreamBody {
    /// Relays what `reader` reads, with `proxy_read_timeout` between reads.
    pub fn new(reader: BodyReader, finish: Finish, timeout: Duration) -> Self {
        UpstreamBody {
            reader: Some(reader),
            finish: Some(finish),
            timeout,
            idle: Idle::default(),
        }
    }

    fn complete(&mut self) {
        let conn = self.reader.take().and_then(BodyReader::into_conn);
        if let Some(f) = self.finish.take() {
            f.complete(conn);
        }
    }

    /// A broken body: the connection is dropped, not pooled.
    fn fail(&mut self) {
        self.reader = None;
        self.finish = None;
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let Some(reader) = this.reader.as_mut() else {
            return Poll::Ready(None);
        };
        match reader.poll_data(cx) {
            Poll::Ready(Ok(Some(data))) => {
                this.idle.progress();
                if reader.is_done() {
                    this.complete();
                }
                Poll::Ready(Some(Ok(Frame::data(data))))
            }
            Poll::Ready(Ok(None)) => {
                this.complete();
                Poll::Ready(None)
            }
            Poll::Ready(Err(e)) => {
                this.fail();
                Poll::Ready(Some(Err(e.into())))
            }
            Poll::Pending => {
                if this.idle.poll_expired(cx, this.timeout) {
                    this.fail();
                    Poll::Ready(Some(Err(BodyError::UpstreamTimeout.into())))
                } else {
                    Poll::Pending
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.reader.as_ref().is_none_or(BodyReader::is_done)
    }

    fn size_hint(&self) -> SizeHint {
        match self.reader.as_ref().map_or(Some(0), BodyReader::remaining) {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}

/// A response body sent to the client.
#[derive(Debug)]
pub enum RespBody {
    /// A canned body (errors, empty upgrade responses).
    Full(Option<Bytes>),
    /// Relayed from upstream.
    Upstream(UpstreamBody),
}

impl RespBody {
    /// An empty body.
    pub fn empty() -> Self {
        RespBody::Full(None)
    }
}

impl Body for RespBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            RespBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            RespBody::Upstream(u) => Pin::new(u).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            RespBody::Full(b) => b.is_none(),
            RespBody::Upstream(u) => u.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            RespBody::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            RespBody::Upstream(u) => u.size_hint(),
        }
    }
}
