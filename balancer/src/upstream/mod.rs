//! The upstream group: its peers (primary first, then backups, so a peer's
//! index is its id in `/status`), the balancing method, and the `queue`.
//!
//! [`Upstream::acquire`] is where a request gets a server: the method picks
//! among usable primaries, then backups (nginx's order); the chosen peer's
//! slot is taken with a CAS so `max_conns` holds for the whole balancer; when
//! nothing is available and a queue is configured the request waits in FIFO
//! order. A [`PeerGuard`] holds the slot; dropping it frees the slot or hands
//! it straight to the oldest queued request.

pub mod peer;
pub mod queue;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use http::StatusCode;
use tokio::sync::oneshot;

pub use crate::algorithms::SelectCtx;
use crate::algorithms::Selector;
use crate::config::{Algorithm, UpstreamConfig};
pub use peer::{AdminState, Peer};
use queue::Queue;

/// Milliseconds on a monotonic clock starting at 1 s (so 0 means "never").
#[derive(Debug, Clone, Copy)]
pub struct Clock(Instant);

impl Clock {
    /// Starts a clock.
    pub fn new() -> Self {
        Clock(Instant::now())
    }

    /// Milliseconds since start, plus 1000.
    #[inline]
    pub fn now(&self) -> u64 {
        self.at(Instant::now())
    }

    /// The clock's reading at `t` (saves a clock read when the caller has one).
    #[inline]
    pub fn at(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.0).as_millis() as u64 + 1000
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

/// Why no server could be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailable {
    /// No usable server and no queue (nginx: "no live upstreams").
    NoLive,
    /// The queue is full.
    QueueFull,
    /// Waited `queue timeout=T` in vain.
    QueueTimeout,
}

/// One upstream group at run time.
#[derive(Debug)]
pub struct Upstream {
    /// The block's name.
    pub name: String,
    /// The method, as configured.
    pub algorithm: Algorithm,
    /// Primary peers then backups.
    pub peers: Vec<Arc<Peer>>,
    /// Number of primary peers (`peers[..primary]`).
    pub primary: usize,
    /// One server and no backup: nginx's `peers->single`, which passive
    /// failure accounting never takes out (there is nowhere else to go, so
    /// refusing requests unsent would only turn one failure into many).
    single: bool,
    selector: Selector,
    /// The queue, if configured.
    pub queue: Option<Queue>,
    /// Shared monotonic clock.
    pub clock: Clock,
}

impl Upstream {
    /// Builds the group; peers of `previous` with the same address and role
    /// are reused (counters, health and pooled connections survive a reload).
    pub fn new(cfg: &UpstreamConfig, previous: Option<&Upstream>, clock: Clock) -> Self {
        let now = clock.now();
        let mut peers = Vec::with_capacity(cfg.servers.len());
        let ordered = cfg
            .servers
            .iter()
            .filter(|s| !s.backup)
            .chain(cfg.servers.iter().filter(|s| s.backup));
        for s in ordered {
            let reused = previous.and_then(|p| {
                p.peers
                    .iter()
                    .find(|old| old.addr == s.addr && old.backup == s.backup)
                    .cloned()
            });
            let peer = match reused {
                Some(p) => {
                    p.apply(s, cfg.keepalive, now);
                    p
                }
                None => Arc::new(Peer::new(s, cfg.keepalive)),
            };
            peers.push(peer);
        }
        let primary = cfg.servers.iter().filter(|s| !s.backup).count();
        Upstream {
            name: cfg.name.clone(),
            selector: Selector::new(&cfg.algorithm, &peers),
            algorithm: cfg.algorithm.clone(),
            single: peers.len() == 1,
            peers,
            primary,
            queue: cfg.queue.as_ref().map(Queue::new),
            clock,
        }
    }

    /// Gets a server for a request, skipping those in `tried` (bit i = peer
    /// i), waiting in the queue if one is configured.
    pub async fn acquire(
        self: &Arc<Self>,
        ctx: &SelectCtx<'_>,
        tried: u128,
    ) -> Result<PeerGuard, Unavailable> {
        let Some(q) = &self.queue else {
            return self.select(ctx, tried).ok_or(Unavailable::NoLive);
        };
        let (id, rx) = {
            // The selection happens under the queue lock so that a slot
            // freed concurrently is either seen here or handed to us: no
            // request waits while a server is free.
            let mut waiters = q.lock();
            self.serve_waiters(q, &mut waiters, ctx);
            if waiters.is_empty() {
                if let Some(g) = self.select(ctx, tried) {
                    return Ok(g);
                }
            }
            match q.push(&mut waiters) {
                Some(w) => w,
                None => {
                    q.rejected();
                    return Err(Unavailable::QueueFull);
                }
            }
        };
        let mut place = QueuePlace {
            upstream: self,
            queue: q,
            ticket: id,
            rx: Some(rx),
        };
        let handed = match place.rx.as_mut() {
            Some(rx) => q.wait(id, rx).await,
            None => None,
        };
        place.rx = None;
        match handed {
            Some(idx) => {
                let peer = &self.peers[idx];
                peer.on_selected(self.clock.now());
                Ok(PeerGuard {
                    upstream: self.clone(),
                    idx,
                    armed: true,
                })
            }
            None => {
                q.rejected();
                Err(Unavailable::QueueTimeout)
            }
        }
    }

    /// Hands servers that became available without a release (admin `up`,
    /// health or failure recovery) to queued requests, oldest first, so a
    /// newcomer never overtakes them.
    fn serve_waiters(
        self: &Arc<Self>,
        q: &Queue,
        waiters: &mut queue::Waiters,
        ctx: &SelectCtx<'_>,
    ) {
        while !waiters.is_empty() {
            let Some(g) = self.select(ctx, 0) else { break };
            let idx = g.disarm();
            if !q.hand_off(waiters, idx) {
                self.peers[idx]
                    .active
                    .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                break;
            }
        }
    }

    /// Serves queued requests if servers are free (after admin changes).
    pub fn kick(self: &Arc<Self>) {
        if let Some(q) = &self.queue {
            let mut waiters = q.lock();
            let ctx = SelectCtx {
                ip: IpAddr::from([0, 0, 0, 0]),
                key: b"",
            };
            self.serve_waiters(q, &mut waiters, &ctx);
        }
    }

    /// Picks and takes a usable server without waiting.
    pub fn select(self: &Arc<Self>, ctx: &SelectCtx<'_>, tried: u128) -> Option<PeerGuard> {
        let now = self.clock.now();
        if self.single {
            // nginx's `ngx_http_upstream_get_round_robin_peer`: for a single
            // server only `down` and `max_conns` count, not `max_fails`.
            let peer = &self.peers[0];
            let take = tried & 1 == 0 && peer.usable_ignoring_fails() && peer.try_acquire();
            return take.then(|| {
                peer.on_selected(now);
                PeerGuard {
                    upstream: self.clone(),
                    idx: 0,
                    armed: true,
                }
            });
        }
        let mut skip = tried;
        let tiers = [0..self.primary, self.primary..self.peers.len()];
        for tier in tiers {
            if tier.is_empty() {
                continue;
            }
            // A few rounds: a chosen peer may hit max_conns between the
            // method's look and our CAS on another thread.
            for _ in 0..8 {
                let Some(i) = self
                    .selector
                    .select(&self.peers, tier.clone(), ctx, skip, now)
                else {
                    break;
                };
                let peer = &self.peers[i];
                if peer.try_acquire() {
                    peer.on_selected(now);
                    return Some(PeerGuard {
                        upstream: self.clone(),
                        idx: i,
                        armed: true,
                    });
                }
                skip |= 1u128 << i;
            }
        }
        // nginx: when every server has failed, forget the failures so the
        // next requests probe them again ("quick recovery").
        if self.peers.iter().all(|p| !p.usable(now)) {
            for p in &self.peers {
                if p.failed(now) {
                    p.reset_fails();
                }
            }
        }
        None
    }

    /// Frees peer `idx`'s slot, or hands it to the oldest queued request.
    fn release(&self, idx: usize) {
        let peer = &self.peers[idx];
        if let Some(q) = &self.queue {
            let mut waiters = q.lock();
            if !waiters.is_empty()
                && peer.usable_ignoring_conns(self.clock.now())
                && q.hand_off(&mut waiters, idx)
            {
                return;
            }
            peer.active
                .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            return;
        }
        peer.active
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Requests waiting in the queue.
    pub fn queue_depth(&self) -> usize {
        self.queue.as_ref().map_or(0, |q| q.depth())
    }
}

/// A request's place in the queue while it waits. If the request goes away
/// meanwhile (its client left), the place is given up on drop, and a slot
/// handed to it at that moment is passed on.
struct QueuePlace<'a> {
    upstream: &'a Upstream,
    queue: &'a Queue,
    ticket: u64,
    /// `None` once the wait is over.
    rx: Option<oneshot::Receiver<usize>>,
}

impl Drop for QueuePlace<'_> {
    fn drop(&mut self) {
        if let Some(mut rx) = self.rx.take() {
            if let Some(idx) = self.queue.leave(self.ticket, &mut rx) {
                self.upstream.release(idx);
            }
        }
    }
}

/// A taken slot on a peer; released (or handed to the queue) on drop.
#[derive(Debug)]
pub struct PeerGuard {
    upstream: Arc<Upstream>,
    idx: usize,
    /// False once the slot was passed on by hand (see `disarm`).
    armed: bool,
}

impl PeerGuard {
    /// The peer's index (its id in `/status`).
    pub fn idx(&self) -> usize {
        self.idx
    }

    /// The peer.
    pub fn peer(&self) -> &Arc<Peer> {
        &self.upstream.peers[self.idx]
    }

    /// A failed attempt on this server: counted towards `max_fails`, except
    /// in a group of one, where nginx counts none
    /// (`ngx_http_upstream_free_round_robin_peer`).
    pub fn on_failure(&self, now: u64) {
        let peer = self.peer();
        if self.upstream.single {
            peer.failures
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        } else {
            peer.on_failure(now);
        }
    }

    /// The group's clock.
    pub fn now(&self) -> u64 {
        self.upstream.clock.now()
    }

    /// The group's clock at `t`.
    pub fn now_at(&self, t: Instant) -> u64 {
        self.upstream.clock.at(t)
    }

    /// Gives up the guard without releasing the slot (the caller passes
    /// it on); returns the peer index.
    fn disarm(mut self) -> usize {
        self.armed = false;
        self.idx
    }
}

impl Drop for PeerGuard {
    fn drop(&mut self) {
        if self.armed {
            self.upstream.release(self.idx);
        }
    }
}

/// The status a rejection is answered with (502 as nginx, or the queue's
/// configured status).
pub fn rejection_status(up: &Upstream, why: Unavailable) -> (StatusCode, Option<u32>) {
    match (why, &up.queue) {
        (Unavailable::QueueFull | Unavailable::QueueTimeout, Some(q)) => {
            (q.reject_status, q.retry_after)
        }
        _ => (StatusCode::BAD_GATEWAY, None),
    }
}
