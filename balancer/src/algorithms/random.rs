//! nginx's `random` and `random two [least_conn]`
//! (`ngx_http_upstream_random_module`): a server drawn with probability
//! proportional to its weight; with `two`, two distinct servers are drawn
//! and the one with fewer active requests relative to weight wins. After 20
//! unlucky draws nginx falls back to round robin, and so do we.

use std::ops::Range;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use rand::Rng;

use super::candidate;
use super::round_robin::Swrr;
use crate::upstream::peer::Peer;

/// Draws one peer index of `tier` by weight (not checking availability).
fn draw(rng: &mut impl Rng, peers: &[Arc<Peer>], tier: &Range<usize>, now: u64) -> usize {
    let total: u64 = tier
        .clone()
        .map(|i| peers[i].effective_weight(now) as u64)
        .sum();
    let mut x = rng.gen_range(0..total.max(1));
    for i in tier.clone() {
        let w = peers[i].effective_weight(now) as u64;
        if x < w {
            return i;
        }
        x -= w;
    }
    tier.end - 1
}

/// Picks a random candidate of `tier` (two choices if `two`).
pub fn select(
    rr: &Swrr,
    two: bool,
    peers: &[Arc<Peer>],
    tier: Range<usize>,
    skip: u128,
    now: u64,
) -> Option<usize> {
    let mut rng = rand::thread_rng();
    let mut first = None;
    for _ in 0..20 {
        let i = draw(&mut rng, peers, &tier, now);
        if first == Some(i) || !candidate(peers, i, skip, now) {
            continue;
        }
        if !two {
            return Some(i);
        }
        match first {
            None => {
                first = Some(i);
                if tier.len() == 1 {
                    return first;
                }
            }
            Some(a) => {
                let (ca, wa) = (
                    peers[a].active.load(Relaxed) as u64,
                    peers[a].effective_weight(now) as u64,
                );
                let (cb, wb) = (
                    peers[i].active.load(Relaxed) as u64,
                    peers[i].effective_weight(now) as u64,
                );
                return Some(if cb * wa < ca * wb { i } else { a });
            }
        }
    }
    first.or_else(|| rr.select(peers, tier, skip, now))
}
