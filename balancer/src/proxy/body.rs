//! Response bodies, streamed frame by frame (the request side, which the
//! upstream client needs too, is the lower layer [`super::request_body`]).
//!
//! [`RespBody`] goes to the client: a canned error, or [`UpstreamBody`],
//! which applies `proxy_read_timeout` between frames and, when the last
//! frame has passed, returns the upstream connection to its keepalive pool
//! and frees the server's slot.
//!
//! Timers are armed only when a read would block, so a response that is
//! already buffered costs no timer and no allocation.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use super::client::{BodyReader, Conn};
use super::request_body::{BodyError, BoxError, Idle};
use crate::upstream::PeerGuard;

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
