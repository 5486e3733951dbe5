//! `least_time header|last_byte` (NGINX Plus): the candidate with the lowest
//! moving-average response time combined with its active requests,
//! relative to weight: `(avg + 1µs) * (active + 1) / weight`. Equal scores
//! (e.g. before anything was measured) go by smooth weighted round robin.

use std::ops::Range;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use super::candidate;
use super::round_robin::Swrr;
use crate::config::LeastTimeMode;
use crate::upstream::peer::Peer;

fn score(p: &Peer, now: u64) -> f64 {
    (p.avg_time_us() + 1.0) * (p.active.load(Relaxed) as f64 + 1.0) / p.effective_weight(now) as f64
}

/// Picks the fastest candidate of `tier`. The mode only decides what the
/// proxy feeds into the average (time to header or to last byte).
pub fn select(
    rr: &Swrr,
    _mode: LeastTimeMode,
    peers: &[Arc<Peer>],
    tier: Range<usize>,
    skip: u128,
    now: u64,
) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    let mut many = false;
    for i in tier.clone() {
        if !candidate(peers, i, skip, now) {
            continue;
        }
        let s = score(&peers[i], now);
        match best {
            Some((_, bs)) if s > bs => {}
            Some((_, bs)) if s == bs => many = true,
            _ => {
                best = Some((i, s));
                many = false;
            }
        }
    }
    let (b, bs) = best?;
    if !many {
        return Some(b);
    }
    rr.select_where(peers, b..tier.end, now, |i| {
        candidate(peers, i, skip, now) && score(&peers[i], now) == bs
    })
    .or(Some(b))
}
