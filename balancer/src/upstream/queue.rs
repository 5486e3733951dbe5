//! `queue N timeout=T` (NGINX Plus; open-source nginx lacks it): when no
//! server can take a request, it waits here, first in first out, for at most
//! `T`. A freed slot is handed directly to the oldest waiter (through a
//! oneshot), so a newcomer can never overtake a queued request.
//!
//! The waiter list is a `std::sync::Mutex` and not a Tokio mutex: no
//! `.await` happens while it is held, and it is only touched when a queue is
//! configured.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use http::StatusCode;
use tokio::sync::oneshot;

use crate::config::QueueConfig;

/// Waiters: (ticket, channel that receives a peer index).
pub type Waiters = VecDeque<(u64, oneshot::Sender<usize>)>;

/// The queue of one upstream.
#[derive(Debug)]
pub struct Queue {
    size: usize,
    timeout: Duration,
    /// Status for overflow and timeout.
    pub reject_status: StatusCode,
    /// `Retry-After` seconds with a 503.
    pub retry_after: Option<u32>,
    waiters: Mutex<Waiters>,
    depth: AtomicUsize,
    next_ticket: AtomicU64,
    rejected: AtomicU64,
}

impl Queue {
    /// An empty queue.
    pub fn new(cfg: &QueueConfig) -> Self {
        Queue {
            size: cfg.size,
            timeout: cfg.timeout,
            reject_status: cfg.reject_status,
            retry_after: cfg.retry_after,
            waiters: Mutex::new(VecDeque::new()),
            depth: AtomicUsize::new(0),
            next_ticket: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
        }
    }

    /// Locks the waiter list (never poisoned in practice: nothing panics
    /// while it is held; if it were, the data is still consistent).
    pub fn lock(&self) -> MutexGuard<'_, Waiters> {
        self.waiters.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends a waiter unless the queue is full.
    pub fn push(&self, w: &mut Waiters) -> Option<(u64, oneshot::Receiver<usize>)> {
        if w.len() >= self.size {
            return None;
        }
        let ticket = self.next_ticket.fetch_add(1, Relaxed);
        let (tx, rx) = oneshot::channel();
        w.push_back((ticket, tx));
        self.depth.store(w.len(), Relaxed);
        Some((ticket, rx))
    }

    /// Gives peer `idx`'s slot to the oldest live waiter; false if none.
    pub fn hand_off(&self, w: &mut Waiters, idx: usize) -> bool {
        while let Some((_, tx)) = w.pop_front() {
            if tx.send(idx).is_ok() {
                self.depth.store(w.len(), Relaxed);
                return true;
            }
        }
        self.depth.store(0, Relaxed);
        false
    }

    /// Waits for a handed-off slot; `None` on timeout.
    pub async fn wait(&self, ticket: u64, rx: &mut oneshot::Receiver<usize>) -> Option<usize> {
        match tokio::time::timeout(self.timeout, &mut *rx).await {
            Ok(Ok(idx)) => Some(idx),
            _ => self.leave(ticket, rx),
        }
    }

    /// Gives up a place (timed out, or its client left). A slot may have
    /// been sent just as the waiter gave up: close the channel first, then
    /// take whatever arrived, so a slot is never lost; the caller owns it.
    pub fn leave(&self, ticket: u64, rx: &mut oneshot::Receiver<usize>) -> Option<usize> {
        rx.close();
        if let Ok(idx) = rx.try_recv() {
            return Some(idx);
        }
        let mut w = self.lock();
        w.retain(|(t, _)| *t != ticket);
        self.depth.store(w.len(), Relaxed);
        None
    }

    /// Counts a rejected request (full or timed out).
    pub fn rejected(&self) {
        self.rejected.fetch_add(1, Relaxed);
    }

    /// Total rejections since start.
    pub fn rejected_total(&self) -> u64 {
        self.rejected.load(Relaxed)
    }

    /// Requests currently waiting.
    pub fn depth(&self) -> usize {
        self.depth.load(Relaxed)
    }
}
