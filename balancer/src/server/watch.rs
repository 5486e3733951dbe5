//! Timeouts for the connections hyper serves (h2c, streamed bodies,
//! `Expect`, upgrades) and for the tunnels that follow a `101`: nginx's
//! `client_header_timeout`, `keepalive_timeout` and `send_timeout` on every
//! connection, whatever serves it.
//!
//! Why a watchdog and not hyper's settings: hyper's HTTP/1 server has a
//! header timer but nothing for a client that stops reading, and its HTTP/2
//! server has no timer at all (a client that sends the preface and goes
//! silent was held for good); after an upgrade hyper is out of the picture.
//! So the socket is wrapped in [`Watched`], which counts progress in
//! atomics (no clock read, no timer per read or write), a service wrapper
//! counts requests in flight and response frames hyper has not come back
//! for (HTTP/2 flow control), and one sleep per connection, a quarter of the
//! shortest limit, compares the counters. A limit is thus enforced within
//! 1.25× its value. When one expires the socket's reads and writes fail,
//! which ends hyper's connection or the tunnel's copy.
//!
//! The balancer's own HTTP/1.1 loop does not need this: it reads and writes
//! with deadlines of its own (`http1.rs`).

use std::io;
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::task::AtomicWaker;
use http::{Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

use crate::config::ProxyConfig;
use crate::proxy::body::RespBody;

/// The shortest period the watchdog wakes at (limits of a few ms in tests).
const MIN_PERIOD: Duration = Duration::from_millis(10);

/// What one connection has done, shared by its socket, its requests and the
/// watchdog.
#[derive(Debug, Default)]
pub struct Activity {
    /// Reads and writes that moved bytes.
    progress: AtomicU64,
    /// Writes that moved bytes (the client took some).
    sent: AtomicU64,
    /// The last write found the socket full.
    write_blocked: AtomicBool,
    /// Response bodies that gave hyper a frame it has not come back for:
    /// with HTTP/2, a client that grants no flow-control window.
    unsent_frames: AtomicUsize,
    /// Requests whose response has not finished.
    in_flight: AtomicUsize,
    /// Requests started on this connection.
    requests: AtomicU64,
    /// A `101` made the connection a tunnel.
    tunnel: AtomicBool,
    /// The watchdog gave up: reads and writes fail from now on.
    expired: AtomicBool,
    read_waker: AtomicWaker,
    write_waker: AtomicWaker,
}

impl Activity {
    /// Fails the socket's reads and writes, waking whoever waits on them.
    fn expire(&self) {
        self.expired.store(true, Relaxed);
        self.read_waker.wake();
        self.write_waker.wake();
    }

    fn check(&self) -> io::Result<()> {
        if self.expired.load(Relaxed) {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "client connection timed out",
            ));
        }
        Ok(())
    }
}

/// The client limits, from the generation in force at hand-off.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// `client_header_timeout`: from hand-off to the first request.
    header: Duration,
    /// `keepalive_timeout`: nothing in flight, no bytes either way.
    idle: Duration,
    /// `send_timeout`: bytes waiting for a client that takes none.
    send: Duration,
    /// `proxy_read_timeout`: a tunnel with both sides silent (nginx closes
    /// an upgraded connection after it).
    tunnel_idle: Duration,
}

impl From<&ProxyConfig> for Limits {
    fn from(p: &ProxyConfig) -> Self {
        Limits {
            header: p.client_header_timeout,
            idle: p.keepalive_timeout,
            send: p.client_send_timeout,
            tunnel_idle: p.read_timeout,
        }
    }
}

impl Limits {
    fn period(&self) -> Duration {
        [self.header, self.idle, self.send, self.tunnel_idle]
            .into_iter()
            .filter(|d| !d.is_zero())
            .min()
            .map_or(MIN_PERIOD, |d| (d / 4).max(MIN_PERIOD))
    }
}

/// Why a connection was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// No request within `client_header_timeout` (an h2c preface, then
    /// nothing).
    Handshake,
    /// Idle past `keepalive_timeout` (or a silent tunnel past
    /// `proxy_read_timeout`).
    Idle,
    /// The client took no bytes for `send_timeout`.
    Send,
}

/// Watches `activity` until a limit expires (then fails the socket and
/// returns why) or nothing but the watchdog holds it any more (`None`).
pub async fn watch(activity: &Arc<Activity>, limits: Limits) -> Option<Expiry> {
    let start = Instant::now();
    let period = limits.period();
    let (mut progress, mut sent) = (0, 0);
    let (mut progress_at, mut sent_at) = (start, start);
    let mut waiting_since: Option<Instant> = None;
    loop {
        tokio::time::sleep(period).await;
        if Arc::strong_count(activity) == 1 {
            return None;
        }
        let now = Instant::now();
        let a = &**activity;
        let p = a.progress.load(Relaxed);
        if p != progress {
            (progress, progress_at) = (p, now);
        }
        let s = a.sent.load(Relaxed);
        if s != sent {
            (sent, sent_at) = (s, now);
        }
        let waiting = a.write_blocked.load(Relaxed) || a.unsent_frames.load(Relaxed) > 0;
        waiting_since = waiting.then(|| waiting_since.unwrap_or(now));
        let expiry = if a.requests.load(Relaxed) == 0 && now - start >= limits.header {
            Some(Expiry::Handshake)
        } else if waiting_since.is_some_and(|w| now - w.max(sent_at) >= limits.send) {
            Some(Expiry::Send)
        } else if a.in_flight.load(Relaxed) == 0 {
            let idle = if a.tunnel.load(Relaxed) {
                limits.tunnel_idle
            } else {
                limits.idle
            };
            (now - progress_at >= idle).then_some(Expiry::Idle)
        } else {
            None
        };
        if expiry.is_some() {
            a.expire();
            return expiry;
        }
    }
}

/// A client socket whose progress [`watch`] sees.
#[derive(Debug)]
pub struct Watched<T> {
    io: T,
    activity: Arc<Activity>,
}

impl<T> Watched<T> {
    /// Wraps `io`, reporting to `activity`.
    pub fn new(io: T, activity: Arc<Activity>) -> Self {
        Watched { io, activity }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.activity.check()?;
        let before = buf.filled().len();
        let r = Pin::new(&mut this.io).poll_read(cx, buf);
        match &r {
            Poll::Ready(Ok(())) if buf.filled().len() > before => {
                this.activity.progress.fetch_add(1, Relaxed);
            }
            Poll::Pending => {
                this.activity.read_waker.register(cx.waker());
                // Expired between the check and the registration.
                this.activity.check()?;
            }
            _ => {}
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> Watched<T> {
    fn wrote(&self, cx: &mut Context<'_>, r: &Poll<io::Result<usize>>) -> io::Result<()> {
        let a = &self.activity;
        match r {
            Poll::Ready(Ok(n)) if *n > 0 => {
                a.progress.fetch_add(1, Relaxed);
                a.sent.fetch_add(1, Relaxed);
                a.write_blocked.store(false, Relaxed);
            }
            Poll::Pending => {
                a.write_blocked.store(true, Relaxed);
                a.write_waker.register(cx.waker());
                a.check()?;
            }
            _ => {}
        }
        Ok(())
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.activity.check()?;
        let r = Pin::new(&mut this.io).poll_write(cx, buf);
        this.wrote(cx, &r)?;
        r
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.activity.check()?;
        let r = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.wrote(cx, &r)?;
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.activity.check()?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// A request in flight on a watched connection, from the service call to
/// the end (or drop) of its response body.
#[derive(Debug)]
pub struct InFlight(Arc<Activity>);

impl InFlight {
    /// Counts a request that starts now.
    pub fn start(activity: &Arc<Activity>) -> Self {
        activity.requests.fetch_add(1, Relaxed);
        activity.in_flight.fetch_add(1, Relaxed);
        InFlight(activity.clone())
    }

    /// Hands the count to the response's body; a `101` marks the
    /// connection as a tunnel.
    pub fn track(self, response: Response<RespBody>) -> Response<WatchedBody> {
        if response.status() == StatusCode::SWITCHING_PROTOCOLS {
            self.0.tunnel.store(true, Relaxed);
        }
        response.map(|inner| WatchedBody {
            inner,
            unsent: false,
            flight: self,
        })
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Relaxed);
    }
}

/// A response body that tells the watchdog when hyper holds a frame it
/// cannot send.
#[derive(Debug)]
pub struct WatchedBody {
    inner: RespBody,
    /// The last poll gave a frame and hyper has not polled since.
    unsent: bool,
    flight: InFlight,
}

impl WatchedBody {
    fn set_unsent(&mut self, unsent: bool) {
        if self.unsent != unsent {
            self.unsent = unsent;
            let n = &self.flight.0.unsent_frames;
            if unsent {
                n.fetch_add(1, Relaxed);
            } else {
                n.fetch_sub(1, Relaxed);
            }
        }
    }
}

impl Drop for WatchedBody {
    fn drop(&mut self) {
        self.set_unsent(false);
    }
}

impl Body for WatchedBody {
    type Data = Bytes;
    type Error = <RespBody as Body>::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_frame(cx);
        this.set_unsent(matches!(r, Poll::Ready(Some(Ok(_)))));
        r
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
