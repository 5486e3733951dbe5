//! Balancing methods, each in nginx's exact semantics where nginx has it.
//!
//! A method looks at the peers of one tier (primaries, or backups) and picks
//! the index of a usable one not yet tried; [`crate::upstream::Upstream`]
//! takes the slot and handles tiers, retries and the queue. Methods keep
//! their own small state (round robin's current weights, the ketama ring);
//! the peers' counters are atomics they only read.

pub mod hash;
pub mod least_conn;
pub mod least_time;
pub mod p2c;
pub mod random;
pub mod round_robin;

use std::net::IpAddr;
use std::ops::Range;
use std::sync::Arc;

use crate::config::{Algorithm, LeastTimeMode};
use crate::upstream::peer::Peer;
use round_robin::Swrr;

/// What the balancing method may look at in a request. It lives here, with
/// the methods that read it, rather than in the upstream layer that calls
/// them: the flow goes one way (upstream → algorithms → peer).
#[derive(Debug)]
pub struct SelectCtx<'a> {
    /// The client address (`ip_hash`, `$remote_addr`).
    pub ip: IpAddr,
    /// The evaluated hash key (`hash KEY`), if the method uses one.
    pub key: &'a [u8],
}

/// Is peer `i` a candidate: not tried (bit `i` of `skip`) and usable now?
#[inline]
pub(crate) fn candidate(peers: &[Arc<Peer>], i: usize, skip: u128, now: u64) -> bool {
    skip & (1u128 << i) == 0 && peers[i].usable(now)
}

/// A balancing method with its state.
#[derive(Debug)]
pub enum Selector {
    /// Smooth weighted round robin.
    RoundRobin(Swrr),
    /// Weighted least connections, ties by round robin.
    LeastConn(Swrr),
    /// nginx `ip_hash` (falls back to round robin after 20 tries).
    IpHash(Swrr),
    /// nginx `hash KEY` (Cache::Memcached compatible).
    Hash(Swrr),
    /// nginx `hash KEY consistent` (ketama).
    Consistent(hash::Ketama, Swrr),
    /// `random` / `random two least_conn`.
    Random {
        /// Two choices.
        two: bool,
        /// Fallback after too many misses.
        rr: Swrr,
    },
    /// `least_time`.
    LeastTime(LeastTimeMode, Swrr),
    /// Power of two choices over peak EWMA.
    P2c(Swrr),
}

impl Selector {
    /// The state for `alg` over `peers`.
    pub fn new(alg: &Algorithm, peers: &[Arc<Peer>]) -> Self {
        let rr = Swrr::new(peers.len());
        match alg {
            Algorithm::RoundRobin => Selector::RoundRobin(rr),
            Algorithm::LeastConn => Selector::LeastConn(rr),
            Algorithm::IpHash => Selector::IpHash(rr),
            Algorithm::Hash {
                consistent: false, ..
            } => Selector::Hash(rr),
            Algorithm::Hash {
                consistent: true, ..
            } => Selector::Consistent(hash::Ketama::new(peers), rr),
            Algorithm::Random { two } => Selector::Random { two: *two, rr },
            Algorithm::LeastTime(m) => Selector::LeastTime(*m, rr),
            Algorithm::P2cEwma => Selector::P2c(rr),
        }
    }

    /// Picks a peer index in `tier`, or `None` if no candidate is left.
    pub fn select(
        &self,
        peers: &[Arc<Peer>],
        tier: Range<usize>,
        ctx: &SelectCtx<'_>,
        skip: u128,
        now: u64,
    ) -> Option<usize> {
        match self {
            Selector::RoundRobin(rr) => rr.select(peers, tier, skip, now),
            Selector::LeastConn(rr) => least_conn::select(rr, peers, tier, skip, now),
            Selector::IpHash(rr) => hash::ip_hash(rr, peers, tier, ctx.ip, skip, now),
            Selector::Hash(rr) => hash::hash(rr, peers, tier, ctx.key, skip, now),
            Selector::Consistent(k, rr) => k.select(rr, peers, tier, ctx.key, skip, now),
            Selector::Random { two, rr } => random::select(rr, *two, peers, tier, skip, now),
            Selector::LeastTime(mode, rr) => least_time::select(rr, *mode, peers, tier, skip, now),
            Selector::P2c(rr) => p2c::select(rr, peers, tier, skip, now),
        }
    }
}
