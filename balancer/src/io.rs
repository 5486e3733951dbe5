//! Socket reads and writes with timeouts, shared by the balancer's own
//! HTTP/1.1 code on both legs (the client-facing loop in
//! [`crate::server::http1`] and the upstream connections in
//! [`crate::proxy::client`]).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::{Instant, Sleep};

/// A body up to this size is copied behind its head so both go out in one
/// write (one system call, one packet on loopback).
pub const COALESCE: usize = 16 * 1024;

/// Read buffer reserved when it runs low.
pub const READ_CHUNK: usize = 8 * 1024;

/// Makes room for a read.
pub fn reserve(buf: &mut BytesMut) {
    if buf.capacity() - buf.len() < READ_CHUNK / 4 {
        buf.reserve(READ_CHUNK);
    }
}

/// A connection's read timer, kept for the connection's life and moved only
/// when it fires early: deadlines only move forward, so a request usually
/// registers no timer of its own (a timer per request costs an entry in the
/// runtime's timer wheel, added and removed).
#[derive(Debug, Default)]
pub struct ReadTimer {
    sleep: Option<Pin<Box<Sleep>>>,
}

impl ReadTimer {
    /// Reads once into `buf` (0 = closed by the peer); fails with
    /// `TimedOut` at `deadline` (`None`: no limit).
    pub async fn read<R: AsyncRead + Unpin>(
        &mut self,
        io: &mut R,
        buf: &mut BytesMut,
        deadline: Option<Instant>,
    ) -> io::Result<usize> {
        reserve(buf);
        self.run(io.read_buf(buf), deadline).await
    }

    /// Runs `io` (a read, or a wait for readiness), failing with `TimedOut`
    /// at `deadline` (`None`: no limit).
    pub async fn run<T>(
        &mut self,
        io: impl Future<Output = io::Result<T>>,
        deadline: Option<Instant>,
    ) -> io::Result<T> {
        let Some(deadline) = deadline else {
            return io.await;
        };
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if sleep.deadline() > deadline {
            sleep.as_mut().reset(deadline);
        }
        tokio::pin!(io);
        loop {
            tokio::select! {
                biased;
                r = &mut io => return r,
                () = sleep.as_mut() => {
                    if Instant::now() >= deadline {
                        return Err(io::Error::new(io::ErrorKind::TimedOut, "read timed out"));
                    }
                    // Armed for an earlier deadline: move it to this one.
                    sleep.as_mut().reset(deadline);
                }
            }
        }
    }
}

/// Writes all of `data` within `timeout` (zero: no limit). The first try
/// needs no timer: a socket almost always takes a head or a small body at
/// once.
pub async fn write_all<W: AsyncWrite + Unpin>(
    w: &mut W,
    data: &[u8],
    timeout: Duration,
) -> io::Result<()> {
    let done = {
        let mut cx = Context::from_waker(Waker::noop());
        match Pin::new(&mut *w).poll_write(&mut cx, data) {
            Poll::Ready(Ok(n)) => n,
            Poll::Ready(Err(e)) => return Err(e),
            Poll::Pending => 0,
        }
    };
    if done == data.len() {
        return Ok(());
    }
    // Boxed: the slow path's state stays out of every request's future.
    Box::pin(write_rest(w, &data[done..], timeout)).await
}

async fn write_rest<W: AsyncWrite + Unpin>(
    w: &mut W,
    rest: &[u8],
    timeout: Duration,
) -> io::Result<()> {
    if timeout.is_zero() {
        return w.write_all(rest).await;
    }
    match tokio::time::timeout(timeout, w.write_all(rest)).await {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "write timed out")),
    }
}
