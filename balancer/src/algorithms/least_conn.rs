//! nginx's `least_conn` (`ngx_http_upstream_get_least_conn_peer`): the
//! candidate with the fewest active requests relative to its weight
//! (`conns_a * weight_b < conns_b * weight_a`); several equal ones are
//! chosen among by smooth weighted round robin.

use std::ops::Range;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use super::candidate;
use super::round_robin::Swrr;
use crate::upstream::peer::Peer;

/// Picks the least loaded candidate of `tier`.
pub fn select(
    rr: &Swrr,
    peers: &[Arc<Peer>],
    tier: Range<usize>,
    skip: u128,
    now: u64,
) -> Option<usize> {
    let mut best: Option<(usize, u64, u64)> = None;
    let mut many = false;
    for i in tier.clone() {
        if !candidate(peers, i, skip, now) {
            continue;
        }
        let conns = peers[i].active.load(Relaxed) as u64;
        let w = peers[i].effective_weight(now) as u64;
        match best {
            Some((_, bc, bw)) if conns * bw > bc * w => {}
            Some((_, bc, bw)) if conns * bw == bc * w => many = true,
            _ => {
                best = Some((i, conns, w));
                many = false;
            }
        }
    }
    let (b, bc, bw) = best?;
    if !many {
        return Some(b);
    }
    rr.select_where(peers, b..tier.end, now, |i| {
        candidate(peers, i, skip, now)
            && peers[i].active.load(Relaxed) as u64 * bw
                == bc * peers[i].effective_weight(now) as u64
    })
    .or(Some(b))
}
