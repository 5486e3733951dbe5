//! Power of two choices over peak-EWMA latency, the method linkerd made
//! famous and nginx lacks: draw two distinct candidates at random and send to
//! the one with the lower cost, `ewma_rtt * (active + 1) / weight`.
//!
//! Why not `tower::balance::p2c::Balance` itself: tower's balancer owns its
//! endpoint services and drives them through `Discover` and `poll_ready`,
//! while every method here must share one peer table with nginx's rules
//! (`max_conns` for the whole balancer, passive `max_fails`, backup tier,
//! queue hand-off, retries that exclude already-tried servers, admin
//! drain/down). So we keep tower's algorithm — the same P2C draw and the same
//! peak-EWMA estimator as `tower::load::PeakEwma` (a slower sample replaces
//! the estimate, faster ones decay it; the estimate decays on read; pending
//! requests multiply the cost) — over our shared peers.

use std::ops::Range;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use rand::Rng;

use super::candidate;
use super::round_robin::Swrr;
use crate::upstream::peer::Peer;

fn cost(p: &Peer, now: u64) -> f64 {
    p.decayed_ewma(now) * (p.active.load(Relaxed) as f64 + 1.0) / p.effective_weight(now) as f64
}

/// Picks the cheaper of two random candidates of `tier`.
pub fn select(
    rr: &Swrr,
    peers: &[Arc<Peer>],
    tier: Range<usize>,
    skip: u128,
    now: u64,
) -> Option<usize> {
    let mut rng = rand::thread_rng();
    let n = tier.len();
    if n == 0 {
        return None;
    }
    let pick = |rng: &mut rand::rngs::ThreadRng, not: Option<usize>| {
        for _ in 0..8 {
            let i = tier.start + rng.gen_range(0..n);
            if Some(i) != not && candidate(peers, i, skip, now) {
                return Some(i);
            }
        }
        None
    };
    let Some(a) = pick(&mut rng, None) else {
        return rr.select(peers, tier.clone(), skip, now);
    };
    let Some(b) = (if n > 1 { pick(&mut rng, Some(a)) } else { None }) else {
        return Some(a);
    };
    Some(if cost(&peers[b], now) < cost(&peers[a], now) {
        b
    } else {
        a
    })
}
