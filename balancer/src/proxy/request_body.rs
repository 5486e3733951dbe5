//! The request body on its way upstream, and the errors and inactivity
//! timer both bodies share: the lowest layer of the proxy's bodies, so the
//! upstream client ([`super::client`]) and the response side
//! ([`super::body`]) can both use it without importing each other.
//!
//! [`ReqBody`] is empty, a small buffered body (cheap to clone, so a retry
//! can resend it), or the client's stream with the `client_max_body_size`
//! limit and `client_body_timeout` (between two reads, as nginx) applied.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::Sleep;

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
pub(super) struct Idle {
    sleep: Option<Pin<Box<Sleep>>>,
    armed: bool,
}

impl Idle {
    /// Called when the inner body is pending: arms the timer if needed and
    /// reports whether it has fired.
    pub(super) fn poll_expired(&mut self, cx: &mut Context<'_>, after: Duration) -> bool {
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

    pub(super) fn progress(&mut self) {
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

/// The answer to a client whose body broke the request: 413 (too large),
/// 408 (too slow) or 400 (malformed, e.g. a bad chunk).
pub fn client_status(e: &BoxError) -> StatusCode {
    match e.downcast_ref::<BodyError>() {
        Some(BodyError::TooLarge) => StatusCode::PAYLOAD_TOO_LARGE,
        Some(BodyError::ClientTimeout) => StatusCode::REQUEST_TIMEOUT,
        _ => StatusCode::BAD_REQUEST,
    }
}
